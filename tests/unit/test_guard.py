"""The emotional-trading guard: what raises the score, what lowers it, and where levels flip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.assistant.guard import (
    ExtractedParameters,
    GuardReport,
    IntendedTrade,
    RiskLevel,
    SignalType,
    TradeRecord,
    analyze,
    extract_parameters,
    risk_level_for,
)
from domain.assistant.signals import WEIGHTS
from domain.errors import InvalidInput

NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
CALM = "What do you think about BTC this week?"


def closed(
    pnl: str,
    exit_minutes_ago: float,
    quantity: str = "0.010",
    held_minutes: float = 60,
    symbol: str = "BTCUSDC",
    fees: str = "0",
) -> TradeRecord:
    exit_time = NOW - timedelta(minutes=exit_minutes_ago)
    return TradeRecord(
        symbol=symbol,
        side="LONG",
        quantity=Decimal(quantity),
        pnl=Decimal(pnl),
        entry_time=exit_time - timedelta(minutes=held_minutes),
        exit_time=exit_time,
        fees=Decimal(fees),
    )


def opened(entry_time: datetime, quantity: str = "0.010") -> TradeRecord:
    return TradeRecord("BTCUSDC", "LONG", Decimal(quantity), None, entry_time, None)


def types(report: GuardReport) -> set[str]:
    return {s.type for s in report.signals}


def signal(report: GuardReport, type_: SignalType) -> str:
    """The evidence of the one signal of that type."""
    (match,) = [s for s in report.signals if s.type == type_]
    return match.evidence


# --------------------------------------------------------------------------- phrases


@pytest.mark.parametrize(
    ("message", "expected", "phrase"),
    [
        ("Buy BTC right now before it's too late", SignalType.URGENCY, "right now"),
        ("BTC to the moon, last chance!", SignalType.URGENCY, "last chance"),
        ("Compra BTC agora, é a última chance", SignalType.URGENCY, "última chance"),
        ("ETH vai explodir", SignalType.URGENCY, "vai explodir"),
        ("This one is guaranteed", SignalType.OVERCONFIDENCE, "guaranteed"),
        ("I can’t lose on this, I have insider info", SignalType.OVERCONFIDENCE, "can’t lose"),
        ("É garantido, não tem como perder", SignalType.OVERCONFIDENCE, "não tem como perder"),
        ("Long BTC with no stop", SignalType.RISK_BLINDNESS, "no stop"),
        ("Going all-in on SOL", SignalType.RISK_BLINDNESS, "all-in"),
        ("Long BTC without a stop loss", SignalType.RISK_BLINDNESS, "without a stop loss"),
        ("Vou colocar tudo em BTC, sem stop", SignalType.RISK_BLINDNESS, "sem stop"),
        ("I want to recover what I lost", SignalType.REVENGE_LANGUAGE, "recover"),
        ("Time to double down and make it back", SignalType.REVENGE_LANGUAGE, "make it back"),
        ("Martingale until it works", SignalType.REVENGE_LANGUAGE, "Martingale"),
        ("Preciso recuperar o prejuízo, é vingança", SignalType.REVENGE_LANGUAGE, "vingança"),
    ],
)
def test_a_phrase_raises_its_signal_by_its_weight(
    message: str, expected: SignalType, phrase: str
) -> None:
    report = analyze(message, None, [], NOW)

    assert types(report) == {expected}
    assert report.risk_score == WEIGHTS[expected]
    assert phrase in signal(report, expected)


def test_several_phrases_of_one_kind_count_once_and_are_all_quoted() -> None:
    report = analyze("NOW, right now, last chance, to the moon", None, [], NOW)

    assert report.risk_score == WEIGHTS[SignalType.URGENCY]
    evidence = signal(report, SignalType.URGENCY)
    assert all(p in evidence for p in ('"NOW"', '"right now"', '"last chance"', '"to the moon"'))


@pytest.mark.parametrize(
    "message", ["ULTIMA CHANCE pra entrar", "ultima chance", "Última Chance", "agora mesmo"]
)
def test_portuguese_matches_with_or_without_accents_and_in_any_case(message: str) -> None:
    assert types(analyze(message, None, [], NOW)) == {SignalType.URGENCY}


@pytest.mark.parametrize(
    "message",
    [
        "I know BTC well",
        "Snow in the forecast, markets are slow",
        "Nowhere near my entry yet",
        "Está tudo bem com a minha posição?",
        "The market recovery looks slow",
        "Allin is my cat's name",
        "I will stop trading for today",
    ],
)
def test_words_that_merely_contain_a_phrase_raise_nothing(message: str) -> None:
    report = analyze(message, None, [], NOW)

    assert report.signals == ()
    assert report.risk_level is RiskLevel.LOW


# --------------------------------------------------------------------------- leverage


@pytest.mark.parametrize(
    ("message", "trade_leverage", "flagged"),
    [
        ("long BTC 10x", None, True),
        ("long BTC alavancagem 20x", None, True),
        ("long BTC 9x", None, False),
        ("long BTC", Decimal(10), True),
        ("long BTC", Decimal("9.5"), False),
        ("long BTC 3x", Decimal(25), True),
    ],
)
def test_leverage_of_10x_or_more_from_text_or_trade_is_risk_blindness(
    message: str, trade_leverage: Decimal | None, flagged: bool
) -> None:
    report = analyze(message, IntendedTrade(leverage=trade_leverage), [], NOW)

    assert (SignalType.HIGH_LEVERAGE in types(report)) is flagged


# --------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize(
    ("minutes_since_loss", "new_quantity", "flagged"),
    [
        (30, "0.020", True),
        (5, "0.011", True),
        (30.02, "0.020", False),
        (31, "0.020", False),
        (10, "0.010", False),
        (10, "0.005", False),
    ],
)
def test_revenge_trade_is_a_larger_trade_within_30_minutes_of_a_losing_exit(
    minutes_since_loss: float, new_quantity: str, flagged: bool
) -> None:
    history = [closed("-50", exit_minutes_ago=minutes_since_loss, quantity="0.010")]
    trade = IntendedTrade(symbol="BTCUSDC", side="LONG", quantity=Decimal(new_quantity))

    report = analyze(CALM, trade, history, NOW)

    assert (SignalType.REVENGE_TRADING in types(report)) is flagged


def test_a_larger_trade_after_a_win_is_not_revenge() -> None:
    history = [closed("50", exit_minutes_ago=5, quantity="0.010")]

    report = analyze(CALM, IntendedTrade(quantity=Decimal("0.050")), history, NOW)

    assert SignalType.REVENGE_TRADING not in types(report)


@pytest.mark.parametrize(
    ("pnl", "fees", "flagged"),
    [("-0.058", "0.058", False), ("-0.05", "0.058", False), ("-0.059", "0.058", True)],
)
def test_a_result_within_the_fees_paid_is_not_a_loss_to_revenge(
    pnl: str, fees: str, flagged: bool
) -> None:
    history = [closed(pnl, exit_minutes_ago=5, quantity="0.010", fees=fees)]
    trade = IntendedTrade(symbol="BTCUSDC", side="LONG", quantity=Decimal("0.020"))

    report = analyze(CALM, trade, history, NOW)

    assert (SignalType.REVENGE_TRADING in types(report)) is flagged


def test_fee_only_results_do_not_make_a_loss_streak() -> None:
    history = [
        closed("-0.06", exit_minutes_ago=300, fees="0.06"),
        closed("-0.05", exit_minutes_ago=200, fees="0.06"),
        closed("-0.04", exit_minutes_ago=100, fees="0.06"),
    ]

    assert SignalType.LOSS_STREAK not in types(analyze(CALM, None, history, NOW))


def test_revenge_pattern_already_in_todays_history_is_flagged_without_a_new_trade() -> None:
    loss = closed("-80", exit_minutes_ago=60, quantity="0.010")
    revenge = opened(NOW - timedelta(minutes=45), quantity="0.030")

    report = analyze(CALM, None, [loss, revenge], NOW)

    assert "15 min after a 80 loss" in signal(report, SignalType.REVENGE_TRADING)
    assert report.risk_score == WEIGHTS[SignalType.REVENGE_TRADING]


def today_entries(count: int) -> list[TradeRecord]:
    start = NOW.replace(hour=0, minute=0)
    return [opened(start + timedelta(minutes=i)) for i in range(count)]


@pytest.mark.parametrize(("trades_today", "flagged"), [(51, True), (50, False)])
def test_overtrading_is_more_trades_today_than_the_daily_limit(
    trades_today: int, flagged: bool
) -> None:
    report = analyze(CALM, None, today_entries(trades_today), NOW)

    assert (SignalType.OVERTRADING in types(report)) is flagged


def test_overtrading_counts_only_the_current_utc_day_and_honours_the_limit() -> None:
    yesterday = opened(NOW.replace(hour=0, minute=0) - timedelta(seconds=1))
    history = [*today_entries(50), yesterday]

    assert SignalType.OVERTRADING not in types(analyze(CALM, None, history, NOW))
    assert SignalType.OVERTRADING in types(analyze(CALM, None, history, NOW, daily_trade_limit=49))


def test_three_consecutive_losses_by_exit_time_are_a_loss_streak() -> None:
    history = [
        closed("-10", exit_minutes_ago=300),
        closed("25", exit_minutes_ago=500),  # the older win does not break the newer streak
        closed("-20", exit_minutes_ago=200),
        closed("-30", exit_minutes_ago=100),
        opened(NOW - timedelta(minutes=50)),  # open trades have no result yet
    ]

    report = analyze(CALM, None, history, NOW)

    assert signal(report, SignalType.LOSS_STREAK) == "3 losing trades in a row"


def test_a_breakeven_trade_interrupts_a_streak() -> None:
    history = [
        closed("-10", exit_minutes_ago=300),
        closed("0", exit_minutes_ago=250),
        closed("-20", exit_minutes_ago=200),
        closed("-30", exit_minutes_ago=100),
    ]

    assert SignalType.LOSS_STREAK not in types(analyze(CALM, None, history, NOW))


def test_two_losses_after_a_win_are_not_a_streak() -> None:
    history = [
        closed("-10", exit_minutes_ago=300),
        closed("40", exit_minutes_ago=250),
        closed("-20", exit_minutes_ago=200),
        closed("-30", exit_minutes_ago=100),
    ]

    assert SignalType.LOSS_STREAK not in types(analyze(CALM, None, history, NOW))


# --------------------------------------------------------------------------- positive signals


def test_a_stop_a_target_and_small_risk_lower_the_score() -> None:
    plain = analyze("buy BTC now", None, [], NOW)
    planned = analyze(
        "buy BTC now stop 93000 target 99000",
        IntendedTrade(risk_percent=Decimal("1")),
        [],
        NOW,
    )

    assert plain.risk_score == 15
    assert {s.type: s.weight for s in planned.signals if s.weight < 0} == {
        SignalType.STOP_DEFINED: -10,
        SignalType.TARGET_DEFINED: -5,
        SignalType.SMALL_RISK: -5,
    }
    assert planned.risk_score == 0  # 15 - 20, floored at zero
    assert planned.risk_level is RiskLevel.LOW


def test_stop_and_target_may_come_from_the_trade_instead_of_the_text() -> None:
    trade = IntendedTrade(
        stop_price=Decimal(93000), target_price=Decimal(99000), risk_percent=Decimal(2)
    )

    report = analyze("I can't lose on this one", trade, [], NOW)

    assert report.risk_score == 20 - 10 - 5  # 2% risk earns nothing
    assert SignalType.SMALL_RISK not in types(report)


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "buy BTC at 95000 stop 93000 target 99000 10x",
            ExtractedParameters(
                "BTC", "LONG", Decimal(95000), Decimal(93000), Decimal(99000), Decimal(10)
            ),
        ),
        (
            "long btcusdc entrada 95000 stop 93000 alavancagem 5x",
            ExtractedParameters(
                "BTCUSDC", "LONG", Decimal(95000), Decimal(93000), None, Decimal(5)
            ),
        ),
        (
            "Vender ETH/USDT preço 3.450,50 stop loss em 3.600 alvo 3.200 x20",
            ExtractedParameters(
                "ETHUSDT",
                "SHORT",
                Decimal("3450.50"),
                Decimal(3600),
                Decimal(3200),
                Decimal(20),
            ),
        ),
        (
            "short bitcoin @ 95,000.5 sl 97k take-profit: 90k",
            ExtractedParameters(
                "BTC", "SHORT", Decimal("95000.5"), Decimal(97000), Decimal(90000), None
            ),
        ),
        (CALM, ExtractedParameters("BTC")),
        ("hello", ExtractedParameters()),
    ],
)
def test_parameters_are_read_from_english_and_portuguese_text(
    message: str, expected: ExtractedParameters
) -> None:
    assert extract_parameters(message) == expected
    assert analyze(message, None, [], NOW).parameters == expected


# --------------------------------------------------------------------------- levels


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0, RiskLevel.LOW),
        (14, RiskLevel.LOW),
        (15, RiskLevel.MEDIUM),
        (34, RiskLevel.MEDIUM),
        (35, RiskLevel.HIGH),
        (59, RiskLevel.HIGH),
        (60, RiskLevel.CRITICAL),
    ],
)
def test_risk_level_boundaries(score: int, level: RiskLevel) -> None:
    assert risk_level_for(score) is level


def test_no_single_signal_reaches_high_on_its_own() -> None:
    assert max(WEIGHTS.values()) < 35


@pytest.mark.parametrize(
    ("message", "level", "proceed", "confirm"),
    [
        (CALM, RiskLevel.LOW, True, False),
        ("buy BTC now", RiskLevel.MEDIUM, True, False),
        ("I need to recover my losses, buy BTC right now", RiskLevel.HIGH, False, True),
        ("Compra BTC agora, vai explodir, tudo sem stop", RiskLevel.HIGH, False, True),
        (
            "All in BTC now, guaranteed to the moon, no stop, 20x",
            RiskLevel.CRITICAL,
            False,
            False,
        ),
    ],
)
def test_realistic_messages_land_on_their_level(
    message: str, level: RiskLevel, proceed: bool, confirm: bool
) -> None:
    report = analyze(message, None, [], NOW)

    assert report.risk_level is level
    assert report.proceed_allowed is proceed
    assert report.requires_confirmation is confirm
    assert report.analyzed_at == NOW


def test_behaviour_and_words_together_escalate_to_critical() -> None:
    history = [
        closed("-10", exit_minutes_ago=120),
        closed("-20", exit_minutes_ago=60),
        closed("-30", exit_minutes_ago=10, quantity="0.010"),
    ]
    trade = IntendedTrade(symbol="BTCUSDC", quantity=Decimal("0.030"))

    report = analyze("I have to make it back", trade, history, NOW)

    assert report.risk_score == 20 + 30 + 20
    assert report.risk_level is RiskLevel.CRITICAL
    assert report.response_message.startswith("Trade blocked")


@pytest.mark.parametrize("message", ["", "   ", "\n\t"])
def test_a_blank_message_is_invalid_input(message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        analyze(message, None, [], NOW)

    assert (raised.value.field, raised.value.reason) == ("message", "message is required")


@given(st.text(min_size=1).filter(str.strip))
def test_any_message_yields_a_consistent_report(message: str) -> None:
    report = analyze(message, None, [], NOW)

    assert report.risk_score >= 0
    assert report.risk_level is risk_level_for(report.risk_score)
    assert report.proceed_allowed is (report.risk_level in (RiskLevel.LOW, RiskLevel.MEDIUM))
    assert report.requires_confirmation is (report.risk_level is RiskLevel.HIGH)
