"""Client: a tenant of the ledger, its API tokens (hashes only) and its encrypted exchange keys."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.aggregate import LedgerAggregate
from domain.errors import IllegalTransition, InvalidInput
from domain.identity import client_id_for


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def mask_key(api_key: str) -> str:
    """First 4 and last 4 characters; short keys are fully hidden."""
    if len(api_key) <= 8:
        return "*" * len(api_key)
    return f"{api_key[:4]}{'*' * (len(api_key) - 8)}{api_key[-4:]}"


class Client(LedgerAggregate):
    class Registered(Aggregate.Created):
        name: str
        email: str
        is_operator: bool

    @staticmethod
    def create_id(email: str) -> UUID:
        return client_id_for(email)

    @event(Registered)
    def __init__(self, name: str, email: str, is_operator: bool) -> None:
        self.name = name
        self.email = email
        self.is_operator = is_operator
        self.is_active = True
        self.token_hashes: dict[str, str] = {}  # token id -> sha256 hex
        self.api_key_ciphertext: str | None = None
        self.secret_key_ciphertext: str | None = None
        self.masked_api_key: str | None = None

    @classmethod
    def register(cls, name: str, email: str, is_operator: bool, now: datetime) -> Client:
        name, email = name.strip(), email.strip().lower()
        if not name:
            raise InvalidInput("name", "is required")
        local, _, host = email.partition("@")
        if not local or "." not in host or "@" in host or any(c.isspace() for c in email):
            raise InvalidInput("email", "is not an email address")
        return cls._create(
            cls.Registered,
            id=client_id_for(email),
            timestamp=now,
            name=name,
            email=email,
            is_operator=is_operator,
        )

    # --- activation ---

    class Deactivated(Aggregate.Event):
        def apply(self, aggregate: Client) -> None:
            aggregate.is_active = False

    class Activated(Aggregate.Event):
        def apply(self, aggregate: Client) -> None:
            aggregate.is_active = True

    def deactivate(self, now: datetime) -> None:
        if self.is_active:
            self.trigger_event(self.Deactivated, timestamp=now)

    def activate(self, now: datetime) -> None:
        if not self.is_active:
            self.trigger_event(self.Activated, timestamp=now)

    # --- API tokens: only the SHA-256 hash is ever recorded ---

    class TokenIssued(Aggregate.Event):
        token_id: str
        token_hash: str

        def apply(self, aggregate: Client) -> None:
            aggregate.token_hashes[self.token_id] = self.token_hash

    class TokenRevoked(Aggregate.Event):
        token_id: str

        def apply(self, aggregate: Client) -> None:
            aggregate.token_hashes.pop(self.token_id, None)

    def issue_token(self, token_id: str, token: str, now: datetime) -> None:
        self.trigger_event(
            self.TokenIssued, timestamp=now, token_id=token_id, token_hash=hash_token(token)
        )

    def revoke_token(self, token_id: str, now: datetime) -> None:
        if token_id not in self.token_hashes:
            raise IllegalTransition(f"token {token_id} is not active")
        self.trigger_event(self.TokenRevoked, timestamp=now, token_id=token_id)

    def accepts(self, token: str) -> bool:
        """Constant-time check of a presented token against every active token hash."""
        presented = hash_token(token)
        matched = False
        for stored in self.token_hashes.values():
            matched |= hmac.compare_digest(stored, presented)
        return matched and self.is_active

    # --- exchange credentials: ciphertext only ---

    class CredentialsSet(Aggregate.Event):
        api_key_ciphertext: str
        secret_key_ciphertext: str
        masked_api_key: str

        def apply(self, aggregate: Client) -> None:
            aggregate.api_key_ciphertext = self.api_key_ciphertext
            aggregate.secret_key_ciphertext = self.secret_key_ciphertext
            aggregate.masked_api_key = self.masked_api_key

    class CredentialsCleared(Aggregate.Event):
        def apply(self, aggregate: Client) -> None:
            aggregate.api_key_ciphertext = None
            aggregate.secret_key_ciphertext = None
            aggregate.masked_api_key = None

    def set_credentials(
        self, api_key_ciphertext: str, secret_key_ciphertext: str, masked: str, now: datetime
    ) -> None:
        self.trigger_event(
            self.CredentialsSet,
            timestamp=now,
            api_key_ciphertext=api_key_ciphertext,
            secret_key_ciphertext=secret_key_ciphertext,
            masked_api_key=masked,
        )

    def clear_credentials(self, now: datetime) -> None:
        if self.has_credentials:
            self.trigger_event(self.CredentialsCleared, timestamp=now)

    @property
    def has_credentials(self) -> bool:
        return self.api_key_ciphertext is not None and self.secret_key_ciphertext is not None
