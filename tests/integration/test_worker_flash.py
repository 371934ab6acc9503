"""A gap that crosses many stops at once: the worker sends the exits side by side, each with
its own tenant's Binance keys, and every position closes exactly once (the real client
against the fake Binance, on SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from domain.identity import position_of_order
from domain.ledger import Ledger, TradingConfig
from domain.position import Position, Status
from infra.bootstrap import Services
from tests.factories import open_long, register
from tests.fakes.binance import FakeBinance
from tests.integration.binance_ledger import funded_tenant, ledger_at
from workers.jobs import Outcome
from workers.worker import Worker

BTC = "BTCUSDC"
TENANTS = 5
PER_TENANT = 4


@dataclass
class Desk:
    services: Services
    ledger: Ledger
    fake: FakeBinance

    def tenant(self, n: int) -> tuple[UUID, str]:
        key, secret = f"tenant{n}-api-key-0000000000", f"tenant{n}-secret-0000000000"
        return funded_tenant(self.ledger, self.fake, key, secret), key

    def worker(self, concurrency: int = 8) -> Worker:
        return Worker(
            self.ledger,
            self.services.read_models,
            catch_up=self.services.projections.run_once,
            exit_concurrency=concurrency,
        )


@pytest.fixture
def desk(services: Services) -> Iterator[Desk]:
    with FakeBinance() as fake:
        fake.set_price(BTC, Decimal("100000"))
        config = TradingConfig(trading_enabled=True, exchange_stops=False)  # Robson's own exits
        with ledger_at(fake, services, config, timeout_seconds=5) as ledger:
            yield Desk(services, ledger, fake)


def open_book(desk: Desk) -> dict[UUID, tuple[Position, str]]:
    """Five tenants with four open longs each, stops between 99,000 and 99,300."""
    book: dict[UUID, tuple[Position, str]] = {}
    for n in range(TENANTS):
        client_id, key = desk.tenant(n)
        for i in range(PER_TENANT):
            position = open_long(
                desk.ledger, client_id, stop=str(99000 + 100 * i), quantity=Decimal("0.001")
            )
            book[position.id] = (position, key)
    return book


def exit_orders(desk: Desk) -> Counter[UUID]:
    """Exit orders (the longs' sells) that reached the exchange, per position."""
    sent: Counter[UUID] = Counter()
    for request in desk.fake.orders_received():
        if request.params.get("side") == "SELL":
            sent[order_owner(request.client_order_id)] += 1
    return sent


def order_owner(client_order_id: str | None) -> UUID:
    found = position_of_order(client_order_id or "")
    assert found is not None
    return found[0]


def test_a_gap_through_many_tenants_stops_closes_each_position_once_with_its_own_keys(
    desk: Desk,
) -> None:
    book = open_book(desk)
    desk.fake.order_latency_seconds = 0.05
    worker = desk.worker(concurrency=8)
    worker.startup()
    desk.fake.set_price(BTC, Decimal("98000"))

    actions = worker.tick()
    worker.close()

    assert Counter(a.position_id for a in actions) == Counter(dict.fromkeys(book, 1))
    assert {a.outcome for a in actions} == {Outcome.DONE}
    assert exit_orders(desk) == Counter(dict.fromkeys(book, 1))
    keys_used = {(order_owner(r.client_order_id), r.api_key) for r in desk.fake.orders_received()}
    assert keys_used == {(position_id, key) for position_id, (_, key) in book.items()}
    for position_id, (position, _) in book.items():
        assert desk.ledger.position(position.client_id, position_id).status is Status.CLOSED
    assert worker.metrics.exits_sent == len(book)
    assert worker.metrics.exits_waiting == 0
    assert sum(worker.metrics.exit_latency_counts) == len(book)


def test_the_exits_of_a_gap_check_their_filters_at_the_price_the_tick_read(desk: Desk) -> None:
    book = open_book(desk)
    worker = desk.worker()
    worker.startup()
    desk.fake.set_price(BTC, Decimal("98000"))
    read_before = desk.fake.request_count("/api/v3/ticker/price")

    worker.tick()
    worker.close()

    assert exit_orders(desk) == Counter(dict.fromkeys(book, 1))
    assert desk.fake.request_count("/api/v3/ticker/price") - read_before == 1  # the tick's own


def test_a_tenants_keys_are_read_once_for_all_its_exits_at_one_price(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = open_book(desk)
    decrypted: list[str] = []
    decrypt = desk.ledger.cipher.decrypt

    def counting(ciphertext: str) -> str:
        plain = decrypt(ciphertext)
        decrypted.append(plain)
        return plain

    worker = desk.worker()
    worker.startup()
    monkeypatch.setattr(desk.ledger.cipher, "decrypt", counting)
    desk.fake.set_price(BTC, Decimal("98000"))

    worker.tick()
    worker.close()

    assert exit_orders(desk) == Counter(dict.fromkeys(book, 1))
    assert len(decrypted) == 2 * TENANTS  # its API key and secret, once per tenant
    keys_used = {(order_owner(r.client_order_id), r.api_key) for r in desk.fake.orders_received()}
    assert keys_used == {(position_id, key) for position_id, (_, key) in book.items()}


def test_keys_a_tenant_rotates_serve_its_exits_at_the_next_price(desk: Desk) -> None:
    client_id, old_key = desk.tenant(0)
    first = open_long(desk.ledger, client_id, stop="99000", quantity=Decimal("0.001"))
    second = open_long(desk.ledger, client_id, stop="98500", quantity=Decimal("0.001"))
    worker = desk.worker()
    worker.startup()
    desk.fake.set_price(BTC, Decimal("98800"))  # through the first stop only
    worker.tick()
    new_key, new_secret = "tenant0-rotated-key-0000000", "tenant0-rotated-secret-00000"
    desk.fake.fund(new_key, new_secret, {"BTC": Decimal("0.01")})
    desk.ledger.set_credentials(desk.ledger.client(client_id).email, new_key, new_secret)

    desk.fake.set_price(BTC, Decimal("98000"))
    worker.tick()
    worker.close()

    sells = {
        order_owner(r.client_order_id): r.api_key
        for r in desk.fake.orders_received()
        if r.params.get("side") == "SELL"
    }
    assert sells == {first.id: old_key, second.id: new_key}
    assert desk.ledger.position(client_id, second.id).status is Status.CLOSED


def test_an_exit_never_goes_out_with_another_tenants_account(desk: Desk) -> None:
    alice, _ = desk.tenant(0)
    bob, _ = desk.tenant(1)
    position = open_long(desk.ledger, alice, stop="99000", quantity=Decimal("0.001"))

    with pytest.raises(ValueError):
        desk.ledger.close_position(alice, position.id, account=desk.ledger.trading_account(bob))

    assert exit_orders(desk) == Counter()
    assert desk.ledger.position(alice, position.id).status is Status.OPEN


def test_exits_overlap_on_the_pool_instead_of_waiting_for_each_other(desk: Desk) -> None:
    book = open_book(desk)
    in_flight = 0
    most = 0
    changed = threading.Condition()
    place = desk.ledger.exchange.place_order

    def counting(*args: object) -> object:
        nonlocal in_flight, most
        with changed:
            in_flight += 1
            most = max(most, in_flight)
            changed.notify_all()
            changed.wait_for(lambda: most >= 4, timeout=2)  # one at a time: never
        try:
            return place(*args)  # type: ignore[arg-type]
        finally:
            with changed:
                in_flight -= 1

    worker = desk.worker(concurrency=4)
    worker.startup()
    desk.ledger.exchange.place_order = counting  # type: ignore[method-assign,assignment]
    desk.fake.set_price(BTC, Decimal("98000"))

    worker.tick()
    worker.close()

    assert most == 4  # bounded by the pool, and more than one at a time
    assert exit_orders(desk) == Counter(dict.fromkeys(book, 1))


def test_two_workers_racing_through_the_same_gap_send_one_exit_per_position(desk: Desk) -> None:
    book = open_book(desk)
    first, second = desk.worker(), desk.worker()
    first.startup()
    second.startup()
    desk.fake.set_price(BTC, Decimal("98000"))
    barrier = threading.Barrier(2)

    def tick(worker: Worker) -> None:
        barrier.wait()
        worker.tick()

    threads = [threading.Thread(target=tick, args=(w,)) for w in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    first.close()
    second.close()

    assert exit_orders(desk) == Counter(dict.fromkeys(book, 1))
    for position_id, (position, _) in book.items():
        assert desk.ledger.position(position.client_id, position_id).status is Status.CLOSED
    assert first.metrics.stop_losses + second.metrics.stop_losses == len(book)
    assert first.metrics.errors == second.metrics.errors == 0


def test_metrics_show_the_workers_exits_sent_waiting_and_their_latency(
    services: Services,
) -> None:
    assert services.paper is not None
    services.paper.set_price(BTC, Decimal("100000"))
    client_id, _ = register(services.ledger, capital="1000")
    open_long(services.ledger, client_id, stop="99000", quantity=Decimal("0.001"))
    worker = Worker.from_services(services)
    worker.startup()
    services.paper.set_price(BTC, Decimal("98000"))
    worker.tick()

    with TestClient(create_app(services, background=[worker])) as api:
        text = api.get("/metrics").text

    assert "# TYPE robson_worker_exits_sent_total counter" in text
    assert "robson_worker_exits_sent_total 1\n" in text
    assert "# TYPE robson_worker_exits_waiting gauge" in text
    assert "robson_worker_exits_waiting 0\n" in text
    assert "# TYPE robson_worker_exit_latency_seconds histogram" in text
    assert 'robson_worker_exit_latency_seconds_bucket{le="+Inf"} 1\n' in text
    assert "robson_worker_exit_latency_seconds_count 1\n" in text
