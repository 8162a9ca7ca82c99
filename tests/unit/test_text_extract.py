"""Text extraction from uploads: text, Markdown, HTML, PDF, and the errors for the rest."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader, PdfWriter

from services.retrieval.text.extract import extract_text, file_kind
from shared.errors import BabelError, ErrorCode
from tests.support.pdf import make_pdf


def encrypted(pdf: bytes, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def file_error(data: bytes, media_type: str, filename: str | None = None) -> BabelError:
    with pytest.raises(BabelError) as caught:
        extract_text(data, media_type, filename)
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    assert caught.value.field == "file"
    return caught.value


PDF = make_pdf(
    ["Retrieval-augmented generation.", "Grüße aus München: 3.5 Äpfel."], ["Second page."]
)


def test_pdf_text_layer_page_by_page() -> None:
    assert extract_text(PDF, "application/pdf", "paper.pdf") == (
        "Retrieval-augmented generation.\nGrüße aus München: 3.5 Äpfel.\n\nSecond page."
    )


def test_pdf_locked_only_against_editing_opens() -> None:
    assert "Second page." in extract_text(encrypted(PDF, ""), "application/pdf")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (PDF[: len(PDF) // 2], "could not be read"),
        (b"%PDF-1.4\n\x00\x01garbage", "could not be read"),
        (b"just some text", "could not be read"),
        (encrypted(PDF, "secret"), "encrypted with a password"),
        (make_pdf([]), "no text layer"),
    ],
    ids=["truncated", "garbage", "not-a-pdf", "password", "no-text"],
)
def test_unreadable_pdfs_are_clear_errors(data: bytes, message: str) -> None:
    assert message in str(file_error(data, "application/pdf", "x.pdf"))


def test_plain_text_utf8_bom_utf16_and_newlines() -> None:
    text = "Grüße, 東京。\r\nمرحبا\rПривет"
    expected = "Grüße, 東京。\nمرحبا\nПривет"
    assert extract_text(text.encode("utf-8"), "text/plain; charset=utf-8", None) == expected
    assert extract_text(b"\xef\xbb\xbf" + text.encode(), "text/plain", None) == expected
    assert extract_text(text.encode("utf-16"), "text/plain", None) == expected


def test_text_that_is_not_utf8_is_a_clear_error() -> None:
    error = file_error("Grüße".encode("latin-1"), "text/plain")
    assert "not valid UTF-8" in str(error)
    assert "offset 2" in str(error)  # the "ü"


def test_markdown_keeps_text_and_drops_markup() -> None:
    markdown = (
        "# Title #\n\nSome **bold**, *italic* and _under_ text, snake_case_name, `code`.\n"
        'See [the docs](https://example.com/docs "Docs"), ![logo](img.png), <https://x.org>.\n\n'
        "> quoted line\n\n1. first\n- [x] done\n\n```python\ndef f(x):\n    return x * 2\n```\n\n"
        "| Name | Value |\n|------|------:|\n| a | 1 |\n\n[ref]: https://example.com/ref\n---\n"
        "~~gone~~ 3 * 4 = 12 and \\*literal\\*"
    )
    assert extract_text(markdown.encode(), "text/markdown", "a.md") == (
        "Title\n\nSome bold, italic and under text, snake_case_name, code.\n"
        "See the docs, logo, https://x.org.\n\nquoted line\n\nfirst\ndone\n\n"
        "def f(x):\n    return x * 2\n\nName Value\n\na 1\n\ngone 3 * 4 = 12 and *literal*"
    )


def test_html_text_nodes_without_script_style_with_entities() -> None:
    html = (
        "<!doctype html><html><head><title>Caf&eacute; &amp; Bar</title>"
        "<style>body { color: red }</style><script>var s = '<p>no</p>'; if (a < b) {}</script>"
        "</head><body><h1>Welcome&nbsp;to   the caf&#233;</h1>"
        "<p>Coffee &lt;3 &mdash; tea.<br>Second line</p><ul><li>One</li><li>Two &#x2014; 2</li>"
        "</ul><table><tr><td>a</td><td>b</td></tr></table><noscript>enable js</noscript>"
        "<div>東京&#12290;</div></body></html>"
    )
    assert extract_text(html.encode(), "text/html; charset=UTF-8", None) == (
        "Café & Bar\n\nWelcome to the café\n\nCoffee <3 — tea.\nSecond line\n\n"
        "One\nTwo — 2\n\na\tb\n\n東京。"
    )


@pytest.mark.parametrize(
    ("media_type", "filename", "kind"),
    [
        ("TEXT/HTML; charset=utf-8", None, "html"),
        ("text/x-markdown", None, "markdown"),
        ("application/octet-stream", "Notes.MD", "markdown"),
        ("", "report.pdf", "pdf"),
        (None, "page.htm", "html"),
        ("application/x-unknown", "readme.txt", "text"),
    ],
)
def test_type_from_media_type_else_extension(
    media_type: str | None, filename: str | None, kind: str
) -> None:
    assert file_kind(media_type, filename) == kind


@pytest.mark.parametrize(
    ("media_type", "filename"), [("image/png", "photo.png"), ("", None), ("application/zip", None)]
)
def test_unsupported_types_name_the_supported_ones(media_type: str, filename: str | None) -> None:
    message = str(file_error(b"\x89PNG", media_type, filename))
    assert message.startswith("unsupported file type")
    assert "supported: text/plain (.txt), text/markdown (.md)" in message


@pytest.mark.parametrize(
    ("data", "media_type"),
    [(b"", "text/plain"), (b"  \n", "text/plain"), (b"<p> </p>", "text/html")],
)
def test_files_without_text_are_errors(data: bytes, media_type: str) -> None:
    assert "no text" in str(file_error(data, media_type))
