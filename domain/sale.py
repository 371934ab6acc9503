"""A sale split across open LONG positions: checked whole before any order is sent, so every
part is one the exchange accepts and no position is left holding what its stop cannot sell."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from domain.errors import InvalidInput
from domain.market import Side, SymbolRules

SUGGESTION_STEPS = 1000  # how far (in lot steps) a refusal looks for an amount that can be sold


@dataclass(frozen=True)
class Holding:
    """An open position as the tenant's list of positions shows it."""

    position_id: UUID
    symbol: str
    side: Side
    open_quantity: Decimal  # what is held, after a fee taken in the base asset
    planned_at: datetime
    stop_price: Decimal | None = None


@dataclass(frozen=True)
class Part:
    """One exit order of a sale: the whole position (`whole`) or `quantity` of it."""

    position_id: UUID
    quantity: Decimal
    whole: bool


@dataclass(frozen=True)
class _Room:
    """What one position can give: all of `held`, or a part between `least` and `most`."""

    position_id: UUID
    held: Decimal
    least: Decimal
    most: Decimal


def split_sale(
    holdings: list[Holding], wanted: Decimal | None, rules: SymbolRules, price: Decimal
) -> list[Part]:
    """The parts that sell `wanted` (None: everything) from `holdings`, oldest first: whole
    positions first, then parts that leave each position enough for its stop to sell."""
    smallest = rules.smallest_order(price)
    rooms = [_room(h, rules, price, smallest) for h in holdings]
    if wanted is None:
        for holding, room in zip(holdings, rooms, strict=True):
            if room.held < smallest:
                raise InvalidInput(
                    "quantity",
                    f"position {holding.position_id} holds {_amount(room.held, rules)}, below "
                    f"the smallest sellable amount {_amount(smallest, rules)} "
                    f"({_minimum(rules, price)}); give a quantity to sell the others",
                )
        return [Part(r.position_id, r.held, whole=True) for r in rooms if r.held > 0]
    total = sum((r.held for r in rooms if r.held >= smallest), Decimal(0))
    if rules.round_quantity(wanted) != wanted:
        raise InvalidInput(
            "quantity", f"must be a multiple of the lot step {_amount(rules.step_size, rules)}"
        )
    if wanted < smallest:
        raise InvalidInput(
            "quantity",
            f"the smallest sellable amount is {_amount(smallest, rules)} "
            f"({_minimum(rules, price)})",
        )
    if wanted > total:
        raise InvalidInput("quantity", f"at most {_amount(total, rules)} is held in open positions")
    parts = _split([r for r in rooms if r.held >= smallest], wanted, smallest)
    if parts is None:
        raise InvalidInput("quantity", _unsplittable(rooms, wanted, rules, price, smallest))
    return parts


def least_kept(rules: SymbolRules, price: Decimal, stop: Decimal | None) -> Decimal:
    """What a position exited in part must keep so its stop can still exit it: the smallest
    order at the lower of the price and the stop (a LONG's stop sells below today's price)."""
    return rules.smallest_order(min(price, stop) if stop is not None else price)


def check_partial_exit(
    open_quantity: Decimal,
    quantity: Decimal,
    stop: Decimal | None,
    rules: SymbolRules,
    price: Decimal,
) -> None:
    """Refuse, before any order, a part the exchange would not accept or one that leaves a
    remainder too small to ever exit; what would empty the position is a whole close."""
    held = rules.round_quantity(open_quantity)
    part = rules.round_quantity(min(quantity, open_quantity))
    if quantity > open_quantity or part >= held:
        return  # beyond the open quantity (the position says so), or all of it
    smallest = rules.smallest_order(price)
    if part < smallest:
        raise InvalidInput(
            "quantity",
            f"the smallest sellable amount is {_amount(smallest, rules)} "
            f"({_minimum(rules, price)})",
        )
    keep = least_kept(rules, price, stop)
    if held - part < keep:
        at = min(price, stop) if stop is not None else price
        most = f", or at most {_amount(held - keep, rules)}" if held - keep >= smallest else ""
        raise InvalidInput(
            "quantity",
            f"would leave {_amount(held - part, rules)}, less than the smallest order the "
            f"exchange accepts at {at.normalize():f} ({_amount(keep, rules)}), so its stop "
            f"could never exit it; close it all{most}",
        )


