"""Config fix-ups for causal-LM folders converted from GGUF, and the chat-check matcher."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from shared.models.cache import (
    ChatCheck,
    ChatVerification,
    LlmRecord,
    ModelCacheSettings,
    SourcePart,
    list_cached,
    read_any_record,
    read_llm_record,
    read_record,
    write_record,
)
from shared.models.llm_fixups import (
    context_length,
    fix_model_config,
    fix_saved_folder,
    fix_tokenizer_config,
)
from shared.models.llm_verify import answer_has

# What transformers 5.19 writes for a model loaded from GGUF (shortened).
SAVED_TOKENIZER_CONFIG = {
    "backend": "tokenizers",
    "bos_token": "<|im_start|>",
    "eos_token": "<|im_end|>",
    "is_local": True,
    "local_files_only": False,
    "model_max_length": 1e30,
    "pad_token": "<|im_end|>",
    "tokenizer_class": "TokenizersBackend",
}
SAVED_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "max_position_embeddings": 8192,
    "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"},
    "_model_name_or_path": "Smollm2 135M 8k Lc100K Mix1 Ep2",
}
TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


def test_tokenizer_config_is_readable_by_older_readers() -> None:
    fixed = fix_tokenizer_config(
        SAVED_TOKENIZER_CONFIG, chat_template=TEMPLATE, model_max_length=8192
    )
    assert fixed == {
        "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>",
        "model_max_length": 8192,
        "pad_token": "<|im_end|>",
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": TEMPLATE,
    }
    assert SAVED_TOKENIZER_CONFIG["tokenizer_class"] == "TokenizersBackend"  # not mutated


def test_tokenizer_config_keeps_an_inline_template_when_there_is_no_file() -> None:
    saved = {**SAVED_TOKENIZER_CONFIG, "chat_template": "inline"}
    fixed = fix_tokenizer_config(saved, chat_template=None, model_max_length=4)
    assert fixed["chat_template"] == "inline"


def test_model_config_gets_rope_theta_and_the_folder_name() -> None:
    fixed = fix_model_config(SAVED_CONFIG, name="SmolLM2-135M-Instruct")
    assert fixed["rope_theta"] == 100000.0
    assert fixed["_name_or_path"] == "SmolLM2-135M-Instruct"
    assert "_model_name_or_path" not in fixed
    assert fixed["rope_parameters"] == SAVED_CONFIG["rope_parameters"]
    assert fix_model_config({"rope_theta": 5.0}, name="x")["rope_theta"] == 5.0


def test_context_length_must_be_a_positive_int() -> None:
    assert context_length(SAVED_CONFIG) == 8192
    with pytest.raises(ValueError, match="max_position_embeddings"):
        context_length({})


def test_fix_saved_folder_rewrites_both_files(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(SAVED_CONFIG))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(SAVED_TOKENIZER_CONFIG))
    (tmp_path / "chat_template.jinja").write_text(TEMPLATE)
    config = fix_saved_folder(tmp_path, name="fake-model")
    assert config["_name_or_path"] == "fake-model"
    tokenizer = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert tokenizer["chat_template"] == TEMPLATE
    assert tokenizer["model_max_length"] == 8192
    assert (tmp_path / "config.json").stat().st_mode & 0o777 == 0o644


def test_answer_has_every_expected_word() -> None:
    assert answer_has("The capital of France is Paris.", ("paris",))
    assert answer_has("The dog sleeps in the garden.", ("dog", "garden"))
    assert not answer_has("The dog sleeps in the yard.", ("dog", "garden"))


def _llm_record() -> LlmRecord:
    check = ChatCheck(prompt="q", expected=("paris",), answer="Paris", seconds=1.0, passed=True)
    return LlmRecord(
        name="fake-llm",
        format="transformers-causal-lm",
        source_package="fake-pkg",
        source_version="1",
        source_parts=(SourcePart(package="fake-pkg", version="1", member="m", size_bytes=4),),
        gguf_sha256="0" * 64,
        gguf_size_bytes=4,
        prepared_at="2026-01-01T00:00:00+00:00",
        prepare_seconds=1.0,
        architecture="LlamaForCausalLM",
        dtype="bfloat16",
        max_position_embeddings=8192,
        verification=ChatVerification(reference="fake", checks=(check,), passed=True),
    )


def test_llm_records_are_told_apart_from_embedding_records(tmp_path: Path) -> None:
    settings = ModelCacheSettings(dir=str(tmp_path))
    folder = tmp_path / "fake-llm"
    folder.mkdir()
    record = _llm_record()
    write_record(folder, record)
    assert read_llm_record(folder) == record
    assert read_any_record(folder) == record
    assert read_record(folder) is None  # not an embedding record
    (tmp_path / ".downloads").mkdir()
    (tmp_path / "not-prepared").mkdir()
    listed = {e.name: e for e in list_cached(settings)}
    assert sorted(listed) == ["fake-llm", "not-prepared"]
    assert listed["fake-llm"].verified
    assert listed["fake-llm"].record == record
    assert not listed["not-prepared"].verified
    assert settings.downloads == tmp_path / ".downloads"


def test_a_record_without_a_known_shape_reads_as_none(tmp_path: Path) -> None:
    (tmp_path / "babelstack.json").write_bytes(msgspec.json.encode({"format": "other"}))
    assert read_any_record(tmp_path) is None
