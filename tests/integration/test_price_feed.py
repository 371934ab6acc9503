"""Demo price sources drive the paper exchange deterministically."""

from __future__ import annotations

import itertools
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from domain.errors import InvalidInput
from domain.market import BTCUSDC
from infra.bootstrap import Services
from infra.price_feed import csv_replay, feed, random_walk


def test_a_seeded_random_walk_repeats_and_stays_on_the_tick() -> None:
    first = list(itertools.islice(random_walk(Decimal(98500), BTCUSDC, seed=7), 500))
    again = list(itertools.islice(random_walk(Decimal(98500), BTCUSDC, seed=7), 500))
    other = list(itertools.islice(random_walk(Decimal(98500), BTCUSDC, seed=8), 500))
    assert first == again != other
    assert all(p > 0 and p == BTCUSDC.round_price_down(p) for p in first)
    steps = [abs(b - a) / a for a, b in itertools.pairwise(first)]
    assert max(steps) <= Decimal("0.0021")


def test_a_csv_replays_its_price_column_or_its_last_column(tmp_path: Path) -> None:
    with_header = tmp_path / "h.csv"
    with_header.write_text("time,price\n2026-11-01T00:00:00Z,98000\n2026-11-01T00:01:00Z,98100.5\n")
    bare = tmp_path / "b.csv"
    bare.write_text("97000\n\n97100\n")
    assert list(csv_replay(with_header)) == [Decimal(98000), Decimal("98100.5")]
    assert list(csv_replay(bare)) == [Decimal(97000), Decimal(97100)]


def test_a_bad_csv_row_names_its_line(tmp_path: Path) -> None:
    broken = tmp_path / "x.csv"
    broken.write_text("price\n98000\nabc\n")
    with pytest.raises(InvalidInput, match="line 3"):
        list(csv_replay(broken))


def test_feeding_sets_the_paper_price_in_order(services: Services) -> None:
    assert services.paper is not None
    prices = [Decimal(97000), Decimal(97500), Decimal(98000)]
    sent = feed(services.paper, "BTCUSDC", prices, 0, threading.Event())
    assert sent == 3
    assert services.paper.price("BTCUSDC") == Decimal(98000)


def test_feeding_stops_after_count_or_when_asked(services: Services) -> None:
    assert services.paper is not None
    walk = random_walk(Decimal(98500), BTCUSDC, seed=1)
    assert feed(services.paper, "BTCUSDC", walk, 0, threading.Event(), count=5) == 5
    stopped = threading.Event()
    stopped.set()
    assert feed(services.paper, "BTCUSDC", walk, 0, stopped) == 0
