"""The worker's exit pool: one exit in flight per position, answers handed back, not raised."""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from domain.errors import ConfigurationError, CredentialsMissing
from domain.ports import ApiCredentials, TradingAccount
from infra.settings import Settings
from workers.exit_pool import DEFAULT_CONCURRENCY, ExitPool, TenantAccounts


def test_a_position_already_on_its_way_out_is_not_sent_twice() -> None:
    pool: ExitPool[str] = ExitPool(4)
    release = threading.Event()
    position = uuid4()

    assert pool.submit(position, lambda: "first" if release.wait(10) else "timed out")
    assert not pool.submit(position, lambda: "second")
    assert position in pool and len(pool) == 1
    release.set()
    answers = pool.harvest(wait=True)
    pool.close()

    assert [(a.position_id, a.result, a.error) for a in answers] == [(position, "first", None)]
    assert position not in pool and len(pool) == 0


def test_a_failed_send_is_handed_back_with_its_error() -> None:
    pool: ExitPool[str] = ExitPool(2)
    position = uuid4()
    boom = RuntimeError("exchange down")

    def send() -> str:
        raise boom

    pool.submit(position, send)
    [answer] = pool.harvest(wait=True)
    pool.close()

    assert (answer.result, answer.error) == (None, boom)


def test_harvest_without_waiting_takes_the_answers_in_and_leaves_the_rest() -> None:
    pool: ExitPool[str] = ExitPool(2)
    release, tried = threading.Event(), threading.Event()
    slow, fast = uuid4(), uuid4()
    pool.submit(slow, lambda: "slow" if release.wait(10) else "timed out")
    pool.submit(fast, lambda: "fast")

    ready = pool.harvest(wait=False)
    for _ in range(1000):  # until the fast one has answered
        if ready:
            break
        tried.wait(0.01)
        ready = pool.harvest(wait=False)

    assert [a.result for a in ready] == ["fast"]
    assert slow in pool and fast not in pool
    release.set()
    assert [a.result for a in pool.harvest(wait=True)] == ["slow"]
    pool.close()


def test_at_least_one_sender() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ExitPool(0)


def test_robson_exit_concurrency_sizes_the_pool_and_must_be_at_least_one(tmp_path: Path) -> None:
    env = {"ROBSON_HOME": str(tmp_path)}
    assert Settings.from_env(env).exit_concurrency == DEFAULT_CONCURRENCY == 32
    assert Settings.from_env({**env, "ROBSON_EXIT_CONCURRENCY": "4"}).exit_concurrency == 4
    with pytest.raises(ConfigurationError, match="ROBSON_EXIT_CONCURRENCY must be at least 1"):
        Settings.from_env({**env, "ROBSON_EXIT_CONCURRENCY": "0"})


def test_the_exits_of_one_price_resolve_each_tenant_once_and_only_its_own() -> None:
    alice, bob = uuid4(), uuid4()
    resolved: list[UUID] = []
    gate = threading.Barrier(8)

    def resolve(client_id: UUID) -> TradingAccount:
        resolved.append(client_id)
        return TradingAccount(client_id, ApiCredentials(f"key-{client_id}", "secret"))

    accounts = TenantAccounts(resolve)
    pool: ExitPool[TradingAccount] = ExitPool(8)

    def send(client_id: UUID) -> TradingAccount:
        gate.wait(10)  # all eight ask at once
        return accounts(client_id)

    tenants = {uuid4(): alice if n % 2 else bob for n in range(8)}
    for position, client_id in tenants.items():
        pool.submit(position, partial(send, client_id))
    answers = pool.harvest(wait=True)
    pool.close()

    assert sorted(map(str, resolved)) == sorted(map(str, [alice, bob]))
    for answer in answers:
        assert answer.result is not None
        assert answer.result.client_id == tenants[answer.position_id]


def test_a_tenant_that_cannot_be_resolved_is_asked_again_by_its_next_exit() -> None:
    tenant = uuid4()
    attempts: list[UUID] = []

    def resolve(client_id: UUID) -> TradingAccount:
        attempts.append(client_id)
        if len(attempts) == 1:
            raise CredentialsMissing()
        return TradingAccount(client_id, ApiCredentials("key", "secret"))

    accounts = TenantAccounts(resolve)

    with pytest.raises(CredentialsMissing):
        accounts(tenant)
    assert accounts(tenant).client_id == tenant
    assert accounts(tenant).client_id == tenant
    assert attempts == [tenant, tenant]
