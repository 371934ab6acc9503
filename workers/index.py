"""The open positions of one worker, indexed per symbol by the prices at which they act.

A tick asks "which positions does this price stop out, take profit on, or trail?" and gets
the answer in O(log n + k) for the k positions concerned, not a scan of all n: per symbol
and side, one heap per trigger (stop, target, next trailing step), with lazy deletion.
Pure: no I/O, no clock; the hand-span rules come from `domain.trailing`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from uuid import UUID

from domain.market import Side, SymbolRules
from domain.position import ExitReason
from domain.trailing import hand_span_stop, next_trail_price, spans_moved

# Grid steps tried when tick rounding swallows a span (a span smaller than a tick).
_MAX_GRID_STEPS = 64
# Stale heap items tolerated, beyond the live ones, before a symbol's heaps are rebuilt.
_COMPACT_SLACK = 1024


@dataclass(frozen=True, slots=True)
class Watched:
    """What the worker knows of one open position: enough to decide, nothing more."""

    position_id: UUID
    client_id: UUID
    symbol: str
    side: Side
    entry: Decimal  # the average fill price: the hand-span grid starts here
    initial_stop: Decimal | None
    stop: Decimal | None
    target: Decimal | None


@dataclass(frozen=True, slots=True)
class Trail:
    """The hand-span step a price earns: move `position`'s stop to `new_stop`."""

    position: Watched
    new_stop: Decimal
    span_step: int


@dataclass(frozen=True, slots=True)
class Exit:
    """A protective exit a price triggers (a stop is checked before a target)."""

    position: Watched
    reason: ExitReason


def crosses_up(side: Side) -> tuple[bool, bool, bool]:
    """For (stop, target, trail): is the trigger reached by a price at or ABOVE it?"""
    long = side is Side.LONG
    return (not long, long, long)


def stop_hit(side: Side, stop: Decimal, price: Decimal) -> bool:
    return price <= stop if side is Side.LONG else price >= stop


def target_hit(side: Side, target: Decimal, price: Decimal) -> bool:
    return price >= target if side is Side.LONG else price <= target


def trail_trigger(
    side: Side,
    entry: Decimal,
    initial_stop: Decimal,
    stop: Decimal,
    fee_buffer: Decimal = Decimal(0),
    rules: SymbolRules | None = None,
) -> Decimal | None:
    """The nearest price at which the hand-span step tightens `stop`; None: none ever will.

    The stop only moves at whole spans from the entry, and `hand_span_stop` is monotone in
    the price (for a fee buffer smaller than a span), so one threshold says it all. It is
    guessed from the current stop and confirmed with `hand_span_stop` itself.
    """
    span = abs(entry - initial_stop)
    if span == 0:
        return None
    step = side.sign * span

    def moves(price: Decimal) -> bool:
        return (
            price > 0
            and hand_span_stop(side, entry, initial_stop, stop, price, fee_buffer, rules) != stop
        )

    price = next_trail_price(side, entry, initial_stop, stop + step)
    while price <= 0:  # only a short's grid reaches zero: start from its last positive price
        price -= step
    for _ in range(_MAX_GRID_STEPS):  # rounding may let an earlier span move it already
        if not moves(price - step):
            break
        price -= step
    for _ in range(_MAX_GRID_STEPS):
        if moves(price):
            return price
        price += step
        if price <= 0:
            return None
    return None


# Triggers, and the heap slot of (trigger, side): plain ints, as they sit on the hot path.
_STOP, _TARGET, _TRAIL = 0, 1, 2


def _slot(trigger: int, long: bool) -> int:
    return trigger * 2 + (0 if long else 1)


