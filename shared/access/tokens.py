"""API key tokens: made at random, shown once, kept only as a SHA-256 digest.

Why a plain SHA-256 and not bcrypt/argon2: a key is 32 random bytes (256 bits), so
guessing it from its digest is as hopeless as guessing the key itself; slow, salted
hashes protect *low-entropy* secrets (passwords) and would cost every request tens of
milliseconds of CPU. A fast digest lets the gateway find a key with one lookup by digest.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "bsk_"
"""Marks BabelStack keys, so secret scanners and people can recognise one."""
HINT_CHARS = 8
"""The start of a key kept beside its digest (``bsk_AbCd``) so a list can tell keys apart."""
MIN_BOOTSTRAP_CHARS = 32


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """The SHA-256 of a key, hex: what Redis holds instead of the key."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hint(token: str) -> str:
    return token[:HINT_CHARS]


def is_digest(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)
