"""Sentence splitting for any language, as character spans into the original text.

Boundaries, in order of strength:

* paragraph breaks (a blank line, U+2029) always;
* line breaks, unless the line plainly continues (it ends in a letter, digit, comma or
  hyphen and the next line starts with a lowercase letter — hard-wrapped prose);
* CJK, Arabic/Urdu, Devanagari, Armenian, Ethiopic, Myanmar and Khmer full stops
  (``。！？ ؟ ۔ । ॥ ։ ። ။ ។``), with or without a following space;
* Latin/Cyrillic/Greek ``. ! ? …`` (plus closing quotes/brackets) when whitespace follows
  and the next word does not start in lowercase; a ``.`` after a known abbreviation, an
  initial, a dotted abbreviation (``e.g.``, ``z.B.``) or a 1–2 digit ordinal
  (``am 3. Oktober``) is no boundary, and ``3.14`` never is (no whitespace);
* Thai, Lao and Khmer spaces between two letters of those scripts (they separate
  clauses; the scripts have no sentence punctuation);
* length: with ``max_chars``, a longer piece is split at its last whitespace, else after
  a comma-like mark, else hard (never before a combining mark).

Every span is trimmed of whitespace, so ``text[start:end]`` is the sentence.
"""

from __future__ import annotations

import itertools
import re
import unicodedata

Span = tuple[int, int]

_STRONG = "。！？｡؟۔।॥‼⁇⁈⁉։።፧။។៕"
_WEAK = ".!?…\u037e"  # U+037E: Greek question mark
_CLOSERS = "\"'”’»›)]}」』】〕〉》）〗｣"
_TERMINATOR = re.compile(f"[{re.escape(_STRONG + _WEAK)}]+[{re.escape(_CLOSERS)}]*")
# Starts only where a run of blanks starts: tried at every blank, it was quadratic.
_LINE_BREAK = re.compile(r"(?<![ \t])[ \t]*+(?:\r\n|[\n\r\x0b\x0c\x85\u2028\u2029])\s*")
_BREAK_CHARS = re.compile(r"\r\n|[\n\r\x0b\x0c\x85\u2028]")
_SEA = "\u0e00-\u0eff\u1780-\u17ff\u19e0-\u19ff"  # Thai, Lao, Khmer (+ symbols)
_SEA_SPACE = re.compile(f"(?<=[{_SEA}])[ \t\u00a0]+(?=[{_SEA}])")
_LAST_WORD = re.compile(r"\S+$")
_OPENERS = "\"'“‘„«‹([{「『（"
_TRIM = "\u200b\u2060\ufeff"  # zero-width characters that str.isspace() misses
_SOFT_BREAKS = ",;:，、；：،؛" + _STRONG + _WEAK

# Lowercase, without the dot. Only words that rarely end a sentence: "etc."/"usw." often
# do, and a lowercase next word already keeps "etc. and" together.
_ABBREVIATIONS = frozenset((
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "inc", "ltd", "corp", "co",
    "fig", "figs", "vol", "approx", "ca", "cf", "jan", "feb", "apr", "jun", "jul", "aug", "sep",
    "sept", "oct", "nov", "dec", "rev", "hon", "dept", "bzw", "nr", "hr", "fr", "vgl", "ggf",
    "evtl", "inkl", "zzgl", "bspw", "jh", "jhd", "abs", "sog", "tel", "str", "mme", "mlle",
    "env", "sra", "srta", "dra", "ud", "uds", "pág", "núm", "dott", "sig", "bijv", "dhr",
    "mevr", "гг", "ок", "тыс", "млн", "млрд", "им", "ул", "стр", "см", "рис", "проф",
))  # fmt: skip


