"""The search UI (``/ui``) and the ``<babel-search>`` widget in a real browser.

Debian's chromium (apt ``chromium fonts-noto-cjk``), driven by Playwright, against a real
stack started here: the session's Redis server (a database of its own), a retrieval worker
(multilingual-e5-small), a generation worker (vLLM on CPU, SmolLM2-135M-Instruct), a tasks
worker (translation through that model) and the gateway. One stack for the module.

Two small web servers on other ports serve a page that embeds the widget: one origin is on
the gateway's CORS allowlist (``BABEL_GATEWAY_CORS_ORIGINS``), the other is not. Every page
is checked with axe-core (vendored) for serious or critical violations, and screenshotted
into ``.babelstack/test-artifacts/ui/`` (or ``$BABEL_TEST_ARTIFACTS``), which is not committed.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from services.launcher.redis_server import RedisServer
from tests.support.gateway_process import GatewayProcess, start_gateway, wait_ready
from tests.support.generation import (
    LOAD_TIMEOUT_S,
    STRICT_RAG_FLOOR,
    start_generation_worker,
)
from tests.support.pdf import make_pdf
from tests.support.processes import REPO_ROOT, WorkerProcess, start_worker
from tests.support.redis_db import fresh_db_url
from tests.support.retrieval import start_retrieval_worker, wait_worker_ready

pytestmark = pytest.mark.timeout(420)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
REDIS_DB = 10
KB = "ui-kb"
WAIT_MS = 120_000
"""Generous: a busy 2-core machine shares its CPU with the model workers."""

KB_DOCS = {
    "eiffel": "The Eiffel Tower in Paris was completed in 1889. "
    "It is 330 metres tall and was built by the company of the engineer Gustave Eiffel.",
    "rhein": "Der Rhein ist ein Fluss in Mitteleuropa. Er ist 1233 Kilometer lang "
    "und mündet in die Nordsee.",
    "pan": "Para hacer pan se necesita harina, agua, sal y levadura. "
    "La masa debe reposar una hora antes de hornearla.",
}


# ---------------------------------------------------------------------- pages of other origins
class _PageServer:
    """A page on another origin (``http://127.0.0.1:<port>``) that embeds the widget."""

    def __init__(self) -> None:
        self.html = ""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = owner.html.encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def embed(self, gateway_url: str, collection: str) -> None:
        self.html = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Intranet</title>'
            f'<script src="{gateway_url}/ui/widget.js" defer></script></head><body><main>'
            "<h1>Team intranet</h1>"
            f'<babel-search base-url="{gateway_url}" collection="{collection}"></babel-search>'
            "</main></body></html>"
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Stack:
    gateway: GatewayProcess
    allowed: _PageServer
    refused: _PageServer

    @property
    def url(self) -> str:
        return self.gateway.base_url


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    url = fresh_db_url(redis_server, REDIS_DB)
    log_dir = tmp_path_factory.mktemp("ui-browser")
    allowed, refused = _PageServer(), _PageServer()
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
                "BABEL_TRANSLATION_LANGUAGES": "en,de,es,zh,ar",
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
                "BABEL_GATEWAY_CORS_ORIGINS": allowed.origin,
            },
        )
        processes.append(gateway)
        wait_worker_ready(url, retrieval)
        wait_worker_ready(url, generation, service="generation", timeout_s=LOAD_TIMEOUT_S)
        wait_ready(gateway, watch=[generation, retrieval, tasks], timeout_s=60.0)
        with httpx.Client(base_url=gateway.base_url, timeout=120.0) as http:
            assert http.post("/v1/collections", json={"name": KB}).status_code == 201
            documents = [{"id": k, "text": v, "metadata": {"topic": k}} for k, v in KB_DOCS.items()]
            reply = http.post(f"/v1/collections/{KB}/documents", json={"documents": documents})
            assert reply.status_code == 200, reply.text
        allowed.embed(gateway.base_url, KB)
        refused.embed(gateway.base_url, KB)
        yield Stack(gateway=gateway, allowed=allowed, refused=refused)
    finally:
        for process in processes:  # signal all first, so their grace periods overlap
            if process.alive():
                process.process.send_signal(signal.SIGTERM)
        for process in reversed(processes):
            process.stop(timeout_s=30.0)
        allowed.close()
        refused.close()


