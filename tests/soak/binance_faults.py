"""Scenario 4: Binance's faults on the order endpoint, through the ledger, with the real
python-binance client against the fake server (built by the composition root like
`robson serve`). After each fault the ledger reconciles (grace 0, a few passes), then its
entries and exits are compared with the orders the fake actually executed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from domain.errors import DomainError
from domain.ledger import PlanRequest
from domain.market import Side
from domain.position import Status
from infra.bootstrap import Services, build_services, migrate
from infra.settings import Settings
from tests.fakes.binance import (
    ApiError,
    DropConnection,
    FakeBinance,
    Fault,
    RateLimit,
    RawResponse,
)
from tests.soak.harness import Outcome, base_env, scaled, wait_until, workdir

BTC = "BTCUSDC"
ORDER = "/api/v3/order"
D = Decimal
SETTLED = (Status.OPEN, Status.CLOSED, Status.REJECTED, Status.CANCELLED)
TIMESTAMP = ApiError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")


@dataclass(frozen=True)
class Case:
    name: str
    faults: tuple[tuple[Fault, str], ...]  # (fault, method) on the order endpoint
    lookup_lag: float = 0  # seconds a look-up of an order answered under a fault says -2013
    grace: float = 0  # seconds reconciliation leaves an order in flight before looking it up


CASES = (
    Case("429 Retry-After", ((RateLimit(1, 429), "POST"),)),
    Case("418 Retry-After", ((RateLimit(2, 418), "POST"),)),
    Case("-1021 timestamp", ((TIMESTAMP, "POST"),)),
    Case("502 after execution", ((RawResponse(502, "<html>bad gateway</html>"), "POST"),)),
    Case(
        "503 after execution, look-up 502",
        (
            (RawResponse(503, "unavailable"), "POST"),
            (RawResponse(502, "<html>bad gateway</html>", execute=False), "GET"),
        ),
    ),
    Case("dropped after execution", ((DropConnection(), "POST"),)),
    Case("dropped after execution, look-up lags 2s, grace 3s", ((DropConnection(), "POST"),), 2, 3),
    # A grace shorter than the lag: the look-up misses an order that did execute.
    Case("dropped after execution, look-up lags 2s, grace 0", ((DropConnection(), "POST"),), 2),
)


class Desk:
    """One composition root on the fake, and a fresh funded tenant per order."""

    def __init__(self, home: Path, fake: FakeBinance) -> None:
        env = base_env(
            home,
            ROBSON_EXCHANGE="binance",
            ROBSON_BINANCE_BASE_URL=fake.url,
            TRADING_ENABLED="True",
        )
        settings = Settings.from_env(env)
        migrate(settings)
        self.services: Services = build_services(settings)
        self.fake = fake
        self._tenants = 0

    def tenant(self) -> tuple[UUID, str]:
        self._tenants += 1
        n = self._tenants
        ledger = self.services.ledger
        client_id = ledger.register_client(
            f"Matrix {n}", f"matrix-{n}@example.com", D(1000), False
        ).client_id
        key, secret = f"matrix-key-{n:08d}-000000", f"matrix-secret-{n:08d}-000000"
        self.fake.fund(key, secret, {"USDC": D(10000)})
        ledger.set_credentials(ledger.client(client_id).email, key, secret)
        return client_id, key

    def settle(self, client_id: UUID, position_id: UUID, grace: float) -> Status:
        """Reconcile with no grace until the position is at rest (look-ups may lag), then
        wait out any Retry-After the fault left, so the next case starts unbanned."""
        ledger = self.services.ledger

        def at_rest() -> bool:
            try:
                ledger.reconcile(position_id, grace=timedelta(seconds=grace))
            except DomainError:
                return False  # the exchange is still faulty: look again
            return ledger.position(client_id, position_id).status in SETTLED

        def answering() -> bool:
            try:
                ledger.exchange.price(BTC)
            except DomainError:
                return False
            return True

        wait_until(at_rest, timeout=10 + grace, every=0.5)
        wait_until(answering, timeout=10, every=0.5)
        return ledger.position(client_id, position_id).status


def _executed(fake: FakeBinance, key: str, side: str) -> int:
    return sum(1 for o in fake.orders(key) if o["side"] == side and D(o["executedQty"]) > 0)


def _entry(desk: Desk, case: Case, outcome: Outcome) -> None:
    client_id, key = desk.tenant()
    ledger = desk.services.ledger
    planned = ledger.plan_position(client_id, PlanRequest(BTC, Side.LONG, stop_price=D(98000)))
    ledger.validate_position(client_id, planned.id)
    _arm(desk.fake, case)
    reply = "done"
    try:
        ledger.execute_position(client_id, planned.id)
    except DomainError as error:
        reply = error.code
    status = desk.settle(client_id, planned.id, case.grace)
    entered = status in (Status.OPEN, Status.CLOSING, Status.CLOSED)
    _compare(
        outcome,
        f"entry, {case.name} (reply {reply})",
        status,
        int(entered),
        _executed(desk.fake, key, "BUY"),
    )


def _exit(desk: Desk, case: Case, outcome: Outcome) -> None:
    client_id, key = desk.tenant()
    ledger = desk.services.ledger
    position = ledger.plan_validate_execute(
        client_id, PlanRequest(BTC, Side.LONG, stop_price=D(98000))
    )
    _arm(desk.fake, case)
    reply = "done"
    try:
        ledger.close_position(client_id, position.id)
    except DomainError as error:
        reply = error.code
    status = desk.settle(client_id, position.id, case.grace)
    exits = len(ledger.position(client_id, position.id).exits)
    _compare(
        outcome,
        f"exit, {case.name} (reply {reply})",
        status,
        exits,
        _executed(desk.fake, key, "SELL"),
    )


def _arm(fake: FakeBinance, case: Case) -> None:
    # A fresh minute of request weight per order: the campaign's pace is not what is tested
    # here, and the adapter would otherwise wait out the minute once it nears the limit.
    fake.used_weight = 0
    fake.lookup_delay_seconds = case.lookup_lag
    for fault, method in case.faults:
        fake.inject(fault, path=ORDER, method=method)


def _compare(outcome: Outcome, what: str, status: Status, ledger: int, exchange: int) -> None:
    outcome.inputs += 1
    if status not in SETTLED:
        outcome.findings.append(f"{what}: still {status.value} after reconciliation")
    if exchange > 1 or ledger > 1:
        outcome.duplicated += 1
        outcome.findings.append(
            f"{what}: executed {exchange} time(s) on the exchange, {ledger} in the ledger"
        )
    elif exchange > ledger:
        outcome.lost += 1
        outcome.findings.append(f"{what}: executed on the exchange, ledger {status.value}")
    elif ledger > exchange:
        outcome.findings.append(f"{what}: the ledger records a fill the exchange never made")


def binance_matrix() -> Outcome:
    """Scenario 4: 429/418, -1021, 5xx and dropped connections on entries and exits."""
    repeats = scaled(5)
    outcome = Outcome(
        "4 Binance fault matrix",
        load=f"{len(CASES)} faults x entry/exit x {repeats}",
    )
    started = time.monotonic()
    with workdir("matrix") as home, FakeBinance() as fake:
        fake.set_price(BTC, D(100000))
        desk = Desk(home, fake)
        try:
            for case in CASES:
                for _ in range(repeats):
                    for phase in (_entry, _exit):
                        phase(desk, case, outcome)
                        outcome.faults += 1
                fake.lookup_delay_seconds = 0
        finally:
            desk.services.close()
    outcome.seconds = time.monotonic() - started
    return outcome
