"""The everyday commands (``babelstack ingest/search/ask/translate/sentiment``) run as
subprocesses against a real stack: the session's Redis server (a database of its own), a
real retrieval worker (multilingual-e5-small), a real generation worker (vLLM on CPU,
SmolLM2-135M-Instruct), a real tasks worker (translation and sentiment through that model:
the ``llm`` backends, so no trained head is needed) and the gateway, all started here.

One stack for the module (the engine takes up to a minute to start). SmolLM2 is tiny and
English-only: the tests check what the commands print and send, not translation quality.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.launcher.redis_server import RedisServer, free_port
from tests.support.gateway_process import GatewayProcess, start_gateway, wait_ready
from tests.support.generation import (
    LOAD_TIMEOUT_S,
    STRICT_RAG_FLOOR,
    start_generation_worker,
)
from tests.support.pdf import make_pdf
from tests.support.processes import WorkerProcess, start_worker
from tests.support.redis_db import fresh_db_url
from tests.support.retrieval import start_retrieval_worker, wait_worker_ready

pytestmark = pytest.mark.timeout(420)

REDIS_DB = 14
BABELSTACK = Path(sys.executable).parent / "babelstack"
KB = "cli-kb"
COMMAND_TIMEOUT_S = 240.0

FILES: dict[str, str] = {
    "tower.md": "# The Eiffel Tower\n\nThe Eiffel Tower in Paris was completed in 1889. "
    "It is **330 metres** tall and was built by the company of Gustave Eiffel.\n",
    "zugspitze.txt": "Die Zugspitze ist mit 2962 Metern der höchste Berg Deutschlands. "
    "Sie liegt im Wettersteingebirge an der Grenze zu Österreich.\n",
    "bread.html": "<html><head><title>Bread</title><style>p {color: red}</style></head>"
    "<body><h1>Baking bread</h1><p>To bake bread you need flour, water, salt and yeast. "
    "The dough rests for one hour before it goes into the oven.</p></body></html>",
    "notes.csv": "city,height\nParis,330\n",
    "blank.txt": "  \n\n",
}
PDF_LINES = ["Bicycle maintenance.", "Road bike tyres need a pressure of 6 to 8 bar."]


@dataclass
class Stack:
    gateway: GatewayProcess
    workers: list[WorkerProcess]


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    url = fresh_db_url(redis_server, REDIS_DB)
    log_dir = tmp_path_factory.mktemp("cli-work")
    processes: list[GatewayProcess | WorkerProcess] = []
    try:
        generation = start_generation_worker(redis_url=url, log_dir=log_dir, env=STRICT_RAG_FLOOR)
        processes.append(generation)
        retrieval = start_retrieval_worker(
            redis_url=url, data_dir=log_dir / "data", log_dir=log_dir, name="retrieval"
        )
        processes.append(retrieval)
        tasks = start_worker(
            "services.tasks",
            redis_url=url,
            log_dir=log_dir,
            name="tasks",
            env={
                "BABEL_TRANSLATION_LANGUAGES": "en,de,fr",
                "BABEL_SENTIMENT_BACKEND": "llm",
                "BABEL_CLASSIFIERS_ENABLED": "false",
            },
        )
        processes.append(tasks)
        gateway = start_gateway(
            redis_url=url,
            log_dir=log_dir,
            env={
                "BABEL_GATEWAY_SERVICES": "tasks,retrieval,generation",
                "BABEL_GATEWAY_MONITOR_INTERVAL_S": 0.2,
            },
        )
        processes.append(gateway)
        wait_worker_ready(url, retrieval)
        wait_worker_ready(url, generation, service="generation", timeout_s=LOAD_TIMEOUT_S)
        wait_ready(gateway, watch=[generation, retrieval, tasks], timeout_s=60.0)
        yield Stack(gateway=gateway, workers=[generation, retrieval, tasks])
    finally:
        for process in reversed(processes):
            process.stop(timeout_s=30.0)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The commands' working directory; the resume manifests go to its state/ folder."""
    return tmp_path_factory.mktemp("cli-cwd")


