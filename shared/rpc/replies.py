"""Everything a worker writes back to Redis: replies, stream chunks, acks, dead letters.

A reply and the acknowledgement of its entry go out in one MULTI, so an entry is
never acknowledged without its reply, nor answered twice by one worker.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from shared.errors import ErrorInfo
from shared.messages.base import Message
from shared.messages.envelope import ENTRY_FIELD, Envelope, Reply, StreamChunk, encode
from shared.rpc.keys import Keys
from shared.settings import WorkerSettings

DeadRecord = dict[bytes, bytes]


class ReplyWriter:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        settings: WorkerSettings,
        service: str,
        worker: str,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._settings = settings
        self._service = service
        self._worker = worker
        self._stream = keys.requests(service)
        self._group = keys.group(service)

    def dead_record(
        self, entry_id: bytes, fields: dict[bytes, bytes], reason: str, deliveries: int
    ) -> DeadRecord:
        return {
            ENTRY_FIELD: fields.get(ENTRY_FIELD, b""),
            b"entry_id": entry_id,
            b"reason": reason.encode(),
            b"deliveries": str(deliveries).encode(),
            b"worker": self._worker.encode(),
        }

    def _queue_ack(self, pipe: Pipeline, entry_id: bytes, dead: DeadRecord | None) -> None:
        if dead is not None:
            record: Any = dead
            pipe.xadd(
                self._keys.dead_letters(self._service),
                record,
                maxlen=self._settings.dead_letter_maxlen,
                approximate=True,
            )
        pipe.xack(self._stream, self._group, entry_id)
        pipe.xdel(self._stream, entry_id)

    async def ack(
        self, entry_id: bytes, *, dead: DeadRecord | None = None, discard: str | None = None
    ) -> None:
        """Acknowledge without a reply (a cancelled stream, an undecodable entry)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            if discard is not None:
                pipe.delete(discard)
            self._queue_ack(pipe, entry_id, dead)
            await pipe.execute()

    async def finish(
        self,
        entry_id: bytes,
        envelope: Envelope,
        *,
        payload: bytes | None = None,
        error: ErrorInfo | None = None,
        seq: int = 0,
        dead: DeadRecord | None = None,
    ) -> None:
        """Write the reply (or a stream's last chunk) and acknowledge the entry, atomically."""
        async with self._redis.pipeline(transaction=True) as pipe:
            if envelope.stream:
                chunk = StreamChunk(seq=seq, error=error, done=True)
                pipe.xadd(envelope.reply_to, {ENTRY_FIELD: encode(chunk)})
            else:
                reply = Reply(id=envelope.id, payload=payload, error=error, worker=self._worker)
                pipe.rpush(envelope.reply_to, encode(reply))
            pipe.expire(envelope.reply_to, self._settings.reply_ttl_s)
            self._queue_ack(pipe, entry_id, dead)
            await pipe.execute()

    async def chunks_sent(self, envelope: Envelope) -> int:
        """Chunks already in a streaming reply (written by an earlier delivery)."""
        return int(await self._redis.xlen(envelope.reply_to))

    async def chunk(self, envelope: Envelope, seq: int, item: Message) -> bool:
        """Append one chunk to a streaming reply; True when the caller has cancelled."""
        chunk = StreamChunk(seq=seq, payload=encode(item))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(envelope.reply_to, {ENTRY_FIELD: encode(chunk)})
            pipe.expire(envelope.reply_to, self._settings.reply_ttl_s)
            pipe.exists(self._keys.cancel(envelope.id))
            *_, cancelled = await pipe.execute()
        return bool(cancelled)

    async def cancelled(self, envelope: Envelope) -> bool:
        """Whether the caller gave up on this request (it set the request's cancel key)."""
        return bool(await self._redis.exists(self._keys.cancel(envelope.id)))
