"""Market vocabulary: sides, order sides and a symbol's trading rules (tick, lot, notional)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import Enum

ASSET_PRECISION = Decimal("0.00000001")  # exchanges keep asset amounts to 8 decimal places
# Binance's standard spot taker fee: the most a buy's fee, taken in the asset bought,
# withholds of it (https://www.binance.com/en/fee/schedule).
BASE_FEE_ALLOWANCE = Decimal("0.001")


class Side(Enum):
    LONG = "LONG"
    SHORT = "SHORT"

    @property
    def sign(self) -> int:
        return 1 if self is Side.LONG else -1

    @property
    def entry_order_side(self) -> OrderSide:
        return OrderSide.BUY if self is Side.LONG else OrderSide.SELL

    @property
    def exit_order_side(self) -> OrderSide:
        return OrderSide.SELL if self is Side.LONG else OrderSide.BUY


class OrderSide(Enum):
    BUY = "BUY"
    SELL = "SELL"


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Round down to a multiple of `step`, keeping the step's exponent."""
    return ((value / step).to_integral_value(rounding=ROUND_FLOOR) * step).quantize(step)


def ceil_to_step(value: Decimal, step: Decimal) -> Decimal:
    return ((value / step).to_integral_value(rounding=ROUND_CEILING) * step).quantize(step)


@dataclass(frozen=True)
class SymbolRules:
    """The exchange's filters for one symbol (Binance's PRICE_FILTER, LOT_SIZE, NOTIONAL and
    MAX_NUM_ALGO_ORDERS: how many stop orders an account may rest on the symbol)."""

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    margin_allowed: bool = True
    max_algo_orders: int = 5

    def round_quantity(self, quantity: Decimal) -> Decimal:
        """Lot sizes are always rounded down: never trade more than was sized."""
        return floor_to_step(quantity, self.step_size)

    def round_price_down(self, price: Decimal) -> Decimal:
        return floor_to_step(price, self.tick_size)

    def round_price_up(self, price: Decimal) -> Decimal:
        return ceil_to_step(price, self.tick_size)

    def protective_stop(self, side: Side, stop: Decimal) -> Decimal:
        """Round a stop to the tick in the safe direction: never looser than computed."""
        return self.round_price_up(stop) if side is Side.LONG else self.round_price_down(stop)

    def smallest_order(self, price: Decimal) -> Decimal:
        """The least quantity the exchange accepts at `price`: LOT_SIZE's minimum, or what
        reaches the NOTIONAL minimum, in whole lot steps."""
        return max(self.min_qty, ceil_to_step(self.min_notional / price, self.step_size))

    def held_after_fee(self, side: Side, quantity: Decimal) -> Decimal:
        """What an entry of `quantity` leaves to exit, in lot steps: a buy's fee may be
        taken from the asset bought."""
        kept = quantity * (1 - BASE_FEE_ALLOWANCE) if side is Side.LONG else quantity
        return self.round_quantity(kept)

    def stop_limit(self, side: Side, stop: Decimal, slippage: Decimal) -> Decimal:
        """The limit of a stop-limit exit: `slippage` beyond the stop, rounded further out, so
        the order still fills when the price gaps a little past the stop."""
        if side is Side.LONG:
            return max(self.tick_size, self.round_price_down(stop * (1 - slippage)))
        return self.round_price_up(stop * (1 + slippage))

    def order_problems(self, quantity: Decimal, price: Decimal) -> list[str]:
        """Why the exchange would refuse this quantity at this price (empty when it would not)."""
        problems: list[str] = []
        if quantity < self.min_qty:
            problems.append(
                f"LOT_SIZE: quantity {quantity} is below the minimum "
                f"{self.min_qty} {self.base_asset}"
            )
        elif quantity > self.max_qty:
            problems.append(
                f"LOT_SIZE: quantity {quantity} is above the maximum "
                f"{self.max_qty} {self.base_asset}"
            )
        elif floor_to_step(quantity, self.step_size) != quantity:
            problems.append(f"LOT_SIZE: quantity {quantity} is not a multiple of {self.step_size}")
        notional = quantity * price
        if notional < self.min_notional:
            problems.append(
                f"NOTIONAL: order value {notional.quantize(Decimal('0.01'))} {self.quote_asset} "
                f"is below the minimum {self.min_notional} {self.quote_asset}"
            )
        return problems


BTCUSDC = SymbolRules(
    symbol="BTCUSDC",
    base_asset="BTC",
    quote_asset="USDC",
    tick_size=Decimal("0.01"),
    step_size=Decimal("0.00001"),
    min_qty=Decimal("0.00001"),
    max_qty=Decimal("9000"),
    min_notional=Decimal("5"),
)
