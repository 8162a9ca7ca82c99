"""Language identification payloads (served by the tasks service)."""

from __future__ import annotations

from shared.messages.base import Message, Method


class DetectRequest(Message, frozen=True, kw_only=True):
    texts: tuple[str, ...]
    top_k: int = 1


class LanguageScore(Message, frozen=True, kw_only=True):
    language: str
    """ISO 639-1 code where one exists, else the model's ISO 639-2/3 code."""
    confidence: float


class Detection(Message, frozen=True, kw_only=True):
    language: str
    confidence: float
    alternatives: tuple[LanguageScore, ...] = ()


class DetectResponse(Message, frozen=True, kw_only=True):
    detections: tuple[Detection, ...]
    model: str


DETECT: Method[DetectRequest, DetectResponse] = Method(
    "tasks", "detect", DetectRequest, DetectResponse
)
