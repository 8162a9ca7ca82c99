"""Generation workers for tests: a real vLLM engine (CPU) on the prepared SmolLM2 model.

The engine starts in 25-75 s on a busy 2-core machine (it spawns its own engine-core and
worker processes), so tests share one worker per module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.models.cache import ModelCacheSettings
from tests.support.processes import WorkerProcess, start_worker

TEST_MODEL = "SmolLM2-135M-Instruct"
LOAD_TIMEOUT_S = 240.0
MAX_MODEL_LEN = 2048


def model_folder(name: str = TEST_MODEL) -> Path:
    configured = os.environ.get("BABEL_MODELS_DIR")
    root = Path(configured).expanduser() if configured else ModelCacheSettings().root
    folder = root / name
    assert (folder / "config.json").is_file(), (
        f"{name} is not prepared in {root}; run 'make models' (babelstack models prepare)"
    )
    return folder


def generation_env(overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    env = {
        "BABEL_GENERATION_MODEL": TEST_MODEL,
        "BABEL_GENERATION_MAX_MODEL_LEN": str(MAX_MODEL_LEN),
        "BABEL_GENERATION_KV_CACHE_GIB": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    if configured := os.environ.get("BABEL_MODELS_DIR"):
        env["BABEL_MODELS_DIR"] = configured
    env.update({key: str(value) for key, value in (overrides or {}).items()})
    return env


def start_generation_worker(
    *, redis_url: str, log_dir: Path, name: str = "generation", env: Mapping[str, Any] | None = None
) -> WorkerProcess:
    """Start ``python -m services.generation`` (returns at once; wait with wait_worker_ready)."""
    model_folder()
    return start_worker(
        "services.generation",
        redis_url=redis_url,
        log_dir=log_dir,
        name=name,
        env=generation_env(env),
    )
