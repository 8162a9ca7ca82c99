"""The UMSAB data: eight languages, train and val splits.

The package carries a copy (``data/umsab`` beside this module, Apache-2.0, with its licence
and a README on where it comes from): ``UMSAB_DATA``, what ``babelstack train sentiment``
trains on by default. Each language folder holds ``<split>_text.txt`` and
``<split>_labels.txt``, one line per example; labels are ``0`` negative, ``1`` neutral,
``2`` positive (as in XLM-T).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from shared.errors import BabelError, ErrorCode

UMSAB_DATA = Path(__file__).resolve().parent / "data" / "umsab"
"""The UMSAB train and val splits shipped in the package (package data)."""

LABELS = ("negative", "neutral", "positive")
"""Index = the label number in the files."""
LANGUAGES = {
    "arabic": "ar",
    "english": "en",
    "french": "fr",
    "german": "de",
    "hindi": "hi",
    "italian": "it",
    "portuguese": "pt",
    "spanish": "es",
}
"""Folder name → ISO 639-1 code."""


@dataclass(frozen=True)
class Split:
    texts: list[str]
    labels: list[int]
    languages: list[str]


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n")


def load_split(root: Path, split: str) -> Split:
    """Every language's ``split`` (``train`` or ``val``), in folder order."""
    texts: list[str] = []
    labels: list[int] = []
    languages: list[str] = []
    for folder, code in sorted(LANGUAGES.items()):
        text_path = root / folder / f"{split}_text.txt"
        label_path = root / folder / f"{split}_labels.txt"
        if not text_path.is_file() or not label_path.is_file():
            raise BabelError(
                ErrorCode.NOT_FOUND, f"UMSAB file missing: {text_path} or {label_path}"
            )
        lang_texts = _lines(text_path)
        lang_labels = [int(value) for value in _lines(label_path)]
        if len(lang_texts) != len(lang_labels):
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"{folder}/{split}: {len(lang_texts)} texts but {len(lang_labels)} labels",
            )
        if any(label not in (0, 1, 2) for label in lang_labels):
            raise BabelError(ErrorCode.INVALID_ARGUMENT, f"{folder}/{split}: labels must be 0-2")
        texts.extend(lang_texts)
        labels.extend(lang_labels)
        languages.extend([code] * len(lang_texts))
    return Split(texts=texts, labels=labels, languages=languages)


def data_hash(root: Path, split: str) -> str:
    """sha256 over the split's files (names and bytes), for the head's record."""
    digest = hashlib.sha256()
    for folder in sorted(LANGUAGES):
        for kind in ("text", "labels"):
            path = root / folder / f"{split}_{kind}.txt"
            digest.update(f"{folder}/{path.name}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