# ---------------------------------------------------------------------- browser
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium (never a downloaded one), driven by Playwright for this module only.

    Playwright's sync API runs an event loop on the main thread while it is started: it is
    stopped at the end of this module so that the asyncio tests after it can run theirs."""
    assert CHROMIUM.exists(), "the browser tests need Debian's chromium: apt-get install chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (own storage) and page for each test."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = Path(
        os.environ.get("BABEL_TEST_ARTIFACTS") or REPO_ROOT / ".babelstack" / "test-artifacts"
    )
    folder = folder / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(autouse=True)
def patient(page: Page) -> None:
    """Waits as long as a busy machine needs (an expectation still fails when it is wrong)."""
    page.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)


@pytest.fixture
def ui(page: Page, stack: Stack) -> Page:
    """The app at /ui in English on the test collection, with nothing stored yet."""
    page.add_init_script("localStorage.setItem('babel.language', 'en')")
    page.goto(f"{stack.url}/ui")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#collection")).to_have_value(KB)
    return page


def check_accessibility(page: Page, context: str | None = None) -> None:
    """axe-core: no serious or critical violation (in ``context``, a CSS selector, if given)."""
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async (context) => {
            const result = await axe.run(context ? document.querySelector(context) : document);
            return result.violations
                .filter((v) => v.impact === "serious" || v.impact === "critical")
                .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target).join(" ")}`);
        }""",
        context,
    )
    assert violations == [], violations


def shot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def search(page: Page, query: str) -> None:
    page.fill("#query", query)
    page.press("#query", "Enter")
    expect(page.locator("#results")).to_have_attribute("data-highlighted", "true")


def glyph_pixels(page: Page, selector: str, text: str) -> str:
    """The pixels of ``text`` drawn in the font of ``selector``'s element."""
    return str(
        page.evaluate(
            """([selector, text]) => {
                const style = getComputedStyle(document.querySelector(selector));
                const canvas = document.createElement("canvas");
                canvas.width = 64; canvas.height = 40;
                const ctx = canvas.getContext("2d");
                ctx.font = `32px ${style.fontFamily}`;
                ctx.fillText(text, 0, 32);
                return canvas.toDataURL();
            }""",
            [selector, text],
        )
    )


# ---------------------------------------------------------------------- tests
def test_questions_in_german_and_chinese_find_the_english_passage(
    ui: Page, artifacts: Path
) -> None:
    for query in ["Wie hoch ist der Eiffelturm?", "埃菲尔铁塔有多高？"]:
        search(ui, query)
        first = ui.locator("#results > li").first
        expect(first.locator(".hit-document")).to_have_text("eiffel")
        expect(first.locator(".hit-language")).to_contain_text("(en)")
        expect(first.locator(".hit-score")).to_have_text(re.compile(r"^\d\.\d{3}$"))
        # no shared word across languages: the sentence closest in meaning is marked
        expect(first.locator("mark.best")).to_have_count(1)
    shot(ui, artifacts, "search-zh-query")

    # words of the query are marked where they occur
    search(ui, "Eiffel Tower")
    expect(ui.locator("#results > li").first.locator("mark.term").first).to_have_text(
        re.compile("eiffel", re.I)
    )
    check_accessibility(ui)


def test_a_hit_is_translated_into_the_readers_language_and_shown_in_context(
    ui: Page, artifacts: Path
) -> None:
    ui.select_option("#language", "de")
    expect(ui.locator("#tab-search")).to_have_text("Suche")
    search(ui, "Wie hoch ist der Eiffelturm?")
    first = ui.locator("#results > li").first
    first.locator("button.translate").click()
    translation = first.locator(".translation")
    expect(translation).to_have_attribute("lang", "de")
    assert translation.inner_text().strip()
    first.locator("button.context").click()
    dialog = ui.locator("#passage-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("mark.cited")).to_contain_text("330 metres")
    shot(ui, artifacts, "search-de-translated")
    ui.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_ask_streams_the_answer_with_citations_that_open_the_passage(
    ui: Page, artifacts: Path
) -> None:
    ui.click("#tab-ask")
    # every text the answer shows, recorded as it changes
    ui.evaluate(
        """() => {
            window.answerTexts = [];
            new MutationObserver(() => window.answerTexts.push(
                document.querySelector("#answer").textContent
            )).observe(document.querySelector("#answer"), {childList: true, subtree: true});
        }"""
    )
    ui.select_option("#answer-length", "128")
    ui.fill("#question", "How tall is the Eiffel Tower?")
    ui.press("#question", "Enter")
    answer = ui.locator("#answer")
    expect(answer).to_have_attribute("data-state", "done")
    texts = [t for t in ui.evaluate("window.answerTexts") if t]
    assert len(set(texts)) >= 3, texts  # it grew piece by piece
    grown = itertools.pairwise(texts)
    assert all(b.startswith(a.rstrip(" [0123456789]")) for a, b in grown), texts
    assert "330" in answer.inner_text()
    chip = answer.locator("button.chip").first
    expect(chip).to_be_visible()
    chip.click()
    dialog = ui.locator("#passage-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#passage-meta")).to_contain_text("eiffel")
    expect(dialog.locator("#passage-body")).to_contain_text("330 metres")
    shot(ui, artifacts, "ask-citation")
    check_accessibility(ui)
    ui.keyboard.press("Escape")
    expect(chip).to_be_focused()  # focus returns to the chip that opened it


