"""`.ci/check-no-outside-refs`, the real script, on this repository and on planted ones.

The planted references are put together at run time, so that this file does not hold them
literally (the check reads this file too).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / ".ci" / "check-no-outside-refs"

UP = ".."
SHARED = '"shared"'
PLANTED = {
    # path: (text, the numbers of the lines the check must name)
    "docs/data.md": (f"# Data\n\nThe tweets are in `{UP}/shared/data/umsab`.\n", [3]),
    "bench/loader.py": (
        "from pathlib import Path\n"
        f'DATA = Path(__file__).resolve().parents[1].parent / {SHARED} / "data"\n'
        f"OTHER = REPO.parent / {SHARED}\n",
        [2, 3],
    ),
    "services/deep/module.py": (
        "import os\n"
        f'A = os.path.join(ROOT, "{UP}", {SHARED}, "data")\n'
        f'B = Path("{UP}") / {SHARED}\n'
        f"C = Path(__file__).parents[3] / {SHARED}\n",  # 4 up from services/deep/module.py
        [2, 3, 4],
    ),
    "tools/run.sh": ("#!/bin/sh\ncat /work" + "/shared/data/README.md\n", [2]),
}
CLEAN = {
    "shared/models/cache.py": "from shared.errors import BabelError\n",
    "services/launcher/cli.py": (
        "from pathlib import Path\n"
        "from shared.models.cache import E5_SMALL\n"
        f"OWN = Path(__file__).resolve().parents[2] / {SHARED}  # the repository's own package\n"
        f"HERE = Path(__file__).resolve().parent / {SHARED}\n"
    ),
    "README.md": (
        "See `shared/models/cache.py`; `shared/` is the common package.\n"
        "Packages: include = ['shared*', 'services*'].\n"
    ),
}


def run_check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(folder)], capture_output=True, text=True, timeout=60
    )


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, timeout=60)


def make_repo(root: Path, files: dict[str, str]) -> None:
    root.mkdir()
    git(root, "init", "-q")
    write(root, files)
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "x")


def expected_lines() -> set[str]:
    return {f"{name}:{n}" for name, (_, numbers) in PLANTED.items() for n in numbers}


def named_lines(stdout: str) -> set[str]:
    return {":".join(line.split(":", 2)[:2]) for line in stdout.splitlines()}


def test_this_repository_has_no_reference_outside_it() -> None:
    result = run_check(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_clean_repository_passes(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo", CLEAN)
    result = run_check(tmp_path / "repo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no references outside the checkout" in result.stdout


def test_planted_references_fail_with_file_and_line(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo", {**CLEAN, **{k: text for k, (text, _) in PLANTED.items()}})
    result = run_check(tmp_path / "repo")
    assert result.returncode == 1, result.stdout + result.stderr
    assert named_lines(result.stdout) == expected_lines()
    assert "reference(s) to the folder beside the checkout" in result.stderr


def test_untracked_files_count_and_ignored_ones_do_not(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    make_repo(root, {**CLEAN, ".gitignore": "scratch/\n"})
    text, _ = PLANTED["docs/data.md"]
    write(root, {"scratch/notes.md": text})
    assert run_check(root).returncode == 0
    write(root, {"docs/data.md": text})  # new, not yet committed
    result = run_check(root)
    assert result.returncode == 1
    assert named_lines(result.stdout) == {"docs/data.md:3"}


@pytest.mark.parametrize("planted", [False, True])
def test_a_folder_that_is_no_git_repository_is_walked(tmp_path: Path, planted: bool) -> None:
    files = {**CLEAN, **({k: text for k, (text, _) in PLANTED.items()} if planted else {})}
    write(tmp_path / "tree", files)
    result = run_check(tmp_path / "tree")
    assert result.returncode == (1 if planted else 0), result.stdout + result.stderr
    if planted:
        assert named_lines(result.stdout) == expected_lines()
    else:
        assert "no references outside the checkout" in result.stdout
