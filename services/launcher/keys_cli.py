"""``babelstack keys``: create, list and revoke API keys, straight in Redis.

It needs no key itself (whoever reaches Redis is an admin already): Redis is ``REDIS_URL``
(or ``BABEL_REDIS_URL``, with ``BABEL_REDIS_PASSWORD`` and TLS as every process takes them),
else the Redis that ``babelstack up`` started (its URL is noted in ``$BABEL_STATE_DIR``).
A new key is printed once; Redis keeps only its SHA-256.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import msgspec
import typer
from redis.exceptions import RedisError

from services.launcher.redis_server import read_redis_url
from services.launcher.stack import default_state_dir
from shared.access.records import (
    DEFAULT_CHARS_PER_MIN,
    DEFAULT_RPM,
    DEFAULT_STREAMS,
    SCOPES,
    KeyLimits,
    KeyRecord,
    parse_duration,
)
from shared.access.store import AccessKeys, KeyStore
from shared.access.tokens import digest
from shared.errors import BabelError, ErrorCode
from shared.rpc.connection import connect
from shared.settings import RedisSettings

keys_app = typer.Typer(help="API keys: create, list, revoke (stored hashed in Redis).")
T = TypeVar("T")
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]


def redis_settings(environ: dict[str, str]) -> RedisSettings:
    if environ.get("REDIS_URL") or environ.get("BABEL_REDIS_URL"):
        return RedisSettings.from_env(environ)
    noted = read_redis_url(default_state_dir())
    if noted is None:
        raise BabelError(
            ErrorCode.UNAVAILABLE,
            "no Redis: set REDIS_URL, or start the stack with 'babelstack up' "
            f"(it notes its Redis in {default_state_dir()})",
        )
    return RedisSettings.from_env({**environ, "REDIS_URL": noted})


def _run(work: Callable[[KeyStore], Awaitable[T]]) -> T:
    async def main() -> T:
        settings = redis_settings(dict(os.environ))
        redis = connect(settings)
        try:
            return await work(KeyStore(redis, AccessKeys(settings.key_prefix)))
        finally:
            await redis.aclose()

    try:
        return asyncio.run(main())
    except BabelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    except RedisError as exc:
        typer.echo(f"error: cannot use Redis: {exc}", err=True)
        raise typer.Exit(code=1) from exc


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(seconds))


def _limit(value: int) -> str:
    return "-" if value == 0 else str(value)


def _line(record: KeyRecord, now: float) -> str:
    state = "expired" if record.expired(now) else "active"
    return (
        f"{record.name:<20}{record.hint + '…':<12}{state:<9}{_limit(record.limits.rpm):>7}"
        f"{_limit(record.limits.chars_per_min):>10}{_limit(record.limits.streams):>8}  "
        f"{_when(record.usage.last_used_at):<17}{_when(record.expires_at):<17}"
        f"{','.join(record.scopes)}"
    )


@keys_app.command()
def create(
    name: Annotated[str, typer.Option(help="A name for the key (team, app).")],
    scopes: Annotated[str, typer.Option(help=f"Comma-separated: {','.join(SCOPES)}; or all.")],
    rpm: Annotated[int, typer.Option(help="Requests a minute (0: no limit).", min=0)] = DEFAULT_RPM,
    chars_per_min: Annotated[
        int,
        typer.Option(
            help="Characters a minute: texts in, prompt + max_tokens (0: no limit).", min=0
        ),
    ] = DEFAULT_CHARS_PER_MIN,
    streams: Annotated[
        int, typer.Option(help="Concurrent streamed answers (0: no limit).", min=0)
    ] = DEFAULT_STREAMS,
    expires: Annotated[
        str | None, typer.Option(help="Lifetime, e.g. 90d, 12h (default: never).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Create a key and print it (the only time it is shown)."""
    try:
        lifetime = parse_duration(expires, "--expires") if expires else None
    except BabelError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expires") from exc
    limits = KeyLimits(rpm=rpm, chars_per_min=chars_per_min, streams=streams)
    token, record = _run(lambda store: store.create(name, scopes, limits, expires_in_s=lifetime))
    if as_json:
        typer.echo(json.dumps({"key": token, **msgspec.to_builtins(record)}, indent=2))
        return
    typer.echo(token)
    typer.echo(
        f"created key {record.name!r}: scopes {','.join(record.scopes)}; "
        f"rpm {_limit(rpm)}, chars/min {_limit(chars_per_min)}, streams {_limit(streams)}; "
        f"expires {_when(record.expires_at)}. Store it now: it is not shown again.",
        err=True,
    )


@keys_app.command("list")
def list_keys(as_json: AsJson = False) -> None:
    """Every key: name, start of the key, state, limits, last use, expiry, scopes."""
    records = _run(lambda store: store.list())
    if as_json:
        typer.echo(json.dumps(msgspec.to_builtins(records), indent=2))
        return
    now = time.time()
    typer.echo(
        f"{'name':<20}{'key':<12}{'state':<9}{'rpm':>7}{'chars/min':>10}{'streams':>8}  "
        f"{'last used':<17}{'expires':<17}scopes"
    )
    for record in records:
        typer.echo(_line(record, now))


@keys_app.command()
def revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Delete a key: every gateway refuses it (401) from the next request on."""
    _run(lambda store: store.revoke(name))
    typer.echo(f"revoked key {name!r}")


@keys_app.command("hash")
def hash_key() -> None:
    """Print the SHA-256 of a key read from stdin, for BABEL_ADMIN_KEY_HASH."""
    key = sys.stdin.readline().strip()
    if not key:
        raise typer.BadParameter("give the key on standard input")
    typer.echo(digest(key))
