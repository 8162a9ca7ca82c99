"""``babelstack train``: train the heads the services load, offline and deterministically.

``babelstack train sentiment`` trains the sentiment head on UMSAB's train split (shipped in
the package: ``services/tasks/sentiment/data/umsab``) with the prepared embedding model and
saves it in the model cache (``BABEL_MODELS_DIR``), where the tasks service loads it. With
the same data, model and settings it is a no-op.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from services.tasks.sentiment.umsab import UMSAB_DATA
from shared.errors import BabelError
from shared.models.cache import E5_SMALL, ModelCacheSettings, resolve_model_path
from shared.settings import load_settings

train_app = typer.Typer(help="Train the classifier heads the services load.", no_args_is_help=True)

DEFAULT_DATA = UMSAB_DATA
"""The UMSAB train and val splits shipped in the package."""


@train_app.command()
def sentiment(
    data: Annotated[
        Path, typer.Option(help="UMSAB folder (one folder per language, train/val files).")
    ] = DEFAULT_DATA,
    head: Annotated[str, typer.Option(help="Folder name of the head in the model cache.")] = (
        "sentiment-umsab-e5-small"
    ),
    model: Annotated[str, typer.Option(help="Embedding model (as the tasks service's).")] = (
        E5_SMALL
    ),
    threads: Annotated[int, typer.Option(help="Torch threads; 0 keeps torch's default.")] = 0,
    epochs: Annotated[
        int | None,
        typer.Option(min=1, help="Epochs per member (default: the tuned setting, 10)."),
    ] = None,
    seeds: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Ensemble members, seeds 0..n-1 (default: the tuned setting, 5). Fewer members "
            "or epochs train quicker and a little worse; the head records its setting.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Train even if up to date.")] = False,
) -> None:
    """Train the sentiment head (negative/neutral/positive) on frozen multilingual embeddings."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from services.launcher.progress import TerminalProgress
    from services.tasks.sentiment.artifact import head_folder
    from services.tasks.sentiment.training import DEFAULT_CONFIG, is_up_to_date, train_sentiment
    from shared.models.embedder import SentenceTransformerEmbedder

    cache = load_settings(ModelCacheSettings, os.environ)
    folder = head_folder(cache.root, head)
    config = msgspec.structs.replace(
        DEFAULT_CONFIG,
        epochs=epochs or DEFAULT_CONFIG.epochs,
        seeds=tuple(range(seeds)) if seeds else DEFAULT_CONFIG.seeds,
    )
    if not force and is_up_to_date(folder, data, model, config):
        typer.echo(f"{folder.name}: up to date (same data, model and settings; --force retrains)")
        return
    try:
        embedder = SentenceTransformerEmbedder(
            model,
            resolve_model_path(model, cache.root, "--model"),
            device="cpu",
            threads=threads,
            batch_size=32,
            prefixes=("query: ", "passage: ") if "e5" in model.lower() else ("", ""),
        )
        progress = TerminalProgress()
        with progress.task(f"loading {model}"):
            embedder.warm_up()
        record = train_sentiment(embedder, data, folder, config=config, progress=progress)
    except BabelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"{folder.name}: trained in {record.train_seconds:.1f} s -> {folder}")
    typer.echo(f"  train  macro-F1 {record.train.macro_f1:.1f} ({record.train.examples} texts)")
    if record.val is not None:
        per_language = ", ".join(
            f"{k} {v:.1f}" for k, v in record.val.per_language_macro_f1.items()
        )
        typer.echo(f"  val    macro-F1 {record.val.macro_f1:.1f} ({per_language})")