def sentence_spans(text: str, max_chars: int | None = None) -> list[Span]:
    """Sentences of ``text`` as trimmed ``(start, end)`` spans, in order, never empty."""
    cuts = {0, len(text)}
    cuts.update(_line_cuts(text))
    cuts.update(_terminator_cuts(text))
    cuts.update(m.start() for m in _SEA_SPACE.finditer(text))
    ordered = sorted(cuts)
    spans: list[Span] = []
    for start, end in itertools.pairwise(ordered):
        span = trim(text, start, end)
        if span is None:
            continue
        if max_chars is not None and span[1] - span[0] > max_chars:
            spans.extend(split_long(text, span[0], span[1], max_chars))
        else:
            spans.append(span)
    return spans


def trim(text: str, start: int, end: int) -> Span | None:
    """``(start, end)`` without leading/trailing whitespace; None when nothing is left."""
    while start < end and (text[start].isspace() or text[start] in _TRIM):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in _TRIM):
        end -= 1
    return (start, end) if start < end else None


def split_long(text: str, start: int, end: int, max_chars: int) -> list[Span]:
    """Split ``text[start:end]`` into trimmed pieces of at most ``max_chars``."""
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    pieces: list[Span] = []
    span = trim(text, start, end)
    while span is not None:
        start, end = span
        if end - start <= max_chars:
            pieces.append(span)
            break
        cut = _cut_point(text, start, start + max_chars)
        if (piece := trim(text, start, cut)) is not None:
            pieces.append(piece)
        span = trim(text, cut, end)
    return pieces


def _cut_point(text: str, start: int, limit: int) -> int:
    """Where to end a piece that may run to ``limit``: a space, a comma-like mark, or hard."""
    for at in range(limit, start, -1):  # whitespace at ``at``: the piece is text[start:at]
        if text[at].isspace() or text[at] in _TRIM:
            return at
    for at in range(limit, start + 1, -1):  # after a comma-like mark
        if text[at - 1] in _SOFT_BREAKS:
            return at
    cut = limit
    while cut > start + 1 and unicodedata.category(text[cut])[0] == "M":
        cut -= 1  # keep a base letter with its vowel signs, tone marks and accents
    return cut


def _line_cuts(text: str) -> list[int]:
    cuts = []
    for match in _LINE_BREAK.finditer(text):
        breaks = _BREAK_CHARS.findall(match.group())
        paragraph = len(breaks) > 1 or "\u2029" in match.group()
        if paragraph or not _continues(text, match.start(), match.end()):
            cuts.append(match.start())
    return cuts


def _continues(text: str, before: int, after: int) -> bool:
    if before == 0 or after >= len(text):
        return False
    last, following = text[before - 1], text[after]
    return (last.isalnum() or last in ",-‐") and following.islower()


def _terminator_cuts(text: str) -> list[int]:
    cuts = []
    for match in _TERMINATOR.finditer(text):
        mark = match.group()
        if any(ch in _STRONG for ch in mark) or _weak_boundary(text, match.start(), mark):
            cuts.append(match.end())
    return cuts


def _weak_boundary(text: str, start: int, mark: str) -> bool:
    end = start + len(mark)
    if end < len(text) and not text[end].isspace():
        return False  # "3.14", "e.g.", "Yahoo!Inc", "word.Next"
    following = end
    while following < len(text) and text[following].isspace():
        following += 1
    if following < len(text) and (text[following].islower() or text[following] in ",;:"):
        return False
    if mark.rstrip(_CLOSERS) != ".":
        return True
    word = _LAST_WORD.search(text, max(0, start - 40), start)
    token = word.group().lstrip(_OPENERS) if word else ""
    return not _is_abbreviation(token)


def _is_abbreviation(token: str) -> bool:
    if not token:
        return False
    if token.lower() in _ABBREVIATIONS:
        return True
    if len(token) == 1 and token.isalpha():  # an initial: "J. R. R. Tolkien", "т. е."
        return True
    if token.isdigit() and len(token) <= 2:  # an ordinal: "am 3. Oktober", "19. století"
        return True
    parts = token.split(".")  # "e.g", "z.B", "U.S", "т.е", "Ph.D"
    return len(parts) > 1 and all(0 < len(p) <= 3 and p.isalpha() for p in parts)
