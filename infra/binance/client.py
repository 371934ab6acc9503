"""Sending to Binance: one python-binance client per API key (it signs every request with
that key's secret), the throttle (exits first, see `limits`), Retry-After bans, a clock
resync after -1021, and every error answer turned into a domain error (an unclear one is
never a failure)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException
from urllib3.exceptions import HTTPError as Urllib3Error

from domain.errors import (
    CredentialsMissing,
    CredentialsRejected,
    DomainError,
    ExchangeError,
    ExchangeUnavailable,
    FilterFailure,
    InsufficientBalance,
    InvalidInput,
    OrderOutcomeUnknown,
    OrderRejected,
    RateLimited,
)
from domain.ports import ApiCredentials, Clock, TradingAccount
from infra.binance.limits import OrderLimit, Throttle
from infra.clock import SystemClock

log = logging.getLogger(__name__)

# Codes whose own text says the execution status is unknown (errors.md).
UNKNOWN_OUTCOME_CODES = frozenset({-1000, -1006, -1007})
INSUFFICIENT_BALANCE_CODES = frozenset({-3041})


@dataclass(frozen=True)
class Call:
    """What a request does, for messages and for deciding what an unclear answer means."""

    what: str
    writes: bool  # True: without a definite answer the outcome is unknown, never "failed"
    api_key: str | None = None
    spent_asset: str | None = None  # the asset an order or repayment spends
    # Never held by the adapter's throttle: an exit, or a read an exit needs.
    urgent: bool = False
    places_order: bool = False  # counts against the ORDERS limits


@dataclass
class Slot:
    """One python-binance Client (a requests Session) and the lock that serialises it."""

    client: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


class NoSuchOrder(Exception):
    """-2013 on a lookup, or -2011 "Unknown order sent." on a cancel: a definite 'no such
    (open) order'."""


