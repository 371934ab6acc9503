"""`robson replay` over real BTCUSDT klines: the files it writes, its chart, its inputs, and
a trade that ends exactly as the same trade does through the ledger on the paper exchange."""

from __future__ import annotations

import argparse
import csv
import io
import json
import struct
import sys
import zlib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from domain.errors import InvalidInput
from domain.market import BTCUSDC, Side
from domain.position import ExitReason, Status
from domain.replay import Bar, PlannedTrade, Replay, ReplaySettings
from domain.replay_entries import Schedule
from infra.bootstrap import Services
from infra.cli import main
from infra.cli import replay as replay_command
from infra.replay_files import KlineFiles, read_plans
from tests.factories import open_long, register

SAMPLE = Path(__file__).parent.parent / "data" / "BTCUSDT-1h-sample.csv"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def arguments(*argv: str) -> argparse.Namespace:
    root = argparse.ArgumentParser()
    replay_command.add_parser(root.add_subparsers())
    return root.parse_args(["replay", *argv])


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every chunk of a PNG, each CRC checked; fails on anything that is not one."""
    assert data[:8] == PNG_SIGNATURE
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        at += 12 + length
    return chunks


def test_the_command_replays_the_sample_and_saves_every_result(tmp_path: Path) -> None:
    code = main(["replay", str(SAMPLE), "--output", str(tmp_path), "--quiet"], env={})
    assert code == 0

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["bars"] == 504
    assert summary["first_bar"] == "2023-01-21T00:00:00+00:00"
    assert summary["last_bar"] == "2023-02-10T23:00:00+00:00"
    with (tmp_path / "trades.csv").open() as stream:
        trades = list(csv.DictReader(stream))
    assert len(trades) == summary["trades"] > 0
    assert {t["reason"] for t in trades} <= {"STOP_LOSS", "TAKE_PROFIT"}
    net = sum((Decimal(t["pnl"]) for t in trades), Decimal(0))
    assert net == Decimal(summary["net_pnl"])
    with (tmp_path / "months.csv").open() as stream:
        months = {row["month"]: Decimal(row["pnl"]) for row in csv.DictReader(stream)}
    assert list(months) == ["2023-01", "2023-02"]
    assert sum(months.values(), Decimal(0)) == net
    wins = sum(1 for t in trades if Decimal(t["pnl"]) > 0)
    assert Decimal(summary["win_rate"]) == (Decimal(wins) / len(trades)).quantize(Decimal("1E-4"))
    assert (tmp_path / "skipped.csv").exists()


def test_the_equity_chart_is_a_valid_png(tmp_path: Path) -> None:
    assert replay_command.run(arguments(str(SAMPLE), "--output", str(tmp_path)), io.StringIO()) == 0

    chunks = png_chunks((tmp_path / "equity.png").read_bytes())
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert (width, height) == (1000, 450)
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(pixels) > width * height  # a filter byte and at least one byte a pixel a row


def test_the_report_is_printed(tmp_path: Path) -> None:
    out = io.StringIO()
    replay_command.run(arguments(str(SAMPLE), "--output", str(tmp_path), "--no-chart"), out)

    text = out.getvalue()
    assert "Replay of BTCUSDT: 504 bars, 2023-01-21 00:00 to 2023-02-10 23:00 UTC" in text
    for heading in ("P&L by month:", "Max drawdown", "Win rate", "profit factor", "average R"):
        assert heading in text
    assert "2023-01" in text and "2023-02" in text
    assert not (tmp_path / "equity.png").exists()


def test_planned_trades_from_a_csv_are_replayed(tmp_path: Path) -> None:
    plans = tmp_path / "plans.csv"
    plans.write_text(
        "time,side,entry,stop,target\n"
        "2023-01-21T02:00:00Z,LONG,22700,22400,23300\n"
        "1674432000000,SHORT,22700,23000,\n"  # 2023-01-23 00:00 UTC, no target
    )
    out = tmp_path / "out"
    code = replay_command.run(
        arguments(str(SAMPLE), "--plans", str(plans), "--output", str(out), "--no-chart"),
        io.StringIO(),
    )
    assert code == 0

    with (out / "trades.csv").open() as stream:
        trades = list(csv.DictReader(stream))
    assert [(t["side"], t["entry"], t["initial_stop"]) for t in trades] == [
        ("LONG", "22700", "22400"),
        ("SHORT", "22700", "23000"),
    ]
    # 1% of 1000 over a 300 stop distance, rounded down to the lot step.
    assert {t["quantity"] for t in trades} == {"0.03333"}


def test_bad_input_is_refused_with_the_file_line_and_field(tmp_path: Path) -> None:
    broken = tmp_path / "BTCUSDT-1h-broken.csv"
    lines = SAMPLE.read_text().splitlines(keepends=True)
    broken.write_text("".join([*lines[:3], "1674270000000,abc,1,1,1,0,0,0,0,0,0,0\n"]))
    err = io.StringIO()
    code = replay_command.run(
        arguments(str(broken), "--output", str(tmp_path), "--no-chart"), io.StringIO(), err
    )
    assert code == 2
    assert f"klines: {broken}:4: not a Binance kline row" in err.getvalue()

    err = io.StringIO()
    missing = tmp_path / "missing.csv"
    code = replay_command.run(arguments(str(missing)), Terminal(), err)
    assert (code, err.getvalue()) == (2, f"error: klines: {missing}: no such file\n")

    plans = tmp_path / "plans.csv"
    plans.write_text("time,side,entry,stop,target\n2023-01-21T02:00:00Z,UP,1,1,\n")
    with pytest.raises(InvalidInput, match=r"side: .*plans.csv:2: must be LONG or SHORT"):
        read_plans(plans)


def test_klines_in_microseconds_and_with_a_header_read_as_the_dump_in_milliseconds(
    tmp_path: Path,
) -> None:
    first, second = SAMPLE.read_text().splitlines(keepends=True)[:2]
    micro = tmp_path / "micro.csv"
    micro.write_text(
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
        "taker_buy_volume,taker_buy_quote_volume,ignore\n"
        + "".join(f"{line.split(',', 1)[0]}000,{line.split(',', 1)[1]}" for line in (first, second))
    )
    expected = list(KlineFiles([SAMPLE]))[:2]

    assert list(KlineFiles([micro])) == expected
    assert expected[0] == Bar(
        1674259200000,
        Decimal("22666.00000000"),
        Decimal("22792.86000000"),
        Decimal("22422.00000000"),
        Decimal("22576.17000000"),
    )


def test_the_progress_line_shows_only_on_a_terminal_and_not_when_quiet(tmp_path: Path) -> None:
    for out, flags, shown in (
        (io.StringIO(), [], False),
        (Terminal(), ["--quiet"], False),
        (Terminal(), [], True),
    ):
        err = io.StringIO()
        args = arguments(str(SAMPLE), "--output", str(tmp_path), "--no-chart", *flags)
        assert replay_command.run(args, out, err) == 0
        assert ("replay: 100.0%  504 bars" in err.getvalue()) is shown, err.getvalue()


def test_without_matplotlib_the_command_says_how_to_get_the_chart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    err = io.StringIO()

    code = replay_command.run(arguments(str(SAMPLE), "--output", str(tmp_path)), io.StringIO(), err)

    assert code == 2
    assert "pip install 'robson[chart]', or pass --no-chart" in err.getvalue()
    assert not (tmp_path / "trades.csv").exists()


def test_a_replayed_trade_ends_exactly_as_the_ledger_closes_it_on_paper(
    services: Services,
) -> None:
    """The ledger on the paper exchange: capital 1000, LONG at 100000 with the stop at 98000,
    closed at 104000. The replay of the same plan, its target at 104000, ends the same."""
    client_id, _ = register(services.ledger, capital="1000")
    position = open_long(services.ledger, client_id, stop="98000")
    assert services.paper is not None
    services.paper.set_price("BTCUSDC", Decimal("104000"))
    closed = services.ledger.close_position(client_id, position.id)
    assert closed.status is Status.CLOSED

    at = datetime(2026, 3, 2, tzinfo=UTC)
    plan = PlannedTrade(at, Side.LONG, Decimal(100000), Decimal(98000), Decimal(104000))
    replay = Replay(ReplaySettings(rules=BTCUSDC), Schedule([plan]))
    opened = int(at.timestamp() * 1000)
    replay.step(Bar(opened, *(Decimal(p) for p in ("100000", "100050", "99950", "100000"))))
    replay.step(
        Bar(opened + 60_000, *(Decimal(p) for p in ("103900", "104000", "103800", "104000")))
    )

    [trade] = replay.result.trades
    assert trade.reason is ExitReason.TAKE_PROFIT
    assert trade.quantity == closed.quantity == Decimal("0.005")
    assert trade.risk == closed.risk_amount
    assert trade.pnl == closed.realised_pnl
    assert trade.fees == closed.entry_fees_quote + closed.exit_fees_quote


def test_the_help_states_the_order_of_checks_within_a_bar(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["replay", "--help"], env={})
    assert exit_.value.code == 0

    text = " ".join(capsys.readouterr().out.split())
    assert "the STOP FIRST, so a bar touching both counts as stopped out" in text
    assert "then the stop trails from the bar's favourable extreme" in text
    assert "AFTER the exit checks" in text
    assert "the built-in demo rule" in text
