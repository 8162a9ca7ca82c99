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
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Literal

from shared.errors import BabelError, ErrorCode

_KEEP_TAGS = frozenset({"script", "style", "code", "kbd", "samp", "pre", "template", "svg", "math"})
_VOID_TAGS = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
})  # fmt: skip

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
        self._open: list[tuple[str, bool]] = []  # (tag, keeps its text untranslated)

    def _keeping(self) -> bool:
        return any(keep for _, keep in self._open)

    def _markup(self, value: str) -> None:
        self.document.parts.append(Part("markup", value))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._markup(self.get_starttag_text() or f"<{tag}>")
        if tag not in _VOID_TAGS:
            self._open.append((tag, _keeps(tag, attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._markup(self.get_starttag_text() or f"<{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        self._markup(f"</{tag}>")
        for depth in range(len(self._open) - 1, -1, -1):
            if self._open[depth][0] == tag:
                del self._open[depth:]
                break

    def handle_data(self, data: str) -> None:
        if self.cdata_elem is not None:  # inside <script>/<style>: raw, as written
            self.document.parts.append(Part("raw", data))
            return
        keep = self._keeping()
        parts = self.document.parts
        if parts and parts[-1].kind == "text" and parts[-1].keep == keep:
            parts[-1] = Part("text", parts[-1].value + data, keep=keep)  # one node, one text
        else:
            parts.append(Part("text", data, keep=keep))

    def handle_comment(self, data: str) -> None:
        self._markup(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self._markup(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self._markup(f"<?{data}>")

    def unknown_decl(self, data: str) -> None:
        self._markup(f"<![{data}]>")


def parse_html(markup: str) -> HtmlDocument:
    """Split ``markup`` into parts; raises ``invalid_argument`` if it cannot be read at all."""
    reader = _Reader()
    try:
        reader.feed(markup)
        reader.close()
        if reader.rawdata:  # the unterminated content of a <script>/<style> at the end
            reader.document.parts.append(Part("raw", reader.rawdata))
    except Exception as exc:  # the parser is forgiving; anything it still refuses is bad input
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT, f"the HTML cannot be parsed: {exc}", field="format"
        ) from exc
    return reader.document
