"""The gateway and the Celery batch worker load no model: importing them pulls in none of
the model libraries (they live in the services)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.processes import REPO_ROOT

MODEL_LIBRARIES = ("torch", "vllm", "faiss", "sentence_transformers", "transformers")


@pytest.mark.parametrize(
    "modules",
    [
        ("services.gateway.app", "services.gateway.__main__"),
        ("services.batch.__main__", "services.batch.jobs", "services.batch.tasks"),
    ],
)
def test_no_model_library_is_imported(modules: tuple[str, ...]) -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in {MODEL_LIBRARIES!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"{modules} imported {result.stdout.strip()}"