_SLOTS = 6
# Does the trigger in this slot fire from above (price >= key: a min-heap on the key), or
# from below (price <= key: a min-heap on -key)?
_FIRES_UP = tuple(
    crosses_up(Side.LONG if slot % 2 == 0 else Side.SHORT)[slot // 2] for slot in range(_SLOTS)
)

# (sort key, version, position id): the sort key is -key in the heaps that fire from below.
_Item = tuple[Decimal, int, UUID]


@dataclass(slots=True)
class _Live:
    position: Watched
    version: int
    keys: tuple[Decimal | None, Decimal | None, Decimal | None]  # stop, target, trail

    def items(self) -> Iterator[tuple[int, _Item]]:
        long = self.position.side is Side.LONG
        for trigger, key in enumerate(self.keys):
            if key is not None:
                slot = _slot(trigger, long)
                sort_key = key if _FIRES_UP[slot] else -key
                yield slot, (sort_key, self.version, self.position.position_id)


@dataclass
class _Book:
    """One symbol: a heap per (trigger, side), keyed so the next to fire is on top."""

    heaps: list[list[_Item]] = field(default_factory=lambda: [[] for _ in range(_SLOTS)])
    live: set[UUID] = field(default_factory=set)
    stale: int = 0


class PositionIndex:
    """Open positions by symbol, ordered by stop, by target and by next trailing price."""

    def __init__(self, fee_buffer: Decimal = Decimal(0)) -> None:
        self.fee_buffer = fee_buffer
        self._live: dict[UUID, _Live] = {}
        self._books: dict[str, _Book] = {}
        self._rules: dict[str, SymbolRules] = {}
        self._versions = 0

    # --- contents ---

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, position_id: object) -> bool:
        return position_id in self._live

    def __iter__(self) -> Iterator[Watched]:
        return (live.position for live in self._live.values())

    def get(self, position_id: UUID) -> Watched | None:
        live = self._live.get(position_id)
        return None if live is None else live.position

    def symbols(self) -> list[str]:
        """Symbols with at least one open position: the prices a tick must fetch."""
        return sorted(symbol for symbol, book in self._books.items() if book.live)

    def heap_items(self) -> int:
        """Items in the heaps, stale ones included: bounded by a constant times `len(self)`."""
        return sum(len(heap) for book in self._books.values() for heap in book.heaps)

    def set_rules(self, rules: SymbolRules) -> None:
        """The symbol's tick, so trailing stops round as the ledger will record them."""
        self._rules[rules.symbol] = rules
        for live in [lv for lv in self._live.values() if lv.position.symbol == rules.symbol]:
            self._place(live.position)

    def rules(self, symbol: str) -> SymbolRules | None:
        return self._rules.get(symbol)

    # --- changes ---

    def upsert(self, position: Watched) -> None:
        """Add or replace a position. A stop already seen tighter is kept: stops never loosen."""
        known = self._live.get(position.position_id)
        if known is not None:
            if known.position == position:
                return
            position = _keep_tighter_stop(known.position, position)
            if known.position == position:
                return
        self._place(position)

    def remove(self, position_id: UUID) -> Watched | None:
        live = self._live.pop(position_id, None)
        if live is None:
            return None
        book = self._books[live.position.symbol]
        book.live.discard(position_id)
        book.stale += sum(key is not None for key in live.keys)
        self._maybe_compact(live.position.symbol)
        return live.position

    def tighten(self, position_id: UUID, new_stop: Decimal) -> None:
        """Record a stop the ledger has just moved (ignored when it would loosen)."""
        live = self._live.get(position_id)
        if live is not None:
            self.upsert(_with_stop(live.position, new_stop))

    def replace_all(self, positions: Iterable[Watched]) -> None:
        """A full refresh: exactly these positions, keeping stops already seen tighter."""
        fresh = {p.position_id: p for p in positions}
        for position_id in [pid for pid in self._live if pid not in fresh]:
            self.remove(position_id)
        for position in fresh.values():
            self.upsert(position)

    # --- queries ---

    def trailing_due(self, symbol: str, price: Decimal) -> list[Trail]:
        """Positions whose stop this price moves, with the stop it moves to."""
        rules = self._rules.get(symbol)
        trails: list[Trail] = []
        for long in (True, False):
            for live in self._reached(symbol, _slot(_TRAIL, long), price):
                p = live.position
                assert p.initial_stop is not None and p.stop is not None
                new_stop = hand_span_stop(
                    p.side, p.entry, p.initial_stop, p.stop, price, self.fee_buffer, rules
                )
                if new_stop != p.stop:
                    step = spans_moved(p.side, p.entry, p.initial_stop, price)
                    trails.append(Trail(p, new_stop, step))
        return trails

    def exits_due(self, symbol: str, price: Decimal) -> list[Exit]:
        """Positions this price stops out or takes profit on; each once, stop before target."""
        exits: list[Exit] = []
        seen: set[UUID] = set()
        for trigger, reason in ((_STOP, ExitReason.STOP_LOSS), (_TARGET, ExitReason.TAKE_PROFIT)):
            for long in (True, False):
                for live in self._reached(symbol, _slot(trigger, long), price):
                    if live.position.position_id not in seen:
                        seen.add(live.position.position_id)
                        exits.append(Exit(live.position, reason))
        return exits

    # --- heaps ---

    def _place(self, position: Watched) -> None:
        self._versions += 1
        keys = self._keys(position)
        old = self._live.get(position.position_id)
        live = _Live(position, self._versions, keys)
        self._live[position.position_id] = live
        if old is not None:
            old_book = self._books[old.position.symbol]
            old_book.stale += sum(key is not None for key in old.keys)
            if old.position.symbol != position.symbol:
                old_book.live.discard(position.position_id)
        book = self._books.get(position.symbol)
        if book is None:
            book = self._books[position.symbol] = _Book()
        book.live.add(position.position_id)
        for slot, item in live.items():
            heapq.heappush(book.heaps[slot], item)
        self._maybe_compact(position.symbol)

    def _keys(self, p: Watched) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
        trail = None
        if p.initial_stop is not None and p.stop is not None:
            trail = trail_trigger(
                p.side, p.entry, p.initial_stop, p.stop, self.fee_buffer, self._rules.get(p.symbol)
            )
        return (p.stop, p.target, trail)

    def _reached(self, symbol: str, slot: int, price: Decimal) -> list[_Live]:
        """Live positions whose trigger this price reaches; the heap is left as it was."""
        book = self._books.get(symbol)
        if book is None:
            return []
        heap = book.heaps[slot]
        up = _FIRES_UP[slot]
        reached: list[_Live] = []
        kept: list[_Item] = []
        while heap:
            key, version, position_id = heap[0]
            if not (price >= key if up else price <= -key):
                break
            item = heapq.heappop(heap)
            live = self._live.get(position_id)
            if live is None or live.version != version:
                book.stale -= 1
                continue
            reached.append(live)
            kept.append(item)
        for item in kept:
            heapq.heappush(heap, item)
        return reached

    def _maybe_compact(self, symbol: str) -> None:
        book = self._books[symbol]
        if book.stale <= len(book.live) * 3 + _COMPACT_SLACK:
            return
        for heap in book.heaps:
            heap.clear()
        book.stale = 0
        for position_id in book.live:
            for slot, item in self._live[position_id].items():
                book.heaps[slot].append(item)
        for heap in book.heaps:
            heapq.heapify(heap)


def _with_stop(position: Watched, stop: Decimal) -> Watched:
    return Watched(
        position.position_id,
        position.client_id,
        position.symbol,
        position.side,
        position.entry,
        position.initial_stop,
        stop,
        position.target,
    )


def _keep_tighter_stop(known: Watched, fresh: Watched) -> Watched:
    if known.stop is None or fresh.stop is None or known.side is not fresh.side:
        return fresh
    tighter = known.stop > fresh.stop if fresh.side is Side.LONG else known.stop < fresh.stop
    return _with_stop(fresh, known.stop) if tighter else fresh
