"""Shared parts of the retrieval benchmarks: the stack, its HTTP API, the evaluation data.

``running_stack`` starts Redis + the retrieval worker + the gateway (the launcher's own
``start_stack``) in a scratch folder and always stops them; ``RetrievalApi`` is a small
aiohttp client of the public HTTP API; the loaders read ``bench/data`` (XQuAD, Tatoeba)
and the UMSAB copy in the package (``services/tasks/sentiment/data/umsab``).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import shutil
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from services.launcher.redis_server import free_port
from services.launcher.stack import Stack, StackConfig, start_stack
from services.tasks.sentiment.umsab import UMSAB_DATA

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "bench" / "data"
"""The benchmarks' evaluation sets (``bench/data/README.md``)."""
MODELS = Path(os.environ.get("BABEL_MODELS_DIR", "~/.cache/babelstack/models")).expanduser()
MODEL = "multilingual-e5-small"

T = TypeVar("T")
R = TypeVar("R")


def machine_context() -> str:
    """One line: CPUs, load, Python, platform (numbers on a shared host need it)."""
    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{cpus} CPUs ({usable} usable), load average {load} (1/5/15 min), "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )


# ---------------------------------------------------------------------------- the stack


@contextmanager
def running_stack(
    extra_env: Mapping[str, str] | None = None,
    state_dir: Path | None = None,
    say: Callable[[str], None] = print,
    ready_timeout_s: float = 300.0,
) -> Iterator[Stack]:
    """Redis + retrieval worker + gateway on a free port; stopped on the way out, always.

    ``state_dir`` keeps the retrieval data between two stacks (a restart with other
    settings); without it a scratch folder is used and removed afterwards.
    """
    # A SIGTERM must still stop what was started: turn it into KeyboardInterrupt.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    scratch = state_dir is None
    folder = Path(tempfile.mkdtemp(prefix="babel-bench-")) if state_dir is None else state_dir
    env = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "BABEL_RETRIEVAL_DATA_DIR")
    }
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("BABEL_LOG_LEVEL", "WARNING")
    env.update(extra_env or {})
    config = StackConfig(
        host="127.0.0.1",
        port=free_port(),
        services=("retrieval",),
        state_dir=folder,
        ready_timeout_s=ready_timeout_s,
    )
    started = time.perf_counter()
    stack = start_stack(config, env, say)
    ok = False
    try:
        say(f"stack ready in {time.perf_counter() - started:.1f} s at {stack.base_url}")
        yield stack
        ok = True
    finally:
        stack.stop()
        if scratch and ok:  # keep the logs when something failed
            shutil.rmtree(folder, ignore_errors=True)
        elif not ok:
            say(f"logs kept in {folder / 'logs'}")


# ---------------------------------------------------------------------------- HTTP API


class ApiError(RuntimeError):
    pass


