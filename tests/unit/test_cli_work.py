"""The everyday commands' pure parts: file discovery, the resume manifest, error lines, SSE
reading, text pieces; and the ingest loop and client against a *fake* gateway (an httpx
MockTransport in this process; the real gateway is in tests/integration/test_cli_work.py)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from services.launcher.api_client import (
    ApiClient,
    Reply,
    problem_error,
    problem_line,
    sse_events,
)
from services.launcher.cli import app
from services.launcher.ingest_files import (
    content_skip_reason,
    discover,
    sha256_of,
    size_skip_reason,
)
from services.launcher.ingest_manifest import Manifest, fingerprint, manifest_path
from services.launcher.ingest_run import IngestSummary, run_ingest
from services.launcher.redis_server import free_port
from services.launcher.text_pieces import sentiment_lines, translation_pieces
from services.launcher.work_cli import _stream_answer, parse_metadata, snippet
from shared.errors import BabelError, ErrorCode


# ---------------------------------------------------------------------- discovery
def _tree(root: Path) -> Path:
    kb = root / "kb"
    (kb / "sub" / "deeper").mkdir(parents=True)
    (kb / ".git").mkdir()
    (kb / "a.md").write_text("# A\n\nalpha")
    (kb / "b.TXT").write_text("beta")
    (kb / "c.html").write_text("<p>gamma</p>")
    (kb / "d.csv").write_text("x,y")
    (kb / "README").write_text("no extension")
    (kb / ".hidden.md").write_text("hidden")
    (kb / ".git" / "config.txt").write_text("hidden folder")
    (kb / "sub" / "e.pdf").write_bytes(b"%PDF-1.4")
    (kb / "sub" / "deeper" / "f.markdown").write_text("phi")
    return kb


def test_a_folder_without_recursive_takes_its_own_files_and_counts_subfolders(
    tmp_path: Path,
) -> None:
    kb = _tree(tmp_path)
    found = discover([kb], recursive=False)
    by_id = {c.document_id: c for c in found.candidates}
    assert sorted(by_id) == ["kb/README", "kb/a.md", "kb/b.TXT", "kb/c.html", "kb/d.csv"]
    assert found.unsearched_folders == 1  # sub (.git is hidden, not counted)
    assert by_id["kb/a.md"].media_type == "text/markdown"
    assert by_id["kb/b.TXT"].media_type == "text/plain"  # extension case does not matter
    assert by_id["kb/c.html"].media_type == "text/html"
    assert by_id["kb/a.md"].skip is None
    assert by_id["kb/d.csv"].skip is not None
    assert by_id["kb/d.csv"].skip.startswith("unsupported type (.csv)")
    assert by_id["kb/README"].skip is not None
    assert "no extension" in by_id["kb/README"].skip


def test_recursive_walks_subfolders_but_not_hidden_ones(tmp_path: Path) -> None:
    kb = _tree(tmp_path)
    found = discover([kb], recursive=True)
    ids = [c.document_id for c in found.candidates]
    assert "kb/sub/e.pdf" in ids
    assert "kb/sub/deeper/f.markdown" in ids
    assert not [i for i in ids if "/." in i or i.startswith(".")]
    assert found.unsearched_folders == 0


def test_ids_do_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb = _tree(tmp_path)
    monkeypatch.chdir(kb / "sub")
    relative = discover([Path("..")], recursive=False)
    assert "kb/a.md" in [c.document_id for c in relative.candidates]
    monkeypatch.chdir(kb)
    here = discover([Path(".")], recursive=False)
    assert "kb/a.md" in [c.document_id for c in here.candidates]


def test_a_file_argument_is_its_name_and_repeats_are_dropped(tmp_path: Path) -> None:
    kb = _tree(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.md").write_text("another a")
    found = discover([kb / "a.md", kb / "a.md", other / "a.md"], recursive=False)
    assert [(c.document_id, c.skip) for c in found.candidates] == [
        ("a.md", None),
        ("a.md", f"same document id as {kb / 'a.md'}"),
    ]


def test_a_missing_argument_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no-such"):
        discover([tmp_path / "no-such"], recursive=False)


def test_size_and_content_reasons() -> None:
    assert size_skip_reason(10, 100) is None
    assert size_skip_reason(0, 100) == "empty"
    reason = size_skip_reason(3 * 2**20, 2**20)
    assert reason == "too large (3.0 MiB; the limit is 1.0 MiB)"
    assert content_skip_reason(b" \n\t\r\n", "text/plain") == "empty"
    assert content_skip_reason(b"\xef\xbb\xbf  \n", "text/markdown") == "empty"
    assert content_skip_reason(b" x ", "text/plain") is None
    assert content_skip_reason(b"   ", "application/pdf") is None  # the service decides


# ---------------------------------------------------------------------- manifest
def test_manifest_round_trip_and_what_counts_as_unchanged(tmp_path: Path) -> None:
    path = manifest_path(tmp_path, "http://127.0.0.1:8080/", "my kb/ä")
    assert path.parent == tmp_path / "ingest"
    assert "/" not in path.name[:-5]
    assert path == manifest_path(tmp_path, "http://127.0.0.1:8080", "my kb/ä")
    assert path != manifest_path(tmp_path, "http://127.0.0.1:9090", "my kb/ä")

    meta = fingerprint({"team": "ops", "year": 2024})
    assert meta == fingerprint({"year": 2024, "team": "ops"})
    assert meta != fingerprint({"team": "ops"})

    manifest = Manifest.load(path, "http://x", "my kb/ä", created_at=1.5)
    assert manifest.documents == {}
    manifest.record("kb/a.md", "hash-a", meta, chunks=3)
    manifest.save()

    again = Manifest.load(path, "http://x", "my kb/ä", created_at=1.5)
    assert again.unchanged("kb/a.md", "hash-a", meta)
    assert not again.unchanged("kb/a.md", "hash-b", meta)  # content changed
    assert not again.unchanged("kb/a.md", "hash-a", fingerprint({}))  # metadata changed
    assert not again.unchanged("kb/b.md", "hash-a", meta)  # never sent

    recreated = Manifest.load(path, "http://x", "my kb/ä", created_at=2.5)
    assert recreated.documents == {}, "a collection created again starts an empty manifest"


def test_a_damaged_manifest_counts_as_absent(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    for content in ("{not json", "[]", json.dumps({"version": 99, "documents": {}})):
        path.write_text(content)
        assert Manifest.load(path, "http://x", "kb", created_at=1.0).documents == {}


# ---------------------------------------------------------------------- error lines
def test_problem_line_of_a_validation_problem_lists_every_field() -> None:
    body = {
        "type": "https://babelstack.dev/problems/invalid_argument",
        "title": "Invalid argument",
        "status": 422,
        "detail": "q[1]: text is empty",
        "code": "invalid_argument",
        "field": "q[1]",
        "errors": [
            {"field": "q[1]", "message": "text is empty"},
            {"field": "k", "message": "must be >= 1"},
        ],
    }
    assert problem_line(422, body) == (
        "422 invalid_argument: q[1]: text is empty (k: must be >= 1)"
    )


def test_problem_line_names_a_field_the_detail_does_not() -> None:
    body = {"status": 422, "code": "invalid_argument", "detail": "text is empty", "field": "q"}
    assert problem_line(422, body) == "422 invalid_argument: text is empty (field q)"
    found = {"status": 404, "code": "not_found", "detail": "collection 'kb' does not exist"}
    assert problem_line(404, found) == "404 not_found: collection 'kb' does not exist"


def test_problem_line_of_other_bodies_and_of_stream_errors() -> None:
    assert problem_line(502, "<html>\n<b>Bad gateway</b>\n</html>") == (
        "502 http_error: <html> <b>Bad gateway</b> </html>"
    )
    assert problem_line(500, "") == "500 http_error: no body"
    assert len(problem_line(500, "x" * 5000)) < 260
    stream_error = {"code": "deadline_exceeded", "message": "too slow", "param": None}
    assert problem_line(None, stream_error) == "deadline_exceeded: too slow"


def test_problem_error_keeps_code_and_field() -> None:
    error = problem_error(
        Reply(404, {"status": 404, "code": "not_found", "detail": "no collection 'x'"})
    )
    assert error.code is ErrorCode.NOT_FOUND
    assert str(error) == "404 not_found: no collection 'x'"
    proxy = problem_error(Reply(504, "gateway timeout"))
    assert proxy.code is ErrorCode.DEADLINE_EXCEEDED
    unknown = problem_error(Reply(418, {"code": "teapot", "detail": "short and stout"}))
    assert unknown.code is ErrorCode.INTERNAL
    assert str(unknown) == "418 teapot: short and stout"


# ---------------------------------------------------------------------- SSE
def test_sse_events_decode_data_until_done() -> None:
    lines = [
        ": a comment",
        "event: message",
        'data: {"type": "sources", "sources": []}',
        "",
        'data: {"type": "delta",',
        'data:  "text": "Hi"}',
        "",
        "",
        'data: {"type": "done"}\r',
        "",
        "data: [DONE]",
        "",
        'data: {"after": "done"}',
        "",
    ]
    assert list(sse_events(lines)) == [
        {"type": "sources", "sources": []},
        {"type": "delta", "text": "Hi"},
        {"type": "done"},
    ]


def test_sse_event_without_final_blank_line_and_bad_json() -> None:
    assert list(sse_events(['data: {"a": 1}'])) == [{"a": 1}]
    with pytest.raises(BabelError, match="bad JSON"):
        list(sse_events(["data: {oops", ""]))


# ---------------------------------------------------------------------- text pieces
def test_translation_pieces_keep_every_character_and_the_limit() -> None:
    text = "  Guten Morgen.\n\nWie geht es?  \n\n\n  Ein langer Absatz mit vielen Wörtern.\n"
    pieces, trailing = translation_pieces(text, 20)
    assert "".join(p.before + p.text for p in pieces) + trailing == text
    assert [p.text for p in pieces] == [
        "Guten Morgen.",
        "Wie geht es?",
        "Ein langer Absatz",
        "mit vielen Wörtern.",
    ]
    merged, _ = translation_pieces(text, 1000)
    assert len(merged) == 1
    assert merged[0].text == text.strip()
    rng = random.Random(7)
    for _ in range(500):
        sample = "".join(rng.choice(["a", "bc", " ", "\n", "\t", "."]) for _ in range(60))
        limit = rng.randint(2, 25)
        pieces, trailing = translation_pieces(sample, limit)
        assert "".join(p.before + p.text for p in pieces) + trailing == sample
        assert all(0 < len(p.text) <= limit and p.text == p.text.strip() for p in pieces)


def test_sentiment_lines_skip_blank_ones_and_keep_numbers() -> None:
    assert sentiment_lines("good\n\n  bad  \n \n") == [(1, "good"), (3, "bad")]
    assert sentiment_lines("\n \n") == []


def test_parse_metadata() -> None:
    assert parse_metadata(["team=ops", "year:=2024", "tags:=[1, 2]", "eq=a=b"]) == {
        "team": "ops",
        "year": 2024,
        "tags": [1, 2],
        "eq": "a=b",
    }
    for bad in (["novalue"], ["=x"], ["n:={oops"], ["sha256=x"]):
        with pytest.raises(typer.BadParameter):
            parse_metadata(bad)


def test_snippet_is_one_short_line() -> None:
    assert snippet("a\n\n b\tc") == "a b c"
    assert snippet("word " * 100, 20) == "word word word word…"


# ---------------------------------------------------------------------- fake gateway
class FakeGateway:
    """A fake of the gateway's collection routes, as an httpx MockTransport handler."""

    def __init__(self, refuse: dict[str, tuple[int, dict[str, Any]]] | None = None) -> None:
        self.collections: dict[str, float] = {}
        self.uploads: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []
        self.refuse = refuse or {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.headers.append(request.headers)
        path = request.url.path
        if request.method == "GET" and path.startswith("/v1/collections/"):
            name = path.rsplit("/", 1)[1]
            if name not in self.collections:
                return _problem(404, "not_found", f"collection {name!r} does not exist")
            return httpx.Response(200, json={"name": name, "created_at": self.collections[name]})
        if request.method == "POST" and path == "/v1/collections":
            name = json.loads(request.content)["name"]
            self.collections[name] = 1000.0 + len(self.collections)
            return httpx.Response(201, json={"name": name, "created_at": self.collections[name]})
        if request.method == "POST" and path.endswith("/files"):
            form = _form_fields(request)
            self.uploads.append(form)
            if form["id"] in self.refuse:
                status, extra = self.refuse[form["id"]]
                return _problem(status, extra["code"], extra["detail"], extra.get("field"))
            return httpx.Response(200, json={"chunks": 2, "replaced": 0, "documents": 1})
        return _problem(404, "not_found", f"no route for {request.method} {path}")


def _problem(status: int, code: str, detail: str, field: str | None = None) -> httpx.Response:
    body = {"status": status, "code": code, "detail": detail, "title": code}
    if field:
        body["field"] = field
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def _form_fields(request: httpx.Request) -> dict[str, Any]:
    content = request.read().decode("latin-1")
    fields: dict[str, Any] = {}
    for part in content.split("--" + request.headers["content-type"].split("boundary=")[1]):
        if 'name="' not in part:
            continue
        name = part.split('name="', 1)[1].split('"', 1)[0]
        fields[name] = part.split("\r\n\r\n", 1)[1].rsplit("\r\n", 1)[0]
    return fields


def _ingest(
    client: ApiClient, tmp_path: Path, folder: Path, *, force: bool = False
) -> IngestSummary:
    summary = IngestSummary(collection="kb")
    run_ingest(
        client,
        summary,
        discover([folder], recursive=False),
        metadata={"team": "ops"},
        state_dir=tmp_path / "state",
        max_bytes=1000,
        force=force,
        advance=lambda _: None,
    )
    return summary


def test_ingest_against_a_fake_gateway_creates_skips_and_resumes(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "a.md").write_text("# alpha")
    (kb / "b.txt").write_text("   \n")
    (kb / "big.txt").write_text("x" * 2000)
    (kb / "c.csv").write_text("1,2")
    (kb / "scan.pdf").write_bytes(b"%PDF-1.4 no text")
    fake = FakeGateway(
        refuse={
            "kb/scan.pdf": (
                422,
                {
                    "code": "invalid_argument",
                    "detail": "the file contains no text",
                    "field": "file",
                },
            )
        }
    )
    with ApiClient(
        "http://gateway.test", api_key="s3cret", transport=httpx.MockTransport(fake)
    ) as client:
        first = _ingest(client, tmp_path, kb)
        assert first.created
        assert first.completed
        assert (first.documents, first.chunks, first.unchanged) == (1, 2, 0)
        reasons = {s.document_id: s.reason for s in first.skipped}
        assert reasons["kb/b.txt"] == "empty"
        assert reasons["kb/big.txt"].startswith("too large")
        assert reasons["kb/c.csv"].startswith("unsupported type (.csv)")
        assert reasons["kb/scan.pdf"] == "the file contains no text"
        assert len(fake.uploads) == 2  # a.md and scan.pdf (refused by the service)
        uploaded = fake.uploads[0]
        assert uploaded["id"] == "kb/a.md"
        assert json.loads(uploaded["metadata"]) == {
            "team": "ops",
            "sha256": sha256_of(b"# alpha"),
        }
        assert all(h["authorization"] == "Bearer s3cret" for h in fake.headers)

        second = _ingest(client, tmp_path, kb)
        assert not second.created
        assert (second.documents, second.unchanged) == (0, 1)
        assert len(fake.uploads) == 3  # a.md not again; the refused scan.pdf is tried again

        (kb / "a.md").write_text("# alpha, changed")
        third = _ingest(client, tmp_path, kb)
        assert (third.documents, third.unchanged) == (1, 0)
        forced = _ingest(client, tmp_path, kb, force=True)
        assert (forced.documents, forced.unchanged) == (1, 0)
    assert "lines" not in first.as_json()
    assert first.lines()[:2] == [
        "collection kb created",
        "kb: 1 document ingested (2 chunks, 0 replaced), 0 unchanged, 4 skipped",
    ]


def test_an_error_that_is_not_about_the_file_stops_the_run(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "a.md").write_text("alpha")
    (kb / "b.md").write_text("beta")
    fake = FakeGateway(
        refuse={"kb/a.md": (503, {"code": "unavailable", "detail": "no live retrieval worker"})}
    )
    with ApiClient("http://gateway.test", transport=httpx.MockTransport(fake)) as client:
        summary = IngestSummary(collection="kb")
        with pytest.raises(BabelError, match="503 unavailable: no live retrieval worker"):
            run_ingest(
                client,
                summary,
                discover([kb], recursive=False),
                metadata={},
                state_dir=tmp_path / "state",
                max_bytes=1000,
                force=False,
                advance=lambda _: None,
            )
    assert not summary.completed
    assert len(fake.uploads) == 1
    assert "authorization" not in fake.headers[0]


def test_an_unreachable_gateway_is_one_line_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with ApiClient(url, timeout_s=5) as client, pytest.raises(BabelError) as caught:
        client.call("GET", "/v1/collections")
    message = str(caught.value)
    assert caught.value.code is ErrorCode.UNAVAILABLE
    assert url in message
    assert "connection refused" in message
    assert "\n" not in message


def test_a_url_without_scheme_is_refused() -> None:
    with pytest.raises(BabelError, match="must start with http"):
        ApiClient("localhost:8080")


# ---------------------------------------------------------------------- the commands
def test_ask_writes_the_stream_as_it_comes(capsys: pytest.CaptureFixture[str]) -> None:
    events = iter(
        [
            {"type": "sources", "grounded": True, "sources": [{"number": 1}]},
            {"type": "delta", "text": " The tower"},
            {"type": "delta", "text": " is 330 m tall."},
            {"type": "done", "text": " [1]", "cited": [1]},
        ]
    )
    sources, cited = _stream_answer(events)
    assert capsys.readouterr().out == "The tower is 330 m tall. [1]\n"
    assert sources == [{"number": 1}]
    assert cited == {1}


def test_an_error_in_the_stream_is_raised_after_a_line_break(
    capsys: pytest.CaptureFixture[str],
) -> None:
    events = iter(
        [
            {"type": "delta", "text": "Half"},
            {"error": {"code": "internal", "message": "engine died", "param": None}},
        ]
    )
    with pytest.raises(BabelError, match=r"^internal: engine died$"):
        _stream_answer(events)
    assert capsys.readouterr().out == "Half\n"


def test_usage_errors_exit_2_and_api_errors_exit_1(tmp_path: Path) -> None:
    runner = CliRunner()
    missing_to = runner.invoke(app, ["translate", "-"], input="Hallo")
    assert missing_to.exit_code == 2
    assert "--to" in missing_to.output
    no_path = runner.invoke(app, ["ingest", str(tmp_path / "nope"), "-c", "kb"])
    assert no_path.exit_code == 2
    assert "no such file or folder" in no_path.output
    bad_metadata = runner.invoke(app, ["ingest", str(tmp_path), "-c", "kb", "-m", "oops"])
    assert bad_metadata.exit_code == 2
    empty = runner.invoke(app, ["sentiment", "-"], input="\n  \n")
    assert empty.exit_code == 2
    assert "blank" in empty.output

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    down = runner.invoke(app, ["search", "hello", "-c", "kb", "--url", url])
    assert down.exit_code == 1
    lines = down.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: cannot reach the gateway at {url}")
    from_env = runner.invoke(app, ["ask", "why?", "-c", "kb"], env={"BABEL_URL": url})
    assert from_env.exit_code == 1
    assert url in from_env.output
