"""What the API is given by the composition root (`infra.bootstrap` builds it): the ledger,
the read models, and the resources the app uses without opening them itself (the shared rate
counts, the document readers). Neither the event store nor the exchange is here: a handler
reaches them only through a ledger use case (commands) or the read models (reads)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from api.documents import Documents
from api.idempotency import KeyStore
from api.rate_limit import Counter
from domain.assistant.chat import Assistant
from domain.ledger import Ledger
from domain.ports import Clock, MarginHolding
from projections.sql_read_models import SqlReadModels


class ApiSettings(Protocol):
    """The settings the API reads: where it trades and how often a token may call."""

    @property
    def environment(self) -> str: ...

    @property
    def rate_limit(self) -> str: ...


class PaperPrices(Protocol):
    """The paper exchange's prices, which the operator sets (absent on a real exchange), and
    the isolated accounts it keeps beside each tenant's spot wallet."""

    def price(self, symbol: str) -> Decimal: ...

    def set_price(self, symbol: str, price: Decimal) -> Decimal: ...

    def isolated_accounts(self, client_id: UUID) -> dict[str, dict[str, MarginHolding]]: ...


class CommitFeed(Protocol):
    """The projection runner, as the live streams follow it."""

    def subscribe(self, listener: Callable[[Sequence[object]], None]) -> None: ...


class Services(Protocol):
    @property
    def settings(self) -> ApiSettings: ...

    @property
    def ledger(self) -> Ledger: ...

    @property
    def projections(self) -> CommitFeed: ...

    @property
    def paper(self) -> PaperPrices | None: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def read_models(self) -> SqlReadModels: ...

    @property
    def assistant(self) -> Assistant: ...

    @property
    def rate_counts(self) -> Counter:
        """Every replica's request counts, which the rate limiter adds to."""
        ...

    @property
    def idempotency_keys(self) -> KeyStore:
        """Every replica's Idempotency-Key records, kept in the database."""
        ...

    @property
    def documents(self) -> Documents:
        """The busiest reads' reply documents; the app's lifespan opens and closes them."""
        ...

    def close(self) -> None: ...