def test_stop_cancels_the_stream_and_unknown_questions_say_so(ui: Page, artifacts: Path) -> None:
    ui.click("#tab-ask")
    ui.select_option("#answer-length", "512")
    # Stop as soon as the first piece shows (inside the page: a tiny model writes fast)
    ui.evaluate(
        """() => new MutationObserver((_, observer) => {
            observer.disconnect();
            document.querySelector("#stop-button").click();
        }).observe(document.querySelector("#answer"), {childList: true})"""
    )
    ui.fill("#question", "Tell me everything about the Eiffel Tower and its history.")
    ui.click("#ask-button")
    answer = ui.locator("#answer")
    expect(answer).to_have_attribute("data-state", "stopped")
    expect(ui.locator("#ask-status")).to_have_text("Stopped.")
    expect(ui.locator("#stop-button")).to_be_hidden()
    stopped_at = answer.inner_text()
    ui.wait_for_timeout(1500)
    assert answer.inner_text() == stopped_at  # nothing arrives after the stop

    ui.fill("#question", "Who won the football world cup in 1998?")
    ui.click("#ask-button")
    expect(ui.locator("#idk")).to_be_visible()
    expect(answer).to_have_attribute("data-state", "idk")
    expect(answer).to_contain_text("don't know")
    expect(ui.locator("#sources > li")).to_have_count(0)
    shot(ui, artifacts, "ask-idk")


def test_upload_a_pdf_with_progress_then_find_it_and_delete_it(
    ui: Page, artifacts: Path, tmp_path: Path
) -> None:
    pdf = tmp_path / "bike.pdf"
    pdf.write_bytes(make_pdf(["Bicycle maintenance.", "Road bike tyres need 6 to 8 bar."]))
    notes = tmp_path / "notes.md"
    notes.write_text("# Coffee\n\nThe office coffee machine is descaled every Friday.\n")
    ui.click("#tab-documents")
    ui.set_input_files("#files", [str(pdf), str(notes)])
    ui.click("#upload-form button[type=submit]")
    uploads = ui.locator("#uploads > li")
    expect(uploads).to_have_count(2)
    for item in [uploads.nth(0), uploads.nth(1)]:
        expect(item).to_have_attribute("data-state", "done")
        expect(item.locator("progress")).to_have_attribute("value", "1")
    expect(uploads.nth(0)).to_contain_text("bike.pdf")
    rows = ui.locator("#documents tbody tr")
    expect(ui.locator('#documents tbody tr[data-id="bike.pdf"]')).to_have_count(1)
    shot(ui, artifacts, "documents")
    check_accessibility(ui)

    ui.click("#tab-search")
    search(ui, "Welcher Reifendruck für das Rennrad?")
    expect(ui.locator("#results > li").first.locator(".hit-document")).to_have_text("bike.pdf")

    ui.click("#tab-documents")
    ui.once("dialog", lambda dialog: dialog.accept())
    ui.locator('#documents tbody tr[data-id="notes.md"] button').click()
    expect(ui.locator('#documents tbody tr[data-id="notes.md"]')).to_have_count(0)
    expect(rows).to_have_count(len(KB_DOCS) + 1)


def test_a_collection_is_created_and_deleted(ui: Page) -> None:
    ui.click("#tab-documents")
    ui.fill("#new-collection", "ui-scratch")
    ui.click("#create-form button[type=submit]")
    expect(ui.locator("#collection")).to_have_value("ui-scratch")
    expect(ui.locator("#documents-status")).to_have_text("No documents yet.")
    ui.once("dialog", lambda dialog: dialog.accept())
    ui.click("#delete-collection")
    expect(ui.locator("#collection option")).to_have_text([KB])
    expect(ui.locator("#collection")).to_have_value(KB)


