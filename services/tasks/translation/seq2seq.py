"""The ``seq2seq`` backend: a dedicated translation model run with transformers.

Three families, told apart by the tokenizer's vocabulary:

* **NLLB-200** (language tokens such as ``deu_Latn``) and **M2M100** (``__de__``): the
  source is ``[source token] + tokens + [eos]`` and decoding is forced to start with the
  target's token (``forced_bos_token_id``), as these models were trained;
* **Marian** (no language tokens): one pair per model, named by the ``pair`` setting.

Sentences are sorted by length and translated in batches; generation is greedy unless
alternatives are asked for (then beam search returns that many more hypotheses).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.tasks.translation.settings import TranslationSettings
from shared.errors import BabelError, ErrorCode
from shared.languages import LANGUAGES, nllb_code


@dataclass(frozen=True, slots=True)
class LanguageTokens:
    """How a model names languages: the token of each supported code (none for Marian)."""

    family: str
    tokens: Mapping[str, str]
    pairs: Mapping[str, tuple[str, ...]]

    @classmethod
    def of(cls, vocabulary: Mapping[str, int], pair: str) -> LanguageTokens:
        nllb = {
            code: token
            for code in LANGUAGES
            if (token := nllb_code(code)) is not None and token in vocabulary
        }
        if nllb:
            return cls("nllb", nllb, _every_pair(nllb))
        m2m = {code: f"__{code}__" for code in LANGUAGES if f"__{code}__" in vocabulary}
        if m2m:
            return cls("m2m100", m2m, _every_pair(m2m))
        source, _, target = pair.partition("-")
        if not source or not target:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                "the model has no language tokens (a Marian model): set "
                "BABEL_TRANSLATION_PAIR=<source>-<target>, e.g. de-en",
                field="pair",
            )
        return cls("marian", {}, {source: (target,)})


def _every_pair(tokens: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    return {code: tuple(other for other in tokens if other != code) for code in tokens}


class Seq2SeqTranslator:
    backend = "seq2seq"

    def __init__(self, settings: TranslationSettings) -> None:
        if not settings.model:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                "the seq2seq backend needs BABEL_TRANSLATION_MODEL (a model id or folder)",
                field="model",
            )
        self._settings = settings
        self._tokenizer: Any = None
        self._model: Any = None
        self._tokens: LanguageTokens | None = None
        self._lock = asyncio.Lock()

    @property
    def model(self) -> str:
        path = Path(self._settings.model)
        return path.name if path.is_dir() else self._settings.model

    def languages(self) -> Mapping[str, tuple[str, ...]]:
        return self._ready()[2].pairs

    async def warm_up(self) -> None:
        await asyncio.to_thread(self._load)

    async def close(self) -> None:
        self._model = None
        self._tokenizer = None

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        if self._settings.seq2seq_threads > 0:
            torch.set_num_threads(self._settings.seq2seq_threads)
        tokenizer = AutoTokenizer.from_pretrained(self._settings.model)
        model = AutoModelForSeq2SeqLM.from_pretrained(self._settings.model)
        model.to(self._settings.seq2seq_device).eval()
        self._tokens = LanguageTokens.of(tokenizer.get_vocab(), self._settings.pair)
        self._tokenizer, self._model = tokenizer, model

    def _ready(self) -> tuple[Any, Any, LanguageTokens]:
        if self._model is None or self._tokens is None:
            raise BabelError(
                ErrorCode.UNAVAILABLE, "the translation model is loading", retryable=True
            )
        return self._tokenizer, self._model, self._tokens

    async def translate(
        self,
        sentences: Sequence[str],
        source: str,
        target: str,
        *,
        alternatives: int,
        deadline: float,
    ) -> list[tuple[str, ...]]:
        async with self._lock:  # one model, its threads already use every core
            return await asyncio.to_thread(self._translate, sentences, source, target, alternatives)

    def encode(self, sentence: str, source: str) -> list[int]:
        """Token ids of ``sentence`` as the model expects its source."""
        tokenizer, _, tokens = self._ready()
        if tokens.family == "marian":
            ids: list[int] = tokenizer(sentence).input_ids
            return ids
        body = tokenizer(sentence, add_special_tokens=False).input_ids
        source_id = tokenizer.convert_tokens_to_ids(tokens.tokens[source])
        return [source_id, *body, tokenizer.eos_token_id]

    def _translate(
        self, sentences: Sequence[str], source: str, target: str, alternatives: int
    ) -> list[tuple[str, ...]]:
        import torch

        tokenizer, model, tokens = self._ready()
        beams = max(self._settings.seq2seq_beams, alternatives + 1)
        options: dict[str, Any] = {
            "num_beams": beams,
            "num_return_sequences": alternatives + 1,
            "do_sample": False,
        }
        if tokens.family != "marian":
            options["forced_bos_token_id"] = tokenizer.convert_tokens_to_ids(tokens.tokens[target])
        encoded = [self.encode(sentence, source) for sentence in sentences]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        results: list[tuple[str, ...]] = [()] * len(encoded)
        size = max(1, self._settings.seq2seq_batch_size)
        for start in range(0, len(order), size):
            batch = order[start : start + size]
            inputs = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt")
            longest = int(inputs["input_ids"].shape[1])
            with torch.inference_mode():
                output = model.generate(
                    **inputs.to(model.device), max_new_tokens=16 + 2 * longest, **options
                )
            texts = tokenizer.batch_decode(output, skip_special_tokens=True)
            per = alternatives + 1
            for row, index in enumerate(batch):
                hypotheses = [t.strip() for t in texts[row * per : (row + 1) * per]]
                results[index] = tuple(hypotheses)
        return results
