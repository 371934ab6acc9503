"""Client: registration, API tokens kept as hashes only, masked and encrypted exchange keys."""

from __future__ import annotations

import hashlib

import pytest

from domain.client import Client, hash_token, mask_key
from domain.errors import IllegalTransition, InvalidInput
from domain.identity import client_id_for
from tests.factories import UNIT_NOW, event_names, later, registered_client

TOKEN = "rbs_live_2c1f0e9d8b7a6f5e4d3c2b1a0f9e8d7c"


@pytest.mark.parametrize(
    ("email", "normalised"),
    [
        ("trader@example.com", "trader@example.com"),
        ("  Trader@Example.COM  ", "trader@example.com"),
        ("\tALICE.B+robson@Mail.Example.org\n", "alice.b+robson@mail.example.org"),
    ],
)
def test_register_normalises_the_email_and_derives_the_id_from_it(
    email: str, normalised: str
) -> None:
    client = Client.register("  Alice  ", email, False, UNIT_NOW)

    assert client.email == normalised
    assert client.name == "Alice"
    assert client.id == client_id_for(normalised) == Client.create_id(normalised)
    assert client.is_active is True
    assert client.is_operator is False
    assert client.created_on == UNIT_NOW
    registered = client.collect_events()[0]
    assert isinstance(registered, Client.Registered)
    assert registered.email == normalised


def test_the_same_address_in_any_case_is_the_same_client() -> None:
    assert registered_client("BOB@example.com").id == registered_client("bob@EXAMPLE.com").id


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("trader.example.com", id="no-at"),
        pytest.param("@example.com", id="no-local-part"),
        pytest.param("trader@", id="no-domain"),
        pytest.param(" trader@ ", id="no-domain-padded"),
        pytest.param("a@b@example.com", id="two-ats"),
        pytest.param("tra der@example.com", id="inner-space"),
    ],
)
def test_register_rejects_bad_emails(email: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        Client.register("Trader", email, False, UNIT_NOW)
    assert raised.value.field == "email"


@pytest.mark.parametrize("name", ["", "   "])
def test_register_requires_a_name(name: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        Client.register(name, "trader@example.com", False, UNIT_NOW)
    assert raised.value.field == "name"


def test_an_operator_is_recorded_as_such() -> None:
    assert Client.register("Ops", "ops@example.com", True, UNIT_NOW).is_operator is True


# --- tokens ---


def test_only_the_token_hash_is_recorded_never_the_token() -> None:
    client = registered_client()
    client.collect_events()

    client.issue_token("t1", TOKEN, later(1))

    events = client.collect_events()
    assert event_names(events) == ["TokenIssued"]
    issued = events[0]
    assert isinstance(issued, Client.TokenIssued)
    assert issued.token_hash == hashlib.sha256(TOKEN.encode()).hexdigest() == hash_token(TOKEN)
    assert all(TOKEN not in str(value) for value in vars(issued).values())
    assert TOKEN not in repr(issued)
    assert TOKEN not in str(vars(client))


def test_accepts_an_issued_token_and_nothing_else() -> None:
    client = registered_client()
    client.issue_token("t1", TOKEN, later(1))
    client.issue_token("t2", "second-token", later(2))

    assert client.accepts(TOKEN) is True
    assert client.accepts("second-token") is True
    assert client.accepts(TOKEN + "x") is False
    assert client.accepts("") is False
    assert client.accepts(hash_token(TOKEN)) is False  # the stored hash is not a credential


def test_a_revoked_token_is_no_longer_accepted() -> None:
    client = registered_client()
    client.issue_token("t1", TOKEN, later(1))
    client.issue_token("t2", "second-token", later(2))

    client.revoke_token("t1", later(3))

    assert client.accepts(TOKEN) is False
    assert client.accepts("second-token") is True
    with pytest.raises(IllegalTransition):
        client.revoke_token("t1", later(4))


def test_a_deactivated_client_accepts_no_token_until_reactivated() -> None:
    client = registered_client()
    client.issue_token("t1", TOKEN, later(1))

    client.deactivate(later(2))
    assert client.accepts(TOKEN) is False

    client.activate(later(3))
    assert client.accepts(TOKEN) is True


def test_deactivate_and_activate_record_only_real_changes() -> None:
    client = registered_client()
    client.collect_events()

    client.activate(later(1))
    client.deactivate(later(2))
    client.deactivate(later(3))

    assert event_names(client.collect_events()) == ["Deactivated"]


def test_a_client_without_tokens_accepts_nothing() -> None:
    assert registered_client().accepts(TOKEN) is False


# --- exchange credentials ---


@pytest.mark.parametrize(
    ("key", "masked"),
    [
        ("ABCD1234EFGH5678", "ABCD********5678"),
        (
            "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
            "vmPU" + "*" * 56 + "Eh8A",
        ),
        ("123456789", "1234*6789"),
        ("12345678", "********"),
        ("abc", "***"),
        ("", ""),
    ],
)
def test_mask_key_shows_the_first_4_and_last_4_characters(key: str, masked: str) -> None:
    result = mask_key(key)
    assert result == masked
    assert len(result) == len(key)


def test_credentials_set_and_cleared() -> None:
    client = registered_client()
    assert client.has_credentials is False

    client.set_credentials(
        "gAAAA-api-ciphertext", "gAAAA-secret-ciphertext", "ABCD****5678", later(1)
    )
    assert client.has_credentials is True
    assert client.masked_api_key == "ABCD****5678"
    assert client.api_key_ciphertext == "gAAAA-api-ciphertext"

    client.clear_credentials(later(2))
    assert client.has_credentials is False
    assert (client.api_key_ciphertext, client.secret_key_ciphertext, client.masked_api_key) == (
        None,
        None,
        None,
    )
    client.clear_credentials(later(3))  # nothing to clear: nothing recorded
    assert event_names(client.collect_events())[-2:] == ["CredentialsSet", "CredentialsCleared"]
