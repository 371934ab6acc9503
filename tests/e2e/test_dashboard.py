"""The trader's desk in a real browser against a real `robson serve`: what a trader sees and
does, found by role, label and text, with every update pushed (no reload, no fixed waits)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.e2e.serving import Client, Server, chromium, environment, new_client, serving
from tests.fakes import groq as fake
from tests.fakes.groq import FakeGroq

pytestmark = pytest.mark.slow

GROQ_KEY = "gsk_dashboard_test_key"


@pytest.fixture(scope="module")
def groq() -> Iterator[FakeGroq]:
    with FakeGroq(api_key=GROQ_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, groq: FakeGroq) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("dashboard") / "home"
    env = environment(home, GROQ_API_KEY=GROQ_KEY, ROBSON_GROQ_BASE_URL=groq.base_url)
    with serving(env) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = chromium(playwright)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


def trader(server: Server, name: str) -> Client:
    return new_client(server.env, f"{name}@example.com")


def sign_in(page: Page, server: Server, client: Client) -> None:
    page.goto(server.url + "/")
    page.get_by_label("API token").fill(client.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("status").filter(has_text="live")).to_be_visible()
    page.evaluate("window.stillTheSamePage = true")  # a reload would lose it


def still_the_same_page(page: Page) -> bool:
    return bool(page.evaluate("window.stillTheSamePage === true"))


def positions_rows(page: Page) -> Locator:
    return page.get_by_role("table", name="Open positions").locator("tbody tr")


def plan_a_trade(page: Page, stop: str) -> None:
    page.get_by_role("tab", name="New trade").click()
    page.get_by_label("Stop price (required)").fill(stop)
    expect(page.locator("#preview")).to_contain_text("quantity 0.005 at 100,000.00")
    expect(page.locator("#preview")).to_contain_text("risking 10.00 of 1,000.00 capital")
    page.get_by_role("button", name="Place trade").click()
    expect(page.get_by_role("alert").filter(has_text="Position opened")).to_be_visible()


def test_the_page_says_where_to_sign_in_and_never_shows_the_token(
    page: Page, server: Server
) -> None:
    alice = trader(server, "token-alice")
    response = page.goto(server.url + "/")
    assert response is not None
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.get_by_label("API token").fill("rbs_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That token was refused.")

    sign_in(page, server, alice)
    expect(page.get_by_text(alice.email)).to_be_visible()
    page.get_by_role("button", name="Dark theme").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.get_by_role("button", name="Light theme")).to_have_attribute("aria-pressed", "true")
    assert alice.token not in page.content()
    page.reload()  # the session survives a reload of the tab
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_planned_trade_appears_trails_its_stop_and_closes_live(
    page: Page, server: Server
) -> None:
    server.set_price("100000")
    bob = trader(server, "bob")
    sign_in(page, server, bob)
    keys: list[str | None] = []
    page.on(
        "request",
        lambda r: (
            keys.append(r.headers.get("idempotency-key"))
            if r.method == "POST" and "/api/intents/" in r.url
            else None
        ),
    )

    page.get_by_role("tab", name="New trade").click()
    page.get_by_role("button", name="Place trade").click()
    expect(page.get_by_role("alert")).to_contain_text("a stop price is required")
    page.get_by_label("Stop price (required)").fill("101000")
    expect(page.locator("#preview")).to_contain_text("stop_price: must be below the entry price")
    page.get_by_role("button", name="Place trade").click()  # the server refuses it too
    refusal = page.get_by_role("alert")
    expect(refusal).to_contain_text("stop_wrong_side: Stop 101000")  # the API's violation
    keys.clear()
    plan_a_trade(page, "98000")

    assert len(keys) == 3 and None not in keys and len(set(keys)) == 3  # plan, validate, execute

    page.get_by_role("tab", name="Positions").click()
    row = positions_rows(page)
    expect(row).to_have_count(1)
    expect(row.first).to_contain_text("BTCUSDC")
    expect(row.first.locator(".stop")).to_have_text("98,000.00")
    expect(row.first).to_contain_text("1.00 R")
    steps = page.get_by_role("list", name="Hand-span stop steps for BTCUSDC")
    expect(steps.locator("[aria-current=step]")).to_have_text("98,000.00")

    server.set_price("104000")  # two spans up: the stop trails to entry + one span
    expect(row.first.locator(".stop")).to_have_text("102,000.00")
    expect(steps.locator("[aria-current=step]")).to_have_text("102,000.00")

    row.first.get_by_role("button", name="Timeline of BTCUSDC LONG").click()
    timeline = page.get_by_role("list", name="Position timeline")
    for step in ("planned", "validated", "submitted", "filled", "stop moved"):
        expect(timeline).to_contain_text(step)

    server.set_price("101500")  # below the trailed stop: the worker closes the position
    expect(positions_rows(page)).to_have_count(0)
    expect(page.get_by_text("No open positions.")).to_be_visible()
    expect(timeline).to_contain_text("closed")

    page.get_by_role("tab", name="History").click()
    history = page.get_by_role("table", name="Trade history").locator("tbody tr")
    expect(history).to_have_count(1)
    expect(history.first).to_contain_text("BTCUSDC")
    page.get_by_role("tab", name="Performance").click()
    expect(page.locator("#s-closed")).to_have_text("1")
    expect(page.locator("#pnl-chart")).to_have_attribute("data-points", "1")
    expect(page.locator("#s-winrate")).to_have_text("100.0%")
    page.get_by_role("tab", name="Risk").click()
    expect(page.locator("#r-state")).to_have_text("Active")
    expect(page.get_by_role("button", name="Resume trading")).to_be_disabled()  # not paused
    assert still_the_same_page(page)


def propose_in_chat(page: Page, groq: FakeGroq) -> tuple[Locator, Locator]:
    """Ask the chat to buy BTC with a stop at 98000; the model proposes it. The chat dialog
    and the proposal's card, once it shows."""
    groq.enqueue(
        fake.tool_calls(
            fake.call(
                "propose_trade",
                {"symbol": "BTCUSDC", "side": "LONG", "stop_price": "98000"},
                id="propose",
            )
        ),
        fake.text("I planned and validated it; confirm to execute."),
    )
    page.get_by_role("button", name="Open Robson AI chat").click()
    chat = page.get_by_role("dialog", name="Robson AI")
    chat.get_by_label("Message").fill("Buy BTC with a stop at 98000")
    chat.get_by_role("button", name="Send").click()
    card = chat.get_by_role("article", name="Proposed trade LONG BTCUSDC")
    expect(card).to_contain_text("Proposed: LONG 0.005 BTCUSDC")
    return chat, card


