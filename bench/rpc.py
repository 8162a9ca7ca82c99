"""Latency and throughput of one trivial round trip: Redis PING vs RPC vs the HTTP gateway.

Starts its own Redis (unless ``--redis-url``), one tasks worker and one gateway, then
measures each path at 1 client (p50/p99) and at ``--clients`` concurrent clients (req/s).
Every measurement runs in one separate load-generator process (asyncio + uvloop) on
this same host, so it shares the CPUs with Redis, the worker and the gateway.

    .venv/bin/python bench/rpc.py --seconds 5 [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from services.launcher.processes import Child, spawn, stop_all
from services.launcher.redis_server import RedisServer, free_port, start_redis

Op = Callable[[], Awaitable[None]]
PATHS = ("redis PING", "RPC ping", "HTTP /healthz", "HTTP ping")
AIM_P50_MS, AIM_RPS = 2.0, 2000.0


async def _make_op(path: str, redis_url: str, http_url: str, clients: int) -> tuple[Op, Op]:
    """One request of ``path`` as a coroutine function, and how to close its client."""
    if path.startswith("HTTP"):
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients))
        url = http_url + ("/healthz" if path.endswith("healthz") else "/v1/services/tasks/ping")

        async def http() -> None:
            async with session.get(url) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"GET {url}: HTTP {response.status}")

        return http, session.close
    from shared.messages.system import PingRequest, ping_method
    from shared.rpc.client import RpcClient
    from shared.rpc.connection import connect
    from shared.rpc.keys import Keys
    from shared.settings import RedisSettings

    redis = connect(RedisSettings(url=redis_url))
    rpc, method, request = RpcClient(redis, Keys()), ping_method("tasks"), PingRequest()

    async def ping() -> None:
        await redis.ping()

    async def call() -> None:
        await rpc.call(method, request, timeout_s=10.0)

    return (ping if path == "redis PING" else call), redis.aclose


async def _measure(
    path: str, redis_url: str, http_url: str, seconds: float, clients: int
) -> dict[str, float]:
    op, close = await _make_op(path, redis_url, http_url, clients)
    try:
        for _ in range(300):  # warm-up: connections, lazy imports, caches
            await op()
        samples: list[float] = []
        end = time.perf_counter() + seconds
        while (start := time.perf_counter()) < end:
            await op()
            samples.append(time.perf_counter() - start)
        done = 0

        async def client(until: float) -> None:
            nonlocal done
            while time.perf_counter() < until:
                await op()
                done += 1

        await asyncio.gather(*(op() for _ in range(clients)))  # open the pool
        began, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(client(began + seconds) for _ in range(clients)))
        elapsed = time.perf_counter() - began
        cpu = time.process_time() - cpu
    finally:
        await close()
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "requests_1_client": len(samples),
        "rps": done / elapsed,
        "requests_n_clients": done,
        "client_cpu_pct": 100 * cpu / elapsed,
    }


def measure(
    path: str, redis_url: str, http_url: str, seconds: float, clients: int
) -> dict[str, float]:
    """Entry point of the load-generator process."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_measure(path, redis_url, http_url, seconds, clients))


def wait_ready(url: str, children: list[Child], timeout_s: float = 60.0) -> None:
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        for child in children:
            if not child.alive():
                sys.exit(f"{child.name} exited early; see {child.log_path}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"{url} not ready within {timeout_s} s; see the logs in {children[0].log_path.parent}")


def report(results: dict[str, dict[str, float]], clients: int, where: str) -> None:
    base = results["redis PING"]
    print(f"\nload generator: {where}; client CPU = its CPU use in the {clients}-client phase")
    print(
        f"{'path':<15}{'p50 ms':>9}{'p99 ms':>9}{f'req/s @{clients}':>13}"
        f"{'p50 vs PING':>13}{'req/s vs PING':>15}{'client CPU':>12}"
    )
    for path, row in results.items():
        print(
            f"{path:<15}{row['p50_ms']:>9.3f}{row['p99_ms']:>9.3f}{row['rps']:>13,.0f}"
            f"{row['p50_ms'] / base['p50_ms']:>12.1f}x{row['rps'] / base['rps']:>14.2f}x"
            f"{row['client_cpu_pct']:>11.0f}%",
            end="",
        )
        if path == "HTTP ping":
            p50_ok, rps_ok = row["p50_ms"] <= AIM_P50_MS, row["rps"] >= AIM_RPS
            print(
                f"   aims: p50 <= {AIM_P50_MS:g} ms {'reached' if p50_ok else 'NOT reached'},"
                f" >= {AIM_RPS:,.0f} req/s @{clients} {'reached' if rps_ok else 'NOT reached'}",
                end="",
            )
        print()


def main() -> None:
    parser = argparse.ArgumentParser(description="RPC round-trip benchmark")
    parser.add_argument("--seconds", type=float, default=5.0, help="per phase and path")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="babel-bench-"))
    server: RedisServer | None = None
    children: list[Child] = []
    ok = False
    try:
        if args.redis_url:
            redis_url = args.redis_url
        else:
            server = start_redis(workdir / "redis")
            redis_url = server.url
        port = free_port()
        http_url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "REDIS_URL": redis_url, "BABEL_LOG_LEVEL": "WARNING"}
        children.append(spawn("tasks", [sys.executable, "-m", "services.tasks"], env, workdir))
        children.append(
            spawn(
                "gateway",
                [sys.executable, "-m", "services.gateway"],
                {**env, "BABEL_GATEWAY_PORT": str(port), "BABEL_GATEWAY_SERVICES": "tasks"},
                workdir,
            )
        )
        wait_ready(http_url + "/readyz", children)
        pids = ", ".join(f"{c.name} {c.pid}" for c in children)
        print(
            f"redis {redis_url} (pid {server.pid if server else 'external'}), {pids};"
            f" {os.cpu_count()} CPUs; {args.seconds:g} s per phase"
        )
        where = (
            f"one separate process (asyncio + uvloop) on this same {os.cpu_count()}-CPU"
            " host, sharing the CPUs with redis, the worker and the gateway"
        )
        results: dict[str, dict[str, float]] = {}
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            for path in PATHS:
                print(f"  measuring {path} ...", flush=True)
                results[path] = pool.submit(
                    measure, path, redis_url, http_url, args.seconds, args.clients
                ).result()
        report(results, args.clients, where)
        if args.json:
            meta = {"clients": args.clients, "seconds": args.seconds, "cpus": os.cpu_count()}
            args.json.write_text(json.dumps({**meta, "load_generator": where, "results": results}))
        ok = True
    finally:
        stop_all(list(reversed(children)), grace_s=10.0)
        if server is not None:
            server.stop()
    if ok:  # keep the logs only when something failed
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
