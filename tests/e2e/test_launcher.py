"""`babelstack up` on a fresh state directory: real Redis, real services, real gateway."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.launcher.redis_server import free_port
from tests.support.generation import TEST_MODEL

TEXTS = {
    "en": "The weather is lovely today, let us go for a walk in the park.",
    "de": "Das Wetter ist heute herrlich, lass uns im Park spazieren gehen.",
    "ja": "今日は天気がとても良いので、公園を散歩しましょう。",
    "ar": "الطقس جميل اليوم، دعنا نذهب للتنزه في الحديقة.",
}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


class Launched:
    def __init__(self, process: subprocess.Popen[str], port: int, lines: list[str]) -> None:
        self.process = process
        self.base_url = f"http://127.0.0.1:{port}"
        self.lines = lines

    @property
    def child_pids(self) -> dict[str, int]:
        pids = {}
        for line in self.lines:
            if found := re.match(r"^(\w+)\s+.*\bpid (\d+)", line):
                pids[found.group(1)] = int(found.group(2))
        return pids


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (vLLM's engine core and workers below the generation one)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found |= {child} | _descendants(child)
    return found


def _launch(tmp_path: Path, *services: str) -> Iterator[Launched]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["BABEL_STATE_DIR"] = str(tmp_path / "state")
    # The tiny test model keeps start-up short; `make up` serves Qwen2.5-1.5B by default.
    env["BABEL_GENERATION_MODEL"] = TEST_MODEL
    env["BABEL_GENERATION_MAX_MODEL_LEN"] = "2048"
    chosen = [arg for name in services for arg in ("--service", name)]
    process = subprocess.Popen(
        [sys.executable, "-m", "services.launcher.cli", "up", "--port", str(port), *chosen],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        give_up = time.monotonic() + 300
        for line in process.stdout:
            lines.append(line.rstrip())
            if "BabelStack is up" in line or time.monotonic() > give_up:
                break
        assert any("BabelStack is up" in line for line in lines), "\n".join(lines)
        yield Launched(process, port, lines)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[Launched]:
    """The whole stack: generation (vLLM on SmolLM2), retrieval, tasks, gateway."""
    yield from _launch(tmp_path)


@pytest.fixture
def launched_without_generation(tmp_path: Path) -> Iterator[Launched]:
    yield from _launch(tmp_path, "tasks", "retrieval")


def test_up_serves_detect_and_stops_everything_on_ctrl_c(launched: Launched) -> None:
    pids = launched.child_pids
    assert set(pids) >= {"redis", "generation", "tasks", "retrieval", "batch", "gateway"}, (
        launched.lines
    )
    assert all(_alive(pid) for pid in pids.values())
    engine_processes = _descendants(pids["generation"])
    assert engine_processes, "vLLM runs its engine core in processes of its own"

    for language, text in TEXTS.items():
        response = httpx.post(f"{launched.base_url}/v1/detect", json={"q": text}, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["detections"][0]["language"] == language

    base = launched.base_url
    assert httpx.post(f"{base}/v1/collections", json={"name": "e2e"}, timeout=10).status_code == 201
    documents = [
        {"id": language, "text": text, "metadata": {"language": language}}
        for language, text in TEXTS.items()
    ]
    ingested = httpx.post(
        f"{base}/v1/collections/e2e/documents", json={"documents": documents}, timeout=60
    )
    assert ingested.status_code == 200, ingested.text
    assert ingested.json()["chunks"] == len(TEXTS)
    found = httpx.post(
        f"{base}/v1/collections/e2e/search",
        json={"query": "Wie ist das Wetter heute?", "k": 4, "languages": ["ja"]},
        timeout=30,
    )
    assert found.status_code == 200, found.text
    assert [hit["document_id"] for hit in found.json()["hits"]] == ["ja"]

    status = subprocess.run(
        [sys.executable, "-m", "services.launcher.cli", "status", "--url", launched.base_url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert "ready" in status.stdout
    assert re.search(r"^tasks\s+True\s+1\b", status.stdout, re.MULTILINE), status.stdout

    chat = httpx.post(
        f"{base}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "What is the capital of France?"}]},
        timeout=120,
    )
    assert chat.status_code == 200, chat.text
    assert "Paris" in chat.json()["choices"][0]["message"]["content"]

    launched.process.send_signal(signal.SIGINT)
    assert launched.process.wait(timeout=90) == 0
    give_up = time.monotonic() + 10
    everything = {**pids, **{f"engine-{pid}": pid for pid in engine_processes}}
    while any(_alive(pid) for pid in everything.values()) and time.monotonic() < give_up:
        time.sleep(0.1)
    assert [name for name, pid in everything.items() if _alive(pid)] == []


def test_status_fails_when_nothing_answers() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    status = subprocess.run(
        [sys.executable, "-m", "services.launcher.cli", "status", "--url", url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert status.returncode == 1
    assert "does not answer" in status.stdout


def test_a_crashed_service_stops_the_whole_stack(launched_without_generation: Launched) -> None:
    launched = launched_without_generation
    pids = launched.child_pids
    os.kill(pids["tasks"], signal.SIGKILL)
    assert launched.process.wait(timeout=60) == 1
    assert not any(_alive(pid) for name, pid in pids.items())
