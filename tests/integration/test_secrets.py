"""Secrets never reach the event store, the audit export or error messages in plaintext."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from psycopg import sql

from domain.errors import ConfigurationError
from infra.bootstrap import Services, postgres_target
from infra.settings import Settings
from infra.vault import KEY_FILE, FernetVault, VaultError, vault_from
from projections.audit import ExportFilter, export_events
from tests.conftest import connect
from tests.factories import register

API_KEY = "PLAINTEXTAPIKEY1234567890abcdef"
SECRET = "PLAINTEXTSECRETzyxwvutsrq0987654321"


def stored_bytes(settings: Settings) -> bytes:
    """Every stored event's raw state, exactly as the database holds it."""
    if settings.is_postgres:
        assert settings.database_url is not None
        target = postgres_target(settings.database_url)
        with connect(settings) as conn:
            rows = conn.execute(
                sql.SQL("SELECT topic, state FROM {}.robson_events").format(
                    sql.Identifier(target.schema)
                )
            ).fetchall()
    else:
        with sqlite3.connect(settings.sqlite_path) as conn:
            rows = conn.execute("SELECT topic, state FROM stored_events").fetchall()
    assert rows
    return b"".join(topic.encode() + bytes(state) for topic, state in rows)


def test_no_plaintext_secret_or_token_is_ever_stored(
    services: Services, settings: Settings
) -> None:
    client_id, token = register(services.ledger)
    second_token = services.ledger.issue_token(services.ledger.client(client_id).email)
    services.ledger.set_credentials(services.ledger.client(client_id).email, API_KEY, SECRET)

    raw = stored_bytes(settings)

    for secret in (API_KEY, SECRET, token, second_token, token.split("_", 3)[3]):
        assert secret.encode() not in raw
    assert b"CredentialsSet" in raw  # the event is there, only its values are ciphertext


def test_the_audit_export_redacts_ciphertext_and_token_hashes(services: Services) -> None:
    client_id, token = register(services.ledger)
    services.ledger.set_credentials(services.ledger.client(client_id).email, API_KEY, SECRET)
    client = services.ledger.client(client_id)

    exported = "".join(
        json.dumps(r) for r in export_events(services.store, ExportFilter(client_id=client_id))
    )

    assert client.api_key_ciphertext is not None
    for hidden in (
        API_KEY,
        SECRET,
        token,
        client.api_key_ciphertext,
        *client.token_hashes.values(),
    ):
        assert hidden not in exported
    assert "[REDACTED]" in exported
    assert client.masked_api_key is not None and client.masked_api_key in exported


def test_vault_round_trips_and_decrypts_after_key_rotation() -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old_vault = FernetVault([old_key])
    old_ciphertext = old_vault.encrypt(SECRET)

    rotated = FernetVault([new_key, old_key])  # the first key encrypts, all decrypt
    assert rotated.decrypt(old_ciphertext) == SECRET
    new_ciphertext = rotated.encrypt(SECRET)
    assert FernetVault([new_key]).decrypt(new_ciphertext) == SECRET
    with pytest.raises(VaultError) as error:
        old_vault.decrypt(new_ciphertext)
    assert SECRET not in str(error.value)
    assert FernetVault([new_key]).decrypt(rotated.rotate(old_ciphertext)) == SECRET


def test_a_missing_key_is_generated_privately_on_paper(tmp_path: Path) -> None:
    settings = Settings.from_env({"ROBSON_HOME": str(tmp_path)})
    vault = vault_from(settings)
    key_file = tmp_path / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The same key is used again on the next start, so old ciphertext stays readable.
    assert vault_from(settings).decrypt(vault.encrypt("x")) == "x"


def test_a_missing_key_is_a_startup_error_for_production_binance(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"ROBSON_HOME": str(tmp_path), "ROBSON_EXCHANGE": "binance", "BINANCE_USE_TESTNET": "False"}
    )
    with pytest.raises(ConfigurationError, match="RBS_CREDENTIAL_ENCRYPTION_KEY is required"):
        vault_from(settings)
    assert not (tmp_path / KEY_FILE).exists()


def test_a_malformed_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError) as error:
        FernetVault(["not-a-fernet-key-SECRETISH"])
    assert "SECRETISH" not in str(error.value)
