"""Base struct for payloads and the typed method descriptor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec


class Message(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every payload that crosses Redis: frozen, typed, no unknown fields."""


Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


@dataclass(frozen=True, slots=True)
class Method(Generic[Req, Resp]):
    """One RPC method: which service serves it and the types of its request and reply.

    ``streaming`` methods answer with a sequence of ``Resp`` chunks instead of one ``Resp``.
    """

    service: str
    name: str
    request: type[Req]
    response: type[Resp]
    streaming: bool = False

    @property
    def kind(self) -> str:
        return f"{self.service}.{self.name}"
