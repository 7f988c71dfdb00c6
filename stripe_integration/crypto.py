"""Encryption at rest for OAuth tokens and webhook signing secrets.

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with MultiFernet so keys can be
rotated: FIELD_ENCRYPTION_KEY is a comma-separated list, the first key encrypts and every
key decrypts. The plaintext never reaches the database, logs or reprs.
"""
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY must be url-safe base64 Fernet keys") from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        # Never include the token in the message.
        raise ImproperlyConfigured("A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY") from exc


class Secret(str):
    """A decrypted value that does not show itself in reprs, tracebacks' locals or logs."""

    def __repr__(self):
        return "Secret('********')"


class EncryptedTextField(models.TextField):
    """Stores Fernet ciphertext; Python sees a `Secret` (a str) or ''.

    Not searchable or indexable by design: look rows up by their other fields.
    """

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return Secret(decrypt(value))

    def to_python(self, value):
        if value in (None, "") or isinstance(value, Secret):
            return value
        return Secret(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(str(value))
