"""Screenshots of every dashboard view, light and dark, at desktop and phone width, into
docs/screenshots/ (run by hand: `python -m tests.e2e.screenshots`; not part of the suite).

It serves a fresh paper ledger, trades a little through the API (a win, a loss, one open
position with a trailed stop) and lets the fake Groq server propose a trade in the chat.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.serving import Client, Server, chromium, environment, new_client, serving
from tests.fakes import groq as fake
from tests.fakes.groq import FakeGroq

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SIZES = {"desktop": (1280, 860), "phone": (390, 844)}
GROQ_KEY = "gsk_screenshots_key"


def until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.2)


def open_count(server: Server, client: Client) -> int:
    return len(server.get(client, "/api/positions/?status=open")["positions"])


def stop_of(server: Server, client: Client) -> str | None:
    positions = server.get(client, "/api/positions/?status=open")["positions"]
    return positions[0]["stop_price"] if positions else None


def trade_a_little(server: Server, trader: Client) -> None:
    server.set_price("100000")
    server.post(trader, "/api/trade/buy-btc/", {"stop_price": "98000"})
    server.set_price("104000")
    until(lambda: stop_of(server, trader) == "102000.00000000", "the stop to trail")
    server.set_price("101500")
    until(lambda: open_count(server, trader) == 0, "the trailed winner to close")
    server.set_price("100000")
    server.post(trader, "/api/trade/buy-btc/", {"stop_price": "99000"})
    server.set_price("98800")
    until(lambda: open_count(server, trader) == 0, "the loser to hit its stop")
    server.set_price("100000")
    server.post(
        trader, "/api/intents/", {"stop_price": "97000", "target_price": "109000"}
    )  # a plan only: it stays in the history as planned
    server.post(trader, "/api/trade/buy-btc/", {"stop_price": "97000"})
    server.set_price("103400")


def sign_in(page: Page, server: Server, trader: Client) -> None:
    page.goto(server.url + "/")
    page.get_by_label("API token").fill(trader.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("status").filter(has_text="live")).to_be_visible()


def shoot(page: Page, name: str) -> None:
    page.screenshot(path=OUT / f"{name}.png", full_page=True)


def views(page: Page, server: Server, trader: Client, groq: FakeGroq, tag: str) -> None:
    page.get_by_role("tab", name="Positions").click()
    rows = page.get_by_role("table", name="Open positions").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".stop")).not_to_have_text("97,000.00")  # trailed
    rows.first.get_by_role("button", name="Timeline of BTCUSDC LONG").click()
    expect(page.get_by_role("list", name="Position timeline")).to_contain_text("stop moved")
    shoot(page, f"positions-{tag}")

    page.get_by_role("tab", name="New trade").click()
    page.get_by_label("Stop price (required)").fill("101000")
    page.get_by_label("Target price (optional)").fill("110000")
    expect(page.locator("#preview")).to_contain_text("1% risk: quantity")
    shoot(page, f"trade-{tag}")

    page.get_by_role("tab", name="Performance").click()
    expect(page.locator("#s-closed")).to_have_text("2")
    page.wait_for_function("document.querySelector('#pnl-chart canvas') !== null")
    shoot(page, f"performance-{tag}")

    page.get_by_role("tab", name="Risk").click()
    expect(page.locator("#r-state")).to_have_text("Active")
    shoot(page, f"risk-{tag}")

    page.get_by_role("tab", name="History").click()
    expect(page.get_by_role("table", name="Trade history").locator("tbody tr")).not_to_have_count(0)
    shoot(page, f"history-{tag}")

    page.get_by_role("tab", name="Positions").click()
    groq.enqueue(
        fake.tool_calls(
            fake.call(
                "propose_trade",
                # a small quantity: each unconfirmed proposal holds its risk for 5 minutes
                {"symbol": "BTCUSDC", "side": "LONG", "stop_price": "101000", "quantity": "0.01"},
                id="propose",
            )
        ),
        fake.text("Planned and validated: 0.01 BTC, within the 1% risk. Confirm or cancel."),
    )
    page.get_by_role("button", name="Open Robson AI chat").click()
    chat = page.get_by_role("dialog", name="Robson AI")
    chat.get_by_label("Message").fill("Buy BTC with a stop at 101000")
    chat.get_by_role("button", name="Send").click()
    expect(chat.get_by_role("article")).to_contain_text("Proposed: LONG")
    shoot(page, f"chat-{tag}")
    chat.get_by_role("button", name="Cancel").click()
    chat.get_by_role("button", name="Close chat").click()


def run(browser: Browser, server: Server, trader: Client, groq: FakeGroq) -> None:
    for size, (width, height) in SIZES.items():
        for theme in ("light", "dark"):
            context = browser.new_context(
                viewport={"width": width, "height": height},
                color_scheme="dark" if theme == "dark" else "light",
            )
            page = context.new_page()
            sign_in(page, server, trader)
            views(page, server, trader, groq, f"{theme}-{size}")
            context.close()


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as home,
        FakeGroq(api_key=GROQ_KEY) as groq,
    ):
        env = environment(
            Path(home) / "home", GROQ_API_KEY=GROQ_KEY, ROBSON_GROQ_BASE_URL=groq.base_url
        )
        with serving(env) as server, sync_playwright() as playwright:
            trader = new_client(env, "trader@example.com", "--capital", "10000")
            trade_a_little(server, trader)
            browser = chromium(playwright)
            try:
                run(browser, server, trader, groq)
            finally:
                browser.close()
    print(f"screenshots written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
