"""Mixed interactive load: calm, beside a big ingest, and beside hostile requests (issue 11).

Starts the embedded stack (the launcher's ``start_stack``: Redis, generation on ``--model``,
retrieval, tasks, the batch worker, the gateway) in a scratch folder, seeds a collection with
short real texts (Tatoeba + UMSAB), then runs the same bounded load three times:
``--requests`` requests, ``--concurrency`` at once, the routes in turn: search (hybrid),
language detection, sentiment (one text), embeddings (one text) and a short chat
(``max_tokens`` 8, greedy).

1. calm: nothing else runs;
2. ingest: while ingests of ``--ingest-docs`` documents a request keep running (until the load
   is done);
3. hostile: while the requests of ``bench/hostile.py``'s catalogue (one or more per class of
   issue 11 that HTTP can carry) are sent one after another, again and again.

Printed: per phase and route, requests, errors, p50 and p99; each route's p99 against the
calm run (aim <= 2x); what the ingests and every hostile request got. The numbers depend on
the host: a line of machine context (cores, load average) comes first and after each phase.

    .venv/bin/python bench/load.py [--requests 200] [--concurrency 8] [--seed-docs 200]
        [--ingest-docs 64] [--model SmolLM2-135M-Instruct] [--no-share-cores]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.hostile import Hostile, catalogue
from bench.stack import machine_context, real_sentences
from services.launcher.redis_server import free_port
from services.launcher.stack import StackConfig, start_stack

SERVICES = ("generation", "retrieval", "tasks")
COLLECTION = "load"
MAX_UPLOAD_BYTES = 1_048_576
"""The stack's upload limit here (small, so that the hostile upload over it is cheap)."""
ROUTES = ("search", "detect", "sentiment", "embeddings", "chat")


# ---------------------------------------------------------------------------- the stack
@contextmanager
def running(model: str, share_cores: bool) -> Iterator[str]:
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    folder = Path(tempfile.mkdtemp(prefix="babel-load-"))
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "BABEL_LOG_LEVEL": "WARNING",
            "BABEL_GENERATION_MODEL": model,
            "BABEL_GENERATION_MAX_MODEL_LEN": "2048",
            "BABEL_GENERATION_KV_CACHE_GIB": "1",
            "BABEL_GATEWAY_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
        }
    )
    config = StackConfig(
        host="127.0.0.1",
        port=free_port(),
        services=SERVICES,
        state_dir=folder,
        ready_timeout_s=900.0,
        share_cores=share_cores,
    )
    started = time.perf_counter()
    stack = start_stack(config, env, print)
    ok = False
    try:
        print(f"stack ready in {time.perf_counter() - started:.0f} s at {stack.base_url}")
        yield stack.base_url
        ok = True
    finally:
        stack.stop()
        if ok:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"logs kept in {folder / 'logs'}")


# ---------------------------------------------------------------------------- measuring
@dataclass
class Route:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Phase:
    name: str
    routes: dict[str, Route] = field(default_factory=lambda: defaultdict(Route))
    seconds: float = 0.0
    load: str = ""
    notes: list[str] = field(default_factory=list)

    def everything(self) -> Route:
        merged = Route()
        for route in self.routes.values():
            merged.latencies += route.latencies
            merged.errors.update(route.errors)
        return merged


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def post(self, path: str, body: Any, **options: Any) -> tuple[int, bytes, float]:
        began = time.perf_counter()
        async with self.session.post(self.base + path, json=body, **options) as response:
            data = await response.read()
        return response.status, data, time.perf_counter() - began

    async def send(self, hostile: Hostile) -> tuple[int, float]:
        began = time.perf_counter()
        options: dict[str, Any] = {"headers": hostile.headers}
        if hostile.files is not None:
            form = aiohttp.FormData()
            for key, value in (hostile.data or {}).items():
                form.add_field(key, value)
            for key, (filename, data, media_type) in hostile.files.items():
                form.add_field(key, data, filename=filename, content_type=media_type)
            options["data"] = form
        elif hostile.content is not None:
            options["data"] = hostile.content
        else:
            options["json"] = hostile.json
        async with self.session.request(hostile.method, self.base + hostile.path, **options) as r:
            await r.read()
        return r.status, time.perf_counter() - began


