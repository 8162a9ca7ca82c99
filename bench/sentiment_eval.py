"""Sentiment quality on UMSAB: macro-F1 per language and pooled, on the validation split.

Heads train on the **train** split only. Candidate head settings are compared by 5-fold
cross-validation on train (folds stratified by language and label); the best by CV
macro-F1 is then trained on all of train and measured once on val, beside the published
references (test split) and REFERENCES.md's in-process references (val split).
``--val-all`` also measures every candidate on val (for the report only: choosing on
val would overfit its 2,592 noisy examples). With ``--installed`` the head that
``babelstack train sentiment`` put in the model cache is measured too (what the tasks
service serves).

The pipeline is the service's: texts normalised (``@user``, links, ``\\uXXXX``
escapes), embedded with e5 ``query: ``, a head from ``services.tasks.heads``.
Embeddings are cached in the head's folder of the model cache.

    .venv/bin/python bench/sentiment_eval.py [--data services/tasks/sentiment/data/umsab]
        [--candidates lr,mlp,mlp-x5] [--folds 5] [--val-all] [--installed] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # ``bench`` as a package

from services.launcher.train_cli import DEFAULT_DATA
from services.tasks.heads import HeadConfig, train_head
from services.tasks.sentiment.artifact import load_head
from services.tasks.sentiment.settings import DEFAULT_HEAD
from services.tasks.sentiment.training import (
    DEFAULT_CONFIG,
    macro_f1,
    split_features,
    split_metrics,
)
from services.tasks.sentiment.umsab import LABELS
from shared.models.cache import E5_SMALL, ModelCacheSettings, resolve_model_path
from shared.models.embedder import SentenceTransformerEmbedder
from shared.settings import load_settings

PUBLISHED_TEST = {"fastText": 51.0, "XLM-R": 66.8, "XLM-T": 69.4}
"""Fine-tuned models, all languages, UMSAB test split (Barbieri et al., 2022)."""
QUALITY_VAL = {"LR (e5, REFERENCES.md)": 59.6, "MLP (e5, REFERENCES.md)": 61.4}
"""In-process references on the val split (bench/REFERENCES.md)."""

MLP = HeadConfig(
    hidden=512,
    dropout=0.1,
    epochs=10,
    batch_size=32,
    lr=1e-3,
    weight_decay=0.01,
    label_smoothing=0.1,
)
CANDIDATES: dict[str, HeadConfig] = {
    "lr": HeadConfig(epochs=300, lr=0.01, weight_decay=0.01),
    "mlp": MLP,
    "mlp-x5": DEFAULT_CONFIG,
    "mlp-wide-x5": HeadConfig(
        hidden=1024,
        dropout=0.2,
        epochs=15,
        batch_size=32,
        lr=1e-3,
        weight_decay=0.01,
        label_smoothing=0.1,
        seeds=(0, 1, 2, 3, 4),
    ),
}


def folds_of(labels: np.ndarray, languages: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Fold index per example, stratified by (language, label)."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), dtype=np.int64)
    for lang in np.unique(languages):
        for label in np.unique(labels):
            rows = np.flatnonzero((languages == lang) & (labels == label))
            rng.shuffle(rows)
            fold[rows] = np.arange(len(rows)) % k
    return fold


def cross_validate(
    x: np.ndarray, y: np.ndarray, languages: np.ndarray, config: HeadConfig, k: int
) -> float:
    fold = folds_of(y, languages, k)
    predicted = np.zeros_like(y)
    for f in range(k):
        head = train_head(x[fold != f], y[fold != f], LABELS, config)
        predicted[fold == f] = head.predict_proba(x[fold == f]).argmax(axis=1)
    return 100 * macro_f1(y, predicted)


def _row(name: str, metrics: dict[str, float], overall: float, languages: list[str]) -> str:
    cells = " ".join(f"{metrics[lang]:5.1f}" for lang in languages)
    return f"{name:<24} {cells}  {overall:5.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", default=E5_SMALL)
    parser.add_argument(
        "--head", default=DEFAULT_HEAD, help="cache folder (embeddings, --installed)"
    )
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--val-all", action="store_true", help="measure every candidate on val")
    parser.add_argument("--installed", action="store_true", help="also the head in the cache")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    cache = load_settings(ModelCacheSettings, os.environ)
    folder = cache.root / args.head
    embedder = SentenceTransformerEmbedder(
        args.model,
        resolve_model_path(args.model, cache.root, "--model"),
        device="cpu",
        threads=args.threads,
        batch_size=32,
        prefixes=("query: ", "passage: "),
    )
    embedder.warm_up()
    train, x_train = split_features(embedder, args.data, "train", folder)
    val, x_val = split_features(embedder, args.data, "val", folder)
    y_train, y_val = np.asarray(train.labels), np.asarray(val.labels)
    train_langs = np.asarray(train.languages)
    languages = sorted(set(val.languages))

    names = [name.strip() for name in args.candidates.split(",") if name.strip()]
    print(f"{args.folds}-fold cross-validation on train ({len(y_train)} texts), macro-F1:")
    cv: dict[str, float] = {}
    for name in names:
        started = time.perf_counter()
        cv[name] = cross_validate(x_train, y_train, train_langs, CANDIDATES[name], args.folds)
        print(f"  {name:<14} {cv[name]:5.1f}   ({time.perf_counter() - started:.0f} s)")
    best = max(cv, key=lambda name: cv[name])
    print(f"chosen by CV: {best}\n")

    print(f"UMSAB val ({len(y_val)} texts), macro-F1 per language and pooled over all:")
    print(f"{'':<24} " + " ".join(f"{lang:>5}" for lang in languages) + "    all")
    measured = [best] + ([n for n in names if n != best] if args.val_all else [])
    results: dict[str, dict[str, object]] = {}
    for name in measured:
        head = train_head(x_train, y_train, LABELS, CANDIDATES[name])
        metrics = split_metrics(y_val, head.predict_proba(x_val).argmax(axis=1), val.languages)
        label = f"{name} (CV {cv[name]:.1f})" + (" *" if name == best else "")
        print(_row(label, metrics.per_language_macro_f1, metrics.macro_f1, languages))
        results[name] = {
            "cv_macro_f1": round(cv[name], 2),
            "val_macro_f1": metrics.macro_f1,
            "val_per_language": metrics.per_language_macro_f1,
        }
    if args.installed:
        _, installed = load_head(folder)
        metrics = split_metrics(y_val, installed.predict_proba(x_val).argmax(axis=1), val.languages)
        print(_row("installed head", metrics.per_language_macro_f1, metrics.macro_f1, languages))
        results["installed"] = {
            "val_macro_f1": metrics.macro_f1,
            "val_per_language": metrics.per_language_macro_f1,
        }
    print("\nreferences (all languages, macro-F1):")
    for name, value in QUALITY_VAL.items():
        print(f"  {name:<22} {value:5.1f}  val")
    for name, value in PUBLISHED_TEST.items():
        print(f"  {name:<22} {value:5.1f}  test (published, fine-tuned)")
    if args.json:
        args.json.write_text(json.dumps({"chosen": best, "results": results}, indent=2))


if __name__ == "__main__":
    main()