def _room(holding: Holding, rules: SymbolRules, price: Decimal, smallest: Decimal) -> _Room:
    """A position sold in part keeps what its stop can still sell."""
    held = rules.round_quantity(holding.open_quantity)
    keep = least_kept(rules, price, holding.stop_price)
    return _Room(holding.position_id, held, smallest, held - keep)


def _split(rooms: list[_Room], wanted: Decimal, smallest: Decimal) -> list[Part] | None:
    """Whole positions taken oldest first; if the rest cannot be sold in parts, give back
    the newest whole ones, one at a time, and try again."""
    wholes: list[_Room] = []
    left = wanted
    for room in rooms:
        if room.held <= left:
            wholes.append(room)
            left -= room.held
    for kept in range(len(wholes), -1, -1):
        taken = wholes[:kept]
        rest = wanted - sum((r.held for r in taken), Decimal(0))
        if rest == 0:
            return [Part(r.position_id, r.held, whole=True) for r in taken]
        others = [r for r in rooms if r not in taken and r.most >= r.least]
        parts = _in_parts(others, rest, smallest)
        if parts is not None:
            by_age = {r.position_id: n for n, r in enumerate(rooms)}
            chosen = [Part(r.position_id, r.held, whole=True) for r in taken] + parts
            return sorted(chosen, key=lambda p: by_age[p.position_id])
    return None


def _in_parts(rooms: list[_Room], rest: Decimal, smallest: Decimal) -> list[Part] | None:
    """`rest` from as few positions as possible, oldest first, each part at least `smallest`."""
    chosen: list[_Room] = []
    room_for = Decimal(0)
    for room in rooms:
        chosen.append(room)
        room_for += room.most
        if room_for >= rest:
            break
    if room_for < rest or rest < smallest * len(chosen):
        return None
    extra = rest - smallest * len(chosen)
    parts: list[Part] = []
    for room in chosen:
        more = min(room.most - smallest, extra)
        extra -= more
        parts.append(Part(room.position_id, smallest + more, whole=False))
    return parts


def _unsplittable(
    rooms: list[_Room], wanted: Decimal, rules: SymbolRules, price: Decimal, smallest: Decimal
) -> str:
    """Why, and the nearest amounts either side that could be sold."""
    sellable = [r for r in rooms if r.held >= smallest]
    step = rules.step_size
    below = next(
        (
            wanted - n * step
            for n in range(1, SUGGESTION_STEPS)
            if wanted - n * step >= smallest and _split(sellable, wanted - n * step, smallest)
        ),
        None,
    )
    above = next(
        (
            wanted + n * step
            for n in range(1, SUGGESTION_STEPS)
            if _split(sellable, wanted + n * step, smallest)
        ),
        None,
    )
    reason = (
        f"{_amount(wanted, rules)} cannot be split into parts the exchange accepts: each part "
        f"must be at least {_amount(smallest, rules)} ({_minimum(rules, price)}) and a position "
        "sold in part must keep enough for its stop to sell"
    )
    nearest = [f"{a.normalize():f}" for a in (below, above) if a is not None]
    if nearest:
        reason += (
            f"; the nearest amounts that can be sold are {' and '.join(nearest)} {rules.base_asset}"
        )
    return reason


def _amount(quantity: Decimal, rules: SymbolRules) -> str:
    return f"{quantity.normalize():f} {rules.base_asset}"


def _minimum(rules: SymbolRules, price: Decimal) -> str:
    return f"{rules.min_notional.normalize():f} {rules.quote_asset} at {price.normalize():f}"
