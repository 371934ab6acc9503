"""Settings read once from the environment by the composition root (never at import time)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from domain.errors import ConfigurationError
from infra.paper_symbols import DEFAULT_SYMBOLS, UnknownPaperSymbol, paper_symbols


def private_directory(path: Path) -> None:
    """Local state (the database, a generated key) is the owner's alone: a directory this
    creates is mode 0700; one that exists is left as its owner set it."""
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)


def private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 (in a private directory) unless it exists, so what
    is written to it later (SQLite, with its -wal and -shm files) is never world-readable."""
    private_directory(path.parent)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


TRUE = {"1", "true", "yes", "y", "on"}
FALSE = {"0", "false", "no", "n", "off"}


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ConfigurationError(f"{name} must be True or False, not {raw!r}")


def _decimal(env: Mapping[str, str], name: str, default: str) -> Decimal:
    raw = env.get(name) or default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise ConfigurationError(f"{name} must be a finite, non-negative number")
    return value


def _fraction(env: Mapping[str, str], name: str, default: str) -> Decimal:
    """A fraction of a price, below 1 (0.005 is 0.5%)."""
    value = _decimal(env, name, default)
    if value >= 1:
        raise ConfigurationError(f"{name} must be a fraction below 1 (0.005 is 0.5%)")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}") from None


def _exit_concurrency(env: Mapping[str, str]) -> int:
    value = _int(env, "ROBSON_EXIT_CONCURRENCY", 32)
    if value < 1:
        raise ConfigurationError(f"ROBSON_EXIT_CONCURRENCY must be at least 1, not {value}")
    return value


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    exchange: str
    trading_enabled: bool
    use_testnet: bool
    binance_api_key: str | None = field(repr=False)
    binance_secret_key: str | None = field(repr=False)
    encryption_keys: tuple[str, ...] = field(repr=False)
    groq_api_key: str | None = field(repr=False)
    ai_model: str
    ai_max_tokens: int
    rate_limit: str
    poll_seconds: Decimal
    paper_balance: Decimal
    binance_base_url: str | None = None  # only to point the adapter at a test server
    paper_symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    paper_prices: str = "manual"  # or "binance": Binance's public last prices
    exchange_stops: bool = True  # rest an insurance stop at the exchange after each entry
    exchange_stop_slippage: Decimal = Decimal("0.005")  # its limit this far beyond the stop
    exchange_stop_interval: Decimal = Decimal(60)  # seconds between two moves of it
    exit_concurrency: int = 32  # exits of different positions the worker sends side by side
    groq_base_url: str | None = None  # likewise for the AI model's client

    @property
    def is_postgres(self) -> bool:
        return bool(
            self.database_url and self.database_url.startswith(("postgres://", "postgresql"))
        )

    @property
    def sqlite_path(self) -> Path:
        if self.database_url and self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///"))
        return self.home / "robson.sqlite3"

    @property
    def environment(self) -> str:
        """What the spec calls the environment: production, testnet or paper."""
        if self.exchange == "paper":
            return "paper"
        return "testnet" if self.use_testnet else "production"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        exchange = (env.get("ROBSON_EXCHANGE") or "paper").strip().lower()
        if exchange not in {"paper", "binance"}:
            raise ConfigurationError(f"ROBSON_EXCHANGE must be paper or binance, not {exchange!r}")
        testnet = _flag(env, "BINANCE_USE_TESTNET", True)
        suffix = "TEST" if testnet else "PROD"
        url = (env.get("ROBSON_DATABASE_URL") or "").strip() or None
        if url and not url.startswith(("postgres://", "postgresql://", "sqlite:///")):
            raise ConfigurationError(
                "ROBSON_DATABASE_URL must be postgresql://user:pass@host:port/db or sqlite:///path"
            )
        keys = tuple(k.strip() for k in (env.get("RBS_CREDENTIAL_ENCRYPTION_KEY") or "").split(","))
        symbols = env.get("ROBSON_PAPER_SYMBOLS") or ",".join(DEFAULT_SYMBOLS)
        try:
            known = tuple(paper_symbols(s for s in symbols.split(",") if s.strip()))
        except UnknownPaperSymbol as exc:
            raise ConfigurationError(f"ROBSON_PAPER_SYMBOLS: {exc}") from None
        prices = (env.get("ROBSON_PAPER_PRICES") or "manual").strip().lower()
        if prices not in {"manual", "binance"}:
            raise ConfigurationError(
                f"ROBSON_PAPER_PRICES must be manual or binance, not {prices!r}"
            )
        return cls(
            home=Path(env.get("ROBSON_HOME") or "./var"),
            database_url=url,
            exchange=exchange,
            trading_enabled=_flag(env, "TRADING_ENABLED", exchange == "paper"),
            use_testnet=testnet,
            binance_api_key=env.get(f"RBS_BINANCE_API_KEY_{suffix}") or None,
            binance_secret_key=env.get(f"RBS_BINANCE_SECRET_KEY_{suffix}") or None,
            encryption_keys=tuple(k for k in keys if k),
            groq_api_key=env.get("GROQ_API_KEY") or None,
            ai_model=env.get("ROBSON_AI_MODEL") or "openai/gpt-oss-20b",
            ai_max_tokens=_int(env, "ROBSON_AI_MAX_TOKENS", 4096),
            rate_limit=env.get("ROBSON_RATE_LIMIT") or "1000/hour",
            poll_seconds=_decimal(env, "ROBSON_POLL_SECONDS", "1"),
            paper_balance=_decimal(env, "ROBSON_PAPER_BALANCE", "10000"),
            binance_base_url=env.get("ROBSON_BINANCE_BASE_URL") or None,
            paper_symbols=known,
            paper_prices=prices,
            exchange_stops=_flag(env, "ROBSON_EXCHANGE_STOPS", True),
            exchange_stop_slippage=_fraction(env, "ROBSON_EXCHANGE_STOP_SLIPPAGE", "0.005"),
            exchange_stop_interval=_decimal(env, "ROBSON_EXCHANGE_STOP_INTERVAL", "60"),
            exit_concurrency=_exit_concurrency(env),
            groq_base_url=env.get("ROBSON_GROQ_BASE_URL") or None,
        )
