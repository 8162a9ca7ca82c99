"""A fresh clone, alone in an empty folder, sets itself up and starts: the repo stands alone.

The committed HEAD of the repository this file is in is cloned (changes not committed are
not in the clone) into ``<tmp>/alone/babelstack``, with nothing beside it, and the product's
set-up path runs there, with this virtual environment's interpreter but the clone's code
and data (``PYTHONPATH`` and the working directory are the clone; checked first):

1. ``babelstack models prepare --only multilingual-e5-small`` on the machine's model cache
   (``BABEL_MODELS_DIR``; ``make models`` prepared it, so this is a quick check);
2. ``babelstack train sentiment --head <tmp>/head --seeds 1 --epochs 1 --threads 1``: a
   sentiment head trained on all of the clone's own copy of UMSAB into a folder of the test
   (the head in the model cache is not touched), one member and one epoch instead of the
   tuned 5 × 10, which take minutes on two cores (one torch thread: on a busy two-core
   machine two threads train many times slower). The UMSAB embeddings are cached beside a
   head, keyed by the data's hash: the ones ``make models`` computed are copied into the new
   folder first, and the clone must not embed again (no new cache file): its data is byte
   for byte the data the machine's head was trained on. A second run is a no-op;
3. ``babelstack up --service tasks`` on a free port with that head, which reaches ready
   (``/readyz``) and answers sentiment and language identification; SIGINT to the
   launcher stops it and every process it started.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.launcher.redis_server import free_port
from services.tasks.sentiment.settings import DEFAULT_HEAD
from shared.models.cache import ModelCacheSettings
from shared.settings import load_settings
from tests.support.processes import REPO_ROOT

pytestmark = pytest.mark.timeout(900)

STEP_TIMEOUT_S = 600


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _clone_env(clone: Path, **overrides: str) -> dict[str, str]:
    """This process's environment minus BABEL_* (but BABEL_MODELS_DIR) and REDIS_URL, with
    the clone first on the import path."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key == "BABEL_MODELS_DIR" or not (key.startswith("BABEL_") or key == "REDIS_URL")
    }
    env.update(
        {
            "PYTHONPATH": str(clone),
            "PYTHONUNBUFFERED": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            **overrides,
        }
    )
    return env


def _babelstack(clone: Path, env: dict[str, str], *args: str) -> str:
    """``babelstack <args>`` from the clone; its output; fails the test on a non-zero exit."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "services.launcher.cli", *args],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=STEP_TIMEOUT_S,
    )
    print(f"babelstack {' '.join(args)}: {time.monotonic() - started:.1f} s\n{done.stdout}")
    assert done.returncode == 0, f"babelstack {' '.join(args)}:\n{done.stdout}"
    return done.stdout


def _clone(tmp_path: Path) -> Path:
    alone = tmp_path / "alone"
    alone.mkdir()
    clone = alone / "babelstack"
    subprocess.run(
        ["git", "clone", "--quiet", str(REPO_ROOT), str(clone)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert [p.name for p in alone.iterdir()] == ["babelstack"], "nothing beside the clone"
    return clone


def _feature_files(folder: Path) -> dict[str, int]:
    """The cached UMSAB embeddings in a head's folder: name → modification time (ns)."""
    return {path.name: path.stat().st_mtime_ns for path in folder.glob("features-*.npy")}


def _seed_feature_cache(head: Path) -> dict[str, int]:
    """Copy the UMSAB embeddings cached beside the machine's head (keyed by data hash)."""
    cache = load_settings(ModelCacheSettings, os.environ)
    head.mkdir(parents=True)
    for features in sorted((cache.root / DEFAULT_HEAD).glob("features-*.npy")):
        shutil.copy2(features, head / features.name)
    return _feature_files(head)