class BinanceClient:
    """The python-binance clients of one adapter and the rate-limit state they share."""

    def __init__(
        self,
        *,
        testnet: bool,
        base_url: str | None,
        timeout_seconds: float,
        recv_window_ms: int,
        weight_limit: int,
        throttle_fraction: float,
        sleep: Callable[[float], None],
        clock: Clock | None,
    ) -> None:
        self.testnet = testnet
        self.base_url = base_url.rstrip("/") if base_url else None
        self._timeout = timeout_seconds
        self._recv_window_ms = recv_window_ms
        self._clock: Clock = clock or SystemClock()
        self.throttle = Throttle(weight_limit, throttle_fraction, sleep, self._clock)
        self._client_class = self._make_client_class(self.base_url)
        self._state = threading.Lock()
        self._slots: dict[str, Slot] = {}
        self._timestamp_offset_ms = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_lock = threading.Lock()  # apart: clients are made under `_state`
        self.public = Slot(self._new_client(None))
        self._banned_until: datetime | None = None
        self._banned_at: datetime | None = None

    # ---- observable state

    @property
    def used_weight(self) -> int | None:
        return self.throttle.used_weight

    def adopt_limits(self, weight_limit: int | None, order_limits: list[OrderLimit]) -> None:
        self.throttle.adopt(weight_limit, order_limits)

    @property
    def banned_until(self) -> datetime | None:
        with self._state:
            return self._banned_until

    @property
    def banned_at(self) -> datetime | None:
        with self._state:
            return self._banned_at

    def close(self) -> None:
        """Close every HTTP session (sockets) the cached clients hold."""
        with self._state:
            slots = [self.public, *self._slots.values()]
            self._slots.clear()
        for slot in slots:
            slot.client.session.close()
        with self._loop_lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.close()

    # ---- clients

    @staticmethod
    def _make_client_class(base_url: str | None) -> Any:
        """A Client subclass whose spot, testnet and margin hosts all point at `base_url`."""
        if base_url is None:
            return Client
        return type(
            "LocalBinanceClient",
            (Client,),
            {
                "API_URL": f"{base_url}/api",
                "API_TESTNET_URL": f"{base_url}/api",
                "MARGIN_API_URL": f"{base_url}/sapi",
            },
        )

    def _new_client(self, credentials: ApiCredentials | None) -> Any:
        if threading.current_thread() is not threading.main_thread():
            # python-binance's websocket half takes the thread's asyncio loop, or makes one it
            # never closes (one per worker thread that meets a new key): lend it ours.
            asyncio.set_event_loop(self._idle_loop())
        client = self._client_class(
            credentials.api_key if credentials else None,
            credentials.secret_key if credentials else None,
            requests_params={"timeout": self._timeout},
            testnet=self.testnet,
            ping=False,
        )
        # python-binance overwrites any per-call recvWindow with this (default 10000).
        client.REQUEST_RECVWINDOW = self._recv_window_ms
        client.timestamp_offset = self._timestamp_offset_ms
        _read_environment_once(client.session, client.API_URL)
        return client

    def _idle_loop(self) -> asyncio.AbstractEventLoop:
        """An event loop nothing runs (no websocket is used), closed by `close()`."""
        with self._loop_lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            return self._loop

    def credentials(self, account: TradingAccount) -> ApiCredentials:
        if account.credentials is None:
            mode = "testnet" if self.testnet else "production"
            raise CredentialsMissing(f"Binance API credentials not configured for {mode} mode")
        return account.credentials

    def slot(self, credentials: ApiCredentials) -> Slot:
        """One cached client per API key; a rotated secret gets a fresh client."""
        with self._state:
            slot = self._slots.get(credentials.api_key)
            if slot is not None and _same_secret(slot.client.API_SECRET, credentials.secret_key):
                return slot
            stale = slot
            slot = Slot(self._new_client(credentials))
            self._slots[credentials.api_key] = slot
        if stale is not None:
            stale.client.session.close()
        return slot

    # ---- sending: rate limits, clock, error mapping

    def send(self, slot: Slot, request: Callable[[Any], Any], call: Call) -> Any:
        """Send once (twice after a -1021, which Binance rejected unexecuted).

        Anything but an exit yields near a limit first, before taking the key's client, so it
        never holds an exit up; a Retry-After ban stops everything.
        """
        if not call.urgent:
            self._refuse_while_banned()
            self.throttle.yield_near_limits(api_key=call.api_key, places_order=call.places_order)
        with slot.lock:
            for attempt in (1, 2):
                self._refuse_while_banned()
                try:
                    result = request(slot.client)
                except BinanceAPIException as exc:
                    self._observe(exc.response, call.api_key)
                    if exc.code == -1021 and attempt == 1:
                        log.warning("Binance -1021 (clock skew); resyncing the timestamp offset")
                        self._resync_clock(slot)
                        continue
                    raise self._translate(exc, call) from exc
                except BinanceRequestException as exc:
                    self._observe(slot.client.response, call.api_key)
                    raise _unclear(call, "an answer that is not JSON") from exc
                except (OSError, Urllib3Error) as exc:  # requests' errors are OSErrors
                    raise _unclear(call, f"no answer ({type(exc).__name__})") from exc
                self._observe(slot.client.response, call.api_key)
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _refuse_while_banned(self) -> None:
        """No request at all while a 429/418's Retry-After lasts."""
        now = self._clock.now()
        with self._state:
            banned_until = self._banned_until
        if banned_until is not None and now < banned_until:
            left = Decimal(math.ceil((banned_until - now).total_seconds()))
            raise RateLimited(
                f"Binance rate limit: no requests until {banned_until:%Y-%m-%d %H:%M:%S} UTC "
                f"(Retry-After, {left}s left)",
                left,
            )

    def _observe(self, response: Any, api_key: str | None = None) -> None:
        headers = getattr(response, "headers", None)
        if headers is not None:
            self.throttle.observe(headers, api_key)

    def _resync_clock(self, slot: Slot) -> None:
        self._refuse_while_banned()
        try:
            server_ms = int(mapping(slot.client.get_server_time())["serverTime"])
        except BinanceAPIException as exc:
            self._observe(exc.response)
            raise self._translate(exc, Call("read the server time", writes=False)) from exc
        except (OSError, Urllib3Error, BinanceRequestException, KeyError, ValueError) as exc:
            raise ExchangeUnavailable("Binance server time unavailable for a clock resync") from exc
        self._observe(slot.client.response)
        offset = server_ms - int(time.time() * 1000)
        with self._state:
            self._timestamp_offset_ms = offset
            slots = [self.public, *self._slots.values()]
        for each in slots:
            each.client.timestamp_offset = offset

    def _ban(self, exc: BinanceAPIException) -> RateLimited:
        default = 120 if exc.status_code == 418 else 60
        headers = getattr(exc.response, "headers", None) or {}
        try:
            retry_after = Decimal(str(headers.get("Retry-After", default)))
        except InvalidOperation:
            retry_after = Decimal(default)
        now = self._clock.now()
        until = now + timedelta(seconds=float(retry_after))
        with self._state:
            self._banned_at = now
            if self._banned_until is None or until > self._banned_until:
                self._banned_until = until
        kind = "banned this IP (418)" if exc.status_code == 418 else "rate limited us (429)"
        log.warning("Binance %s; no requests for %ss", kind, retry_after)
        return RateLimited(
            f"Binance {kind}: retry after {retry_after}s; nothing is sent until then",
            retry_after,
        )

    def _translate(self, exc: BinanceAPIException, call: Call) -> DomainError:
        """A Binance error answer as a domain error (`exc.message` never holds a secret)."""
        code = exc.code
        status = int(exc.status_code)
        message = str(exc.message)
        if status in (418, 429):
            return self._ban(exc)
        if code == -2013 and not call.writes:
            raise NoSuchOrder()
        if code == -2011 and "unknown order" in message.lower():
            raise NoSuchOrder()  # errors.md -2011 "Unknown order sent.": nothing open to cancel
        if code == -2022 and _cancel_code(exc) == -2011:
            # rest-api.md "Cancel an Existing Order and Send a New Order": with STOP_ON_FAILURE
            # a failed cancel (its cancelResponse -2011) means the new order was NOT_ATTEMPTED.
            raise NoSuchOrder()
        if code in (-2014, -2015):
            return CredentialsRejected(
                f"Binance rejected API key {_mask(call.api_key)} for: {call.what} ({code} "
                f"{message}). Check that the key is right and active, that it has the "
                "permission this needs (Enable Spot & Margin Trading; Enable Margin Loan, "
                "Repay & Transfer for margin), and that this server's IP address is on "
                "the key's IP whitelist (access restrictions)."
            )
        if code == -1022:
            return CredentialsRejected(
                f"Binance rejected the signature of API key {_mask(call.api_key)}: the "
                "secret key does not belong to this API key"
            )
        if status >= 500 or not code or code in UNKNOWN_OUTCOME_CODES:
            return _unclear(call, f"HTTP {status}: {message[:200]}")
        if code == -1021:
            detail = f"the clock is still off after a resync ({message})"
            if call.writes:
                return OrderRejected(f"Binance refused {call.what}: {detail}")
            return ExchangeUnavailable(f"Binance refused to {call.what}: {detail}")
        if code == -1121:
            return InvalidInput("symbol", f"Binance does not know this symbol ({message})")
        if call.spent_asset and (
            code in INSUFFICIENT_BALANCE_CODES
            or (code == -2010 and "insufficient balance" in message.lower())
        ):
            return InsufficientBalance(call.spent_asset)
        if code == -1013:
            match = re.search(r"Filter failure: ([A-Z_]+)", message)
            filter_name = match.group(1) if match else "UNKNOWN"
            return FilterFailure(filter_name, f"Binance refused {call.what}: {message}")
        if call.writes:
            return OrderRejected(f"Binance refused {call.what}: {message} ({code})")
        return ExchangeError(f"Binance refused to {call.what}: {message} ({code})")


