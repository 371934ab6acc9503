"""The stop worker against the ledger, the paper exchange and the positions projection,
identical on SQLite and PostgreSQL. Ticks are driven by hand; the clock is a ManualClock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import TypeVar
from uuid import UUID

import pytest

from domain.errors import ExchangeUnavailable
from domain.identity import client_order_id
from domain.ledger import EVIDENCE_WINDOW, Ledger, PlanRequest, TradingConfig
from domain.market import Side
from domain.ports import OrderRequest, OrderResult, TradingAccount
from domain.position import ExitReason, Position, Status
from infra.bootstrap import Services
from infra.clock import ManualClock
from infra.paper_exchange import PaperExchange
from tests.factories import register
from workers.jobs import Action, Job, Outcome
from workers.worker import Worker

D = Decimal
BTC = "BTCUSDC"
T = TypeVar("T")


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    """These specify Robson's own stop monitor, so no insurance stop rests at the paper
    exchange to beat it to the exit (tests/integration/test_insurance_stop.py has those)."""
    return {**env, "ROBSON_EXCHANGE_STOPS": "False"}


@pytest.fixture
def paper(services: Services) -> PaperExchange:
    assert services.paper is not None
    return services.paper


def open_at(
    services: Services,
    price: str,
    side: Side = Side.LONG,
    stop: str = "49000",
    target: str | None = None,
    quantity: str | None = None,
    client_id: UUID | None = None,
) -> Position:
    assert services.paper is not None
    services.paper.set_price(BTC, D(price))
    if client_id is None:
        client_id, _ = register(services.ledger, capital="1000")
    return services.ledger.plan_validate_execute(
        client_id,
        PlanRequest(
            symbol=BTC,
            side=side,
            stop_price=D(stop),
            target_price=None if target is None else D(target),
            quantity=None if quantity is None else D(quantity),
        ),
    )


def reload(services: Services, position: Position) -> Position:
    return services.ledger.position(position.client_id, position.id)


def event_names(services: Services, position: Position) -> list[str]:
    return [type(e).__name__ for e in services.store.events.get(position.id)]


def tick_at(worker: Worker, paper: PaperExchange, price: str) -> list[Action]:
    paper.set_price(BTC, D(price))
    return worker.tick()


def log_head(services: Services) -> int:
    return services.store.recorder.max_notification_id() or 0


# --- hand-span trailing ---


def test_a_long_trails_by_whole_spans_through_the_worker(
    services: Services, paper: PaperExchange
) -> None:
    position = open_at(services, "50000", stop="49000")
    worker = Worker.from_services(services)
    stops = []
    for price in ["50999", "51000", "52000", "53500"]:
        tick_at(worker, paper, price)
        stops.append(reload(services, position).stop_price)
    assert stops == [D(49000), D(50000), D(51000), D(52000)]
    moves = [
        (e.from_stop, e.to_stop, e.span_step)
        for e in services.store.events.get(position.id)
        if isinstance(e, Position.StopAdjusted)
    ]
    assert moves == [(D(49000), D(50000), 1), (D(50000), D(51000), 2), (D(51000), D(52000), 3)]

    # Falling back to 51500 never loosens the stop (trailing alone records nothing) ...
    trailing_only = Worker.from_services(services, jobs={Job.TRAILING})
    paper.set_price(BTC, D(51500))
    head = log_head(services)
    assert trailing_only.tick() == []
    assert log_head(services) == head
    assert reload(services, position).stop_price == D(52000)
    assert reload(services, position).status is Status.OPEN

    # ... and, 51500 being below the trailed stop of 52000, the stop monitor sells.
    (exit_,) = worker.tick()
    assert (exit_.reason, exit_.outcome) == (ExitReason.STOP_LOSS, Outcome.DONE)
    assert reload(services, position).status is Status.CLOSED


def test_a_short_trails_down_through_the_worker(services: Services, paper: PaperExchange) -> None:
    position = open_at(services, "3000", side=Side.SHORT, stop="3100")
    assert position.status is Status.OPEN and position.margin
    worker = Worker.from_services(services)
    stops = []
    for price in ["2900", "2800"]:
        tick_at(worker, paper, price)
        stops.append(reload(services, position).stop_price)
    assert stops == [D(3000), D(2900)]


def test_a_stop_that_did_not_move_records_nothing(services: Services, paper: PaperExchange) -> None:
    position = open_at(services, "50000", stop="49000")
    before = event_names(services, position)
    worker = Worker.from_services(services)
    for price in ["50500", "50999.99", "49000.01"]:
        assert tick_at(worker, paper, price) == []
    assert event_names(services, position) == before
    assert worker.metrics.prices_fetched == 3


# --- stop-loss and take-profit ---


def test_a_stop_loss_sends_exactly_one_exit_and_books_the_pnl_net_of_fees(
    services: Services, paper: PaperExchange
) -> None:
    position = open_at(services, "90000", stop="88200", quantity="0.001")
    worker = Worker.from_services(services)

    (action,) = tick_at(worker, paper, "88000")

    assert (action.job, action.reason, action.outcome) == (
        Job.STOPS,
        ExitReason.STOP_LOSS,
        Outcome.DONE,
    )
    closed = reload(services, position)
    assert closed.status is Status.CLOSED
    assert closed.exit_reason is ExitReason.STOP_LOSS
    assert closed.trigger_price == D(88000)
    # 0.001 bought, 0.000001 of it paid as fee; 0.00099 sellable (lot step), the rest is dust.
    entry_fee = D("0.000001") * D(90000)
    exit_fee = D("0.00099") * D(88000) * D("0.001")
    assert closed.realised_pnl == (D(88000) - D(90000)) * D("0.00099") - entry_fee - exit_fee
    assert closed.realised_pnl == D("-2.15712")
    assert paper.orders_filled(position.client_id) == 2  # the entry and one exit

    assert worker.tick() == []  # a second pass finds nothing to do
    assert Worker.from_services(services).tick() == []  # nor does a fresh worker
    assert paper.orders_filled(position.client_id) == 2
    assert worker.metrics.stop_losses == 1


def run_together(*calls: Callable[[], T]) -> list[T]:
    """Start every call at the same moment; return their results."""
    barrier = threading.Barrier(len(calls))
    results: dict[int, T] = {}

    def run(i: int, call: Callable[[], T]) -> None:
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return [results[i] for i in range(len(calls))]


def test_two_workers_on_the_same_tick_send_one_exit_order(
    services: Services, paper: PaperExchange
) -> None:
    positions = [open_at(services, "90000", stop="88200", quantity="0.001") for _ in range(3)]
    services.projections.run_once()
    # Both see every position before the race; neither refreshes during it.
    first = Worker(services.ledger, services.read_models)
    second = Worker(services.ledger, services.read_models)
    first.startup()
    second.startup()
    paper.set_price(BTC, D(88000))

    results = run_together(first.tick, second.tick)

    for position in positions:
        assert reload(services, position).status is Status.CLOSED
        assert paper.orders_filled(position.client_id) == 2
    exits = [a for actions in results for a in actions]
    assert sum(a.outcome is Outcome.DONE for a in exits) == 3
    assert first.metrics.stop_losses + second.metrics.stop_losses == 3
    assert first.metrics.errors == second.metrics.errors == 0
    # The losers of each race noted it quietly.
    assert first.metrics.lost_races + second.metrics.lost_races == sum(
        a.outcome is Outcome.LOST_RACE for a in exits
    )


@pytest.mark.parametrize(
    ("side", "stop", "target", "price", "reason"),
    [
        (Side.LONG, "88200", "95000", "95000", ExitReason.TAKE_PROFIT),
        (Side.LONG, "88200", "95000", "96000", ExitReason.TAKE_PROFIT),
        (Side.LONG, "88200", "95000", "88200", ExitReason.STOP_LOSS),
        (Side.SHORT, "91800", "85000", "85000", ExitReason.TAKE_PROFIT),
        (Side.SHORT, "91800", "85000", "84000", ExitReason.TAKE_PROFIT),
        (Side.SHORT, "91800", "85000", "91800", ExitReason.STOP_LOSS),
    ],
)
def test_targets_and_stops_trigger_at_exactly_their_price(
    services: Services,
    paper: PaperExchange,
    side: Side,
    stop: str,
    target: str,
    price: str,
    reason: ExitReason,
) -> None:
    position = open_at(services, "90000", side=side, stop=stop, target=target)
    worker = Worker.from_services(services)
    assert tick_at(worker, paper, "90000") == []
    exits = [a for a in tick_at(worker, paper, price) if a.job is Job.STOPS]
    assert [(a.reason, a.outcome) for a in exits] == [(reason, Outcome.DONE)]
    closed = reload(services, position)
    assert (closed.status, closed.exit_reason) == (Status.CLOSED, reason)
    assert (closed.realised_pnl > 0) is (reason is ExitReason.TAKE_PROFIT)


def test_a_price_just_short_of_stop_or_target_does_nothing(
    services: Services, paper: PaperExchange
) -> None:
    position = open_at(services, "90000", stop="88200", target="95000")
    worker = Worker.from_services(services)
    for price in ["88200.01", "94999.99"]:
        assert [a for a in tick_at(worker, paper, price) if a.job is Job.STOPS] == []
    assert reload(services, position).status is Status.OPEN


def test_a_paused_policy_never_blocks_a_protective_exit(
    services: Services, paper: PaperExchange
) -> None:
    position = open_at(services, "90000", stop="88200")
    services.ledger.observe_drawdown(position.client_id, "2026-11", D(5))
    assert services.ledger.policy(position.client_id).paused
    (action,) = tick_at(Worker.from_services(services), paper, "88100")
    assert action.outcome is Outcome.DONE
    assert reload(services, position).status is Status.CLOSED


def test_trading_disabled_never_blocks_a_protective_exit(
    services: Services, paper: PaperExchange
) -> None:
    position = open_at(services, "90000", stop="88200")
    disabled = Ledger(
        services.store,
        services.exchange,
        services.vault,
        services.clock,
        TradingConfig(trading_enabled=False, exchange_stops=False),  # Robson's own exit
    )
    worker = Worker(disabled, services.read_models, catch_up=services.projections.run_once)
    (action,) = tick_at(worker, paper, "88100")
    assert action.outcome is Outcome.DONE
    assert reload(services, position).status is Status.CLOSED


# --- dry run ---


def test_a_dry_run_reports_what_it_would_do_and_records_and_sends_nothing(
    services: Services, paper: PaperExchange
) -> None:
    trailing = open_at(services, "50000", stop="49000")
    stopped = open_at(services, "50000", side=Side.SHORT, stop="51000")
    reported: list[Action] = []
    worker = Worker.from_services(services, dry_run=True, report=reported.append)
    paper.set_price(BTC, D(51000))
    head = log_head(services)

    actions = worker.run_once()

    assert log_head(services) == head
    assert actions == reported
    assert [(a.job, a.outcome, a.position_id) for a in actions] == [
        (Job.STOPS, Outcome.DRY_RUN, stopped.id),  # exits first: nothing in a tick delays them
        (Job.TRAILING, Outcome.DRY_RUN, trailing.id),
    ]
    assert (actions[1].from_stop, actions[1].to_stop, actions[1].span_step) == (
        D(49000),
        D(50000),
        1,
    )
    assert actions[0].as_json() == {
        "job": "stops",
        "outcome": "dry_run",
        "position_id": str(stopped.id),
        "client_id": str(stopped.client_id),
        "symbol": BTC,
        "price": "51000.00000000",
        "reason": "STOP_LOSS",
    }
    for position in (trailing, stopped):
        assert reload(services, position).status is Status.OPEN
        assert paper.orders_filled(position.client_id) == 1
    assert reload(services, trailing).stop_price == D(49000)


# --- crash safety and transient failures ---


class Crash(BaseException):
    """The process dies: nothing after this line runs (not even `except Exception`)."""


class CrashAfterSending:
    """The paper exchange, but the process dies right after an exit order reached it."""

    def __init__(self, paper: PaperExchange) -> None:
        self.paper = paper
        self.name = paper.name
        self.is_live = paper.is_live

    def __getattr__(self, name: str) -> object:
        return getattr(self.paper, name)

    def place_order(self, account: TradingAccount, order: OrderRequest) -> OrderResult:
        self.paper.place_order(account, order)
        raise Crash


def test_a_worker_that_dies_mid_exit_is_completed_once_by_the_next_one(
    services: Services, paper: PaperExchange, clock: ManualClock
) -> None:
    position = open_at(services, "90000", stop="88200", quantity="0.001")
    doomed = Ledger(
        services.store,
        CrashAfterSending(paper),  # type: ignore[arg-type]
        services.vault,
        services.clock,
        services.ledger.config,
    )
    paper.set_price(BTC, D(88000))
    with pytest.raises(Crash):
        Worker(doomed, services.read_models, catch_up=services.projections.run_once).tick()
    crashed = reload(services, position)
    assert crashed.status is Status.CLOSING and crashed.order_in_flight is not None
    assert event_names(services, position)[-2:] == ["ExitTriggered", "ExitSubmitted"]
    assert paper.orders_filled(position.client_id) == 2  # the exit did reach the exchange

    restarted = Worker.from_services(services)
    assert restarted.run_once() == []  # within the grace period its sender may still answer
    assert reload(services, position).status is Status.CLOSING

    clock.advance(timedelta(seconds=31))
    (action,) = restarted.tick()

    assert (action.job, action.outcome, action.status) == (Job.RECONCILE, Outcome.DONE, "closed")
    closed = reload(services, position)
    assert closed.status is Status.CLOSED
    assert len(closed.exits) == 1
    assert closed.realised_pnl == D("-2.15712")
    assert paper.orders_filled(position.client_id) == 2  # found by its client order id
    assert restarted.tick() == [] and Worker.from_services(services).run_once() == []
    assert event_names(services, position).count("ExitFilled") == 1


class FlakyExchange:
    """The paper exchange with outages: no price, or an order that never got through."""

    def __init__(self, paper: PaperExchange) -> None:
        self.paper = paper
        self.name = paper.name
        self.is_live = paper.is_live
        self.price_outages = 0
        self.failing_orders: set[str] = set()  # client order id prefixes

    def __getattr__(self, name: str) -> object:
        return getattr(self.paper, name)

    def price(self, symbol: str) -> Decimal:
        if self.price_outages:
            self.price_outages -= 1
            raise ExchangeUnavailable("Binance is not answering (HTTP 503)")
        return self.paper.price(symbol)

    def place_order(self, account: TradingAccount, order: OrderRequest) -> OrderResult:
        if any(order.client_order_id.startswith(p) for p in self.failing_orders):
            raise ExchangeUnavailable("connection refused")
        return self.paper.place_order(account, order)


@pytest.fixture
def flaky(services: Services, paper: PaperExchange) -> Iterator[tuple[FlakyExchange, Worker]]:
    exchange = FlakyExchange(paper)
    ledger = Ledger(
        services.store,
        exchange,  # type: ignore[arg-type]
        services.vault,
        services.clock,
        services.ledger.config,
    )
    yield exchange, Worker(ledger, services.read_models, catch_up=services.projections.run_once)


def test_an_exchange_outage_costs_a_tick_not_the_worker(
    services: Services, paper: PaperExchange, flaky: tuple[FlakyExchange, Worker]
) -> None:
    exchange, worker = flaky
    position = open_at(services, "90000", stop="88200")
    paper.set_price(BTC, D(88000))
    exchange.price_outages = 1
    assert worker.tick() == []
    assert worker.metrics.errors == 1
    (action,) = worker.tick()
    assert action.outcome is Outcome.DONE
    assert reload(services, position).status is Status.CLOSED


def test_one_bad_position_does_not_hold_up_the_others_and_is_retried_safely(
    services: Services,
    paper: PaperExchange,
    clock: ManualClock,
    flaky: tuple[FlakyExchange, Worker],
) -> None:
    exchange, worker = flaky
    bad = open_at(services, "90000", stop="88300")
    good = open_at(services, "90000", stop="88200")
    exchange.failing_orders.add(client_order_id(bad.id, 1).rpartition("-")[0])
    paper.set_price(BTC, D(88000))

    actions = worker.tick()

    assert sorted((a.position_id == bad.id, a.outcome.value) for a in actions) == [
        (False, "done"),
        (True, "error"),
    ]
    assert worker.metrics.errors == 1
    assert reload(services, good).status is Status.CLOSED
    # The failed send left the exit recorded and in flight: reconciliation owns it now.
    assert reload(services, bad).status is Status.CLOSING
    exchange.failing_orders.clear()
    assert worker.tick() == []  # its grace period has not passed
    clock.advance(timedelta(seconds=31))
    assert worker.tick() == []  # a look-up that misses is no proof inside the evidence window
    clock.advance(EVIDENCE_WINDOW)
    (action,) = worker.tick()
    assert (action.job, action.outcome, action.status) == (Job.RECONCILE, Outcome.DONE, "closed")
    assert reload(services, bad).status is Status.CLOSED
    assert paper.orders_filled(bad.client_id) == 2
    assert reload(services, bad).exits[0]["client_order_id"] == client_order_id(bad.id, 2, 2)


# --- sharding ---


def test_a_shard_watches_only_its_tenants(services: Services, paper: PaperExchange) -> None:
    by_parity: dict[int, UUID] = {}
    while len(by_parity) < 2:
        client_id, _ = register(services.ledger, capital="1000")
        by_parity.setdefault(client_id.int % 2, client_id)
    mine = open_at(services, "90000", stop="88200", client_id=by_parity[0])
    theirs = open_at(services, "90000", stop="88200", client_id=by_parity[1])
    (action,) = tick_at(Worker.from_services(services, shard=(0, 2)), paper, "88000")
    assert action.position_id == mine.id
    assert reload(services, theirs).status is Status.OPEN
    (action,) = Worker.from_services(services, shard=(1, 2)).tick()
    assert action.position_id == theirs.id


# --- the loop ---


def test_start_runs_the_loop_in_a_thread_and_stop_ends_it_at_once(
    services: Services, paper: PaperExchange
) -> None:
    position = open_at(services, "90000", stop="88200")
    paper.set_price(BTC, D(88000))
    closed = threading.Event()

    def report(action: Action) -> None:
        if action.outcome is Outcome.DONE:
            closed.set()

    worker = Worker.from_services(services, report=report)
    worker.start()
    try:
        assert closed.wait(10)
    finally:
        worker.stop(timeout=10)
    assert not worker.running
    assert reload(services, position).status is Status.CLOSED


def entering_position(services: Services, paper: PaperExchange, sent: bool) -> Position:
    """A validated position whose entry order id was recorded, then its process died:
    after (`sent`) or before the order reached the exchange."""
    paper.set_price(BTC, D(90000))
    client_id, _ = register(services.ledger, capital="1000")
    planned = services.ledger.plan_position(
        client_id, PlanRequest(symbol=BTC, side=Side.LONG, stop_price=D(88200))
    )
    services.ledger.validate_position(client_id, planned.id)
    position = services.ledger.position(client_id, planned.id)
    order_id = position.submit_entry(services.clock.now())
    services.store.save(position)
    if sent:
        paper.place_order(
            TradingAccount(client_id),
            OrderRequest(BTC, Side.LONG.entry_order_side, order_id, quantity=position.quantity),
        )
    return position


@pytest.mark.parametrize(("sent", "settled"), [(True, Status.OPEN), (False, Status.CANCELLED)])
def test_an_entry_left_in_flight_is_settled_by_the_reconcile_job(
    services: Services, paper: PaperExchange, clock: ManualClock, sent: bool, settled: Status
) -> None:
    position = entering_position(services, paper, sent)
    worker = Worker.from_services(services, jobs=[Job.RECONCILE])
    assert worker.run_once() == []  # within the grace period its sender may still answer
    clock.advance(timedelta(seconds=31))
    if not sent:
        assert worker.tick() == []  # a miss is no proof inside the evidence window
        assert reload(services, position).status is Status.ENTERING
        clock.advance(EVIDENCE_WINDOW)

    (action,) = worker.tick()

    assert (action.job, action.outcome) == (Job.RECONCILE, Outcome.DONE)
    assert reload(services, position).status is settled
    assert paper.orders_filled(position.client_id) == (1 if sent else 0)
    open_risk = services.ledger.policy(position.client_id).open_risk
    assert (str(position.id) in open_risk) is sent  # a failed entry gives its risk back
    assert worker.tick() == []


def test_an_order_still_unsettled_is_asked_about_every_few_seconds_not_every_tick(
    services: Services, paper: PaperExchange, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    position = entering_position(services, paper, sent=False)
    asked: list[str] = []
    find_order = paper.find_order

    def counted(account: TradingAccount, symbol: str, order_id: str) -> OrderResult | None:
        asked.append(order_id)
        return find_order(account, symbol, order_id)

    monkeypatch.setattr(paper, "find_order", counted)
    worker = Worker.from_services(services, jobs=[Job.RECONCILE])
    clock.advance(timedelta(seconds=31))

    rounds = []
    for _ in range(4):
        worker.tick()
        rounds.append(len(asked))
        clock.advance(timedelta(seconds=5))

    assert rounds == [1, 1, 2, 2]  # once per 10 s while the evidence window runs
    assert reload(services, position).status is Status.ENTERING