def test_a_fresh_clone_alone_prepares_trains_and_starts(tmp_path: Path) -> None:
    clone = _clone(tmp_path)
    env = _clone_env(clone)

    # The clone's code and data are the ones used, not this checkout's.
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, services, shared, services.launcher.cli as cli, "
            "services.tasks.sentiment.umsab as umsab; print(json.dumps([services.__file__, "
            "shared.__file__, cli.__file__, str(umsab.UMSAB_DATA)]))",
        ],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert where.returncode == 0, f"the clone of HEAD does not import:\n{where.stderr}"
    paths = [Path(p) for p in json.loads(where.stdout.strip().splitlines()[-1])]
    assert all(p.is_relative_to(clone) for p in paths), paths
    assert paths[-1].is_dir(), "the clone carries the UMSAB data"

    # 1. the embedding model (already in the machine's model cache)
    _babelstack(clone, env, "models", "prepare", "--only", "multilingual-e5-small")

    # 2. a sentiment head from the clone's own data, into a folder of the test
    head = tmp_path / "work" / "sentiment-fresh-clone"
    seeded = _seed_feature_cache(head)
    quick = ("--seeds", "1", "--epochs", "1", "--threads", "1")
    _babelstack(clone, env, "train", "sentiment", "--head", str(head), *quick)
    record = json.loads((head / "training.json").read_text())
    assert Path(record["data"]).is_relative_to(clone), record["data"]
    assert record["train_examples"] == 8 * 1839
    assert (record["config"]["seeds"], record["config"]["epochs"]) == ([0], 1)
    if seeded:  # same bytes as the data the machine's head was trained on: nothing re-embedded
        assert _feature_files(head) == seeded
    _babelstack(clone, env, "train", "sentiment", "--head", str(head), *quick)
    assert json.loads((head / "training.json").read_text()) == record, "up to date: a no-op"

    # 3. the launcher with the tasks service on that head
    port = free_port()
    state = tmp_path / "work" / "state"
    up = ["up", "--port", str(port), "--service", "tasks", "--state-dir", str(state)]
    launcher = subprocess.Popen(
        [sys.executable, "-m", "services.launcher.cli", *up, "--ready-timeout", "300"],
        cwd=clone,
        env=_clone_env(
            clone,
            BABEL_SENTIMENT_HEAD=str(head),
            BABEL_TASKS_DATA_DIR=str(state / "data" / "tasks"),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert launcher.stdout is not None
        for line in launcher.stdout:
            lines.append(line.rstrip())
            if "BabelStack is up" in line or "error:" in line:
                break
        output = "\n".join(lines)
        assert "BabelStack is up" in output, output
        pids = {
            found.group(1): int(found.group(2))
            for line in lines
            if (found := re.match(r"^(\w+)\s+.*\bpid (\d+)", line))
        }
        assert set(pids) >= {"redis", "tasks", "gateway"}, output
        assert Path(f"/proc/{pids['tasks']}/cwd").resolve() == clone.resolve()

        base = f"http://127.0.0.1:{port}"
        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        sentiment = httpx.post(
            f"{base}/v1/sentiment",
            json={"q": ["I absolutely love this, it made my day!", "Odio esto, es horrible."]},
            timeout=60,
        )
        assert sentiment.status_code == 200, sentiment.text
        body = sentiment.json()
        assert head.name in body["model"], body
        assert [r["label"] for r in body["results"]] == ["positive", "negative"], body
        detect = httpx.post(f"{base}/v1/detect", json={"q": "Wie geht es dir?"}, timeout=30)
        assert detect.status_code == 200, detect.text
        assert detect.json()["detections"][0]["language"] == "de"

        os.kill(launcher.pid, signal.SIGINT)
        assert launcher.wait(timeout=90) == 0
        give_up = time.monotonic() + 10
        while any(_alive(pid) for pid in pids.values()) and time.monotonic() < give_up:
            time.sleep(0.1)
        assert [name for name, pid in pids.items() if _alive(pid)] == []
    finally:
        if launcher.poll() is None:  # the test failed before the stop: stop it the same way
            os.kill(launcher.pid, signal.SIGTERM)
            try:
                launcher.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait()
