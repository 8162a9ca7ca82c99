"""Plain text out of uploaded files: text, Markdown, HTML and PDF.

The type comes from the media type (parameters such as ``charset`` ignored); when that
is missing, generic or unknown, from the file name's extension. Text files must be UTF-8
(a UTF-8 BOM is dropped; a UTF-16 BOM is honoured too). Line breaks come out as ``\\n``.
Every failure is a ``BabelError(INVALID_ARGUMENT, field="file")`` that says what to do.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePath
from typing import TYPE_CHECKING

from shared.errors import BabelError, ErrorCode
from shared.text.markup_guard import guard_markup

if TYPE_CHECKING:
    from pypdf import PdfReader

_BY_MEDIA_TYPE = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
}
_BY_EXTENSION = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
}
_SUPPORTED = "text/plain (.txt), text/markdown (.md), text/html (.html), application/pdf (.pdf)"
_NEWLINES = re.compile(r"\r\n?")
# Every pattern below is linear in the text: no two quantifiers can match the same
# characters (possessive ``*+`` where they could), unanchored runs start only where a run
# starts (``(?<![ \t])``), and inline spans stop at the next delimiter instead of
# scanning on to the end of the line (``tests/unit/test_text_extract.py`` sends inputs
# that took quadratic time before).
_BLANK_LINES = re.compile(r"(?<![ \t])[ \t]*\n(?:[ \t]*\n)+[ \t]*")
_BREAKS = re.compile(r"[\n\x00]+")  # HTML: "\x00" marks a paragraph end
_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]+(.*)$", re.M)
_MARKDOWN: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^[ \t]*(?:```|~~~).*$", re.M), ""),  # code fence markers
    (re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*\S+.*$", re.M), ""),  # link definitions
    (re.compile(r"!\[([^\[\]\n]*)\]\([^()\[\n]*\)"), r"\1"),  # images: alt text
    (re.compile(r"\[([^\[\]\n]+)\](?:\([^()\[\n]*\)|\[[^\[\]\n]*\])"), r"\1"),  # links: text
    (re.compile(r"<((?:https?|mailto):[^<>\s]+)>"), r"\1"),  # autolinks
    (re.compile(r"</?[A-Za-z][\w-]*+(?:\s[^<>\n]*+)?/?>"), ""),  # inline HTML tags
    (re.compile(r"^(?:[ \t]*+>)+[ \t]?", re.M), ""),  # block quotes
    (_HEADING, lambda m: _heading_text(m.group(1))),  # headings
    (re.compile(r"^[ \t]*+(?:(?:[-*_][ \t]*+){3,}+|=++)[ \t]*$", re.M), ""),  # rules
    (re.compile(r"^([ \t]*)(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?", re.M), r"\1"),
    (re.compile(r"^(?=[^\n]*---)[ \t|:-]*+$", re.M), ""),  # table separator rows
    (
        re.compile(
            r"(?<=\S)[ \t]*+\|[ \t]*(?=\S)|^[ \t]*+\|[ \t]*+|(?<![ \t])[ \t]*+\|[ \t]*+$",
            re.M,
        ),
        " ",
    ),
    (re.compile(r"(\*\*|__|~~)(?=\S)((?:(?!\1).|(?<=\w)\1(?=\w))+?)(?<=\S)\1"), r"\2"),
    (  # emphasis; a delimiter inside a word (snake_case) is text
        re.compile(r"(?<![\w*])([*_])(?=\S)((?:(?!\1).|(?<=\w)\1(?=\w))+?)(?<=\S)\1(?![\w*])"),
        r"\2",
    ),
    (re.compile(r"(?<!`)(`+)(?!`)([^`\n]+)\1(?!`)"), r"\2"),  # inline code
]
_ESCAPABLE = "\\`*_{}[]()#+.!|>~-"
_ESCAPED = re.compile(f"\\\\([{re.escape(_ESCAPABLE)}])")  # "\*" is a literal "*"
_HIDDEN = {ord(c): 0xE000 + i for i, c in enumerate(_ESCAPABLE)}  # private use, meanwhile
_SHOWN = {v: k for k, v in _HIDDEN.items()}
_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "math"})
_PARAGRAPH_TAGS = frozenset((
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "title", "blockquote", "pre", "table", "ul", "ol",
    "dl", "section", "article", "header", "footer", "main", "nav", "aside", "figure", "form",
    "fieldset", "details",
))  # fmt: skip
_LINE_TAGS = frozenset((
    "br", "div", "li", "dt", "dd", "tr", "caption", "figcaption", "summary", "hr", "address",
    "option",
))  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExtractLimits:
    """Work one file may cause: counted while extracting, refused at the limit."""

    max_chars: int = 2_000_000
    """Characters of text (a PDF's pages may reuse one big content object)."""
    max_pages: int = 2_000
    max_content_bytes: int = 256 * 1_048_576
    """Decoded PDF content streams, summed over pages (each page parses its own)."""


def extract_text(
    data: bytes,
    media_type: str | None,
    filename: str | None = None,
    limits: ExtractLimits = ExtractLimits(),
) -> str:
    """The text of an uploaded file; raises ``BabelError`` for what cannot be read."""
    kind = file_kind(media_type, filename)
    if kind == "pdf":
        text = pdf_to_text(data, limits)
    else:
        decoded = decode_text(data)
        if len(decoded) > limits.max_chars:
            raise _too_long(len(decoded), limits.max_chars)
        convert: Callable[[str], str] = {
            "text": lambda s: s,
            "markdown": markdown_to_text,
            "html": html_to_text,
        }[kind]
        text = convert(_NEWLINES.sub("\n", decoded))
    if not text.strip():
        raise _file_error("the file contains no text")
    return text


def file_kind(media_type: str | None, filename: str | None) -> str:
    """``text``, ``markdown``, ``html`` or ``pdf``; unsupported types raise ``BabelError``."""
    essence = (media_type or "").split(";", 1)[0].strip().lower()
    if kind := _BY_MEDIA_TYPE.get(essence):
        return kind
    extension = PurePath(filename).suffix.lower() if filename else ""
    if kind := _BY_EXTENSION.get(extension):
        return kind
    described = ", ".join(repr(p) for p in (essence, filename) if p) or "no type or name"
    raise _file_error(f"unsupported file type ({described}); supported: {_SUPPORTED}")


def decode_text(data: bytes) -> str:
    """UTF-8 (BOM optional) or BOM-marked UTF-16; anything else is a clear error."""
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _file_error(
            f"the file is not valid UTF-8 text (bad byte at offset {exc.start}); "
            "save it as UTF-8 and upload it again"
        ) from None


def pdf_to_text(data: bytes, limits: ExtractLimits = ExtractLimits()) -> str:
    """Each page's text layer, pages separated by a blank line; pages, content bytes and
    characters are counted as they come and refused past ``limits``."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _decrypts(reader):
            raise _file_error("the PDF is encrypted with a password; upload an unlocked copy")
        if len(reader.pages) > limits.max_pages:
            raise _file_error(
                f"the PDF has {len(reader.pages)} pages; at most {limits.max_pages}: split it"
            )
        pages: list[str] = []
        chars = content_bytes = 0
        for page in reader.pages:
            contents = page.get_contents()
            content_bytes += len(contents.get_data()) if contents is not None else 0
            if content_bytes > limits.max_content_bytes:
                raise _file_error(
                    f"the PDF's pages hold more than {limits.max_content_bytes} bytes of "
                    "content in all; split it"
                )
            pages.append(page.extract_text() or "")
            chars += len(pages[-1])
            if chars > limits.max_chars:
                raise _too_long(chars, limits.max_chars)
    except BabelError:
        raise
    except Exception as exc:  # pypdf raises many types on damaged input
        raise _file_error(
            f"the PDF could not be read; it may be damaged or not a PDF ({type(exc).__name__})"
        ) from None
    text = "\n\n".join(_NEWLINES.sub("\n", page).strip() for page in pages)
    if not text.strip():
        raise _file_error(
            "the PDF has no text layer (scanned pages?); OCR is not supported, "
            "upload a PDF with selectable text"
        )
    return text


def markdown_to_text(markdown: str) -> str:
    """Markdown without its markup: headings, emphasis, list and quote markers, fences,
    link targets and tables' pipes go; the text (and code) stays."""
    markdown = _ESCAPED.sub(lambda m: m.group(1).translate(_HIDDEN), markdown)
    for pattern, replacement in _MARKDOWN:
        markdown = pattern.sub(replacement, markdown)
    return _BLANK_LINES.sub("\n\n", markdown.translate(_SHOWN)).strip()


def _heading_text(text: str) -> str:
    """A heading's text without its closing hashes (``## Title ##`` → ``Title``)."""
    text = text.rstrip(" \t")
    bare = text.rstrip("#")
    if bare != text and (not bare or bare[-1] in " \t"):
        text = bare.rstrip(" \t")
    return text


def html_to_text(html: str) -> str:
    """Text nodes of an HTML page (no script/style), a line per block, entities decoded."""
    parser = _HtmlText()
    parser.feed(guard_markup(html))  # linear: no "<" the parser would rescan for
    parser.close()
    lines = "\n".join(line.strip() for line in "".join(parser.parts).split("\n"))
    return _BREAKS.sub(lambda m: "\n\n" if "\x00" in m.group() else "\n", lines).strip()


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._count(tag, 1)
        self._break(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._break(tag)

    def handle_endtag(self, tag: str) -> None:
        self._count(tag, -1)
        if tag not in ("td", "th"):
            self._break(tag)

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            data = data.replace("\x00", "")
            self.parts.append(data if self._pre else re.sub(r"\s+", " ", data))

    def _count(self, tag: str, step: int) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping + step)
        elif tag == "pre":
            self._pre = max(0, self._pre + step)

    def _break(self, tag: str) -> None:
        if tag in _PARAGRAPH_TAGS:
            self.parts.append("\n\x00\n")
        elif tag in _LINE_TAGS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append("\t")


def _decrypts(reader: PdfReader) -> bool:
    """Opens PDFs locked only against editing (empty user password)."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # e.g. AES without the ``cryptography`` package
        return False


def _too_long(chars: int, limit: int) -> BabelError:
    return _file_error(
        f"the file has more than {limit} characters of text ({chars} so far); split it"
    )


def _file_error(message: str) -> BabelError:
    return BabelError(ErrorCode.INVALID_ARGUMENT, message, field="file")
