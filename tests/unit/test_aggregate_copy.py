"""Loads hand out copies of cached aggregates: a command that changes its copy and then
fails never changes what the next command sees."""

from __future__ import annotations

from copy import deepcopy
from decimal import Decimal
from uuid import uuid4

from domain.policy import Policy
from tests.factories import configured_policy, later

D = Decimal


def test_a_copy_has_the_same_state_and_version() -> None:
    policy = configured_policy("1000")
    policy.reserve_risk(uuid4(), D(10), later(1))
    copy = deepcopy(policy)
    assert type(copy) is Policy
    assert copy.__dict__ == policy.__dict__
    assert copy.version == policy.version


def test_changing_a_copy_leaves_the_original_alone() -> None:
    policy = configured_policy("1000")
    policy.observe_drawdown("2026-03", D("2.5"), later(1))  # alerts: month -> [levels]
    policy.collect_events()
    before = deepcopy(policy.__dict__)

    copy = deepcopy(policy)
    copy.reserve_risk(uuid4(), D(10), later(1))
    copy.observe_drawdown("2026-03", D("3.5"), later(1))
    copy.alerts["2026-03"].append(D(99))

    assert policy.__dict__ == before
    assert policy.collect_events() == []
    assert len(copy.collect_events()) == 2
