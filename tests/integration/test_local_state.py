"""Local state is the owner's alone: `ROBSON_HOME` is created 0700, the SQLite file (and the
journal files SQLite derives from it) and a generated encryption key 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from infra.bootstrap import build_services
from infra.cli import main
from infra.settings import Settings
from infra.vault import KEY_FILE


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The common default (files 0644, directories 0755), whatever the test runner's is."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("permissive_umask")
def test_migrate_creates_home_database_and_key_for_the_owner_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "state" / "robson"
    env = {"ROBSON_HOME": str(home)}  # no encryption key: one is generated in home
    assert main(["migrate"], env) == 0
    services = build_services(Settings.from_env(env))  # opens (and writes) the database too
    try:
        services.ledger.register_client("Ana", "ana@example.com", Decimal(1000), False)
    finally:
        services.close()
    capsys.readouterr()
    assert mode(home) == 0o700
    assert mode(home / "robson.sqlite3") == 0o600
    assert mode(home / KEY_FILE) == 0o600
    files = list(home.iterdir())
    assert {f.name for f in files} >= {"robson.sqlite3", KEY_FILE}
    assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}


@pytest.mark.usefixtures("permissive_umask")
def test_a_sqlite_file_outside_home_is_private_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "elsewhere" / "ledger.sqlite3"
    env = {"ROBSON_HOME": str(tmp_path / "home"), "ROBSON_DATABASE_URL": f"sqlite:///{database}"}
    assert main(["migrate"], env) == 0
    capsys.readouterr()
    assert mode(database.parent) == 0o700
    assert mode(database) == 0o600