def test_arabic_is_right_to_left_and_chinese_renders_at_phone_width(
    ui: Page, artifacts: Path
) -> None:
    ui.set_viewport_size({"width": 390, "height": 844})
    ui.select_option("#language", "ar")
    expect(ui.locator("html")).to_have_attribute("dir", "rtl")
    expect(ui.locator("html")).to_have_attribute("lang", "ar")
    expect(ui.locator("#tab-search")).to_have_text("بحث")
    title = ui.locator("h1").bounding_box()
    assert title is not None
    assert title["x"] + title["width"] > 390 - 40  # starts at the right edge
    assert ui.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    # keyboard: in right-to-left, ArrowLeft moves to the next tab
    ui.focus("#tab-search")
    ui.keyboard.press("ArrowLeft")
    expect(ui.locator("#tab-ask")).to_be_focused()
    expect(ui.locator("#tab-ask")).to_have_attribute("aria-selected", "true")
    shot(ui, artifacts, "arabic-phone")
    check_accessibility(ui)

    ui.select_option("#language", "zh")
    expect(ui.locator("html")).to_have_attribute("dir", "ltr")
    expect(ui.locator("#tab-search")).to_have_text("搜索")
    # no tofu: two different Chinese characters draw as two different glyphs, and neither as
    # the glyph of a code point no font has
    first = glyph_pixels(ui, "#tab-search", "搜")
    second = glyph_pixels(ui, "#tab-search", "索")
    missing = glyph_pixels(ui, "#tab-search", "\U0010fffd")
    assert len({first, second, missing}) == 3
    shot(ui, artifacts, "chinese-phone")


def test_batches_panel_shows_what_the_batch_api_says(
    ui: Page, stack: Stack, artifacts: Path
) -> None:
    """A gateway without the batch API (404) is said to have none; one with it, its list."""
    listing = httpx.get(f"{stack.url}/v1/batches", params={"limit": 50}, timeout=30.0)
    ui.click("#tab-batches")
    status = ui.locator("#batches-status")
    if listing.status_code == 404:
        expect(status).to_have_attribute("data-state", "unavailable")
        expect(status).to_have_text("The batch API is not available on this gateway.")
    else:
        assert listing.status_code == 200, listing.text
        batches = listing.json()["data"]
        expect(ui.locator("#batches tbody tr")).to_have_count(len(batches))
        if not batches:
            expect(status).to_have_text("No batches.")
    shot(ui, artifacts, "batches")
    check_accessibility(ui)


def test_the_api_key_is_kept_for_the_tab_and_sent_as_bearer(ui: Page) -> None:
    ui.fill("#api-key", "k-123")
    with ui.expect_request(lambda r: r.url.endswith("/v1/collections")) as listing:
        ui.press("#api-key", "Enter")
    assert listing.value.headers.get("authorization") == "Bearer k-123"
    assert ui.evaluate("sessionStorage.getItem('babel.apiKey')") == "k-123"
    ui.reload()
    expect(ui.locator("#api-key")).to_have_value("k-123")
    with ui.expect_request(lambda r: "/search" in r.url) as searching:
        ui.fill("#query", "Eiffel")
        ui.press("#query", "Enter")
    assert searching.value.headers.get("authorization") == "Bearer k-123"


def test_the_widget_works_from_an_allowed_origin(page: Page, stack: Stack, artifacts: Path) -> None:
    page.goto(stack.allowed.origin)
    widget = page.locator("babel-search")
    widget.locator("input[name=q]").fill("Wie hoch ist der Eiffelturm?")
    widget.locator("button[name=search]").click()
    first = widget.locator("ol.results > li").first
    expect(first.locator(".meta")).to_contain_text("eiffel")
    expect(first.locator("mark")).to_have_count(1)

    widget.locator("input[name=q]").fill("How tall is the Eiffel Tower?")
    widget.locator("button[name=ask]").click()
    chip = widget.locator(".answer button.chip").first
    expect(chip).to_be_visible()
    expect(widget.locator("button[name=stop]")).to_be_hidden()
    chip.click()
    expect(widget.locator(".passage")).to_contain_text("330 metres")
    shot(page, artifacts, "widget-allowed-origin")
    check_accessibility(page)


def test_the_widget_is_refused_from_an_origin_not_on_the_list(page: Page, stack: Stack) -> None:
    page.goto(stack.refused.origin)
    widget = page.locator("babel-search")
    widget.locator("input[name=q]").fill("Eiffel Tower")
    widget.locator("button[name=search]").click()
    status = widget.locator(".status")
    expect(status).to_have_class(re.compile(r"\berror\b"))
    expect(status).to_contain_text("origin is not allowed")
    expect(widget.locator("ol.results > li")).to_have_count(0)
    # the gateway itself answered; the browser kept the answer from the page
    preflight = httpx.options(
        f"{stack.url}/v1/collections/{KB}/search",
        headers={
            "origin": stack.refused.origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_the_example_page_embeds_the_widget(page: Page, stack: Stack, artifacts: Path) -> None:
    page.goto(f"{stack.url}/ui/embed-example.html?collection={KB}")
    widget = page.locator("babel-search")
    widget.locator("input[name=q]").fill("pan levadura")
    widget.locator("button[name=search]").click()
    expect(widget.locator("ol.results > li").first.locator(".meta")).to_contain_text("pan")
    shot(page, artifacts, "embed-example")
    check_accessibility(page)
