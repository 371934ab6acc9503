"""Demo price sources for the paper exchange: a seeded random walk or a CSV replay."""

from __future__ import annotations

import csv
import random
import threading
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path

from domain.errors import InvalidInput
from domain.market import SymbolRules
from infra.paper_exchange import PaperExchange


def random_walk(
    start: Decimal, rules: SymbolRules, seed: int, step_percent: Decimal = Decimal("0.2")
) -> Iterator[Decimal]:
    """Prices that move up to ±step% per tick, rounded to the tick; the seed fixes the path."""
    if start <= 0:
        raise InvalidInput("start", "must be greater than zero")
    rng = random.Random(seed)
    price = start
    while True:
        move = Decimal(rng.randint(-1000, 1000)) / 1000 * step_percent / 100
        price = max(rules.tick_size, rules.round_price_down(price * (1 + move)))
        yield price


def csv_replay(path: Path) -> Iterator[Decimal]:
    """Prices from a CSV file: a `price` column, or the last column of headerless rows."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise InvalidInput("csv", f"{path} holds no prices")
    header = [cell.strip().lower() for cell in rows[0]]
    column, body, first_line = -1, rows, 1
    if "price" in header:
        column, body, first_line = header.index("price"), rows[1:], 2
    for line, row in enumerate(body, start=first_line):
        if not row:
            continue
        try:
            price = Decimal(row[column].strip())
        except (InvalidOperation, IndexError):
            raise InvalidInput("csv", f"line {line}: {row!r} has no price") from None
        if not price.is_finite() or price <= 0:
            raise InvalidInput("csv", f"line {line}: price must be greater than zero")
        yield price


def feed(
    paper: PaperExchange,
    symbol: str,
    prices: Iterable[Decimal],
    interval_seconds: float,
    stop: threading.Event,
    count: int | None = None,
) -> int:
    """Set the paper price from `prices` every interval until stopped; returns how many."""
    sent = 0
    for price in prices:
        if stop.is_set() or (count is not None and sent >= count):
            break
        paper.set_price(symbol, price)
        sent += 1
        stop.wait(interval_seconds)
    return sent