def interactive_bodies(texts: list[str], model: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(route, path, body) of the mixed load, the routes in turn."""
    calls = []
    for i, text in enumerate(texts):
        route = ROUTES[i % len(ROUTES)]
        body: dict[str, Any]
        if route == "search":
            path, body = f"/v1/collections/{COLLECTION}/search", {"query": text, "k": 5}
        elif route == "detect":
            path, body = "/v1/detect", {"q": text}
        elif route == "sentiment":
            path, body = "/v1/sentiment", {"q": text}
        elif route == "embeddings":
            path, body = "/v1/embeddings", {"input": [text]}
        else:
            path = "/v1/chat/completions"
            body = {
                "model": model,
                "messages": [{"role": "user", "content": f"In three words: {text}"}],
                "max_tokens": 8,
                "temperature": 0,
            }
        calls.append((route, path, body))
    return calls


async def run_load(
    client: Client, phase: Phase, calls: list[tuple[str, str, dict[str, Any]]], concurrency: int
) -> None:
    cursor = iter(calls)

    async def one_worker() -> None:
        for route, path, body in cursor:
            try:
                status, _, took = await client.post(path, body)
            except (aiohttp.ClientError, TimeoutError) as exc:
                phase.routes[route].errors[type(exc).__name__] += 1
                continue
            if status == 200:
                phase.routes[route].latencies.append(took)
            else:
                phase.routes[route].errors[str(status)] += 1

    began = time.perf_counter()
    await asyncio.gather(*(one_worker() for _ in range(concurrency)))
    phase.seconds = time.perf_counter() - began


async def beside(
    load: Awaitable[None], background: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
) -> None:
    """Run ``load``; ``background`` runs until it is done (it is told by the event)."""
    done = asyncio.Event()
    task = asyncio.create_task(background(done))
    await asyncio.sleep(1.0)  # the background work is under way
    try:
        await load
    finally:
        done.set()
        await task


# ---------------------------------------------------------------------------- phases
async def seed(client: Client, sentences: list[str], docs: int) -> None:
    status, data, _ = await client.post("/v1/collections", {"name": COLLECTION})
    if status != 201:
        raise RuntimeError(f"creating the collection: {status} {data[:200]!r}")
    documents = [
        {"id": f"seed-{i}", "text": " ".join(sentences[i * 5 : i * 5 + 5])} for i in range(docs)
    ]
    for start in range(0, len(documents), 50):
        status, data, _ = await client.post(
            f"/v1/collections/{COLLECTION}/documents", {"documents": documents[start : start + 50]}
        )
        if status != 200:
            raise RuntimeError(f"seeding: {status} {data[:200]!r}")


def ingest_in_background(
    client: Client, phase: Phase, sentences: list[str], per_request: int
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    async def ingesting(done: asyncio.Event) -> None:
        sent = chunks = batch = 0
        statuses: Counter[int] = Counter()
        began = time.perf_counter()
        while not done.is_set():
            documents = []
            for i in range(per_request):
                start = (batch * per_request + i) * 20 % max(1, len(sentences) - 20)
                text = " ".join(sentences[start : start + 20])
                documents.append({"id": f"bulk-{batch}-{i}", "text": text})
            status, data, _ = await client.post(
                "/v1/collections/bulk/documents", {"documents": documents}
            )
            statuses[status] += 1
            if status == 200:
                sent += len(documents)
                chunks += int(json.loads(data)["chunks"])
            batch += 1
        took = time.perf_counter() - began
        phase.notes.append(
            f"ingest: {batch} requests of {per_request} documents ({dict(statuses)}), "
            f"{sent} documents / {chunks} chunks in {took:.0f} s ({chunks / took:.1f} chunks/s)"
        )

    return ingesting


def hostile_in_background(
    client: Client, phase: Phase, requests: list[Hostile]
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    async def attacking(done: asyncio.Event) -> None:
        results: dict[str, list[tuple[int, float]]] = defaultdict(list)
        while True:
            for hostile in requests:
                try:
                    status, took = await client.send(hostile)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status, took = -1, float("nan")
                    phase.notes.append(f"{hostile.name}: {type(exc).__name__}")
                results[hostile.name].append((status, took))
            if done.is_set():
                break
        for hostile in requests:
            got = results[hostile.name]
            statuses = sorted({s for s, _ in got})
            handled = all(s in hostile.expect for s in statuses)
            slowest = max(t for _, t in got)
            phase.notes.append(
                f"{hostile.kind:<18} {hostile.name:<24} x{len(got):<3} "
                f"status {','.join(map(str, statuses)):<8} slowest {slowest:6.2f} s"
                + ("" if handled else f"   UNEXPECTED (expected {hostile.expect})")
            )

    return attacking


def loadavg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


async def measure(base: str, args: argparse.Namespace) -> list[Phase]:
    sentences = real_sentences()
    seed_part = sentences[: args.seed_docs * 5]
    queries = sentences[args.seed_docs * 5 : args.seed_docs * 5 + args.requests]
    bulk = sentences[args.seed_docs * 5 + args.requests :]
    calls = interactive_bodies(queries, args.model)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    connector = aiohttp.TCPConnector(limit=args.concurrency + 8)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        client = Client(session, base)
        await seed(client, seed_part, args.seed_docs)
        await client.post("/v1/collections", {"name": "bulk"})
        await run_load(client, Phase("warm-up"), calls[: 2 * len(ROUTES)], 2)
        phases = []
        calm = Phase("calm", load=loadavg())
        await run_load(client, calm, calls, args.concurrency)
        calm.load += f" → {loadavg()}"
        phases.append(calm)
        print(f"calm done in {calm.seconds:.0f} s (load {calm.load})")

        ingest = Phase("ingest", load=loadavg())
        await beside(
            run_load(client, ingest, calls, args.concurrency),
            ingest_in_background(client, ingest, bulk, args.ingest_docs),
        )
        ingest.load += f" → {loadavg()}"
        phases.append(ingest)
        print(f"ingest done in {ingest.seconds:.0f} s (load {ingest.load})")

        hostile = Phase("hostile", load=loadavg())
        requests = catalogue(COLLECTION, args.model, max_upload_bytes=MAX_UPLOAD_BYTES)
        await beside(
            run_load(client, hostile, calls, args.concurrency),
            hostile_in_background(client, hostile, requests),
        )
        hostile.load += f" → {loadavg()}"
        phases.append(hostile)
        print(f"hostile done in {hostile.seconds:.0f} s (load {hostile.load})")
    return phases


# ---------------------------------------------------------------------------- report
def report(phases: list[Phase], args: argparse.Namespace) -> None:
    calm = phases[0]
    print(
        f"\n{args.requests} requests a phase, {args.concurrency} at once, routes in turn: "
        f"{', '.join(ROUTES)} (chat: {args.model}, 8 tokens)"
    )
    print(f"{'phase':<8} {'route':<11} {'n':>4} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'p99/calm':>9}")  # fmt: skip
    for phase in phases:
        rows = [(name, phase.routes[name]) for name in ROUTES]
        rows.append(("all", phase.everything()))
        for name, route in rows:
            reference = calm.everything() if name == "all" else calm.routes[name]
            ratio = route.pct(99) / reference.pct(99) if reference.latencies else float("nan")
            errors = sum(route.errors.values())
            print(
                f"{phase.name:<8} {name:<11} {len(route.latencies) + errors:>4} {errors:>7} "
                f"{route.pct(50) * 1000:>8.0f} {route.pct(99) * 1000:>8.0f} {ratio:>8.2f}x"
            )
            if route.errors:
                print(f"{'':<21} errors: {dict(route.errors)}")
        print(f"{'':<8} {phase.seconds:.0f} s, load average {phase.load}")
    for phase in phases[1:]:
        print(f"\n{phase.name}:")
        for note in phase.notes:
            print(f"  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests a phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed-docs", type=int, default=200, help="documents of 5 sentences")
    parser.add_argument(
        "--ingest-docs", type=int, default=64, help="documents (20 sentences) per ingest request"
    )
    parser.add_argument("--model", default="SmolLM2-135M-Instruct", help="the generation model")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a request")
    parser.add_argument("--no-share-cores", action="store_true")
    args = parser.parse_args()
    print(machine_context())
    with running(args.model, share_cores=not args.no_share_cores) as base:
        phases = asyncio.run(measure(base, args))
    print(machine_context())
    report(phases, args)


if __name__ == "__main__":
    main()
