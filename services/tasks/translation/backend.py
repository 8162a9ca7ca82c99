"""What every translation backend offers: its languages, warm-up, and sentence translation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol


class Translator(Protocol):
    backend: str
    """``llm`` or ``seq2seq``."""

    @property
    def model(self) -> str:
        """The model that translates (an id or a folder name)."""
        ...

    def languages(self) -> Mapping[str, tuple[str, ...]]:
        """Source language code -> the codes it can be translated into."""
        ...

    async def warm_up(self) -> None:
        """Load the model or connect to the service that has it."""

    async def close(self) -> None:
        """Free what ``warm_up`` took."""

    async def translate(
        self,
        sentences: Sequence[str],
        source: str,
        target: str,
        *,
        alternatives: int,
        deadline: float,
    ) -> list[tuple[str, ...]]:
        """Per sentence: its translation, then up to ``alternatives`` other candidates."""
        ...


def all_pairs(codes: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Every code can be translated into every other."""
    return {code: tuple(other for other in codes if other != code) for code in codes}
