"""The retrieval data-directory lock (two real processes: test_deploy_commands)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.retrieval.data_lock import DataDirLock
from shared.errors import BabelError, ErrorCode


def test_second_holder_is_refused_until_the_first_releases(tmp_path: Path) -> None:
    first, second = DataDirLock(tmp_path / "data"), DataDirLock(tmp_path / "data")
    first.acquire()
    with pytest.raises(BabelError) as refused:
        second.acquire()
    assert refused.value.info.code is ErrorCode.CONFLICT
    assert f"pid={os.getpid()}" in str(refused.value)
    assert str(tmp_path / "data") in str(refused.value)
    first.release()
    second.acquire()
    second.release()
