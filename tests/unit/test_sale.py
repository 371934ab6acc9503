"""Splitting a sale across open LONG positions: every part is one the exchange accepts, what a
position keeps can still be sold by its stop, and a sale that cannot be split is refused whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid5

import pytest

from domain.errors import InvalidInput
from domain.market import BTCUSDC, Side
from domain.sale import Holding, split_sale

D = Decimal
PRICE = D(100000)  # the smallest sellable part: 5 USDC / 100000 = 0.00005 BTC
START = datetime(2026, 1, 5, tzinfo=UTC)
NAMESPACE = UUID("00000000-0000-0000-0000-000000000001")


def holdings(*held: str, stop: str = "98000") -> list[Holding]:
    """Positions opened a minute apart, oldest first, holding `held` BTC after the entry fee."""
    return [
        Holding(
            uuid5(NAMESPACE, str(n)),
            "BTCUSDC",
            Side.LONG,
            D(quantity),
            START + timedelta(minutes=n),
            D(stop),
        )
        for n, quantity in enumerate(held)
    ]


def split(held: list[Holding], wanted: str | None) -> list[tuple[int, str, bool]]:
    """The parts as (position number, quantity, whole)."""
    ids = [h.position_id for h in held]
    parts = split_sale(held, None if wanted is None else D(wanted), BTCUSDC, PRICE)
    return [(ids.index(p.position_id), f"{p.quantity.normalize():f}", p.whole) for p in parts]


@pytest.mark.parametrize(
    ("held", "wanted", "parts"),
    [
        pytest.param(
            ("0.0002997", "0.0002997"),
            None,
            [(0, "0.00029", True), (1, "0.00029", True)],
            id="all: each position whole, in lot steps",
        ),
        pytest.param(
            ("0.0002997", "0.0002997"),
            "0.00058",
            [(0, "0.00029", True), (1, "0.00029", True)],
            id="exactly what is held",
        ),
        pytest.param(
            ("0.0002997", "0.0002997"),
            "0.0004",
            [(0, "0.00029", True), (1, "0.00011", False)],
            id="oldest whole, the rest from the next",
        ),
        pytest.param(
            ("0.0002997", "0.0002997"),
            "0.0003",
            # 0.00029 whole would leave a 0.00001 part (1 USDC): two sellable parts instead,
            # each position keeping at least 0.00006 (5 USDC at its 98000 stop).
            [(0, "0.00023", False), (1, "0.00007", False)],
            id="spec example: no part below the minimum",
        ),
        pytest.param(
            ("0.0002997",),
            "0.0002",
            [(0, "0.0002", False)],
            id="part of one",
        ),
        pytest.param(
            ("0.001", "0.0002997", "0.0002997"),
            "0.00058",
            [(1, "0.00029", True), (2, "0.00029", True)],
            id="whole positions before a part of an older one",
        ),
    ],
)
def test_a_sale_is_split_into_parts_the_exchange_accepts(
    held: tuple[str, ...], wanted: str | None, parts: list[tuple[int, str, bool]]
) -> None:
    assert split(holdings(*held), wanted) == parts


def test_every_part_and_every_remainder_is_sellable() -> None:
    held = holdings("0.0002997", "0.0004", "0.00101")
    for steps in range(5, 171):
        wanted = D(steps) * BTCUSDC.step_size
        try:
            parts = split_sale(held, wanted, BTCUSDC, PRICE)
        except InvalidInput:
            continue
        assert sum((p.quantity for p in parts), D(0)) == wanted
        for part in parts:
            assert BTCUSDC.order_problems(part.quantity, PRICE) == []
            holding = next(h for h in held if h.position_id == part.position_id)
            kept = BTCUSDC.round_quantity(holding.open_quantity) - part.quantity
            if part.whole:
                assert kept == 0
            else:
                assert BTCUSDC.order_problems(kept, D(98000)) == []


@pytest.mark.parametrize(
    ("held", "wanted", "reason"),
    [
        pytest.param(
            ("0.0002997",),
            "0.0003",
            "at most 0.00029 BTC is held in open positions",
            id="more than is held",
        ),
        pytest.param(
            ("0.0002997",),
            "0.00003",
            "the smallest sellable amount is 0.00005 BTC (5 USDC at 100000)",
            id="below the notional minimum",
        ),
        pytest.param(
            ("0.0002997",),
            "0.000205",
            "must be a multiple of the lot step 0.00001 BTC",
            id="not a lot step",
        ),
        pytest.param(
            ("0.0002997",),
            "0.00026",
            "cannot be split into parts the exchange accepts",
            id="would leave dust",
        ),
        pytest.param(
            ("0.0002997", "0.00004"),
            None,
            "holds 0.00004 BTC, below the smallest sellable amount 0.00005 BTC",
            id="all, with an unsellable position",
        ),
    ],
)
def test_a_sale_that_cannot_be_split_is_refused_whole(
    held: tuple[str, ...], wanted: str | None, reason: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        split(holdings(*held), wanted)
    assert refused.value.field == "quantity"
    assert reason in refused.value.reason


def test_a_refusal_suggests_what_can_be_sold() -> None:
    with pytest.raises(InvalidInput) as refused:
        split(holdings("0.0002997"), "0.00026")
    # a part keeps 0.00006 for the stop: at most 0.00023 in part, or all 0.00029
    assert "the nearest amounts that can be sold are 0.00023 and 0.00029 BTC" in (
        refused.value.reason
    )