def test_the_chat_proposes_a_trade_and_confirm_executes_it_exactly_once(
    page: Page, server: Server, groq: FakeGroq
) -> None:
    server.set_price("100000")
    carol = trader(server, "carol")
    sign_in(page, server, carol)
    chat, card = propose_in_chat(page, groq)
    expect(chat.get_by_role("log")).to_contain_text("confirm to execute")

    card.get_by_role("button", name="Confirm").click()
    expect(card).to_contain_text("Trade executed")
    expect(card.get_by_role("button", name="Confirm")).to_be_disabled()
    expect(positions_rows(page)).to_have_count(1)  # pushed to the positions view
    assert len(server.get(carol, "/api/positions/?status=open")["positions"]) == 1

    groq.enqueue(fake.text("You have one open position."))
    chat.get_by_role("button", name="Positions").click()  # a quick action, same conversation
    expect(chat.get_by_role("log")).to_contain_text("You have one open position.")
    bodies = groq.chat_bodies
    assert "Buy BTC with a stop at 98000" in str(bodies[-1]["messages"])
    expect(chat.locator("#chat-status")).to_contain_text("AI on")


def test_cancel_on_a_chat_proposal_cancels_it_so_it_can_never_be_confirmed(
    page: Page, server: Server, groq: FakeGroq
) -> None:
    server.set_price("100000")
    grace = trader(server, "grace")
    sign_in(page, server, grace)
    _, card = propose_in_chat(page, groq)

    card.get_by_role("button", name="Cancel").click()

    expect(card).to_contain_text("Cancelled trade proposal")
    expect(card.get_by_role("button", name="Confirm")).to_be_disabled()
    cancelled = server.get(grace, "/api/positions/?status=cancelled")["positions"]
    assert len(cancelled) == 1
    with server.http() as http:
        refused = http.post(
            "/api/chat/confirm/", headers=grace.headers, json={"intent_id": cancelled[0]["id"]}
        )
    assert refused.status_code == 409
    assert refused.json()["code"] == "proposal_cancelled"
    assert server.get(grace, "/api/positions/?status=open")["positions"] == []


def test_one_tenants_page_shows_nothing_of_another(
    browser: Browser, page: Page, server: Server
) -> None:
    server.set_price("100000")
    dave, erin = trader(server, "dave"), trader(server, "erin")
    sign_in(page, server, erin)
    expect(page.get_by_text("No open positions.")).to_be_visible()

    other = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(other, server, dave)
    plan_a_trade(other, "98000")
    other.get_by_role("tab", name="Positions").click()
    expect(positions_rows(other)).to_have_count(1)
    other.context.close()

    server.post(erin, "/api/trade/buy-btc/", {"stop_price": "99000"})  # erin's own, later
    rows = positions_rows(page)
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".stop")).to_have_text("99,000.00")
    assert "98,000.00" not in page.get_by_role("table", name="Open positions").inner_text()
    page.get_by_role("tab", name="History").click()
    expect(page.get_by_role("table", name="Trade history").locator("tbody tr")).to_have_count(1)
    page.get_by_role("tab", name="Risk").click()
    expect(page.locator("#r-open")).to_have_text("9.99")  # erin's open risk alone, not dave's too


def pnl_column(page: Page) -> list[float]:
    table = page.get_by_role("table", name="Trade history")
    cells = table.locator("tbody tr td:nth-child(6)").all_inner_texts()
    return [float(c.replace(",", "").replace("+", "")) for c in cells]


def test_the_history_is_paged_and_sorted(page: Page, server: Server) -> None:
    frank = trader(server, "frank")
    for i in range(11):
        server.set_price("100000")
        server.post(frank, "/api/trade/buy-btc/", {"stop_price": "98000"})
        server.set_price(str(100000 + 100 * ((i * 7) % 11)))  # a different result each time
        server.post(frank, "/api/trade/sell-btc/", {})
    sign_in(page, server, frank)
    page.get_by_role("tab", name="History").click()
    rows = page.get_by_role("table", name="Trade history").locator("tbody tr")
    expect(rows).to_have_count(10)
    expect(page.get_by_text("Page 1 of 2 (11 trades)")).to_be_visible()
    page.get_by_role("button", name="Next page").click()
    expect(rows).to_have_count(1)
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    page.get_by_role("button", name="Previous page").click()

    page.get_by_role("button", name="P&L").click()
    header = page.get_by_role("columnheader", name="P&L")
    expect(header).to_have_attribute("aria-sort", "ascending")
    ascending = pnl_column(page)
    assert ascending == sorted(ascending) and len(set(ascending)) > 1
    page.get_by_role("button", name="P&L").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    descending = pnl_column(page)
    assert descending == sorted(descending, reverse=True)
    assert descending[0] > ascending[0]
