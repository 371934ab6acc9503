"""Scenarios 1 and 2: stop exits on the paper exchange while `robson worker` is SIGKILLed at
random, or while two workers race over the same positions. Each crossed position must exit
exactly once (one exit in the ledger, one SELL among the exchange's orders), none lost, and
no position whose stop was never crossed may exit."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from domain.identity import client_order_id
from domain.ledger import PlanRequest
from domain.market import Side
from domain.position import Status
from infra.bootstrap import Services, build_services, migrate
from infra.paper_accounts import PaperOrder, order_id
from infra.settings import Settings
from tests.soak.harness import Outcome, Spawned, base_env, robson, scaled, wait_until, workdir

BTC = "BTCUSDC"
D = Decimal
START_PRICE = D(100000)
FINAL_PRICE = D(95000)  # stops in [92000, 99000]: a little more than half are crossed
PER_CLIENT = 3  # three 1% risks fit in the month's 4% budget
SEED = 20261206


@dataclass(frozen=True)
class Held:
    client_id: UUID
    position_id: UUID
    stop: Decimal


def _env(home: Path) -> dict[str, str]:
    return base_env(home, ROBSON_PAPER_BALANCE="100000", ROBSON_POLL_SECONDS="0.2")


def _open_positions(services: Services, count: int, rng: random.Random) -> list[Held]:
    assert services.paper is not None
    services.paper.set_price(BTC, START_PRICE)
    held: list[Held] = []
    client_id: UUID | None = None
    for n in range(count):
        if n % PER_CLIENT == 0:
            client_id = services.ledger.register_client(
                f"Soak {n}", f"soak-{n}@example.com", D(1000), False
            ).client_id
        assert client_id is not None
        stop = D(rng.randrange(92000, 99001, 10))
        position = services.ledger.plan_validate_execute(
            client_id, PlanRequest(BTC, Side.LONG, stop_price=stop)
        )
        if position.status is not Status.OPEN:
            raise RuntimeError(f"seeding: position {position.id} is {position.status}")
        held.append(Held(client_id, position.id, stop))
    return held


def _sells(services: Services, held: Held, orders_sent: int) -> int:
    count = 0
    for sequence in range(1, orders_sent + 3):
        coid = client_order_id(held.position_id, sequence)
        order = services.store.load(order_id(held.client_id, coid), PaperOrder)
        if order is not None and str(getattr(order.side, "value", order.side)).upper() == "SELL":
            count += 1
    return count


def _unsettled(services: Services, held: list[Held]) -> int:
    busy = (Status.CLOSING, Status.ENTERING)
    return sum(services.ledger.position(h.client_id, h.position_id).status in busy for h in held)


def _settle(env: dict[str, str], services: Services, held: list[Held]) -> None:
    """Passes of `robson worker --once` until nothing is in flight (a few at most)."""
    for _ in range(5):
        robson(env, "worker", "--once", "--reconcile-grace", "0")
        if _unsettled(services, held) == 0:
            return


def _check(services: Services, held: list[Held], final: Decimal, outcome: Outcome) -> None:
    for h in held:
        position = services.ledger.position(h.client_id, h.position_id)
        sells = _sells(services, h, position.orders_sent)
        exits = len(position.exits)
        crossed = h.stop >= final
        if crossed:
            if position.status is not Status.CLOSED or exits == 0 or sells == 0:
                outcome.lost += 1
                outcome.findings.append(
                    f"position {h.position_id} (stop {h.stop}) is {position.status.value} "
                    f"with {exits} exit(s) and {sells} SELL order(s)"
                )
            elif exits > 1 or sells > 1:
                outcome.duplicated += 1
                outcome.findings.append(
                    f"position {h.position_id} exited {exits} time(s), {sells} SELL order(s)"
                )
        elif position.status is not Status.OPEN or exits or sells:
            outcome.findings.append(
                f"position {h.position_id} (stop {h.stop} never crossed) is "
                f"{position.status.value} with {sells} SELL order(s)"
            )


def _prepare(home: Path, count: int, seed: int) -> tuple[dict[str, str], Services, list[Held]]:
    env = _env(home)
    settings = Settings.from_env(env)
    migrate(settings)
    services = build_services(settings)
    return env, services, _open_positions(services, count, random.Random(seed))


def worker_kills() -> Outcome:
    """Scenario 1: SIGKILL the only worker at random moments while the price walks down."""
    count, kills = scaled(300, 10), scaled(40, 4)
    outcome = Outcome(
        "1 worker SIGKILLed", load=f"{count} positions, price walked in {kills} steps"
    )
    started = time.monotonic()
    rng = random.Random(SEED)
    caught = 0  # positions left CLOSING (an order in flight) by a kill, summed over the kills
    with workdir("kills") as home:
        env, services, held = _prepare(home, count, SEED)
        try:
            assert services.paper is not None
            for step in range(kills):
                price = START_PRICE - (START_PRICE - FINAL_PRICE) * (step + 1) / kills
                services.paper.set_price(BTC, price.quantize(D("0.01")))
                worker = Spawned(
                    env, home / f"worker-{step}.log", "worker", "--reconcile-grace", "0"
                )
                if not worker.wait_for_text("worker started"):
                    worker.kill()
                    raise RuntimeError("worker did not start:\n" + worker.output()[-3000:])
                time.sleep(rng.uniform(0.5, 5.0))  # the kill lands anywhere in a pass
                worker.kill()
                outcome.faults += 1
                caught += _unsettled(services, held)
            closed = sum(
                services.ledger.position(h.client_id, h.position_id).status is Status.CLOSED
                for h in held
            )
            outcome.load += f"; {closed} closed by the killed workers, {caught} caught mid-order"
            _settle(env, services, held)
            outcome.inputs = count
            _check(services, held, FINAL_PRICE, outcome)
        finally:
            services.close()
    outcome.seconds = time.monotonic() - started
    return outcome


def rival_workers() -> Outcome:
    """Scenario 2: two workers loop over the same positions while the price crosses stops."""
    count = scaled(150, 10)
    outcome = Outcome("2 two workers, same positions", load=f"{count} positions, 2 workers")
    started = time.monotonic()
    with workdir("rivals") as home:
        env, services, held = _prepare(home, count, SEED + 1)
        workers: list[Spawned] = []
        try:
            assert services.paper is not None
            workers = [Spawned(env, home / f"worker-{n}.log", "worker") for n in (1, 2)]
            for worker in workers:
                if not worker.wait_for_text("worker started"):
                    raise RuntimeError("worker did not start:\n" + worker.output()[-3000:])
            outcome.faults = 1  # one race, every position exposed to it
            steps = 10
            for step in range(steps):
                price = START_PRICE - (START_PRICE - FINAL_PRICE) * (step + 1) / steps
                services.paper.set_price(BTC, price.quantize(D("0.01")))
                time.sleep(0.5)
            crossed = [h for h in held if h.stop >= FINAL_PRICE]

            def all_closed() -> bool:
                return all(
                    services.ledger.position(h.client_id, h.position_id).status is Status.CLOSED
                    for h in crossed
                )

            wait_until(all_closed, timeout=90, every=1.0)
            for worker in workers:
                worker.stop()
            outcome.inputs = count
            _check(services, held, FINAL_PRICE, outcome)
        finally:
            for worker in workers:
                worker.kill()
            services.close()
    outcome.seconds = time.monotonic() - started
    return outcome
