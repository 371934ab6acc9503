"""Position sizing by the 1% rule: `quantity = capital × risk% / |entry − stop|`, rounded down."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.errors import InvalidInput
from domain.market import BTCUSDC
from domain.sizing import position_size, risk_of

D = Decimal
STEP = BTCUSDC.step_size  # 0.00001 BTC


@pytest.mark.parametrize(
    ("capital", "entry", "stop", "quantity", "risk"),
    [
        pytest.param("1000", "100000", "98000", "0.005", "10", id="spec-example-long"),
        pytest.param("1000", "100000", "102000", "0.005", "10", id="spec-example-short"),
        pytest.param("10000", "50000", "49000", "0.1", "100", id="long-10k"),
        pytest.param("1000", "3000", "3100", "0.1", "10", id="short-3000"),
        pytest.param("777", "60000", "59000", "0.00777", "7.77", id="exact-at-step"),
    ],
)
def test_one_percent_of_capital_is_put_at_risk(
    capital: str, entry: str, stop: str, quantity: str, risk: str
) -> None:
    sizing = position_size(D(capital), D(entry), D(stop), STEP)

    assert sizing.quantity == D(quantity)
    assert sizing.risk_amount == D(risk)
    assert sizing.risk_budget == D(capital) / 100
    assert sizing.stop_distance == abs(D(entry) - D(stop))


def test_long_and_short_with_the_same_distance_get_the_same_size() -> None:
    long = position_size(D(1000), D(100000), D(98000), STEP)
    short = position_size(D(1000), D(100000), D(102000), STEP)

    assert long == short


@pytest.mark.parametrize(
    ("capital", "entry", "stop", "step", "quantity", "risk"),
    [
        # 10 / 3000 = 0.0033333… -> 0.00333, risking 9.99 (not 10.00)
        pytest.param("1000", "100000", "97000", "0.00001", "0.00333", "9.99", id="repeating"),
        # 10 / 2000.01 = 0.0049999750… : rounding to nearest would give 0.005 and risk 10.00005
        pytest.param("1000", "100000", "97999.99", "0.00001", "0.00499", "9.9800499", id="not-up"),
        # 12.3456 / 1111.01 = 0.011112… : the lot step decides how much is kept
        pytest.param(
            "1234.56", "65432.10", "64321.09", "0.00001", "0.01111", "12.3433211", id="5dp"
        ),
        pytest.param("1234.56", "65432.10", "64321.09", "0.001", "0.011", "12.22111", id="3dp"),
        pytest.param("1000", "100", "98", "1", "5", "10", id="whole-lots"),
        pytest.param("1000", "100", "97", "1", "3", "9", id="whole-lots-down"),
        # less than one lot of risk budget: zero, never rounded up to the minimum lot
        pytest.param("10", "100000", "50000", "0.00001", "0", "0", id="below-one-lot"),
    ],
)
def test_quantity_is_rounded_down_to_the_lot_step(
    capital: str, entry: str, stop: str, step: str, quantity: str, risk: str
) -> None:
    sizing = position_size(D(capital), D(entry), D(stop), D(step))

    assert sizing.quantity == D(quantity)
    assert sizing.risk_amount == D(risk)
    assert sizing.risk_amount <= sizing.risk_budget
    assert sizing.quantity.as_tuple().exponent == D(step).as_tuple().exponent


@pytest.mark.parametrize(
    ("risk_percent", "quantity", "risk"),
    [("1", "0.005", "10"), ("0.5", "0.0025", "5"), ("0.25", "0.00125", "2.5")],
)
def test_a_lower_risk_percent_sizes_proportionally(
    risk_percent: str, quantity: str, risk: str
) -> None:
    sizing = position_size(D(1000), D(100000), D(98000), STEP, D(risk_percent))

    assert sizing.quantity == D(quantity)
    assert sizing.risk_amount == D(risk)


@pytest.mark.parametrize(
    ("capital", "entry", "stop", "field"),
    [
        pytest.param("0", "100000", "98000", "capital", id="zero-capital"),
        pytest.param("-1000", "100000", "98000", "capital", id="negative-capital"),
        pytest.param("1000", "0", "98000", "entry_price", id="zero-entry"),
        pytest.param("1000", "-100000", "98000", "entry_price", id="negative-entry"),
        pytest.param("1000", "100000", "0", "stop_price", id="zero-stop"),
        pytest.param("1000", "100000", "-98000", "stop_price", id="negative-stop"),
        pytest.param("1000", "100000", "100000", "stop_price", id="stop-equals-entry"),
    ],
)
def test_invalid_inputs_name_the_field_at_fault(
    capital: str, entry: str, stop: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        position_size(D(capital), D(entry), D(stop), STEP)

    assert raised.value.field == field


@pytest.mark.parametrize(
    ("capital", "entry", "stop", "step", "risk_percent", "field"),
    [
        pytest.param("NaN", "100000", "98000", "0.00001", "1", "capital", id="nan-capital"),
        pytest.param("Infinity", "100000", "98000", "0.00001", "1", "capital", id="inf-capital"),
        pytest.param("1000", "NaN", "98000", "0.00001", "1", "entry_price", id="nan-entry"),
        pytest.param("1000", "Infinity", "98000", "0.00001", "1", "entry_price", id="inf-entry"),
        pytest.param("1000", "100000", "NaN", "0.00001", "1", "stop_price", id="nan-stop"),
        pytest.param("1000", "100000", "Infinity", "0.00001", "1", "stop_price", id="inf-stop"),
        pytest.param("1000", "100000", "98000", "0.00001", "0", "risk_percent", id="zero-risk"),
        pytest.param("1000", "100000", "98000", "0.00001", "-1", "risk_percent", id="neg-risk"),
        pytest.param("1000", "100000", "98000", "0", "1", "step", id="zero-step"),
        pytest.param("1000", "100000", "98000", "-0.001", "1", "step", id="negative-step"),
    ],
)
def test_non_finite_or_degenerate_inputs_are_invalid_input_not_arithmetic_errors(
    capital: str, entry: str, stop: str, step: str, risk_percent: str, field: str
) -> None:
    """A NaN, an infinity, a non-positive risk percent or lot step cannot size a trade: they
    must be refused as InvalidInput (mapped to a 400), never leak a decimal.InvalidOperation
    or DivisionByZero, nor produce a negative or zero quantity."""
    with pytest.raises(InvalidInput) as raised:
        position_size(D(capital), D(entry), D(stop), D(step), D(risk_percent))

    assert raised.value.field == field


def test_risk_of_is_quantity_times_stop_distance_on_either_side() -> None:
    assert risk_of(D("0.005"), D(100000), D(98000)) == D(10)
    assert risk_of(D("0.005"), D(100000), D(102000)) == D(10)
    assert risk_of(D(0), D(100000), D(98000)) == D(0)


# --- properties ---

prices = st.decimals(min_value=D("0.01"), max_value=D("1000000"), places=2)
capitals = st.decimals(min_value=D("1"), max_value=D("10000000"), places=2)
risk_percents = st.decimals(min_value=D("0.01"), max_value=D("1"), places=2)
steps = st.sampled_from([D("1"), D("0.1"), D("0.001"), D("0.00001"), D("0.00000001")])


@settings(max_examples=200, deadline=None)
@given(capital=capitals, entry=prices, stop=prices, step=steps, risk_percent=risk_percents)
def test_risk_after_rounding_never_exceeds_the_budget_and_quantity_is_whole_lots(
    capital: Decimal, entry: Decimal, stop: Decimal, step: Decimal, risk_percent: Decimal
) -> None:
    assume(entry != stop)
    budget = capital * risk_percent / 100
    distance = abs(entry - stop)

    sizing = position_size(capital, entry, stop, step, risk_percent)

    assert sizing.quantity >= 0
    assert sizing.quantity % step == 0
    assert sizing.risk_amount == sizing.quantity * distance
    assert sizing.risk_amount <= budget
    # rounded DOWN by less than one lot: one more lot would break the budget
    assert (sizing.quantity + step) * distance > budget
    expected = (budget / distance / step).to_integral_value(rounding=ROUND_FLOOR) * step
    assert sizing.quantity == expected
