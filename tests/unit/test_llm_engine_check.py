"""``prepare_llm`` with an engine check: a fake checker stands in for the vLLM child process.

The real check (``services.generation.selfcheck``) runs in ``make models`` and in
``tests/integration/test_llm_prepared.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import BabelError
from shared.models.cache import (
    ChatCheck,
    EngineAttempt,
    EngineVerification,
    ModelCacheSettings,
    read_llm_record,
)
from shared.models.llm_prepare import EngineChecker, prepare_llm
from tests.unit.test_llm_prepare import FAKE, Fakes, use


class FakeChecker:
    """A fake engine check: answers right in the dtypes listed in ``right``."""

    def __init__(self, right: set[str], first: str = "bfloat16") -> None:
        self.right = right
        self.first = first
        self.folders: list[Path] = []

    def run(self, folder: Path) -> EngineVerification:
        self.folders.append(folder)
        attempts = []
        for dtype in dict.fromkeys((self.first, "float32")):
            ok = dtype in self.right
            check = ChatCheck(
                prompt="q",
                expected=("paris",),
                answer="Paris" if ok else "la femme",
                seconds=0.1,
                passed=ok,
            )
            attempts.append(EngineAttempt(dtype=dtype, checks=(check,), passed=ok))
            if ok:
                break
        passed = attempts[-1].passed
        return EngineVerification(
            reference="fake engine",
            dtype_setting=self.first,
            dtype=attempts[-1].dtype if passed else "",
            cpu="x86_64 (amx_bf16)",
            attempts=tuple(attempts),
            passed=passed,
        )


@pytest.fixture
def settings(tmp_path: Path) -> ModelCacheSettings:
    return ModelCacheSettings(dir=str(tmp_path / "models"))


def test_the_record_keeps_the_engine_check_and_its_fallback(
    settings: ModelCacheSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = Fakes("a fake answer")
    use(fakes, monkeypatch)
    checker = FakeChecker(right={"float32"})
    said: list[str] = []
    done = prepare_llm(
        settings,
        FAKE,
        download=fakes.download,
        say=said.append,
        engine_check=EngineChecker(dtype_setting="bfloat16", run=checker.run),
    )
    assert len(checker.folders) == 1
    assert checker.folders[0] != settings.root / FAKE  # checked before it was put in place
    record = read_llm_record(settings.root / FAKE)
    assert record is not None
    assert record == done.record
    assert record.engine_verification is not None
    assert record.engine_verification.dtype == "float32"
    assert [a.dtype for a in record.engine_verification.attempts] == ["bfloat16", "float32"]
    assert any("bfloat16 answered wrongly" in line for line in said)


def test_a_kept_folder_is_engine_checked_once_per_dtype_setting(
    settings: ModelCacheSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = Fakes("a fake answer")
    use(fakes, monkeypatch)
    prepare_llm(settings, FAKE, download=fakes.download)  # an older record: no engine check
    checker = FakeChecker(right={"float32"}, first="float32")
    engine_check = EngineChecker(dtype_setting="float32", run=checker.run)
    again = prepare_llm(settings, FAKE, download=fakes.download, engine_check=engine_check)
    assert again.skipped
    assert checker.folders == [settings.root / FAKE]
    record = read_llm_record(settings.root / FAKE)
    assert record is not None
    assert record.engine_verification is not None
    assert record.engine_verification.passed

    prepare_llm(settings, FAKE, download=fakes.download, engine_check=engine_check)
    assert len(checker.folders) == 1  # already checked with this setting
    other = FakeChecker(right={"bfloat16"})
    prepare_llm(
        settings,
        FAKE,
        download=fakes.download,
        engine_check=EngineChecker(dtype_setting="bfloat16", run=other.run),
    )
    assert len(other.folders) == 1


def test_a_model_wrong_in_every_dtype_is_not_installed(
    settings: ModelCacheSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = Fakes("a fake answer")
    use(fakes, monkeypatch)
    checker = FakeChecker(right=set())
    with pytest.raises(
        BabelError, match=r"answers wrongly .* \(bfloat16, float32\); CPU x86_64 \(amx_bf16\)"
    ):
        prepare_llm(
            settings,
            FAKE,
            download=fakes.download,
            engine_check=EngineChecker(dtype_setting="bfloat16", run=checker.run),
        )
    assert not (settings.root / FAKE).exists()
