"""Secrets at rest (printer API keys) encrypted with a key derived from the settings' secret key."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from core.errors import Invalid


def _fernet(secret_key: str) -> Fernet:
    # A labelled hash keeps this key distinct from the one that signs cookies.
    digest = hashlib.sha256(b"distrifab/secrets-at-rest/v1\0" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secret(plaintext: str, *, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(plaintext.encode()).decode()


def decrypt_secret(token: str, *, secret_key: str) -> str:
    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise Invalid(
            "a stored secret cannot be decrypted: DISTRIFAB_SECRET_KEY changed since it was saved"
        ) from exc
