"""The command lines of compose.yaml, run here as written, against a real Redis.

No image can be built on this machine, so what the containers would run is run directly:
the ``command`` and ``healthcheck`` of the tasks, retrieval and gateway services of
compose.yaml (the manifests run the same lines: test_deploy_files.py holds them together),
with compose's environment but for what must differ outside a container: REDIS_URL (the
test's server), the model cache (this machine's), the data folders (temporary ones) and the
gateway's address (127.0.0.1 and a free port, not 0.0.0.0:8080). ``python`` is this
interpreter and ``babelstack`` its console script's module (``services.launcher.cli``).

Proven here: the workers come up and their ``babelstack health worker`` probe says ready
(and says not ready for another host, or before a worker exists); the gateway's probe and
its ``/healthz`` and ``/readyz`` answer and a request goes through; the Celery worker runs a
batch submitted to that gateway; a second retrieval
process on the same data directory refuses to start with a clear message, and starts once
the first has stopped; two tasks replicas (``docker compose up --scale tasks=2``) share the
work, and when one is SIGKILLed holding requests, the other serves every one of them.
Retrieval has no replicas by design (one writer per data directory). Not run here: the
generation worker (its entry point and probe are checked in test_deploy_files.py; its engine
is exercised by the generation tests) and the models job (it would download 1.1 GB; its
arguments are parsed in test_deploy_files.py).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.launcher.redis_server import RedisServer, free_port
from shared.messages.langid import DETECT, DetectRequest
from shared.rpc.client import RpcClient
from shared.rpc.connection import connect
from shared.rpc.keys import Keys
from shared.settings import RedisSettings
from tests.support.deploy_files import compose
from tests.support.processes import REPO_ROOT, WorkerProcess, _die_with_parent, worker_env
from tests.support.redis_db import fresh_db_url
from tests.support.retrieval import model_cache_dir, wait_worker_ready
from tests.support.waiting import wait_until

REDIS_DB = 9
FAST_RECLAIM = {"BABEL_WORKER_CLAIM_IDLE_MS": "1500"}
"""Beyond compose's environment: a dead replica's requests are reclaimed in seconds, not 30."""
READY_TIMEOUT_S = 180.0
"""Two models load at once (tasks and retrieval) on a busy 2-core machine."""


@dataclass
class Deployed:
    redis_url: str
    tmp: Path
    services: dict[str, WorkerProcess]
    gateway_port: int

    def environment(self, service: str) -> dict[str, str]:
        return compose_environment(service, self.redis_url, self.tmp, self.gateway_port)


def compose_environment(service: str, redis_url: str, tmp: Path, port: int) -> dict[str, str]:
    """compose.yaml's environment of ``service``, moved out of the container (see above)."""
    declared = compose()["services"][service].get("environment", {})
    moved = {
        "REDIS_URL": redis_url,
        "BABEL_MODELS_DIR": str(model_cache_dir()),
        "BABEL_TASKS_DATA_DIR": str(tmp / "tasks-data"),
        "BABEL_RETRIEVAL_DATA_DIR": str(tmp / "retrieval-data"),
        "BABEL_BATCH_DIR": str(tmp / "batch-files"),
        "BABEL_GATEWAY_HOST": "127.0.0.1",
        "BABEL_GATEWAY_PORT": str(port),
    }
    env = {key: moved.get(key, str(value)) for key, value in declared.items()}
    assert set(env) <= set(moved), f"{service}: a variable this test does not move: {env}"
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **FAST_RECLAIM})
    return env


def as_run_here(argv: Sequence[str]) -> list[str]:
    """The container's argv with this machine's interpreter and CLI."""
    if argv[0] in ("python", "python3"):
        return [sys.executable, *argv[1:]]
    if argv[0] == "babelstack":
        return [sys.executable, "-m", "services.launcher.cli", *argv[1:]]
    raise AssertionError(f"not a BabelStack command line: {argv}")


def start(name: str, argv: Sequence[str], env: Mapping[str, str], tmp: Path) -> WorkerProcess:
    log_path = tmp / f"{name}.log"
    full_env = worker_env(env["REDIS_URL"], env)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            as_run_here(argv),
            cwd=REPO_ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            start_new_session=True,
        )
    return WorkerProcess(
        name=name, module=argv[-1], process=process, log_path=log_path, env=full_env
    )


def start_service(
    deployed: Deployed, service: str, name: str | None = None, extra: Mapping[str, str] = {}
) -> WorkerProcess:
    command = compose()["services"][service]["command"]
    env = {**deployed.environment(service), **extra}
    return start(name or service, command, env, deployed.tmp)


