"""Tool schemas and the parsing of the model's (untrusted) tool arguments."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.assistant.tools import (
    TOOL_NAMES,
    TOOLS,
    AnalyzeTrade,
    GetBalances,
    GetPnl,
    GetPrice,
    GetTradeHistory,
    InvalidArguments,
    ProposeTrade,
    SizePosition,
    parse_tool_call,
)
from domain.market import Side
from domain.read_models import Period


def test_every_tool_is_an_openai_style_function_with_an_object_schema() -> None:
    names = []
    for tool in TOOLS:
        assert tool["type"] == "function"
        function = tool["function"]
        assert isinstance(function, dict)
        assert function["parameters"]["type"] == "object"
        assert function["description"]
        names.append(function["name"])
    assert tuple(names) == TOOL_NAMES
    assert "propose_trade" in names
    assert not any("execute" in name for name in names)  # the model can never execute


def test_no_tool_takes_a_tenant() -> None:
    text = json.dumps(TOOLS).lower()
    assert "client" not in text and "tenant" not in text and "email" not in text


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("get_balances", "", GetBalances()),
        ("get_balances", "{}", GetBalances()),
        ("get_trade_history", '{"limit": 3}', GetTradeHistory(3)),
        ("get_pnl", '{"period": "Weekly", "limit": 2}', GetPnl(Period.WEEKLY, 2)),
        ("get_pnl", "{}", GetPnl(Period.MONTHLY, 6)),
        ("get_price", '{"symbol": "btc/usdc"}', GetPrice("BTCUSDC")),
        (
            "calculate_position_size",
            '{"stop_price": 98000, "entry_price": "100000.5"}',
            SizePosition("BTCUSDC", Decimal("98000"), Decimal("100000.5")),
        ),
        (
            "propose_trade",
            '{"symbol": "BTCUSDC", "side": "buy", "stop_price": 98000.25, "quantity": "0.001"}',
            ProposeTrade("BTCUSDC", Side.LONG, Decimal("98000.25"), None, None, Decimal("0.001")),
        ),
        (
            "propose_trade",
            '{"symbol": "BTCUSDC", "side": "SHORT", "stop_price": "102000", "target_price": 9e4}',
            ProposeTrade("BTCUSDC", Side.SHORT, Decimal("102000"), None, Decimal("9E+4"), None),
        ),
    ],
)
def test_valid_arguments_parse_to_requests_with_exact_decimals(
    name: str, arguments: str, expected: object
) -> None:
    assert parse_tool_call(name, arguments) == expected


def test_the_guard_tool_takes_an_optional_message_and_trade() -> None:
    parsed = parse_tool_call(
        "analyze_trade_risk", '{"side": "LONG", "leverage": 20, "stop_price": 95000}'
    )
    assert isinstance(parsed, AnalyzeTrade)
    assert parsed.message is None
    assert parsed.trade.side == "LONG"
    assert parsed.trade.leverage == Decimal(20)
    assert parsed.trade.stop_price == Decimal(95000)


@pytest.mark.parametrize(
    ("name", "arguments", "reason"),
    [
        ("propose_trade", '{"symbol": "BTCUSDC", "side": ', "not valid JSON"),
        ("propose_trade", "[1, 2]", "must be a JSON object"),
        ("propose_trade", '{"symbol": "BTCUSDC", "side": "LONG"}', "stop_price is required"),
        ("propose_trade", '{"symbol": "BTCUSDC", "stop_price": 1}', "side is required"),
        ("propose_trade", '{"side": "LONG", "stop_price": 1}', "symbol is required"),
        ("propose_trade", '{"symbol": "X", "side": "UP", "stop_price": 1}', "LONG or SHORT"),
        ("propose_trade", '{"symbol": "X", "side": "LONG", "stop_price": -5}', "positive"),
        ("propose_trade", '{"symbol": "X", "side": "LONG", "stop_price": "abc"}', "a number"),
        ("propose_trade", '{"symbol": "X", "side": "LONG", "stop_price": true}', "a number"),
        ("propose_trade", '{"symbol": "X", "side": "LONG", "stop_price": "98000,5"}', "a dot"),
        ("propose_trade", '{"symbol": "X", "side": "LONG", "stop_price": NaN}', "valid JSON"),
        (
            "propose_trade",
            '{"symbol": "X", "side": "LONG", "stop_price": 1, "client_id": "x"}',
            "unknown argument(s) client_id",
        ),
        ("get_price", '{"symbol": "BTC USDC!"}', "letters and digits"),
        ("get_pnl", '{"period": "hourly"}', "period must be one of"),
        ("get_trade_history", '{"limit": 500}', "from 1 to 20"),
        ("get_trade_history", '{"limit": 1.5}', "whole number"),
        ("execute_trade", "{}", "unknown tool"),
    ],
)
def test_malformed_arguments_become_a_polite_result_never_an_exception(
    name: str, arguments: str, reason: str
) -> None:
    parsed = parse_tool_call(name, arguments)
    assert isinstance(parsed, InvalidArguments)
    assert reason in parsed.reason
    result = parsed.result()
    assert result["error"] == "invalid_arguments"
    assert "Nothing was done" in str(result["hint"])


@given(name=st.sampled_from(TOOL_NAMES), arguments=st.text(max_size=300))
def test_parsing_never_raises_whatever_the_model_sends(name: str, arguments: str) -> None:
    parse_tool_call(name, arguments)


@given(
    arguments=st.dictionaries(
        st.sampled_from(["symbol", "side", "stop_price", "entry_price", "quantity", "x"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20), st.floats()),
    )
)
def test_parsing_never_raises_on_any_json_object(arguments: dict[str, object]) -> None:
    parse_tool_call("propose_trade", json.dumps(arguments))
