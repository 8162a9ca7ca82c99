"""Speed of the retrieval service: embeddings throughput, search latency and IVF recall.

(a) Sentences/s embedded through the gateway (``POST /v1/embeddings``, one sentence a
    request, ``--clients`` concurrent clients) against sentence-transformers ``encode``
    in-process on the same sentences (batch 32, ``query: `` prefix, same prepared model
    folder). Both share this host's CPUs, so they run one after the other: the in-process
    baseline first, before the stack starts. The service's vectors are also compared with
    the in-process ones (cosine), which checks prefixes and normalisation on the way.
(b) Dense search: p50/p99 latency (1 client) and recall@10 against exact search.
    * In-process, the FAISS layer the service uses (``services.retrieval.vectors.
      VectorIndex``), exact flat vs IVF at each ``--sizes``: up to ``--real`` chunks the
      vectors are real e5 passage vectors of real short texts (Tatoeba + UMSAB tweets);
      beyond, the real vectors are topped up with noisy copies (Gaussian noise, then
      renormalised; noise sized so a copy is as similar to its source as a real text is
      to its nearest real neighbour, median). Queries are real XQuAD questions.
    * Through the API, for sizes up to ``--api-max``: the same real texts ingested into a
      collection (one document = one chunk) of a retrieval service started with
      ``BABEL_RETRIEVAL_EXACT_MAX_CHUNKS=--exact-max-chunks`` (so it moves to IVF), then
      dense searches by one client; recall@10 against exact search over the in-process
      vectors of the same texts. The service is restarted (same data) for each
      ``--nprobe-fractions`` value (``BABEL_RETRIEVAL_IVF_NPROBE_FRACTION``) with no scan
      floor (``BABEL_RETRIEVAL_IVF_MIN_SCANNED=0``), then once with the first fraction and
      ``--min-scanned`` (default: the service's own setting); in-process IVF rows use the
      same ``VectorIndex`` nprobe rule with both floors.

    .venv/bin/python bench/retrieval_speed.py [--sizes 10000,100000] [--clients 32]
        [--nprobe-fractions 0.0625,0.125,0.1875,0.25] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # ``bench`` as a package
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import faiss
import numpy as np

from bench.stack import (
    DATA,
    MODEL,
    MODELS,
    RetrievalApi,
    bounded_map,
    load_xquad,
    machine_context,
    real_sentences,
    running_stack,
)
from services.retrieval.settings import RetrievalSettings
from services.retrieval.vectors import VectorIndex
from shared.settings import load_settings

K = 10
AIM_RATIO, AIM_RECALL = 0.8, 0.95
QUESTION_LANGUAGES = ("en", "de", "es", "zh", "ar")


@dataclass
class Row:
    size: int
    vectors: str
    path: str
    index: str
    nlist: int
    nprobe: int
    p50_ms: float
    p99_ms: float
    recall: float
    fraction: float | None = None
    real_share: float | None = None
    min_scanned: int = 0
    """Share of the exact top-10 that are real vectors (sizes past ``--real``)."""


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def recall_at_k(found: Sequence[Sequence[int]], truth: np.ndarray) -> float:
    hits = sum(len(set(f[:K]) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / (len(found) * K)


class Encoder:
    """sentence-transformers in-process, as the service loads it (same prepared folder)."""

    def __init__(self, path: Path) -> None:
        from sentence_transformers import SentenceTransformer

        self.model: Any = SentenceTransformer(str(path), device="cpu")
        self.encode(["warm up"] * 32, "query: ")

    def encode(self, texts: Sequence[str], prefix: str, batch_size: int = 32) -> np.ndarray:
        vectors = self.model.encode(
            [prefix + t for t in texts],
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


# ---------------------------------------------------------------------------- vectors


def nn_similarity(vectors: np.ndarray, sample: int = 2000) -> float:
    """Median cosine of a real vector to its nearest other real vector."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    probe = vectors[: min(sample, len(vectors))]
    scores, _ = index.search(probe, 2)
    return float(np.median(scores[:, 1]))


