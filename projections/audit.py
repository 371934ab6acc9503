"""Audit export: the event log as NDJSON, streamed page by page, secrets redacted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from domain.identity import policy_id_for
from domain.store import EventStore

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


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def redacted_payload(event_state: dict[str, Any]) -> dict[str, Any]:
    return {
        name: REDACTED if name in SECRET_FIELDS else _plain(value)
        for name, value in event_state.items()
        if name not in BASE_FIELDS
    }


def export_events(store: EventStore, selection: ExportFilter) -> Iterator[dict[str, Any]]:
    """Every stored event in notification order, bounded by the log's end when it starts."""
    stop = store.recorder.max_notification_id() or 0
    last = selection.since_id or 0
    owned: set[UUID] = set()
    if selection.client_id is not None:
        owned = {selection.client_id, policy_id_for(selection.client_id)}
    while last < stop:
        page = store.recorder.select_notifications(
            start=last, limit=PAGE, stop=stop, inclusive_of_start=False
        )
        if not page:
            break
        for notification in page:
            last = notification.id
            event = store.mapper.to_domain_event(notification)
            state = dict(vars(event))
            if selection.client_id is not None:
                if state.get("client_id") == selection.client_id:
                    owned.add(notification.originator_id)  # type: ignore[arg-type]
                if notification.originator_id not in owned:
                    continue
            timestamp: datetime = state["timestamp"]
            if selection.since_time and timestamp < selection.since_time:
                continue
            if selection.until_time and timestamp > selection.until_time:
                continue
            yield {
                "notification_id": notification.id,
                "stream_id": str(notification.originator_id),
                "version": notification.originator_version,
                "topic": notification.topic,
                "timestamp": timestamp.isoformat(),
                "payload": redacted_payload(state),
            }


def to_ndjson(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
