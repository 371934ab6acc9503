"""Settings read once from the environment by the composition root (never at import time)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path


class ConfigurationError(Exception):
    """The environment describes a setup that must not start."""


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


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}") from None


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
            groq_base_url=env.get("ROBSON_GROQ_BASE_URL") or None,
        )
