"""Audit export: the event log as NDJSON, streamed page by page, secrets redacted."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TypedDict
from uuid import UUID

from eventsourcing.persistence import Notification

from domain.formats import JSON, Document
from domain.identity import policy_id_for
from domain.store import EventStore
from projections.events import stored_timestamp

PAGE = 1000
REDACTED = "[REDACTED]"
SECRET_FIELDS = frozenset(
    {"api_key_ciphertext", "secret_key_ciphertext", "token_hash", "api_key", "secret_key"}
)
BASE_FIELDS = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})


@dataclass(frozen=True)
class ExportFilter:
    client_id: UUID | None = None
    since_id: int | None = None  # exclusive: events after this notification id
    since_time: datetime | None = None
    until_time: datetime | None = None


class AuditRecord(TypedDict):
    notification_id: int
    stream_id: str
    version: int
    topic: str
    timestamp: str
    payload: Document


def _plain(value: object) -> JSON:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return _plain(value.value)  # our enums are stored by their (text) value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float):
        return value
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def redacted_payload(event_state: Mapping[str, object]) -> Document:
    return {
        name: REDACTED if name in SECRET_FIELDS else _plain(value)
        for name, value in event_state.items()
        if name not in BASE_FIELDS
    }


def export_events(store: EventStore, selection: ExportFilter) -> Iterator[AuditRecord]:
    """Every stored event in notification order, bounded by the log's end when it starts.

    Streams page by page in constant memory (plus the ids of the tenant's own streams).
    What is filtered out is mostly never decoded: with `client_id`, an event of a stream
    the tenant does not own is decoded only if its stored bytes contain the client's id
    (how a Planned or Funded event makes a stream the tenant's); with a time window, the
    event's timestamp is read from the head of its stored JSON.
    """
    stop = store.recorder.max_notification_id() or 0
    last = selection.since_id or 0
    plain = store.mapper.cipher is None and store.mapper.compressor is None
    tenant = selection.client_id
    owned: set[UUID] = set()
    marker = b""
    if tenant is not None:
        owned = {tenant, policy_id_for(tenant)}
        marker = tenant.hex.encode("ascii")

    def claims(notification: Notification) -> dict[str, object] | None:
        """The decoded state of a not-yet-owned stream's event that names the tenant."""
        if plain and marker not in notification.state:
            return None  # cannot carry this client's id
        state = dict(vars(store.mapper.to_domain_event(notification)))
        return state if state.get("client_id") == tenant else None

    if tenant is not None:  # streams begun before the window still belong to the tenant
        for notification in _pages(store, 0, last):
            if notification.originator_id not in owned and claims(notification):
                owned.add(notification.originator_id)  # type: ignore[arg-type]
    for notification in _pages(store, last, stop):
        originator_id: UUID = notification.originator_id  # type: ignore[assignment]
        state: dict[str, object] | None = None
        if tenant is not None and originator_id not in owned:
            state = claims(notification)
            if state is None:
                continue
            owned.add(originator_id)
        if plain and not _in_window(stored_timestamp(notification.state), selection):
            continue
        if state is None:
            state = dict(vars(store.mapper.to_domain_event(notification)))
        timestamp = state["timestamp"]
        assert isinstance(timestamp, datetime), "every event has its time"
        if not _in_window(timestamp, selection):
            continue
        yield {
            "notification_id": notification.id,
            "stream_id": str(originator_id),
            "version": notification.originator_version,
            "topic": notification.topic,
            "timestamp": timestamp.isoformat(),
            "payload": redacted_payload(state),
        }


def _pages(store: EventStore, after: int, through: int) -> Iterator[Notification]:
    """Notifications with after < id <= through, fetched a page at a time."""
    last = after
    while last < through:
        page = store.recorder.select_notifications(
            start=last, limit=PAGE, stop=through, inclusive_of_start=False
        )
        if not page:
            return
        yield from page
        last = page[-1].id


def _in_window(moment: datetime | None, selection: ExportFilter) -> bool:
    """Inside [since_time, until_time]; an unknown time is kept (decided after decoding)."""
    if moment is None:
        return True
    if selection.since_time and moment < selection.since_time:
        return False
    return not (selection.until_time and moment > selection.until_time)


def to_ndjson(record: AuditRecord) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
