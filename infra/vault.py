"""Fernet vault for exchange credentials: the first key encrypts, every key decrypts (rotation)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from domain.errors import ConfigurationError
from infra.settings import Settings, private_directory

log = logging.getLogger(__name__)

KEY_FILE = "credential-encryption.key"


class VaultError(Exception):
    """A ciphertext that none of the configured keys can open."""


class FernetVault:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigurationError("at least one credential encryption key is required")
        try:
            self._fernet = MultiFernet([Fernet(k.encode("ascii")) for k in keys])
        except (ValueError, UnicodeEncodeError):
            raise ConfigurationError(
                "RBS_CREDENTIAL_ENCRYPTION_KEY must hold url-safe base64 Fernet keys "
                "(32 bytes each), comma-separated"
            ) from None

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise VaultError(
                "Stored credentials cannot be decrypted with the configured keys "
                "(was RBS_CREDENTIAL_ENCRYPTION_KEY rotated without keeping the old key?)"
            ) from None

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt under the first (newest) key."""
        return self._fernet.rotate(ciphertext.encode("ascii")).decode("ascii")


def vault_from(settings: Settings) -> FernetVault:
    """Keys from the environment; on paper or testnet a missing key is generated locally."""
    if settings.encryption_keys:
        return FernetVault(list(settings.encryption_keys))
    if settings.exchange == "binance" and not settings.use_testnet:
        raise ConfigurationError(
            "RBS_CREDENTIAL_ENCRYPTION_KEY is required with the binance exchange in production "
            "(BINANCE_USE_TESTNET=False)"
        )
    path = settings.home / KEY_FILE
    return FernetVault([_local_key(path)])


def _local_key(path: Path) -> str:
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    private_directory(path.parent)
    key = Fernet.generate_key().decode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    log.warning(
        "RBS_CREDENTIAL_ENCRYPTION_KEY is not set: generated a local key at %s (mode 0600). "
        "Set the variable before trading with real keys.",
        path,
    )
    return key