class RetrievalApi:
    """The gateway's retrieval routes, as coroutines (one aiohttp session)."""

    def __init__(
        self,
        base_url: str,
        connections: int = 64,
        timeout_s: float = 900.0,
        max_retries: int = 2,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.retried = 0
        self.errors: list[str] = []
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        )

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> RetrievalApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, path: str, body: object | None = None) -> Any:
        """One call; a 5xx or a broken connection is retried ``max_retries`` times (counted in
        ``retried``): every call made here is idempotent (search, embed, upsert by id)."""
        for attempt in range(self.max_retries + 1):
            try:
                async with self._session.request(
                    method, self.base_url + path, json=body
                ) as response:
                    data = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"{method} {path}: {type(exc).__name__}: {exc}"
            else:
                if response.status < 300:
                    return json.loads(data)
                error = f"{method} {path}: HTTP {response.status}: {data[:300]!r}"
                if response.status < 500:
                    break
            if attempt < self.max_retries:
                self.retried += 1
                self.errors.append(error)
                await asyncio.sleep(2.0 * (attempt + 1))  # let a timed-out call finish
        raise ApiError(error)

    async def create_collection(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", "/v1/collections", {"name": name})
        return result

    async def describe(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", f"/v1/collections/{name}")
        return result

    async def ingest(
        self,
        name: str,
        documents: Sequence[tuple[str, str]],
        max_chars: int | None = None,
        batch: int = 4,
    ) -> int:
        """Upsert ``(id, text)`` documents in requests of ``batch``; returns chunks stored.

        Keep one request's work under ~5 s: the RPC client's Redis connection has
        redis-py's default 5 s socket timeout, so a longer ingest RPC fails with HTTP 500
        (``internal error: TimeoutError``) although the worker finishes it.
        """
        chunks = 0
        chunking = {"max_chars": max_chars} if max_chars else {}
        for start in range(0, len(documents), batch):
            body = {
                "documents": [
                    {"id": doc_id, "text": text, "metadata": {}}
                    for doc_id, text in documents[start : start + batch]
                ],
                "chunking": chunking,
            }
            reply = await self.request("POST", f"/v1/collections/{name}/documents", body)
            chunks += int(reply["chunks"])
        return chunks

    async def search(
        self,
        name: str,
        query: str,
        mode: str,
        k: int = 10,
        bm25_weight: float | None = None,
    ) -> tuple[list[str], str]:
        """Document ids of the hits, best first, and the language detected for the query."""
        body: dict[str, Any] = {"query": query, "k": k, "mode": mode}
        if bm25_weight is not None:
            body["bm25_weight"] = bm25_weight
        reply = await self.request("POST", f"/v1/collections/{name}/search", body)
        return [str(hit["document_id"]) for hit in reply["hits"]], str(reply["query_language"])

    async def embed(self, texts: str | list[str], input_type: str = "query") -> list[list[float]]:
        body = {"input": texts, "input_type": input_type}
        reply = await self.request("POST", "/v1/embeddings", body)
        return [item["embedding"] for item in reply["data"]]


async def bounded_map(
    items: Sequence[T], fn: Callable[[T], Awaitable[R]], concurrency: int
) -> list[R]:
    """``fn`` over ``items`` with at most ``concurrency`` in flight; results in item order."""
    results: dict[int, R] = {}
    cursor = iter(range(len(items)))

    async def worker() -> None:
        for i in cursor:
            results[i] = await fn(items[i])

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(items))))))
    return [results[i] for i in range(len(items))]


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True)
class XQuad:
    language: str
    paragraphs: list[str]
    questions: list[str]
    gold: list[int]
    """Index of each question's paragraph."""


def load_xquad(folder: Path, language: str) -> XQuad:
    path = folder / f"xquad.{language}.json"
    paragraphs: list[str] = []
    questions: list[str] = []
    gold: list[int] = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                questions.append(qa["question"])
                gold.append(len(paragraphs))
            paragraphs.append(paragraph["context"])
    return XQuad(language, paragraphs, questions, gold)


def _unescape(line: str) -> str:
    """UMSAB files keep JSON-style ``\\uXXXX`` escapes; decode them where they are valid."""
    if "\\" not in line:
        return line
    try:
        return line.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError:
        return line


def real_sentences(data: Path = DATA, seed: int = 0, umsab: Path = UMSAB_DATA) -> list[str]:
    """Distinct short real texts, shuffled: Tatoeba (8 sides) + UMSAB training tweets.

    Sources are mixed so that any prefix looks like the whole (an IVF index trained on
    the first part of a collection then sees the same distribution afterwards).
    """
    texts: list[str] = []
    for path in sorted((data / "tatoeba").glob("tatoeba.*-eng.*")):
        texts += path.read_text(encoding="utf-8").splitlines()
    for path in sorted(umsab.glob("*/train_text.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            texts.append(_unescape(line))
    seen: set[str] = set()
    unique = []
    for text in (" ".join(t.split()) for t in texts):
        if len(text) >= 8 and text not in seen:
            seen.add(text)
            unique.append(text)
    random.Random(seed).shuffle(unique)
    return unique
