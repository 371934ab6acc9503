"""Paper exchange: Binance-like fills at the current paper price, balances kept as events."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.errors import (
    ConcurrencyConflict,
    ExchangeUnavailable,
    FilterFailure,
    InsufficientBalance,
    InvalidInput,
)
from domain.market import SymbolRules
from domain.paper_market import PaperMarket
from domain.ports import (
    Balance,
    Clock,
    MarginHolding,
    OrderRecord,
    OrderRequest,
    OrderResult,
    Trade,
    TradingAccount,
)
from domain.store import CONFLICT_ATTEMPTS, EventStore, retry_on_conflict
from infra.paper_accounts import (
    SYMBOLS,
    PaperAccount,
    PaperOrder,
    account_id,
    market_id,
    order_id,
)
from infra.paper_margin import isolated_debt, isolated_free
from infra.paper_prices import MarketPrices, PricesFromBinance
from infra.paper_stops import PaperStopOrders


class PaperExchange(PaperStopOrders):
    """The embedded default exchange. Orders with a known client order id are never refilled;
    stop orders rest until a price triggers them (see `PaperStopOrders`)."""

    name = "paper"
    is_live = False

    def __init__(
        self,
        store: EventStore,
        clock: Clock,
        opening_balance: Decimal,
        symbols: Mapping[str, SymbolRules] = SYMBOLS,
        market: MarketPrices | None = None,
    ) -> None:
        """`market` None: prices are set by hand (CLI, API, a demo feed); otherwise every
        price comes from it (Binance's) and setting one is refused."""
        self.store = store
        self.clock = clock
        self.opening_balance = opening_balance
        self.symbols = dict(symbols)
        self.market = market

    @property
    def prices_are_live(self) -> bool:
        return self.market is not None

    def symbol_rules(self, symbol: str) -> SymbolRules:
        rules = self.symbols.get(symbol.upper())
        if rules is None:
            raise InvalidInput(
                "symbol", f"unknown symbol {symbol!r}; supported: {', '.join(self.symbols)}"
            )
        return rules

    def set_price(self, symbol: str, price: Decimal) -> Decimal:
        rules = self.symbol_rules(symbol)
        if self.market is not None:
            raise PricesFromBinance(rules.symbol)
        if not price.is_finite() or price <= 0:
            raise InvalidInput("price", "must be a finite number greater than zero")
        price = rules.round_price_down(price)
        if price <= 0:
            raise InvalidInput("price", f"must be at least the tick size {rules.tick_size}")

        def command() -> Decimal:
            market = self.store.load(market_id(rules.symbol), PaperMarket)
            now = self.clock.now()
            if market is None:
                market = PaperMarket._create(
                    PaperMarket.Opened,
                    id=market_id(rules.symbol),
                    timestamp=now,
                    symbol=rules.symbol,
                    price=price,
                )
            else:
                market.set_price(price, now)
            self.store.save(market)
            return price

        settled = retry_on_conflict(command)
        self.trigger_stops(rules.symbol, settled)
        return settled

    def price(self, symbol: str) -> Decimal:
        rules = self.symbol_rules(symbol)
        if self.market is not None:
            return self.market.price(rules.symbol)
        market = self.store.load(market_id(rules.symbol), PaperMarket)
        if market is None:
            raise ExchangeUnavailable(
                f"No paper price for {rules.symbol} yet: set one with "
                f"`robson paper price {rules.symbol} <price>` or POST /api/paper/price/"
            )
        return market.price

    def _account(self, client_id: UUID) -> PaperAccount:
        account = self.store.load(account_id(client_id), PaperAccount)
        if account is None:
            account = PaperAccount._create(
                PaperAccount.Funded,
                id=account_id(client_id),
                timestamp=self.clock.now(),
                client_id=client_id,
                balances={"USDC": self.opening_balance},
            )
        return account

    def balances(self, account: TradingAccount) -> dict[str, Balance]:
        paper = self._account(account.client_id)
        return {asset: Balance(asset, free) for asset, free in paper.free.items()}

    def place_order(self, account: TradingAccount, order: OrderRequest) -> OrderResult:
        rules = self.symbol_rules(order.symbol)
        price = self.price(rules.symbol)
        if order.quantity is not None:
            quantity = order.quantity
        else:
            assert order.quote_amount is not None
            quantity = rules.round_quantity(order.quote_amount / price)
        problems = rules.order_problems(quantity, price)
        if problems:
            raise FilterFailure(problems[0].split(":")[0], problems[0])

        for _ in range(CONFLICT_ATTEMPTS):
            paper = self._account(account.client_id)
            try:
                filled = paper.fill(order, rules, quantity, price, self.clock.now())
            except InsufficientBalance:
                already = self.find_order(account, rules.symbol, order.client_order_id)
                if already is None:
                    raise
                return already  # a retry of an order that was filled (and spent the balance)
            try:
                self.store.save(paper, filled)
            except IntegrityError:
                # This client order id was filled already (its stream exists), or another
                # order moved the balance first: never fill twice, otherwise try again.
                already = self.find_order(account, rules.symbol, order.client_order_id)
                if already is not None:
                    return already
                continue
            return filled.result()
        raise ConcurrencyConflict("The paper account kept changing; try again")

    def find_order(
        self, account: TradingAccount, symbol: str, client_order_id: str
    ) -> OrderResult | None:
        found = self.store.load(order_id(account.client_id, client_order_id), PaperOrder)
        if found is None:
            return self.find_stop(account.client_id, client_order_id)  # resting or cancelled
        return found.result()

    def orders_since(
        self, account: TradingAccount, symbol: str, since: datetime, *, margin: bool = False
    ) -> list[OrderRecord]:
        """Nothing beyond `find_order`: a paper fill is findable by its id the moment it is
        saved, so a miss is already proof and no order here lacks an id of ours."""
        return []

    def trades_since(
        self, account: TradingAccount, symbol: str, since: datetime, *, margin: bool = False
    ) -> list[Trade]:
        """Every paper execution is an order `find_order` sees at once (see `orders_since`)."""
        return []

    def orders_filled(self, client_id: UUID) -> int:
        """How many orders this tenant's paper account has filled."""
        return self._account(client_id).orders_filled

    def borrow(self, account: TradingAccount, symbol: str, asset: str, amount: Decimal) -> None:
        rules = self.symbol_rules(symbol)
        price = self.price(rules.symbol)

        def command() -> None:
            paper = self._account(account.client_id)
            paper.borrow(asset, amount, rules, price, self.clock.now())
            self.store.save(paper)

        retry_on_conflict(command)

    def repay(self, account: TradingAccount, symbol: str, asset: str, amount: Decimal) -> None:
        rules = self.symbol_rules(symbol)

        def command() -> None:
            paper = self._account(account.client_id)
            paper.repay(asset, amount, rules, self.clock.now())
            self.store.save(paper)

        retry_on_conflict(command)

    def isolated_margin(self, account: TradingAccount, symbol: str) -> dict[str, MarginHolding]:
        """What the symbol's isolated account owes, and what it can use: paper moves an
        order's collateral in from the spot wallet, so the spot wallet counts as free."""
        rules = self.symbol_rules(symbol)
        paper = self._account(account.client_id)
        held, owed = isolated_free(paper, rules.symbol), isolated_debt(paper, rules.symbol)
        return {
            asset: MarginHolding(
                asset,
                borrowed=owed.get(asset, Decimal(0)),
                free=held.get(asset, Decimal(0)) + paper.free.get(asset, Decimal(0)),
            )
            for asset in (rules.base_asset, rules.quote_asset)
        }

    def isolated_accounts(self, client_id: UUID) -> dict[str, dict[str, MarginHolding]]:
        """Each isolated account in use, as it stands (its collateral and loans per asset)."""
        paper = self._account(client_id)
        accounts: dict[str, dict[str, MarginHolding]] = {}
        for symbol in sorted(
            {*vars(paper).get("isolated", {}), *vars(paper).get("isolated_borrowed", {})}
        ):
            held, owed = isolated_free(paper, symbol), isolated_debt(paper, symbol)
            holdings = {
                asset: MarginHolding(asset, borrowed=owed.get(asset, Decimal(0)), free=free)
                for asset in sorted({*held, *owed})
                if (free := held.get(asset, Decimal(0))) or owed.get(asset)
            }
            if holdings:
                accounts[symbol] = holdings
        return accounts

    def borrowed(self, client_id: UUID) -> dict[str, Decimal]:
        """Everything this tenant owes, across its isolated accounts, per asset."""
        paper = self._account(client_id)
        total = dict(paper.borrowed)
        for owed in vars(paper).get("isolated_borrowed", {}).values():
            for asset, amount in owed.items():
                total[asset] = total.get(asset, Decimal(0)) + amount
        return {a: v for a, v in total.items() if v}