def healthcheck(
    service: str, env: Mapping[str, str], extra: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """Run compose's healthcheck of ``service`` (``CMD`` form) as written, plus ``extra``."""
    test = compose()["services"][service]["healthcheck"]["test"]
    assert test[0] == "CMD"
    return subprocess.run(
        [*as_run_here(test[1:]), *extra],
        cwd=REPO_ROOT,
        env=worker_env(env["REDIS_URL"], env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def deployed(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    tmp = tmp_path_factory.mktemp("deploy-commands")
    stack = Deployed(
        redis_url=fresh_db_url(redis_server, REDIS_DB),
        tmp=tmp,
        services={},
        gateway_port=free_port(),
    )
    try:
        yield stack
    finally:
        for worker in stack.services.values():
            worker.signal(signal.SIGTERM)
        for worker in stack.services.values():
            worker.stop(timeout_s=30.0)


def test_worker_probe_fails_before_any_worker_exists(deployed: Deployed) -> None:
    result = healthcheck("retrieval", deployed.environment("retrieval"))
    assert result.returncode == 1
    assert "no heartbeat of a retrieval worker" in result.stderr


def test_workers_come_up_and_their_probe_says_ready(deployed: Deployed) -> None:
    for service in ("tasks", "retrieval"):
        deployed.services[service] = start_service(deployed, service)
    for service in ("tasks", "retrieval"):
        worker = deployed.services[service]
        wait_worker_ready(deployed.redis_url, worker, service=service, timeout_s=READY_TIMEOUT_S)
        env = deployed.environment(service)
        ready = healthcheck(service, env)
        assert ready.returncode == 0, ready.stdout + ready.stderr
        assert f"{service} worker" in ready.stdout
        assert "ready" in ready.stdout
        assert healthcheck(service, env, ["--live"]).returncode == 0
        elsewhere = healthcheck(service, env, ["--host", "some-other-pod"])
        assert elsewhere.returncode == 1
        assert "some-other-pod" in elsewhere.stderr


def test_gateway_probes_answer_and_a_request_goes_through(deployed: Deployed) -> None:
    env = {**deployed.environment("gateway"), "BABEL_GATEWAY_SERVICES": "tasks,retrieval"}
    command = compose()["services"]["gateway"]["command"]
    deployed.services["gateway"] = gateway = start("gateway", command, env, deployed.tmp)
    base = f"http://127.0.0.1:{deployed.gateway_port}"
    give_up = time.monotonic() + 60
    while True:
        gateway.assert_alive()
        result = healthcheck("gateway", env)
        if result.returncode == 0:
            break
        assert time.monotonic() < give_up, f"gateway probe: {result.stderr}\n{gateway.log_tail()}"
        time.sleep(0.5)
    assert "200 ready" in result.stdout
    assert healthcheck("gateway", env, ["--live"]).returncode == 0
    for path in ("/healthz", "/readyz"):  # the manifests' httpGet probes
        assert httpx.get(base + path, timeout=10).status_code == 200
    answer = httpx.post(f"{base}/v1/detect", json={"q": "Wie geht es dir heute?"}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["detections"][0]["language"] == "de"


def test_the_celery_worker_runs_a_batch_through_the_gateway(deployed: Deployed) -> None:
    """compose's ``batch`` command line (the Celery worker) as written, sharing the gateway's
    batch folder: a detect batch submitted to the gateway completes with every line."""
    deployed.services["batch"] = start_service(deployed, "batch")
    base = f"http://127.0.0.1:{deployed.gateway_port}"
    lines = [
        {"custom_id": f"l{i}", "method": "POST", "url": "/v1/detect", "body": {"q": text}}
        for i, text in enumerate(SENTENCES.values())
    ]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    with httpx.Client(base_url=base, timeout=30) as http:
        uploaded = http.post(
            "/v1/files",
            data={"purpose": "batch"},
            files={"file": ("lines.jsonl", content, "application/jsonl")},
        )
        assert uploaded.status_code == 200, uploaded.text
        created = http.post(
            "/v1/batches",
            json={
                "input_file_id": uploaded.json()["id"],
                "endpoint": "/v1/detect",
                "completion_window": "24h",
            },
        )
        assert created.status_code == 200, created.text
        give_up = time.monotonic() + 120
        while (batch := http.get(f"/v1/batches/{created.json()['id']}").json())["status"] not in (
            "completed",
            "failed",
            "expired",
            "cancelled",
        ):
            deployed.services["batch"].assert_alive()
            assert time.monotonic() < give_up, deployed.services["batch"].log_tail()
            time.sleep(0.5)
        assert batch["status"] == "completed", batch
        assert batch["request_counts"]["completed"] == len(lines), batch
        output = http.get(f"/v1/files/{batch['output_file_id']}/content")
    answers = [json.loads(row) for row in output.text.splitlines()]
    detected = [a["response"]["body"]["detections"][0]["language"] for a in answers]
    assert [a["custom_id"] for a in answers] == [line["custom_id"] for line in lines]
    assert detected == list(SENTENCES)


def test_worker_probe_with_redis_unreachable(deployed: Deployed) -> None:
    env = {**deployed.environment("tasks"), "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    ready = healthcheck("tasks", env)
    assert ready.returncode == 1
    assert "redis unreachable" in ready.stderr
    live = healthcheck("tasks", env, ["--live"])
    assert live.returncode == 0, "liveness: a Redis outage is no reason to restart the worker"


def test_second_retrieval_on_the_same_data_directory_refuses_to_start(deployed: Deployed) -> None:
    first = deployed.services["retrieval"]
    first.assert_alive()
    second = start_service(deployed, "retrieval", name="retrieval-second")
    code = second.wait(timeout_s=120)
    assert code != 0
    log = second.log_text()
    assert "is in use by another retrieval process" in log, log
    assert f"pid={first.pid}" in log
    first.assert_alive()

    assert first.stop(timeout_s=60) == 0
    third = start_service(deployed, "retrieval", name="retrieval-third")
    deployed.services["retrieval"] = third
    wait_worker_ready(deployed.redis_url, third, service="retrieval", timeout_s=READY_TIMEOUT_S)


SENTENCES = {
    "de": "Könnten Sie mir bitte sagen, wo der Bahnhof ist?",
    "fr": "Je voudrais réserver une table pour deux personnes ce soir.",
    "ja": "明日の会議は午前十時から始まります。",
    "es": "¿Dónde está la biblioteca más cercana, por favor?",
}


async def _detect_all(rpc: RpcClient, count: int) -> list[asyncio.Task[object]]:
    languages = list(SENTENCES)
    return [
        asyncio.create_task(
            rpc.call(
                DETECT,
                DetectRequest(texts=(SENTENCES[languages[i % 4]],)),
                timeout_s=120,
            )
        )
        for i in range(count)
    ]


async def test_a_killed_tasks_replica_loses_nothing(deployed: Deployed) -> None:
    survivor = deployed.services.get("tasks") or start_service(deployed, "tasks")
    deployed.services["tasks"] = survivor
    # A long XREADGROUP BLOCK: a read issued before SIGSTOP stays open in Redis and takes
    # entries for the stopped replica, which then holds them when it is killed.
    victim = start_service(
        deployed, "tasks", name="tasks-replica", extra={"BABEL_WORKER_BLOCK_MS": "60000"}
    )
    deployed.services["tasks-replica"] = victim
    for worker in (survivor, victim):  # the victim last: ``info`` names its consumer
        info = await asyncio.to_thread(
            wait_worker_ready,
            deployed.redis_url,
            worker,
            service="tasks",
            timeout_s=READY_TIMEOUT_S,
        )
    keys = Keys()
    client = connect(RedisSettings(url=deployed.redis_url))
    rpc = RpcClient(client, keys, default_timeout_s=120)
    try:
        await asyncio.sleep(1.0)  # the replica is in its blocking read
        victim.signal(signal.SIGSTOP)
        calls = await _detect_all(rpc, 400)

        async def victim_holds_some() -> int:
            summary = await client.xpending(keys.requests("tasks"), keys.group("tasks"))
            held = {c["name"].decode(): int(c["pending"]) for c in summary["consumers"]}
            return held.get(info.worker, 0)

        held = await wait_until(victim_holds_some, timeout_s=60, what="the victim holding work")
        victim.kill()  # SIGKILL: no drain, no ack, no heartbeat clean-up
        replies = await asyncio.gather(*calls)
        languages = list(SENTENCES)
        for i, reply in enumerate(replies):
            assert reply.detections[0].language == languages[i % 4]  # type: ignore[attr-defined]
        assert held > 0
        survivor.assert_alive()
        summary = await client.xpending(keys.requests("tasks"), keys.group("tasks"))
        assert summary["pending"] == 0
        assert await client.xlen(keys.dead_letters("tasks")) == 0
    finally:
        await client.aclose()
