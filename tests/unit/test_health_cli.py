"""``babelstack health worker``'s judgement of heartbeats (the real probe: test_deploy_commands)."""

from __future__ import annotations

from services.launcher.health_cli import judge_workers
from shared.messages.system import WorkerInfo


def info(worker: str, host: str, state: str, service: str = "tasks") -> WorkerInfo:
    return WorkerInfo(
        service=service, worker=worker, version="0", state=state, pid=1, host=host, started_at=0.0
    )


def test_ready_worker_of_this_host_is_ready() -> None:
    ok, line = judge_workers([info("a", "pod-1", "ready")], "tasks", "pod-1", live=False)
    assert ok
    assert "a on pod-1: ready" in line


def test_loading_worker_is_alive_but_not_ready() -> None:
    workers = [info("a", "pod-1", "loading")]
    assert judge_workers(workers, "tasks", "pod-1", live=True)[0]
    ok, line = judge_workers(workers, "tasks", "pod-1", live=False)
    assert not ok
    assert "not ready: a loading" in line


def test_a_ready_worker_on_another_host_does_not_count() -> None:
    ok, line = judge_workers([info("b", "pod-2", "ready")], "tasks", "pod-1", live=True)
    assert not ok
    assert "1 heartbeat(s) of tasks on other hosts" in line


def test_another_service_on_this_host_does_not_count() -> None:
    workers = [info("a", "pod-1", "ready", service="retrieval")]
    assert not judge_workers(workers, "tasks", "pod-1", live=True)[0]
