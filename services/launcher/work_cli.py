"""Everyday commands against a running gateway: ``ingest``, ``search``, ``ask``,
``translate``, ``sentiment``.

Each takes ``--url`` (``BABEL_URL``, default http://127.0.0.1:8080) and ``--api-key``
(``BABEL_API_KEY``, sent as ``Authorization: Bearer <key>``, needed when keys are on), prints
readable text or, with ``--json``, the API's JSON. An API error is one line on stderr,
``error: <status> <code>: <detail>``, and exit status 1; bad usage exits with 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from services.launcher.api_client import DEFAULT_URL, ApiClient, problem_line
from services.launcher.ingest_files import discover
from services.launcher.ingest_run import IngestSummary, collection_path, run_ingest
from services.launcher.progress import TerminalProgress
from services.launcher.text_pieces import sentiment_lines, translation_pieces
from shared.errors import BabelError, ErrorCode
from shared.progress import SILENT, Progress

Url = Annotated[
    str, typer.Option("--url", envvar="BABEL_URL", help="Gateway base URL (env BABEL_URL).")
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="BABEL_API_KEY",
        help="Sent as 'Authorization: Bearer <key>' (env BABEL_API_KEY).",
        show_default=False,
    ),
]
Timeout = Annotated[float, typer.Option(help="Seconds to wait for an answer.", min=1)]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (the API's answer), for scripts.")]
Collection = Annotated[str, typer.Option("--collection", "-c", help="Collection name.")]
InputFile = Annotated[
    str, typer.Argument(help="A UTF-8 text file, or - for standard input.", show_default=True)
]

RESERVED_METADATA = frozenset({"sha256", "filename"})
"""Set by ``ingest`` (the file's hash) and by the service (its name)."""
SNIPPET_CHARS = 240
SENTIMENT_BATCH = 64
"""Texts per sentiment request (the gateway's default limit is 128)."""
TRANSLATION_PIECE_CHARS = 4000


# ---------------------------------------------------------------------- helpers
@contextmanager
def reported_errors() -> Iterator[None]:
    """A ``BabelError`` becomes ``error: <line>`` on stderr and exit status 1."""
    try:
        yield
    except BabelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc


def _client(url: str, api_key: str | None, timeout: float) -> ApiClient:
    try:
        return ApiClient(url, api_key=api_key, timeout_s=timeout)
    except BabelError as exc:
        raise typer.BadParameter(str(exc), param_hint="--url") from exc


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """One line of at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def parse_metadata(items: list[str]) -> dict[str, Any]:
    """``key=value`` (a string) or ``key:=json`` (a number, true, a list, ...) pairs."""
    metadata: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint="--metadata")
        if key.endswith(":"):
            key = key[:-1]
            try:
                decoded: Any = json.loads(value)
            except json.JSONDecodeError as exc:
                raise typer.BadParameter(
                    f"{item!r}: the value after := is not JSON ({exc.msg})",
                    param_hint="--metadata",
                ) from exc
        else:
            decoded = value
        key = key.strip()
        if not key:
            raise typer.BadParameter(f"{item!r} has no key", param_hint="--metadata")
        if key in RESERVED_METADATA:
            raise typer.BadParameter(f"{key!r} is set by ingest itself", param_hint="--metadata")
        metadata[key] = decoded
    return metadata


def read_input(source: str) -> tuple[str, str | None]:
    """The text of a file (or of stdin for ``-``) and its file name, if any."""
    if source == "-":
        return sys.stdin.read(), None
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8"), path.name
    except FileNotFoundError as exc:
        raise typer.BadParameter(f"no such file: {source}", param_hint="FILE") from exc
    except UnicodeDecodeError as exc:
        raise typer.BadParameter(f"{source} is not UTF-8 text", param_hint="FILE") from exc
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {source}: {exc.strerror}", param_hint="FILE"
        ) from exc


# ---------------------------------------------------------------------- ingest
def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="Files and folders (.txt, .md, .html, .pdf).")
    ],
    collection: Collection,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Walk subfolders too.")
    ] = False,
    metadata: Annotated[
        list[str] | None,
        typer.Option(
            "--metadata",
            "-m",
            help="key=value (string) or key:=JSON, added to every document (repeatable).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Send every file, changed or not.")
    ] = False,
    max_file_mib: Annotated[
        float, typer.Option(help="Skip larger files (the gateway's default limit).", min=0.001)
    ] = 25.0,
    state_dir: Annotated[
        Path,
        typer.Option(envvar="BABEL_STATE_DIR", help="Where the resume manifest is kept."),
    ] = Path(".babelstack"),
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    timeout: Timeout = 900.0,
) -> None:
    """Add files to a collection (created if missing); unchanged files are skipped on re-runs.

    Each file is one document, its id the path from the folder above the argument
    (docs/guide.md for 'ingest docs'): sending a file again replaces its document.

    A manifest of content hashes in STATE_DIR/ingest/ lets a re-run skip unchanged files.
    """
    extra = parse_metadata(metadata or [])
    try:
        discovery = discover(paths, recursive=recursive)
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="PATHS") from exc
    summary = IngestSummary(collection=collection)
    progress: Progress = SILENT if as_json else TerminalProgress()
    with _client(url, api_key, timeout) as client:
        try:
            with progress.task("ingest", total=len(discovery.candidates), unit="files") as advance:
                run_ingest(
                    client,
                    summary,
                    discovery,
                    metadata=extra,
                    state_dir=state_dir,
                    max_bytes=int(max_file_mib * 2**20),
                    force=force,
                    advance=advance,
                )
        except KeyboardInterrupt:
            _print_summary(summary, as_json)
            raise typer.Exit(code=130) from None
        except BabelError as exc:
            if summary.documents or summary.unchanged or summary.skipped:
                _print_summary(summary, as_json)
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=1) from exc
    _print_summary(summary, as_json)


def _print_summary(summary: IngestSummary, as_json: bool) -> None:
    if as_json:
        _print_json(summary.as_json())
        return
    for line in summary.lines():
        typer.echo(line)


# ---------------------------------------------------------------------- search
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in any language.")],
    collection: Collection,
    mode: Annotated[
        Literal["dense", "bm25", "hybrid"],
        typer.Option(help="dense (meaning, any language), bm25 (words) or hybrid (both)."),
    ] = "hybrid",
    k: Annotated[int, typer.Option("-k", "--k", help="How many hits.", min=1, max=200)] = 5,
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    timeout: Timeout = 120.0,
) -> None:
    """Search a collection: rank, score, document and a snippet per hit."""
    body = {"query": query, "k": k, "mode": mode}
    with _client(url, api_key, timeout) as client, reported_errors():
        reply = client.call("POST", collection_path(collection) + "/search", json_body=body)
    if as_json:
        _print_json(reply)
        return
    hits = reply.get("hits", [])
    if not hits:
        typer.echo(f"no hits in {collection} for {query!r}")
        return
    for rank, hit in enumerate(hits, start=1):
        title = hit.get("metadata", {}).get("title")
        named = f"{hit['document_id']} — {title}" if title else hit["document_id"]
        typer.echo(
            f"{rank:>2}. {hit['score']:.3f}  {named}  "
            f"(chunk {hit['chunk_index']}, {hit.get('language', '?')})"
        )
        typer.echo(f"    {snippet(hit['text'])}")


# ---------------------------------------------------------------------- ask
def ask(
    question: Annotated[str, typer.Argument(help="A question, in any language.")],
    collection: Collection,
    k: Annotated[int, typer.Option("-k", "--k", help="Passages to use.", min=1, max=20)] = 4,
    max_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.", min=1)] = 256,
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    timeout: Timeout = 660.0,
) -> None:
    """Answer a question from a collection: the answer streams in, then its sources."""
    body: dict[str, Any] = {
        "question": question,
        "collection": collection,
        "k": k,
        "max_tokens": max_tokens,
    }
    with _client(url, api_key, timeout) as client, reported_errors():
        if as_json:
            _print_json(client.call("POST", "/v1/rag/answer", json_body=body))
            return
        sources, cited = _stream_answer(
            client.stream_events("/v1/rag/answer", {**body, "stream": True})
        )
    if sources:
        typer.echo("")
        typer.echo("Sources:")
        for source in sources:
            mark = "  (cited)" if source["number"] in cited else ""
            typer.echo(
                f"  [{source['number']}] {source['document_id']} "
                f"(chunk {source['chunk_index']}, score {source['score']:.3f}){mark}"
            )
            typer.echo(f"      {snippet(source['text'], 160)}")


def _stream_answer(events: Iterator[Any]) -> tuple[list[dict[str, Any]], set[int]]:
    """Write the answer's text as it arrives; return the sources and the cited numbers."""
    sources: list[dict[str, Any]] = []
    cited: set[int] = set()
    wrote = ""
    for event in events:
        if not isinstance(event, dict):
            continue
        if "error" in event:
            if wrote:
                sys.stdout.write("\n")
            raise BabelError(ErrorCode.INTERNAL, problem_line(None, event["error"]))
        kind = event.get("type")
        if kind == "sources":
            sources = list(event.get("sources") or [])
        elif kind in ("delta", "done"):
            text = str(event.get("text") or "")
            if not wrote:
                text = text.lstrip()
            if text:
                sys.stdout.write(text)
                sys.stdout.flush()
                wrote += text
            if kind == "done":
                cited = {int(n) for n in event.get("cited") or []}
    sys.stdout.write("\n")
    sys.stdout.flush()
    return sources, cited


# ---------------------------------------------------------------------- translate
def translate(
    to: Annotated[str, typer.Option("--to", "-t", help="Target language code, e.g. de.")],
    source: InputFile = "-",
    from_: Annotated[
        str, typer.Option("--from", "-f", help="Source language code, or auto.")
    ] = "auto",
    text_format: Annotated[
        Literal["auto", "text", "html"],
        typer.Option("--format", help="html keeps the markup; auto: html for .html/.htm files."),
    ] = "auto",
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    timeout: Timeout = 330.0,
) -> None:
    """Translate a file (or standard input); paragraphs and line breaks are kept."""
    text, name = read_input(source)
    if not text.strip():
        raise typer.BadParameter("nothing to translate: the input is empty", param_hint="FILE")
    html = text_format == "html" or (
        text_format == "auto" and name is not None and name.lower().endswith((".html", ".htm"))
    )
    if html:  # markup cannot be cut at paragraphs safely: one text
        pieces, trailing = translation_pieces(text, len(text) + 2)
    else:
        pieces, trailing = translation_pieces(text, TRANSLATION_PIECE_CHARS)
    translated: list[dict[str, Any]] = []
    out: list[str] = []
    backend = model = ""
    with _client(url, api_key, timeout) as client, reported_errors():
        for piece in pieces:
            reply = client.call(
                "POST",
                "/v1/translate",
                json_body={
                    "texts": [piece.text],
                    "target": to,
                    "source": from_,
                    "format": "html" if html else "text",
                },
            )
            translation = reply["translations"][0]
            translated.append(translation)
            backend, model = reply.get("backend", ""), reply.get("model", "")
            out.append(piece.before + translation["text"])
    result = "".join(out) + trailing
    if as_json:
        _print_json(
            {
                "text": result,
                "target": to,
                "backend": backend,
                "model": model,
                "pieces": translated,
            }
        )
        return
    typer.echo(result, nl=not result.endswith("\n"))


# ---------------------------------------------------------------------- sentiment
def sentiment(
    source: InputFile = "-",
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    timeout: Timeout = 120.0,
) -> None:
    """Sentiment of each non-blank line of a file (or standard input): label and score."""
    text, _ = read_input(source)
    lines = sentiment_lines(text)
    if not lines:
        raise typer.BadParameter("no text: every line is blank", param_hint="FILE")
    results: list[dict[str, Any]] = []
    model = ""
    with _client(url, api_key, timeout) as client, reported_errors():
        for start in range(0, len(lines), SENTIMENT_BATCH):
            batch = lines[start : start + SENTIMENT_BATCH]
            reply = client.call(
                "POST", "/v1/sentiment", json_body={"q": [line for _, line in batch]}
            )
            model = reply.get("model", "")
            for (number, line), result in zip(batch, reply["results"], strict=True):
                results.append({"line": number, "text": line, **result})
    if as_json:
        _print_json({"results": results, "model": model})
        return
    for result in results:
        label = result["label"]
        probability = result.get("probabilities", {}).get(label, 0.0)
        typer.echo(
            f"{label:<8} {probability:4.2f}  {result['score']:+.2f}  {snippet(result['text'], 100)}"
        )


def register(app: typer.Typer) -> None:
    """Add the everyday commands to the ``babelstack`` app."""
    for command in (ingest, search, ask, translate, sentiment):
        app.command()(command)
