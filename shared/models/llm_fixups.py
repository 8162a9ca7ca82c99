"""Settle the config files transformers 5 writes for a model converted from GGUF.

Pure functions on the decoded JSON (dicts), plus one that rewrites a saved folder:

- ``tokenizer_config.json``: transformers 5 names the class ``TokenizersBackend``, which
  transformers 4 and other readers do not know, keeps the chat template only in
  ``chat_template.jinja`` and writes ``model_max_length`` as 1e30 with load-time flags. The
  class becomes ``PreTrainedTokenizerFast`` (transformers 5 still loads it), the template is
  also put inline, the length is the model's context and the flags go.
- ``config.json``: transformers 5 writes the RoPE base only in ``rope_parameters``; older
  readers want a top-level ``rope_theta``. The GGUF's internal model name is replaced by
  the folder's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

TOKENIZER_CLASS = "PreTrainedTokenizerFast"
LOAD_TIME_KEYS = ("backend", "is_local", "local_files_only")
CHAT_TEMPLATE_FILE = "chat_template.jinja"


def fix_tokenizer_config(
    config: dict[str, Any], *, chat_template: str | None, model_max_length: int
) -> dict[str, Any]:
    """A copy of ``config`` that transformers 4 and 5 and vLLM read alike."""
    fixed = {k: v for k, v in config.items() if k not in LOAD_TIME_KEYS}
    fixed["tokenizer_class"] = TOKENIZER_CLASS
    fixed["model_max_length"] = model_max_length
    if chat_template is not None:
        fixed["chat_template"] = chat_template
    return fixed


def fix_model_config(config: dict[str, Any], *, name: str) -> dict[str, Any]:
    """A copy of ``config`` with a top-level ``rope_theta`` and ``_name_or_path`` = ``name``."""
    fixed = {k: v for k, v in config.items() if k != "_model_name_or_path"}
    rope = fixed.get("rope_parameters")
    if isinstance(rope, dict) and "rope_theta" in rope:
        fixed.setdefault("rope_theta", rope["rope_theta"])
    fixed["_name_or_path"] = name
    return fixed


def context_length(config: dict[str, Any]) -> int:
    """The model's context window from its ``config.json``."""
    value = config.get("max_position_embeddings")
    if not isinstance(value, int) or value <= 0:
        raise ValueError(f"config.json has no usable max_position_embeddings: {value!r}")
    return value


def _read_json(path: Path) -> dict[str, Any]:
    decoded = msgspec.json.decode(path.read_bytes())
    if not isinstance(decoded, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return decoded


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.write_bytes(msgspec.json.format(msgspec.json.encode(value)) + b"\n")


def fix_saved_folder(folder: Path, *, name: str) -> dict[str, Any]:
    """Rewrite ``config.json`` and ``tokenizer_config.json`` in ``folder``; returns the config.

    Files get mode 644 and folders 755, so a cache prepared by one user can be read by another.
    """
    model_config = fix_model_config(_read_json(folder / "config.json"), name=name)
    _write_json(folder / "config.json", model_config)
    template_file = folder / CHAT_TEMPLATE_FILE
    template = template_file.read_text(encoding="utf-8") if template_file.is_file() else None
    tokenizer_path = folder / "tokenizer_config.json"
    tokenizer_config = fix_tokenizer_config(
        _read_json(tokenizer_path),
        chat_template=template,
        model_max_length=context_length(model_config),
    )
    _write_json(tokenizer_path, tokenizer_config)
    for path in (folder, *folder.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return model_config
