"""HTML for translation: the text nodes to translate, everything else kept as it came.

The markup is read with the standard library's forgiving ``html.parser``: tags,
attributes, comments and declarations are copied from the input unchanged; the
contents of ``script`` and ``style`` are copied raw and never translated; text inside
``code``/``kbd``/``samp``/``pre``/``template`` or an element marked ``translate="no"`` or
``class="notranslate"`` is kept. Every text node is written back HTML-escaped, so a
translation (or a stray ``<`` of malformed input, which the parser reads as text) can
never become markup.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Literal

from shared.errors import BabelError, ErrorCode
from shared.text.markup_guard import guard_markup

_KEEP_TAGS = frozenset({"script", "style", "code", "kbd", "samp", "pre", "template", "svg", "math"})
_VOID_TAGS = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
})  # fmt: skip

_DASHES = re.compile(r"--+")

PartKind = Literal["markup", "raw", "text"]


@dataclass(frozen=True, slots=True)
class Part:
    kind: PartKind
    value: str
    keep: bool = False
    """A text part that stays untranslated (inside ``code``, ``translate="no"``...)."""

    @property
    def translate(self) -> bool:
        return self.kind == "text" and not self.keep and bool(self.value.strip())


@dataclass
class HtmlDocument:
    parts: list[Part] = field(default_factory=list)

    def translatable(self) -> dict[int, str]:
        """Index of each text part to translate -> its text."""
        return {i: p.value for i, p in enumerate(self.parts) if p.translate}

    def render(self, translated: Mapping[int, str]) -> str:
        out = []
        for i, part in enumerate(self.parts):
            if part.kind == "text":
                out.append(html.escape(translated.get(i, part.value), quote=False))
            else:
                out.append(part.value)
        return "".join(out)


def safe_comment(data: str) -> str:
    """Comment text that no browser can end early: without ``--`` (which ``--!>`` and
    ``-->`` need), not starting with ``>`` or ``->`` (``<!-->``, ``<!--->``), not ending
    in ``-``."""
    data = _DASHES.sub(lambda m: "- " * len(m.group()), data)
    if data.startswith((">", "->")):
        data = " " + data
    return data + " " if data.endswith("-") else data


def _keeps(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    if tag in _KEEP_TAGS:
        return True
    for name, value in attrs:
        if name == "translate" and (value or "").strip().lower() == "no":
            return True
        if name == "class" and "notranslate" in (value or "").split():
            return True
    return False


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.document = HtmlDocument()
        # Open elements as (tag, keeping: it or an ancestor keeps its text untranslated),
        # and where each tag name is open: every start/end tag and text node costs O(1)
        # amortised, however deep or unbalanced the markup (it was O(depth) each).
        self._open: list[tuple[str, bool]] = []
        self._depths: dict[str, list[int]] = {}
        self._texts: list[str] = []  # pieces of the text node being read

    def _keeping(self) -> bool:
        return bool(self._open) and self._open[-1][1]

    def flush(self) -> None:
        """End the text node being read (its pieces joined once, not per piece)."""
        if self._texts:
            parts = self.document.parts
            keep = parts.pop().keep
            parts.append(Part("text", "".join(self._texts), keep=keep))
            self._texts = []

    def _markup(self, value: str) -> None:
        self.flush()
        self.document.parts.append(Part("markup", value))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._markup(self.get_starttag_text() or f"<{tag}>")
        if tag not in _VOID_TAGS:
            self._depths.setdefault(tag, []).append(len(self._open))
            self._open.append((tag, self._keeping() or _keeps(tag, attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._markup(self.get_starttag_text() or f"<{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        self._markup(f"</{tag}>")
        depths = self._depths.get(tag)
        if depths:  # close it and everything opened inside it
            depth = depths[-1]
            for closed, _ in self._open[depth:]:
                self._depths[closed].pop()
            del self._open[depth:]

    def handle_data(self, data: str) -> None:
        if self.cdata_elem is not None:  # inside <script>/<style>: raw, as written
            self.flush()
            self.document.parts.append(Part("raw", data))
            return
        keep = self._keeping()
        parts = self.document.parts
        if self._texts and parts[-1].keep == keep:
            self._texts.append(data)  # one node, one text: joined by flush()
        else:
            self.flush()
            parts.append(Part("text", "", keep=keep))
            self._texts = [data]

    def handle_comment(self, data: str) -> None:
        self._markup(f"<!--{safe_comment(data)}-->")

    def handle_decl(self, decl: str) -> None:
        self._markup(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self._markup(f"<?{data}>")


def parse_html(markup: str) -> HtmlDocument:
    """Split ``markup`` into parts; raises ``invalid_argument`` if it cannot be read at all."""
    reader = _Reader()
    try:
        reader.feed(guard_markup(markup))  # linear: no "<" the parser would rescan for
        reader.close()
        reader.flush()
        if reader.rawdata:  # the unterminated content of a <script>/<style> at the end
            reader.document.parts.append(Part("raw", reader.rawdata))
    except Exception as exc:  # the parser is forgiving; anything it still refuses is bad input
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT, f"the HTML cannot be parsed: {exc}", field="format"
        ) from exc
    return reader.document
