"""Access settings (``BABEL_AUTH``, ``BABEL_ADMIN_KEY_HASH``, ``BABEL_ADMIN_KEY_FILE``,
``BABEL_METRICS_PORT``) and the one rule of whether keys are required."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import ClassVar, Literal

from shared.access.tokens import MIN_BOOTSTRAP_CHARS, digest, is_digest
from shared.errors import BabelError, ErrorCode
from shared.settings import BaseSettings

AuthMode = Literal["on", "off", "auto"]


class AccessSettings(BaseSettings, frozen=True, kw_only=True):
    env_prefix: ClassVar[str] = "BABEL_"
    auth: AuthMode = "auto"
    """``on``: keys required; ``off``: no keys (a warning is logged); ``auto``: required
    unless the gateway listens on loopback only."""
    admin_key_hash: str = ""
    """SHA-256 (hex) of a bootstrap admin key (e.g. from a Kubernetes Secret)."""
    admin_key_file: str = ""
    """A file holding a bootstrap admin key (a mounted Secret); only its digest is kept."""
    metrics_port: int = 0
    """When set, /metrics is also served on this port without keys (for Prometheus)."""
    stream_lease_s: float = 900.0
    """An open stream holds its key's stream slot at most this long (a crashed gateway's
    slots free themselves)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def keys_required(settings: AccessSettings, host: str) -> bool:
    if settings.auth == "auto":
        return not is_loopback(host)
    return settings.auth == "on"


def bootstrap_digest(settings: AccessSettings) -> str | None:
    """The digest of the bootstrap admin key, from the hash setting or the key file."""
    if settings.admin_key_hash:
        value = settings.admin_key_hash.strip().lower()
        if not is_digest(value):
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                "BABEL_ADMIN_KEY_HASH must be the 64 hex digits of the key's SHA-256",
                field="BABEL_ADMIN_KEY_HASH",
            )
        return value
    if settings.admin_key_file:
        try:
            key = Path(settings.admin_key_file).read_text().strip()
        except OSError as exc:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"cannot read BABEL_ADMIN_KEY_FILE: {exc.strerror}",
                field="BABEL_ADMIN_KEY_FILE",
            ) from exc
        if len(key) < MIN_BOOTSTRAP_CHARS:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"the key in BABEL_ADMIN_KEY_FILE has {len(key)} characters; "
                f"at least {MIN_BOOTSTRAP_CHARS} are needed",
                field="BABEL_ADMIN_KEY_FILE",
            )
        return digest(key)
    return None