def cli_env(stack: Stack, workdir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BABEL_")}
    env["BABEL_URL"] = stack.gateway.base_url
    env["BABEL_STATE_DIR"] = str(workdir / "state")
    env["NO_COLOR"] = "1"
    return env


def babel(
    stack: Stack, workdir: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``babelstack <args>`` as a subprocess (stdout is a pipe, not a terminal)."""
    return subprocess.run(
        [str(BABELSTACK), *args],
        cwd=workdir,
        env=cli_env(stack, workdir),
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def handbook(workdir: Path) -> Path:
    folder = workdir / "handbook"
    folder.mkdir()
    for name, text in FILES.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "bike.pdf").write_bytes(make_pdf(PDF_LINES))
    return folder


@pytest.fixture(scope="module")
def first_ingest(stack: Stack, workdir: Path, handbook: Path) -> subprocess.CompletedProcess[str]:
    return babel(stack, workdir, "ingest", "handbook", "--collection", KB)


# ---------------------------------------------------------------------- ingest
def test_ingest_sends_supported_files_and_says_what_it_skipped(
    stack: Stack, first_ingest: subprocess.CompletedProcess[str]
) -> None:
    lines = ok(first_ingest).splitlines()
    assert lines[0] == f"collection {KB} created"
    assert lines[1].startswith(f"{KB}: 4 documents ingested (")
    assert lines[1].endswith("0 replaced), 0 unchanged, 2 skipped")
    skipped = sorted(lines[2:])
    assert len(skipped) == 2
    assert skipped[0] == "  skipped handbook/blank.txt: empty"
    assert skipped[1].startswith("  skipped handbook/notes.csv: unsupported type (.csv)")
    assert first_ingest.stderr == ""

    with httpx.Client(base_url=stack.gateway.base_url, timeout=30.0) as http:
        info = http.get(f"/v1/collections/{KB}").json()
        assert info["documents"] == 4
        hits = http.post(
            f"/v1/collections/{KB}/search", json={"query": "tyre pressure", "k": 1}
        ).json()["hits"]
    assert hits[0]["document_id"] == "handbook/bike.pdf"
    assert hits[0]["metadata"]["filename"] == "bike.pdf"
    assert len(hits[0]["metadata"]["sha256"]) == 64


def test_a_rerun_skips_unchanged_files_and_sends_changed_ones(
    stack: Stack,
    workdir: Path,
    handbook: Path,
    first_ingest: subprocess.CompletedProcess[str],
) -> None:
    ok(first_ingest)
    again = json.loads(ok(babel(stack, workdir, "ingest", "handbook", "-c", KB, "--json")))
    assert again["created"] is False
    assert (again["documents"], again["unchanged"], len(again["skipped"])) == (0, 4, 2)
    assert again["completed"] is True
    assert Path(again["manifest"]).is_relative_to(workdir / "state" / "ingest")

    zugspitze = handbook / "zugspitze.txt"
    zugspitze.write_text(FILES["zugspitze.txt"] + "Der Gipfel ist im Winter beliebt.\n")
    changed = json.loads(ok(babel(stack, workdir, "ingest", "handbook", "-c", KB, "--json")))
    assert (changed["documents"], changed["replaced"], changed["unchanged"]) == (1, 1, 3)
    with httpx.Client(base_url=stack.gateway.base_url, timeout=30.0) as http:
        assert http.get(f"/v1/collections/{KB}").json()["documents"] == 4  # replaced, not added


# ---------------------------------------------------------------------- search
def test_search_finds_the_right_document_first(
    stack: Stack, workdir: Path, first_ingest: subprocess.CompletedProcess[str]
) -> None:
    ok(first_ingest)
    out = ok(babel(stack, workdir, "search", "How tall is the Eiffel Tower?", "-c", KB))
    first, snippet = out.splitlines()[:2]
    assert first.startswith(" 1. ")
    assert "handbook/tower.md" in first
    assert "330 metres" in snippet

    dense = ["--mode", "dense", "-k", "2", "--json"]
    across = json.loads(
        ok(babel(stack, workdir, "search", "Wie backt man Brot?", "-c", KB, *dense))
    )
    assert across["mode"] == "dense"
    assert across["hits"][0]["document_id"] == "handbook/bread.html"
    assert len(across["hits"]) == 2
    assert "color: red" not in across["hits"][0]["text"]  # the service extracted the HTML

    lexical = json.loads(
        ok(babel(stack, workdir, "search", "Zugspitze", "-c", KB, "--mode", "bm25", "--json"))
    )
    assert lexical["hits"][0]["document_id"] == "handbook/zugspitze.txt"


# ---------------------------------------------------------------------- ask
def test_ask_streams_the_answer_then_lists_its_sources(
    stack: Stack, workdir: Path, first_ingest: subprocess.CompletedProcess[str]
) -> None:
    ok(first_ingest)
    question = "How tall is the Eiffel Tower?"
    process = subprocess.Popen(
        [str(BABELSTACK), "ask", question, "-c", KB, "--max-tokens", "48"],
        cwd=workdir,
        env=cli_env(stack, workdir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        first_byte = os.read(process.stdout.fileno(), 1)  # unbuffered: the rest stays in the pipe
        still_running = process.poll() is None
        rest, errors = process.communicate(timeout=COMMAND_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    out = (first_byte + rest).decode()
    assert process.returncode == 0, f"{out}\n{errors.decode()}"
    assert first_byte
    assert still_running, "the first text came only when the command was done: not streamed"
    answer, _, sources = out.partition("\n\nSources:\n")
    assert sources, out
    assert "330" in answer
    assert "[1] handbook/tower.md (chunk 0, score" in sources

    plain = json.loads(
        ok(babel(stack, workdir, "ask", question, "-c", KB, "--max-tokens", "48", "--json"))
    )
    assert plain["grounded"] is True
    assert answer.strip() == plain["answer"]  # greedy: the stream adds up to the plain answer
    assert plain["sources"][0]["document_id"] == "handbook/tower.md"


def test_ask_an_unrelated_question_says_it_does_not_know(
    stack: Stack, workdir: Path, first_ingest: subprocess.CompletedProcess[str]
) -> None:
    ok(first_ingest)
    question = "Who won the football world cup in 1998?"
    out = ok(babel(stack, workdir, "ask", question, "-c", KB))
    assert out.startswith("I don't know")
    assert "Sources:" not in out
    plain = json.loads(ok(babel(stack, workdir, "ask", question, "-c", KB, "--json")))
    assert plain["grounded"] is False
    assert plain["sources"] == []


# ---------------------------------------------------------------------- translate, sentiment
def test_translate_stdin_and_a_file_keeping_paragraphs(stack: Stack, workdir: Path) -> None:
    text = "Guten Morgen.\n\nWie geht es dir?\n"
    out = ok(babel(stack, workdir, "translate", "--to", "en", stdin=text))
    assert out.endswith("\n")
    first, second = out.rstrip("\n").split("\n\n")
    assert first.strip()
    assert second.strip()
    (workdir / "letter.txt").write_text(text, encoding="utf-8")
    body = json.loads(ok(babel(stack, workdir, "translate", "letter.txt", "--to", "en", "--json")))
    assert body["backend"] == "llm"
    assert body["target"] == "en"
    assert [piece["source"] for piece in body["pieces"]] == ["de"]
    assert body["text"].count("\n\n") == 1


def test_sentiment_prints_one_line_per_text(stack: Stack, workdir: Path) -> None:
    text = "I love this phone, it is wonderful!\n\nThis was the worst day of my life.\n"
    lines = ok(babel(stack, workdir, "sentiment", stdin=text)).splitlines()
    assert len(lines) == 2
    for line, original in zip(lines, ["I love this phone", "This was the worst"], strict=True):
        label, probability, score, *words = line.split()
        assert label in {"negative", "neutral", "positive"}
        assert 0.0 <= float(probability) <= 1.0
        assert -1.0 <= float(score) <= 1.0
        assert " ".join(words).startswith(original)
    body = json.loads(ok(babel(stack, workdir, "sentiment", "--json", stdin=text)))
    assert [r["line"] for r in body["results"]] == [1, 3]
    assert all(
        set(r["probabilities"]) == {"negative", "neutral", "positive"} for r in body["results"]
    )


# ---------------------------------------------------------------------- errors
def test_api_errors_are_one_readable_line_and_exit_1(stack: Stack, workdir: Path) -> None:
    missing = babel(stack, workdir, "search", "anything", "-c", "no-such-collection")
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("error: 404 not_found: ")
    assert "no-such-collection" in missing.stderr

    asked = babel(stack, workdir, "ask", "What?", "-c", "no-such-collection")
    assert asked.returncode == 1
    assert asked.stderr.startswith("error: 404 not_found: ")

    empty = babel(stack, workdir, "search", " ", "-c", KB)
    assert empty.returncode == 1
    assert empty.stderr == "error: 422 invalid_argument: query is empty\n"  # names its field

    html = "<p>" + "Guten Tag. " * 1000 + "</p>"  # HTML is sent whole: over the text limit
    too_long = babel(stack, workdir, "translate", "--to", "en", "--format", "html", stdin=html)
    assert too_long.returncode == 1
    assert too_long.stderr == (
        f"error: 422 invalid_argument: text has {len(html)} characters; at most 10000 "
        "(field texts[0])\n"
    )

    unsupported = babel(stack, workdir, "translate", "--to", "xx", stdin="Hallo Welt")
    assert unsupported.returncode == 1
    assert unsupported.stderr.startswith("error: 400 unsupported_language: ")


def test_a_gateway_that_does_not_answer_names_its_url(stack: Stack, workdir: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = babel(stack, workdir, "search", "x", "-c", KB, "--url", down)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot reach the gateway at {down} ")
    assert result.stderr.count("\n") == 1
