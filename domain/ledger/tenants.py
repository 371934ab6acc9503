"""Clients, their bearer tokens and their exchange credentials."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.client import Client, mask_key
from domain.errors import AlreadyExists, InvalidInput, Unauthorized
from domain.ledger.base import LedgerBase
from domain.ledger.unit_of_work import Work, load_client_by_email
from domain.policy import Policy


@dataclass(frozen=True)
class Registration:
    client_id: UUID
    token: str


def new_token(client_id: UUID) -> tuple[str, str]:
    """A bearer token naming its client, so a lookup needs no index; returns (id, token)."""
    token_id = secrets.token_hex(4)
    return token_id, f"rbs_{client_id.hex}_{token_id}_{secrets.token_urlsafe(32)}"


class Tenants(LedgerBase):
    def register_client(
        self, name: str, email: str, capital: Decimal, is_operator: bool = False
    ) -> Registration:
        now = self.clock.now()
        client = Client.register(name, email, is_operator, now)
        policy = Policy.configure(client.id, capital, now)
        token_id, token = new_token(client.id)
        client.issue_token(token_id, token, now)
        try:
            self.store.save(client, policy)
        except IntegrityError:
            raise AlreadyExists(f"A client with email {client.email} already exists") from None
        return Registration(client.id, token)

    def client_by_email(self, email: str) -> Client:
        return load_client_by_email(self.store, email)

    def issue_token(self, email: str) -> str:
        return self.work.run(self._issue_token, email)

    def _issue_token(self, work: Work, email: str) -> str:
        client = work.client_by_email(email)
        token_id, token = new_token(client.id)
        client.issue_token(token_id, token, self.clock.now())
        work.save(client)
        return token

    def revoke_token(self, client_id: UUID, token_id: str) -> None:
        self.work.run(self._revoke_token, client_id, token_id)

    def _revoke_token(self, work: Work, client_id: UUID, token_id: str) -> None:
        client = work.client(client_id)
        client.revoke_token(token_id, self.clock.now())
        work.save(client)

    def authenticate(self, token: str) -> Client:
        """The active client a bearer token belongs to; every failure looks the same."""
        parts = token.split("_")
        if len(parts) < 4 or parts[0] != "rbs":
            raise Unauthorized("Invalid or missing token")
        try:
            client_id = UUID(hex=parts[1])
        except ValueError:
            raise Unauthorized("Invalid or missing token") from None
        client = self.store.load(client_id, Client)
        if client is None or not client.accepts(token):
            raise Unauthorized("Invalid or missing token")
        return client

    def set_active(self, email: str, active: bool) -> None:
        self.work.run(self._set_active, email, active)

    def _set_active(self, work: Work, email: str, active: bool) -> None:
        client = work.client_by_email(email)
        now = self.clock.now()
        if active:
            client.activate(now)
        else:
            client.deactivate(now)
        work.save(client)

    def set_credentials(self, email: str, api_key: str, secret_key: str) -> str:
        """Store the tenant's exchange keys encrypted; returns the masked key."""
        api_key, secret_key = api_key.strip(), secret_key.strip()
        if not api_key:
            raise InvalidInput("api_key", "is required")
        if not secret_key:
            raise InvalidInput("secret_key", "is required")
        api_ct, secret_ct = self.cipher.encrypt(api_key), self.cipher.encrypt(secret_key)
        masked = mask_key(api_key)
        self.work.run(self._set_credentials, email, api_ct, secret_ct, masked)
        return masked

    def _set_credentials(
        self, work: Work, email: str, api_ct: str, secret_ct: str, masked: str
    ) -> None:
        client = work.client_by_email(email)
        client.set_credentials(api_ct, secret_ct, masked, self.clock.now())
        work.save(client)

    def clear_credentials(self, email: str) -> None:
        self.work.run(self._clear_credentials, email)

    def _clear_credentials(self, work: Work, email: str) -> None:
        client = work.client_by_email(email)
        client.clear_credentials(self.clock.now())
        work.save(client)
