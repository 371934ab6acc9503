"""The embedded default shows the insurance stop too: the paper exchange rests stop orders,
triggered when a paper price is set at or through the stop and filled within the limit."""

from __future__ import annotations

from decimal import Decimal

from domain.exchange_stop import StopState
from domain.position import ExitReason, Status
from infra.bootstrap import Services
from infra.paper_exchange import PaperExchange
from tests.factories import open_long, register
from workers.jobs import Outcome
from workers.worker import Worker

BTC = "BTCUSDC"
D = Decimal


def paper_of(services: Services) -> PaperExchange:
    assert services.paper is not None
    return services.paper


def test_a_paper_price_through_the_stop_fills_the_resting_stop_and_that_is_the_exit(
    services: Services,
) -> None:
    ledger, paper = services.ledger, paper_of(services)
    client_id, _ = register(ledger)
    position = open_long(ledger, client_id)  # 0.005 BTC at 100000, stop 98000
    assert position.protected_at_exchange
    usdc_before = ledger.balances(client_id)["USDC"].free

    paper.set_price(BTC, D(97900))  # through the stop, within its 0.5% limit (97510)

    closed = ledger.check_exchange_stop(client_id, position.id)
    assert closed.status is Status.CLOSED
    assert closed.exit_reason is ExitReason.STOP_LOSS_AT_EXCHANGE
    (fill,) = closed.exits
    assert fill["price"] == D(97900) and fill["quantity"] == position.sellable_quantity
    # The paper account moved exactly as the ledger booked it (0.1% fee on the proceeds).
    proceeds = D(97900) * fill["quantity"] * (1 - D("0.001"))
    assert ledger.balances(client_id)["USDC"].free == usdc_before + proceeds
    # Found again (worker, start-up): nothing more is recorded.
    assert ledger.check_exchange_stop(client_id, position.id).version == closed.version


def test_a_price_that_gaps_beyond_the_limit_leaves_the_stop_working_until_it_can_fill(
    services: Services,
) -> None:
    ledger, paper = services.ledger, paper_of(services)
    client_id, _ = register(ledger)
    position = open_long(ledger, client_id)

    paper.set_price(BTC, D(97000))  # below the limit 97510: a stop-limit cannot fill there
    assert ledger.check_exchange_stop(client_id, position.id).status is Status.OPEN

    paper.set_price(BTC, D(97600))
    filled = ledger.check_exchange_stop(client_id, position.id)
    assert filled.exit_reason is ExitReason.STOP_LOSS_AT_EXCHANGE
    assert filled.exits[0]["price"] == D(97600)


def test_robsons_exit_on_paper_cancels_the_stop_so_a_later_price_fills_nothing(
    services: Services,
) -> None:
    ledger, paper = services.ledger, paper_of(services)
    client_id, _ = register(ledger)
    position = open_long(ledger, client_id)

    closed = ledger.close_position(client_id, position.id)
    assert closed.exchange_stop_state is StopState.CANCELLED
    orders = paper.orders_filled(client_id)

    paper.set_price(BTC, D(97900))
    assert paper.orders_filled(client_id) == orders  # the cancelled stop never fills


def test_seven_paper_positions_rest_at_most_five_stops(services: Services) -> None:
    ledger = services.ledger
    client_id, _ = register(ledger)
    opened = [
        open_long(ledger, client_id, stop=str(99000 - 100 * i), quantity=D("0.001"))
        for i in range(7)
    ]
    states = [ledger.position(client_id, p.id).exchange_stop_state for p in opened]
    assert states.count(StopState.RESTING) == 5 and states.count(StopState.REFUSED) == 2

    insured = ledger.insure_positions(client_id, [p.id for p in opened])

    ranked = sorted(insured, key=lambda p: p.open_risk, reverse=True)
    assert [p.protected_at_exchange for p in ranked] == [True] * 5 + [False] * 2
    displaced = ranked[5:]
    assert all(p.exchange_stop_state is StopState.CANCELLED for p in displaced)
    assert all("more at risk" in (p.exchange_stop_note or "") for p in displaced)


def test_the_worker_finds_a_stop_that_filled_while_its_price_came_back(
    services: Services,
) -> None:
    ledger, paper = services.ledger, paper_of(services)
    client_id, _ = register(ledger)
    position = open_long(ledger, client_id)
    paper.set_price(BTC, D(97900))  # the stop fills at the exchange...
    paper.set_price(BTC, D(100000))  # ...and the price is back before any tick saw it

    actions = Worker.from_services(services).run_once()

    found = [a for a in actions if a.reason is ExitReason.STOP_LOSS_AT_EXCHANGE]
    assert [(a.position_id, a.outcome) for a in found] == [(position.id, Outcome.DONE)]
    closed = ledger.position(client_id, position.id)
    assert closed.status is Status.CLOSED and len(closed.exits) == 1