def _read_environment_once(session: requests.Session, url: str) -> None:
    """Take the proxies and CA bundle from the environment now, for every request of the
    session: by default requests reads the whole environment (and looks for a .netrc) on
    each request, which costs more CPU than signing and sending it."""
    session.proxies.update(requests.utils.get_environ_proxies(url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False


def _cancel_code(exc: BinanceAPIException) -> int | None:
    """The code of the cancel half of a failed cancelReplace (its `data.cancelResponse`)."""
    try:
        body = exc.response.json()
        return int(body["data"]["cancelResponse"]["code"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _unclear(call: Call, why: str) -> ExchangeError:
    if call.writes:
        return OrderOutcomeUnknown(
            f"Binance gave {why} to: {call.what}. It may or may not have executed; "
            "look it up (find_order / the margin account) before sending anything again"
        )
    return ExchangeUnavailable(f"Binance gave {why} when asked to {call.what}")


def method(name: str, **params: str) -> Callable[[Any], Any]:
    """A python-binance Client method call, to run under the client's guards."""
    return lambda client: getattr(client, name)(**params)


def mapping(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _same_secret(held: Any, given: str) -> bool:
    return isinstance(held, str) and hmac.compare_digest(held.encode(), given.encode())


def _mask(api_key: str | None) -> str:
    if not api_key:
        return "(none)"
    if len(api_key) <= 12:
        return api_key[:2] + "..."
    return f"{api_key[:4]}...{api_key[-4:]}"
