"""Replay throughput beside the bare read-and-parse rate of the same kline file.

One year of one-minute klines (525,600 rows, a synthetic random walk in whole cents, in the
Binance dump's format) is written to a temporary CSV. Measured in the same run:
- bare parse: each line split at its first five commas, the open time made an int and
  open, high, low and close Decimals, nothing kept: the least any replay pays to read them;
- reader: `KlineFiles`, the replay's own reader, building a Bar per row;
- replay: `robson replay`'s engine over that reader with the demo rule (a trade planned at
  each day's first bar: 365 plans, each through the real Position and Policy aggregates,
  which the rules then accept or refuse).
The machine's speed drifts within seconds (it is shared), so the three run back to back in
each of `ROUNDS` rounds; the ratio reported is the median of the rounds' ratios, and the
rates are the best round's. Goal: replay at 50% or more of the bare parse rate, and the
year in under 30 s.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from domain.replay import Replay, ReplaySettings
from domain.replay_entries import DailyBias
from domain.replay_report import ReplayResult, summarise
from infra.cli.replay import symbol_rules
from infra.replay_files import KlineFiles

ROWS = int(os.environ.get("BENCH_REPLAY_ROWS", str(365 * 24 * 60)))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
START_MS = 1_672_531_200_000  # 2023-01-01T00:00:00Z
MINUTE_MS = 60_000
GOAL_RATIO = 0.50
GOAL_SECONDS = 30.0


def _price(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}000000"


def write_year(path: Path, rows: int = ROWS, seed: int = 7) -> None:
    """A random walk of one-minute bars around 30,000, in whole cents (no floats)."""
    rng = random.Random(seed)
    close = 3_000_000
    with path.open("w", encoding="ascii", newline="") as stream:
        lines: list[str] = []
        for i in range(rows):
            opened = START_MS + i * MINUTE_MS
            open_ = close
            close = max(100_000, open_ + rng.randint(-12_000, 12_000))
            high = max(open_, close) + rng.randint(0, 5_000)
            low = max(1, min(open_, close) - rng.randint(0, 5_000))
            lines.append(
                f"{opened},{_price(open_)},{_price(high)},{_price(low)},{_price(close)},"
                f"12.34500000,{opened + MINUTE_MS - 1},370350.00000000,321,6.17200000,"
                "185175.00000000,0\n"
            )
            if len(lines) == 10_000:
                stream.writelines(lines)
                lines.clear()
        stream.writelines(lines)


def bare_parse(path: Path) -> int:
    rows = 0
    with path.open(encoding="ascii", newline="") as stream:
        for line in stream:
            fields = line.split(",", 5)
            int(fields[0])
            Decimal(fields[1])
            Decimal(fields[2])
            Decimal(fields[3])
            Decimal(fields[4])
            rows += 1
    return rows


def read_only(path: Path) -> int:
    return sum(1 for _ in KlineFiles([path]))


def replay(path: Path) -> ReplayResult:
    settings = ReplaySettings(rules=symbol_rules("BTCUSDT"), review_monthly=True)
    return Replay(settings, DailyBias()).run(KlineFiles([path]))


def _timed(body: Callable[[], object]) -> tuple[float, object]:
    began = time.perf_counter()
    value = body()
    return time.perf_counter() - began, value


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "BTCUSDT-1m-2023.csv"
        seconds, _ = _timed(lambda: write_year(path))
        print(
            f"wrote {ROWS:,} one-minute klines ({path.stat().st_size / 1e6:.1f} MB) in "
            f"{seconds:.1f} s"
        )
        bare: list[float] = []
        reader: list[float] = []
        replays: list[float] = []
        result: ReplayResult | None = None
        for _ in range(ROUNDS):
            seconds, rows = _timed(lambda: bare_parse(path))
            assert rows == ROWS
            bare.append(seconds)
            seconds, rows = _timed(lambda: read_only(path))
            assert rows == ROWS
            reader.append(seconds)
            seconds, value = _timed(lambda: replay(path))
            assert isinstance(value, ReplayResult) and value.bars == ROWS
            replays.append(seconds)
            result = value
    assert result is not None
    summary = summarise(result)
    best_replay = min(replays)
    ratio = statistics.median(b / r for b, r in zip(bare, replays, strict=True))
    reader_ratio = statistics.median(b / r for b, r in zip(bare, reader, strict=True))
    print(
        f"trades closed {summary.trades}, plans rejected {summary.rejected}, "
        f"cancelled {summary.cancelled}, pauses {summary.pauses}, "
        f"net P&L {summary.net_pnl.quantize(Decimal('0.01'))}"
    )
    for name, runs in (("bare parse", bare), ("reader", reader), ("replay", replays)):
        rounds = ", ".join(f"{s:.2f}" for s in runs)
        print(f"{name:>10}: {ROWS / min(runs):>10,.0f} rows/s  (rounds: {rounds} s)")
    print(
        f"replay / bare parse: {ratio:.2f} (median of the rounds; goal >= {GOAL_RATIO:.2f}); "
        f"reader / bare parse: {reader_ratio:.2f}"
    )
    print(
        f"one year of 1m klines replayed in {best_replay:.2f} s (goal < {GOAL_SECONDS:.0f} s): "
        f"{'met' if ratio >= GOAL_RATIO and best_replay < GOAL_SECONDS else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