def augmented(base: np.ndarray, size: int, cosine: float, seed: int) -> np.ndarray:
    """``base`` plus ``size - len(base)`` noisy renormalised copies of its rows.

    For a unit vector plus isotropic noise of variance s² a dimension, the expected
    cosine to the source is 1 / sqrt(1 + d s²); s is chosen to reach ``cosine``.
    """
    if size <= len(base):
        return base[:size]
    rng = np.random.default_rng(seed)
    dim = base.shape[1]
    sigma = math.sqrt((1 / cosine**2 - 1) / dim)
    extra = size - len(base)
    sources = base[np.arange(extra) % len(base)]
    noisy = sources + rng.normal(0.0, sigma, size=sources.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    return np.ascontiguousarray(np.vstack([base, noisy]), dtype=np.float32)


def exact_truth(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    _, ids = index.search(queries, K)
    return np.asarray(ids)


def time_index(index: VectorIndex, queries: np.ndarray) -> tuple[list[list[int]], list[float]]:
    """One query at a time, as the service searches: ids found and seconds per query."""
    for q in queries[:20]:  # warm-up
        index.search(q[None, :], K)
    found: list[list[int]] = []
    samples: list[float] = []
    for q in queries:
        started = time.perf_counter()
        result = index.search(q[None, :], K)[0]
        samples.append(time.perf_counter() - started)
        found.append([i for i, _ in result])
    return found, samples


def in_process_layer(
    size: int,
    label: str,
    vectors: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    fractions: Sequence[float],
    scratch: Path,
    real_n: int,
    min_scanned_values: Sequence[int],
) -> list[Row]:
    dim = vectors.shape[1]
    ids = np.arange(len(vectors), dtype=np.int64)
    flat = VectorIndex(dim, exact_max=len(vectors), nprobe_fraction=fractions[0])
    flat.rebuild(ids, vectors, generation=1)
    found, samples = time_index(flat, queries)
    p50, p99 = percentiles(samples)
    real_share = float(np.mean(truth < real_n)) if len(vectors) > real_n else None
    rows = [
        Row(size, label, "in-process", "flat", 0, 0, p50, p99, recall_at_k(found, truth),
            None, real_share)
    ]  # fmt: skip
    started = time.perf_counter()
    ivf = VectorIndex(dim, exact_max=0, nprobe_fraction=fractions[0])
    ivf.rebuild(ids, vectors, generation=1)
    print(f"  {size:,}: IVF built (trained) in {time.perf_counter() - started:.1f} s", flush=True)
    path = scratch / f"ivf-{size}.faiss"
    ivf.save(path)
    loaded: Any = faiss.read_index(str(path))
    nlist = int(loaded.nlist)
    for min_scanned in min_scanned_values:
        for fraction in fractions:  # what a service restart with these settings would load
            index = load_ivf(path, fraction, min_scanned)
            found, samples = time_index(index, queries)
            p50, p99 = percentiles(samples)
            rows.append(
                Row(size, label, "in-process", "ivf", nlist, index.nprobe, p50, p99,
                    recall_at_k(found, truth), fraction, None, min_scanned)
            )  # fmt: skip
    return rows


def load_ivf(path: Path, fraction: float, min_scanned: int) -> VectorIndex:
    """An IVF snapshot as the service loads it with these settings (its ``nprobe`` rule)."""
    loaded: Any = faiss.read_index(str(path))
    index = VectorIndex(loaded.d, 0, fraction, min_scanned)
    if not index.load(path) or index.kind != "ivf":
        raise RuntimeError(f"could not load the IVF snapshot {path}")
    return index


# ---------------------------------------------------------------------------- service


async def service_embeddings(
    base_url: str, sentences: Sequence[str], clients: int
) -> tuple[float, float, np.ndarray, int]:
    """Sentences/s with ``clients`` concurrent one-sentence requests (and the vectors);
    then, to tell per-request costs from the model's, 32 sentences a request, 1 client."""
    async with RetrievalApi(base_url, connections=clients) as api:

        async def one(text: str) -> list[float]:
            return (await api.embed(text))[0]

        await bounded_map(list(sentences[: 2 * clients]), one, clients)  # warm-up
        started = time.perf_counter()
        vectors = await bounded_map(sentences, one, clients)
        rate = len(sentences) / (time.perf_counter() - started)
        started = time.perf_counter()
        for start in range(0, len(sentences), 32):
            await api.embed(list(sentences[start : start + 32]))
        batched = len(sentences) / (time.perf_counter() - started)
        return rate, batched, np.asarray(vectors, dtype=np.float32), api.retried


async def service_ingest(
    base_url: str, name: str, texts: Sequence[str], batch: int
) -> tuple[float, dict[str, Any]]:
    async with RetrievalApi(base_url) as api:
        await api.create_collection(name)
        started = time.perf_counter()
        chunks = await api.ingest(
            name, [(str(i), t) for i, t in enumerate(texts)], max_chars=5000, batch=batch
        )
        seconds = time.perf_counter() - started
        if chunks != len(texts):
            print(f"  WARNING: {chunks} chunks for {len(texts)} texts", flush=True)
        if api.retried:
            print(f"  {api.retried} ingest requests retried; first error: {api.errors[0]}")
        return seconds, {**await api.describe(name), "retried": api.retried}


async def service_search(
    base_url: str, name: str, queries: Sequence[str]
) -> tuple[list[list[int]], list[float]]:
    """One client, dense mode, k = 10: ids found and seconds per request."""
    async with RetrievalApi(base_url, connections=1) as api:
        for q in queries[:20]:  # warm-up
            await api.search(name, q, "dense", K)
        found: list[list[int]] = []
        samples: list[float] = []
        for q in queries:
            started = time.perf_counter()
            ids, _ = await api.search(name, q, "dense", K)
            samples.append(time.perf_counter() - started)
            found.append([int(i) for i in ids])
        return found, samples


def service_snapshots(state: Path) -> list[Path]:
    """Each collection's index snapshot, by collection id (creation order), read from the
    service's data folder after it stopped (the HTTP API reports only the index type)."""
    paths = (state / "data" / "retrieval" / "indexes").glob("*.faiss")
    return sorted(paths, key=lambda p: int(p.stem) if p.stem.isdigit() else 0)


def in_process_pipeline(
    encoder: Encoder,
    vectors: np.ndarray,
    queries: Sequence[str],
    fraction: float,
    exact_max: int,
    min_scanned: int,
) -> tuple[float, float]:
    """What a dense search costs without the pipeline: encode one query, search the index."""
    index = VectorIndex(vectors.shape[1], exact_max, fraction, min_scanned)
    index.rebuild(np.arange(len(vectors), dtype=np.int64), vectors, generation=1)
    for q in queries[:20]:  # warm-up
        index.search(encoder.encode([q], "query: ", batch_size=1), K)
    samples = []
    for q in queries:
        started = time.perf_counter()
        vector = encoder.encode([q], "query: ", batch_size=1)
        index.search(vector, K)
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def run_service(
    args: argparse.Namespace,
    fractions: Sequence[float],
    sentences: Sequence[str],
    local_vectors: np.ndarray,
    texts: Sequence[str],
    api_sizes: Sequence[int],
    corpus: np.ndarray,
    query_vectors: np.ndarray,
    queries: Sequence[str],
    rows: list[Row],
) -> dict[str, Any]:
    """(a) through the gateway, then (b) for ``api_sizes``: one stack per IVF setting
    (each fraction with no scan floor, then the first fraction with ``min_scanned``),
    restarted on the same data folder (the index snapshot is loaded, not rebuilt)."""
    state = Path(tempfile.mkdtemp(prefix="babel-bench-speed-"))
    service: dict[str, Any] = {}
    settings = [(f, 0) for f in fractions]
    if args.min_scanned:
        settings.append((fractions[0], args.min_scanned))
    ok = False
    try:
        for n, (fraction, min_scanned) in enumerate(settings):
            env = {
                "BABEL_RETRIEVAL_EXACT_MAX_CHUNKS": str(args.exact_max_chunks),
                "BABEL_RETRIEVAL_IVF_NPROBE_FRACTION": str(fraction),
                "BABEL_RETRIEVAL_IVF_MIN_SCANNED": str(min_scanned),
            }
            print(f"\nservice with {env} ...", flush=True)
            with running_stack(env, state_dir=state) as stack:
                if n == 0:
                    rate, batched, remote, retried = asyncio.run(
                        service_embeddings(stack.base_url, sentences, args.clients)
                    )
                    cos = np.sum(remote * local_vectors, axis=1)
                    service["embeddings"] = {
                        "service_per_s": rate,
                        "service_32_a_request_1_client_per_s": batched,
                        "cosine_min": float(cos.min()),
                        "cosine_mean": float(cos.mean()),
                        "retried": retried,
                    }
                    print(f"  (a) {args.clients} clients: {rate:.1f} sentences/s", flush=True)
                    for size in api_sizes:
                        seconds, info = asyncio.run(
                            service_ingest(
                                stack.base_url, f"speed-{size}", texts[:size], args.ingest_batch
                            )
                        )
                        service[f"ingest {size}"] = {"seconds": seconds, **info}
                        print(
                            f"  ingested {size:,} texts in {seconds:.0f} s"
                            f" ({size / seconds:.0f}/s): {info['index_type']}",
                            flush=True,
                        )
                for size in api_sizes:
                    truth = exact_truth(corpus[:size], query_vectors)
                    found, samples = asyncio.run(
                        service_search(stack.base_url, f"speed-{size}", queries)
                    )
                    p50, p99 = percentiles(samples)
                    kind = str(service[f"ingest {size}"]["index_type"]).removeprefix("faiss-")
                    row = Row(size, "real", "service HTTP dense (embeds query)", kind,
                              0, 0, p50, p99, recall_at_k(found, truth), fraction, None,
                              min_scanned)  # fmt: skip
                    rows.append(row)
                    print(f"  {size:,}: p50 {p50:.1f} ms, recall@10 {row.recall:.3f}", flush=True)
            if n == 0:  # the IVF the service built (trained when it crossed the threshold)
                snapshots = dict(zip(api_sizes, service_snapshots(state), strict=False))
                for size, path in snapshots.items():
                    if str(service[f"ingest {size}"]["index_type"]) == "faiss-ivf":
                        service[f"ingest {size}"]["nlist"] = int(
                            faiss.extract_index_ivf(faiss.read_index(str(path))).nlist
                        )
        for row in rows:  # the lists each service setting probed, by the service's own rule
            if row.path.startswith("service") and row.index == "ivf":
                ivf = load_ivf(snapshots[row.size], row.fraction or 0.0, row.min_scanned)
                row.nprobe = ivf.nprobe
                row.nlist = int(service[f"ingest {row.size}"]["nlist"])
        ok = True
    finally:
        if ok:
            shutil.rmtree(state, ignore_errors=True)
    return service


# ---------------------------------------------------------------------------- main


def print_rows(rows: Sequence[Row], pipeline: dict[int, tuple[float, float]]) -> None:
    """``p50 ratio``: in-process rows against in-process flat search of the same vectors;
    service rows against in-process "encode one query + search" (the same work, no HTTP,
    no Redis, no batcher)."""
    print(
        f"{'chunks':>8}  {'vectors':<26}{'path':<34}{'index':<6}{'nlist':>6}{'nprobe':>7}"
        f"{'frac':>8}{'minscan':>8}{'p50 ms':>9}{'p99 ms':>9}{'recall@10':>11}{'p50 ratio':>11}"
    )
    flats = {r.size: r for r in rows if r.index == "flat" and r.path == "in-process"}
    for r in rows:
        base = pipeline[r.size][0] if r.path.startswith("service") else None
        if base is None and r.size in flats:
            base = flats[r.size].p50_ms
        ratio = f"{r.p50_ms / base:>10.2f}x" if base else f"{'-':>11}"
        frac = f"{r.fraction:>8g}" if r.fraction is not None else f"{'-':>8}"
        aim = "" if r.recall >= AIM_RECALL else f"  < {AIM_RECALL}"
        print(
            f"{r.size:>8,}  {r.vectors:<26}{r.path:<34}{r.index:<6}{r.nlist or '-':>6}"
            f"{r.nprobe or '-':>7}{frac}{r.min_scanned if r.index == 'ivf' else '-':>8}"
            f"{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.recall:>11.3f}"
            f"{ratio}{aim}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Retrieval service speed (HTTP) vs in-process")
    parser.add_argument("--sizes", default="10000,100000", help="chunks per collection/index")
    parser.add_argument("--clients", type=int, default=32, help="concurrent embedding clients")
    parser.add_argument("--sentences", type=int, default=1000, help="sentences to embed in (a)")
    parser.add_argument("--queries", type=int, default=500, help="search queries in (b)")
    parser.add_argument("--real", type=int, default=10_000, help="real texts embedded for (b)")
    parser.add_argument("--api-max", type=int, default=10_000, help="largest size via the API")
    parser.add_argument("--exact-max-chunks", type=int, default=5000, help="service setting")
    parser.add_argument("--nprobe-fractions", default="0.0625,0.125,0.1875,0.25")
    parser.add_argument(
        "--min-scanned",
        type=int,
        default=load_settings(RetrievalSettings, os.environ).ivf_min_scanned,
        help="the service's BABEL_RETRIEVAL_IVF_MIN_SCANNED to test besides 0 (default: its own)",
    )
    parser.add_argument("--noise-cos", type=float, help="cosine of a noisy copy to its source")
    parser.add_argument("--ingest-batch", type=int, default=64, help="texts per request")
    parser.add_argument(
        "--in-process-only", action="store_true", help="skip the service (no (a), no API rows)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    fractions = [float(f) for f in args.nprobe_fractions.split(",") if f.strip()]
    if not fractions:
        sys.exit("--nprobe-fractions: give at least one value")
    rng = random.Random(args.seed)
    questions = [
        q for lang in QUESTION_LANGUAGES for q in load_xquad(DATA / "xquad", lang).questions
    ]
    rng.shuffle(questions)
    sentences, queries = questions[: args.sentences], questions[-args.queries :]
    pool = real_sentences(DATA, seed=args.seed)
    real_n = min(args.real, len(pool), max(sizes))
    texts = pool[:real_n]
    api_sizes = [s for s in sizes if s <= min(args.api_max, real_n) and not args.in_process_only]
    began = time.perf_counter()
    print(f"machine: {machine_context()}")
    print(
        f"model {MODELS / MODEL}; (a) {len(sentences)} XQuAD questions"
        f" ({', '.join(QUESTION_LANGUAGES)}); (b) {len(queries)} other XQuAD questions as"
        f" queries, {real_n:,} real texts (Tatoeba + UMSAB tweets), sizes {sizes}"
    )
    out: dict[str, Any] = {"machine": machine_context(), "cpus": os.cpu_count()}

    # ---- in-process first (nothing else of ours running)
    print("\nin-process (sentence-transformers on CPU, torch threads default) ...", flush=True)
    encoder = Encoder(MODELS / MODEL)
    started = time.perf_counter()
    local_vectors = encoder.encode(sentences, "query: ")
    local_rate = len(sentences) / (time.perf_counter() - started)
    print(f"  (a) encode batch 32: {local_rate:.1f} sentences/s", flush=True)
    # encode() sorts all its texts by length first (little padding); a service sees texts
    # in arrival order, 32 at a time: the same in-process, to tell padding from pipeline.
    started = time.perf_counter()
    for start in range(0, len(sentences), 32):
        encoder.encode(sentences[start : start + 32], "query: ")
    local_chunked = len(sentences) / (time.perf_counter() - started)
    print(f"  (a) encode 32 at a time, arrival order: {local_chunked:.1f} sentences/s", flush=True)
    started = time.perf_counter()
    corpus = encoder.encode(texts, "passage: ")
    corpus_s = time.perf_counter() - started
    print(f"  embedded {real_n:,} texts in {corpus_s:.0f} s ({real_n / corpus_s:.0f}/s)")
    query_vectors = encoder.encode(queries, "query: ")
    cosine = args.noise_cos or nn_similarity(corpus)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="babel-bench-ivf-") as scratch:
        for size in sizes:
            vectors = augmented(corpus, size, cosine, args.seed)
            label = (
                "real"
                if size <= real_n
                else f"{real_n // 1000}k real+{(size - real_n) // 1000}k noisy"
            )
            truth = exact_truth(vectors, query_vectors)
            rows += in_process_layer(
                size, label, vectors, query_vectors, truth, fractions, Path(scratch), real_n,
                sorted({0, args.min_scanned}),
            )  # fmt: skip
    pipeline = {
        size: in_process_pipeline(
            encoder, corpus[:size], queries, fractions[0], args.exact_max_chunks, args.min_scanned
        )
        for size in api_sizes
    }

    service: dict[str, Any] = {}
    if not args.in_process_only:
        service = run_service(
            args, fractions, sentences, local_vectors, texts, api_sizes, corpus,
            query_vectors, queries, rows,
        )  # fmt: skip
    local_after = local_rate
    if service:  # the in-process baseline once more, after the service
        started = time.perf_counter()
        encoder.encode(sentences, "query: ")
        local_after = len(sentences) / (time.perf_counter() - started)
    local_mean = (local_rate + local_after) / 2

    # ---- report
    if "embeddings" in service:
        emb = service["embeddings"]
        print(f"\n== (a) embeddings, {len(sentences)} sentences ==")
        print(f"{'path':<62}{'sentences/s':>12}{'ratio':>8}")
        for when, rate in (("before", local_rate), ("after", local_after)):
            print(
                f"{f'in-process encode, batch 32 ({when} the service ran)':<62}"
                f"{rate:>12.1f}{rate / local_mean:>8.2f}"
            )
        emb["ratio"] = emb["service_per_s"] / local_mean
        emb["in_process_per_s"] = [local_rate, local_after]
        print(
            f"{f'service: POST /v1/embeddings, 1 a request, {args.clients} clients':<62}"
            f"{emb['service_per_s']:>12.1f}{emb['ratio']:>8.2f}   aim >= {AIM_RATIO} of in-process"
            f" (mean of the two): {'reached' if emb['ratio'] >= AIM_RATIO else 'NOT reached'}"
        )
        print(
            f"{'in-process encode 32 at a time in arrival order (diagnostic)':<62}"
            f"{local_chunked:>12.1f}{local_chunked / local_mean:>8.2f}"
        )
        emb["in_process_32_at_a_time_per_s"] = local_chunked
        batched = emb["service_32_a_request_1_client_per_s"]
        print(
            f"{'service: POST /v1/embeddings, 32 a request, 1 client (diagnostic)':<62}"
            f"{batched:>12.1f}{batched / local_mean:>8.2f}"
        )
        print(
            f"service vs in-process vectors: cosine min {emb['cosine_min']:.5f},"
            f" mean {emb['cosine_mean']:.5f}"
        )
    print(f"\n== (b) dense search, k={K}, 1 client, {len(queries)} queries ==")
    if any(s > real_n for s in sizes):
        why = "--noise-cos" if args.noise_cos else "median nearest-neighbour cosine of real ones"
        print(
            f"noisy copies: Gaussian noise, renormalised, cosine to source {cosine:.3f}"
            f" ({why}); the index layer in-process only"
        )
        for r in rows:
            if r.real_share is not None:
                print(
                    f"  {r.size:,}: {100 * r.real_share:.1f}% of the exact top-10 are real vectors"
                    f" ({100 * real_n / r.size:.0f}% of the index): the noisy copies"
                    + (
                        " rarely compete, so this mostly measures finding real vectors among"
                        " distractors (optimistic); the real-vector sizes are the better guide"
                        if r.real_share > 0.8
                        else " compete with the real vectors"
                    )
                )
    print_rows(rows, pipeline)
    for size in api_sizes:
        p50, p99 = pipeline[size]
        print(
            f"in-process encode 1 query (batch 1) + IVF search of {size:,}:"
            f" p50 {p50:.1f} ms, p99 {p99:.1f} ms (the service rows' p50 ratio is against this)"
        )
    print(f"\nsmallest nprobe fraction reaching recall@10 >= {AIM_RECALL} (of those tried):")
    for size in sizes:
        for path in ("in-process", "service"):
            for min_scanned in sorted({r.min_scanned for r in rows if r.index == "ivf"}):
                tried = [
                    r
                    for r in rows
                    if r.size == size and r.path.startswith(path) and r.index == "ivf"
                    and r.min_scanned == min_scanned
                ]  # fmt: skip
                if not tried:
                    continue
                good = [r for r in tried if r.recall >= AIM_RECALL]
                best = min(good, key=lambda r: r.fraction or 0.0, default=None)
                print(
                    f"  {size:>8,} {path:<11} min_scanned {min_scanned:<5}"
                    + (
                        f" fraction {best.fraction:g}: nprobe {best.nprobe} of {best.nlist},"
                        f" recall@10 {best.recall:.3f}, p50 {best.p50_ms:.2f} ms"
                        if best
                        else f" none of {[r.fraction for r in tried]}"
                    )
                )
    wall = time.perf_counter() - began
    print(f"\nwall time {wall:.0f} s; machine at the end: {machine_context()}")
    if args.json:
        out.update(
            {
                "args": {k: str(v) for k, v in vars(args).items()},
                "noise_cosine": cosine,
                "rows": [asdict(r) for r in rows],
                "service": service,
                "in_process_pipeline_ms": {str(k): v for k, v in pipeline.items()},
                "wall_s": wall,
            }
        )
        args.json.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
