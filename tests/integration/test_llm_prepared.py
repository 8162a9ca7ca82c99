"""The prepared SmolLM2-135M-Instruct folder loads offline with transformers and answers.

It is prepared by ``make models`` (``babelstack models prepare``) into the model cache; this
test does not prepare it (that takes a minute) and fails, never skips, when it is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.models.cache import FORMAT_CAUSAL_LM, SMOLLM2_135M, read_llm_record
from shared.models.llm_prepare import is_current
from shared.models.llm_sources import SMOLLM2_SOURCE
from shared.models.llm_verify import chat_greedy, load_causal_lm
from tests.support.retrieval import model_cache_dir


@pytest.fixture(scope="module")
def folder() -> Path:
    path = model_cache_dir() / SMOLLM2_135M
    if not (path / "config.json").is_file():
        pytest.fail(f"{path} is not prepared: run `make models` (babelstack models prepare)")
    return path


@pytest.fixture(scope="module")
def loaded(folder: Path) -> Iterator[tuple[Any, Any]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        yield load_causal_lm(folder)


def test_the_folder_is_recorded_as_verified(folder: Path) -> None:
    record = read_llm_record(folder)
    assert record is not None, f"no readable babelstack.json in {folder}: run `make models`"
    assert record.format == FORMAT_CAUSAL_LM
    assert record.verification.passed
    assert is_current(record, SMOLLM2_SOURCE, folder)
    assert record.architecture == "LlamaForCausalLM"
    assert "paris" in record.verification.checks[0].answer.lower()


def test_it_answers_the_capital_of_france_offline(loaded: tuple[Any, Any]) -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    tokenizer, model = loaded
    answer = chat_greedy(tokenizer, model, "What is the capital of France? Answer in one word.", 16)
    assert "paris" in answer.lower(), answer


def test_the_tokenizer_carries_its_chat_template(loaded: tuple[Any, Any], folder: Path) -> None:
    tokenizer, _ = loaded
    assert type(tokenizer).__name__ in {"TokenizersBackend", "PreTrainedTokenizerFast"}
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt.startswith("<|im_start|>system\n")
    assert prompt.endswith("<|im_start|>assistant\n")
    assert tokenizer.model_max_length == 8192
