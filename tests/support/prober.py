"""A second client for hostile-request tests: it keeps calling cheap endpoints (an
unrelated endpoint of the same service, and ``/readyz``) while a test sends the hostile
request, and records every answer that is not a 200."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

Probe = str | tuple[str, dict[str, Any]]
"""A path to GET, or a path and the JSON body to POST to it (a search, a sentiment call)."""


@dataclass
class Probes:
    calls: int = 0
    failures: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    slowest: list[tuple[float, str, float]] = field(default_factory=list)
    """The slowest calls: (latency s, path, seconds since the first call)."""

    def p99_s(self) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


@contextmanager
def probing(
    base_url: str, paths: Sequence[Probe], timeout_s: float = 15.0, max_p99_s: float = 5.0
) -> Iterator[Probes]:
    """Call ``paths`` (GET a path; POST a ``(path, body)``) in turn until the block ends;
    then assert every call was a 200, each path was called at least once (the block's work
    overlapped the probes), and the 99th percentile latency stayed under ``max_p99_s``
    (generous: a busy 2-core machine; a stalled worker loop or an exhausted connection pool
    takes far longer)."""
    probes = Probes()
    stop = threading.Event()
    first_round = threading.Event()

    def run() -> None:
        began = time.perf_counter()
        with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
            while not stop.is_set():
                for probe in paths:
                    path = probe if isinstance(probe, str) else probe[0]
                    started = time.perf_counter()
                    try:
                        if isinstance(probe, str):
                            status = client.get(probe).status_code
                        else:
                            status = client.post(path, json=probe[1]).status_code
                    except httpx.HTTPError as exc:
                        probes.failures.append(f"{path}: {type(exc).__name__}")
                    else:
                        if status != 200:
                            probes.failures.append(f"{path}: {status}")
                    took = time.perf_counter() - started
                    probes.latencies_s.append(took)
                    probes.slowest = sorted(
                        [*probes.slowest, (took, path, started - began)], reverse=True
                    )[:5]
                    probes.calls += 1
                first_round.set()
                time.sleep(0.02)

    thread = threading.Thread(target=run, name="prober", daemon=True)
    thread.start()
    first_round.wait(timeout_s * len(paths))  # the probes run before the block starts
    try:
        yield probes
    finally:
        stop.set()
        thread.join(timeout=timeout_s + 5)
    assert probes.calls >= len(paths), "the second client made no round of calls"
    assert not probes.failures, f"the second client saw errors: {probes.failures[:10]}"
    slow = ", ".join(f"{path} {took:.1f} s at +{at:.0f} s" for took, path, at in probes.slowest)
    assert probes.p99_s() < max_p99_s, (
        f"the second client's p99 was {probes.p99_s():.1f} s; slowest: {slow}"
    )
