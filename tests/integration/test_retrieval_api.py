"""The retrieval API over real HTTP: gateway subprocess, real Redis, real retrieval worker.

One stack for the module: the session's Redis server (a database of its own), one
``python -m services.retrieval`` worker with the real multilingual-e5-small model (offline,
from the model cache) and one ``python -m services.gateway``. Each test works in
collections of its own. Every process is started here and stopped by its own pid.

Before the main worker starts, a first worker that names the same model by its folder
path (so, to the service, a different model) creates the collection ``legacy-model`` in
the same data directory: the main worker must then refuse to embed into it (409).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from bench.hostile import HOSTILE_HTML, HOSTILE_MARKDOWN, HUGE_INT, deep_dict, too_deep_json
from services.launcher.redis_server import RedisServer
from tests.support.gateway_process import GatewayProcess, start_gateway, wait_ready
from tests.support.pdf import make_pdf, make_shared_content_pdf
from tests.support.prober import probing
from tests.support.problems import assert_problem
from tests.support.processes import WorkerProcess
from tests.support.redis_db import fresh_db_url
from tests.support.retrieval import (
    LOAD_TIMEOUT_S,
    MODEL,
    model_cache_dir,
    start_retrieval_worker,
    wait_worker_ready,
)

pytestmark = pytest.mark.timeout(240)

REDIS_DB = 5
DIM = 384
MAX_DOCUMENT_CHARS = 20_000
LEGACY = "legacy-model"
LEGACY_TEXT = "Lighthouses guide ships along dangerous coasts with rotating beams of light."


# ---------------------------------------------------------------------- the stack
@dataclass
class Stack:
    gateway: GatewayProcess
    worker: WorkerProcess
    redis_url: str
    data_dir: Path
    legacy_model: str


def _create_legacy_collection(gateway: GatewayProcess, legacy_model: str) -> None:
    with httpx.Client(base_url=gateway.base_url, timeout=60.0) as client:
        created = client.post("/v1/collections", json={"name": LEGACY})
        assert created.status_code == 201, created.text
        assert created.json()["model"] == legacy_model
        ingested = client.post(
            f"/v1/collections/{LEGACY}/documents",
            json={"documents": [{"id": "lighthouse", "text": LEGACY_TEXT}]},
        )
        assert ingested.status_code == 200, ingested.text


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    url = fresh_db_url(redis_server, REDIS_DB)
    log_dir = tmp_path_factory.mktemp("retrieval-api")
    data_dir = log_dir / "data"
    legacy_model = str((model_cache_dir() / MODEL).resolve())
    assert Path(legacy_model, "config.json").is_file(), f"{MODEL} is not prepared in the cache"
    processes: list[GatewayProcess | WorkerProcess] = []
    try:
        # 1. A worker whose model is the same folder named by path: "another model".
        legacy = start_retrieval_worker(
            redis_url=url,
            data_dir=data_dir,
            log_dir=log_dir,
            name="retrieval-legacy",
            env={"BABEL_RETRIEVAL_MODEL": legacy_model},
        )
        processes.append(legacy)
        gateway = start_gateway(
            redis_url=url,
            log_dir=log_dir,
            env={
                "BABEL_GATEWAY_SERVICES": "retrieval",
                "BABEL_GATEWAY_MONITOR_INTERVAL_S": 0.2,
            },
        )
        processes.append(gateway)
        wait_worker_ready(url, legacy)
        wait_ready(gateway, watch=[legacy], timeout_s=10.0)
        _create_legacy_collection(gateway, legacy_model)
        assert legacy.stop(timeout_s=30.0) == 0, legacy.log_tail()

        # 2. The worker under test, on the same data directory, with the default model.
        worker = start_retrieval_worker(
            redis_url=url,
            data_dir=data_dir,
            log_dir=log_dir,
            name="retrieval",
            env={"BABEL_RETRIEVAL_MAX_DOCUMENT_CHARS": MAX_DOCUMENT_CHARS},
        )
        processes.append(worker)
        wait_worker_ready(url, worker, timeout_s=LOAD_TIMEOUT_S)
        wait_ready(gateway, watch=[worker], timeout_s=10.0)
        yield Stack(
            gateway=gateway,
            worker=worker,
            redis_url=url,
            data_dir=data_dir,
            legacy_model=legacy_model,
        )
    finally:
        for process in reversed(processes):
            process.stop(timeout_s=15.0)


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway.base_url, timeout=60.0) as client:
        yield client


# ---------------------------------------------------------------------- helpers


async def create(http: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await http.post("/v1/collections", json={"name": name})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def ingest(
    http: httpx.AsyncClient,
    name: str,
    documents: list[dict[str, Any]],
    chunking: dict[str, int] | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {"documents": documents}
    if chunking is not None:
        payload["chunking"] = chunking
    response = await http.post(f"/v1/collections/{name}/documents", json=payload)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["collection"] == name
    return body


async def search(http: httpx.AsyncClient, name: str, query: str, **options: Any) -> dict[str, Any]:
    response = await http.post(f"/v1/collections/{name}/search", json={"query": query, **options})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert_descending(body["hits"])
    return body


async def stats(http: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await http.get(f"/v1/collections/{name}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def chunks_of(http: httpx.AsyncClient, name: str, document_id: str) -> list[dict[str, Any]]:
    """Every stored chunk of one document (documents carry ``metadata.doc`` = their id)."""
    body = await search(http, name, "any", mode="dense", k=200, filter={"doc": document_id})
    return sorted(body["hits"], key=lambda hit: hit["chunk_index"])


def ids_of(body: dict[str, Any]) -> list[str]:
    return [hit["document_id"] for hit in body["hits"]]


def assert_descending(hits: list[dict[str, Any]]) -> None:
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True), scores


def assert_no_duplicates(hits: list[dict[str, Any]]) -> None:
    keys = [(hit["document_id"], hit["chunk_index"]) for hit in hits]
    assert len(keys) == len(set(keys)), keys


def doc(document_id: str, text: str, **metadata: Any) -> dict[str, Any]:
    return {"id": document_id, "text": text, "metadata": {"doc": document_id, **metadata}}


# ---------------------------------------------------------------------- the mixed collection
# Twelve short passages, two per language, on twelve different topics. Every language
# that asks a question below also holds a passage on another topic that shares the
# question's function words (de: die/und/aus; en: the/is/in/of; ja: の/は/です…): the
# distractor that language-blind lexical matching would rank high.
PASSAGES: dict[str, tuple[str, str]] = {
    "en-apollo": (
        "en",
        "The Apollo 11 mission landed the first humans on the Moon in July 1969. "
        "Neil Armstrong was the first person to step onto the lunar surface.",
    ),
    "en-python": (
        "en",
        "Python is a programming language created by Guido van Rossum and first released "
        "in 1991. It is known for the readability of its syntax and its large standard library.",
    ),
    "de-rhine": (
        "de",
        "Der Rhein ist einer der längsten Flüsse Europas. Er entspringt in den Schweizer "
        "Alpen und mündet nach rund 1230 Kilometern in die Nordsee.",
    ),
    "de-beer": (
        "de",
        "Wie das Bier aus Malz und Hopfen mit der Hefe entsteht, ist in jeder Brauerei zu "
        "sehen: die Maische wird gekocht und dann vergoren.",
    ),
    "ja-fuji": (
        "ja",
        "富士山は日本で最も高い山で、標高は3776メートルです。多くの登山者が夏に山頂を目指します。",
    ),
    "ja-sushi": (
        "ja",
        "寿司は酢飯に新鮮な魚介類を組み合わせた日本の伝統的な料理で、世界中で人気があります。",
    ),
    "es-coffee": (
        "es",
        "El café se cultiva sobre todo en regiones tropicales, y Brasil es el mayor productor "
        "de café del mundo.",
    ),
    "es-flamenco": (
        "es",
        "El flamenco es un arte de Andalucía que combina el cante, la guitarra y el baile.",
    ),
    "zh-panda": (
        "zh",
        "大熊猫主要生活在中国四川的山区竹林里，它们几乎只吃竹子，每天要吃十几公斤。",
    ),
    "zh-wall": (
        "zh",
        "长城是古代中国为了抵御北方游牧民族而修建的军事防御工程，总长度超过两万公里。",
    ),
    "ar-burj": (
        "ar",
        "برج خليفة في دبي هو أطول مبنى في العالم، إذ يبلغ ارتفاعه 828 متراً، وقد افتُتح عام 2010.",
    ),
    "ar-petra": (
        "ar",
        "تشتهر مدينة البتراء في الأردن بمبانيها المنحوتة في الصخر الوردي، "
        "وهي من عجائب الدنيا السبع الجديدة.",
    ),
}
MIXED = "mixed"


def mixed_metadata(index: int, document_id: str) -> dict[str, Any]:
    return {"lang": PASSAGES[document_id][0], "n": index, "topic": document_id.split("-")[1]}


@pytest.fixture(scope="module")
def mixed(stack: Stack) -> dict[str, Any]:
    """The mixed-language collection, built once (tests only read it)."""
    documents = [
        {"id": document_id, "text": text, "metadata": mixed_metadata(i, document_id)}
        for i, (document_id, (_, text)) in enumerate(PASSAGES.items())
    ]
    with httpx.Client(base_url=stack.gateway.base_url, timeout=60.0) as client:
        assert client.post("/v1/collections", json={"name": MIXED}).status_code == 201
        response = client.post(f"/v1/collections/{MIXED}/documents", json={"documents": documents})
        assert response.status_code == 200, response.text
        reply: dict[str, Any] = response.json()
    return reply


# (id, query, query language, expected answer, same-language distractor on another topic)
CROSS_LANGUAGE = [
    (
        "de-asks-en",
        "Wann landeten die ersten Menschen auf dem Mond und wer stieg als Erster aus?",
        "de",
        "en-apollo",
        "de-beer",
    ),
    (
        "ja-asks-de",
        "ヨーロッパのアルプスから北海へ流れる長い川は何ですか？",
        "ja",
        "de-rhine",
        "ja-fuji",
    ),
    (
        "en-asks-zh",
        "What was the Great Wall of China built to defend against?",
        "en",
        "zh-wall",
        "en-python",
    ),
    (
        "en-asks-ar",
        "How tall is the Burj Khalifa in Dubai?",
        "en",
        "ar-burj",
        "en-python",
    ),
]


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


@pytest.mark.parametrize("mode", ["dense", None], ids=["dense", "hybrid-default"])
@pytest.mark.parametrize(
    ("query", "language", "answer", "distractor"),
    [case[1:] for case in CROSS_LANGUAGE],
    ids=[case[0] for case in CROSS_LANGUAGE],
)
async def test_cross_language_answer_is_first(
    http: httpx.AsyncClient,
    mixed: dict[str, Any],
    mode: str | None,
    query: str,
    language: str,
    answer: str,
    distractor: str,
) -> None:
    assert PASSAGES[answer][0] != language  # the answer is in another language
    assert PASSAGES[distractor][0] == language  # the distractor in the query's own
    if language != "ja":  # (Japanese has no spaces; its particles are shared all the same)
        assert _words(query) & _words(PASSAGES[distractor][1])  # shared function words
    options = {"k": 5} if mode is None else {"k": 5, "mode": mode}

    body = await search(http, MIXED, query, **options)

    assert body["mode"] == (mode or "hybrid")
    assert body["query_language"] == language
    assert ids_of(body)[0] == answer, body["hits"]
    assert_no_duplicates(body["hits"])


@pytest.mark.parametrize(
    ("query", "distractor"),
    [(case[1], case[4]) for case in CROSS_LANGUAGE if case[2] != "ja"],
    ids=[case[0] for case in CROSS_LANGUAGE if case[2] != "ja"],
)
async def test_function_words_alone_are_no_lexical_match(
    http: httpx.AsyncClient, mixed: dict[str, Any], query: str, distractor: str
) -> None:
    """Why hybrid is not fooled: the words a question shares with the same-language
    distractor are stopwords, so BM25 does not rank the distractor at all."""
    body = await search(http, MIXED, query, mode="bm25", k=12)

    assert distractor not in ids_of(body), body["hits"]


async def test_mixed_collection_stats(http: httpx.AsyncClient, mixed: dict[str, Any]) -> None:
    assert mixed == {"collection": MIXED, "documents": 12, "chunks": 12, "replaced": 0}

    info = await stats(http, MIXED)

    assert info["name"] == MIXED
    assert info["model"] == MODEL
    assert info["dim"] == DIM
    assert info["documents"] == 12
    assert info["chunks"] == 12
    assert info["languages"] == {lang: 2 for lang in ("en", "de", "ja", "es", "zh", "ar")}
    assert info["index_type"] == "faiss-flat"
    assert info["size_bytes"] >= 12 * DIM * 4
    listed = (await http.get("/v1/collections")).json()["collections"]
    assert MIXED in {c["name"] for c in listed}


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
async def test_hits_are_slices_of_their_documents(
    http: httpx.AsyncClient, mixed: dict[str, Any], mode: str
) -> None:
    body = await search(
        http, MIXED, "Brasil es el mayor productor de café del mundo", mode=mode, k=12
    )

    assert body["query_language"] == "es"
    assert body["hits"], body
    assert ids_of(body)[0] == "es-coffee"
    if mode == "dense":
        assert len(body["hits"]) == 12  # every chunk, each once
    assert_no_duplicates(body["hits"])
    index = {document_id: i for i, document_id in enumerate(PASSAGES)}
    for hit in body["hits"]:
        language, text = PASSAGES[hit["document_id"]]
        assert hit["text"] == text[hit["start"] : hit["end"]]
        assert hit["chunk_index"] == 0
        assert hit["language"] == language
        assert hit["metadata"] == mixed_metadata(index[hit["document_id"]], hit["document_id"])


# ---------------------------------------------------------------------- collections
async def test_collection_lifecycle(http: httpx.AsyncClient) -> None:
    created = await create(http, "lifecycle")

    assert created["name"] == "lifecycle"
    assert created["model"] == MODEL
    assert created["dim"] == DIM
    assert (created["documents"], created["chunks"], created["languages"]) == (0, 0, {})
    assert_problem(
        await http.post("/v1/collections", json={"name": "lifecycle"}), 409, "conflict", "name"
    )
    await ingest(http, "lifecycle", [doc("a", "A short note about tides and the Moon.")])
    assert (await stats(http, "lifecycle"))["documents"] == 1

    deleted = await http.delete("/v1/collections/lifecycle")

    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"name": "lifecycle", "documents": 1, "chunks": 1}
    assert_problem(await http.get("/v1/collections/lifecycle"), 404, "not_found", "collection")
    listed = (await http.get("/v1/collections")).json()["collections"]
    assert "lifecycle" not in {c["name"] for c in listed}
    # The name is free again, and the new collection starts empty.
    assert (await create(http, "lifecycle"))["documents"] == 0
    body = await search(http, "lifecycle", "tides and the Moon")
    assert body["hits"] == []


# ---------------------------------------------------------------------- upsert and delete
TOPICS = {
    "volcano": "Krakatoa erupted in 1883 and its explosion was heard thousands of kilometres away.",
    "bees": "Honey bees perform a waggle dance to tell their sisters where the flowers are.",
    "glacier": "Glaciers are slow rivers of ice that carve deep valleys into the mountains.",
    "lighthouse": "The Pharos of Alexandria was an ancient lighthouse, one of the seven wonders.",
}


async def test_upsert_replaces_a_document(http: httpx.AsyncClient) -> None:
    name = "upsert"
    await create(http, name)
    first = await ingest(
        http,
        name,
        [doc(key, TOPICS[key], version=1) for key in ("volcano", "bees", "glacier")],
    )
    assert first == {"collection": name, "documents": 3, "chunks": 3, "replaced": 0}
    assert (await search(http, name, "waggle dance of honey bees", mode="bm25"))["hits"]

    again = await ingest(http, name, [doc("bees", TOPICS["lighthouse"], version=2)])

    assert again == {"collection": name, "documents": 1, "chunks": 1, "replaced": 1}
    old = await search(http, name, "waggle dance of honey bees", mode="bm25")
    assert old["hits"] == []  # the old text is gone from the lexical index...
    dense = await search(http, name, "Honey bees dance to show where flowers are", mode="dense")
    assert all(hit["text"] != TOPICS["bees"] for hit in dense["hits"])  # ...and the dense one
    assert sorted(ids_of(dense)) == ["bees", "glacier", "volcano"]  # each id once
    new = await search(http, name, "ancient lighthouse of Alexandria")
    assert ids_of(new)[0] == "bees"
    assert new["hits"][0]["text"] == TOPICS["lighthouse"]
    assert new["hits"][0]["metadata"] == {"doc": "bees", "version": 2}
    assert ids_of(new).count("bees") == 1
    info = await stats(http, name)
    assert (info["documents"], info["chunks"]) == (3, 3)

    # A longer new version: more chunks, counted once each.
    long_text = " ".join(list(TOPICS.values()) * 2)
    longer = await ingest(
        http, name, [doc("bees", long_text, version=3)], {"max_chars": 200, "overlap_chars": 0}
    )
    assert longer["replaced"] == 1
    assert longer["chunks"] > 1
    chunks = await chunks_of(http, name, "bees")
    assert [c["chunk_index"] for c in chunks] == list(range(longer["chunks"]))
    assert all(c["text"] == long_text[c["start"] : c["end"]] for c in chunks)
    info = await stats(http, name)
    assert (info["documents"], info["chunks"]) == (3, 2 + longer["chunks"])
    everything = await search(http, name, "lighthouse", mode="dense", k=200)
    assert len(everything["hits"]) == info["chunks"]
    assert_no_duplicates(everything["hits"])


async def test_delete_removes_documents(http: httpx.AsyncClient) -> None:
    name = "deletes"
    await create(http, name)
    await ingest(http, name, [doc(key, text) for key, text in TOPICS.items()])

    by_post = await http.post(
        f"/v1/collections/{name}/documents/delete", json={"ids": ["bees", "no-such-id"]}
    )
    by_route = await http.delete(f"/v1/collections/{name}/documents/glacier")

    assert by_post.status_code == 200, by_post.text
    assert by_post.json() == {"collection": name, "documents": 1, "chunks": 1}
    assert by_route.status_code == 200, by_route.text
    assert by_route.json() == {"collection": name, "documents": 1, "chunks": 1}
    for query in ("waggle dance of honey bees", "rivers of ice carving valleys"):
        for mode in ("bm25", "dense", "hybrid"):
            body = await search(http, name, query, mode=mode, k=10)
            assert not {"bees", "glacier"} & set(ids_of(body)), (query, mode, body["hits"])
    info = await stats(http, name)
    assert (info["documents"], info["chunks"]) == (2, 2)
    # Deleting what is gone is not an error; it deletes nothing.
    again = await http.delete(f"/v1/collections/{name}/documents/glacier")
    assert again.status_code == 200, again.text
    assert again.json()["documents"] == 0
    assert (await stats(http, name))["documents"] == 2


# ---------------------------------------------------------------------- filters
FILTER_DOCS = [
    doc("en-2019", "The city council approved a new cycling lane downtown.", year=2019, tag="news"),
    doc("en-2022", "A recipe for apple pie with cinnamon and butter.", year=2022, tag="food"),
    doc(
        "de-2020",
        "Der Stadtrat hat einen neuen Radweg in der Innenstadt genehmigt.",
        year=2020,
        tag="news",
        draft=True,
    ),
    doc("de-2023", "Ein Rezept für Apfelkuchen mit Zimt und Butter.", year=2023, tag="food"),
    doc(
        "es-2021",
        "El ayuntamiento aprobó un nuevo carril bici en el centro.",
        year=2021,
        tag="news",
        draft=False,
    ),
    doc(
        "es-2024",
        "Una receta de tarta de manzana con canela y mantequilla.",
        year=2024,
        tag="opinion",
    ),
]


@pytest.fixture(scope="module")
def filtered(stack: Stack) -> str:
    with httpx.Client(base_url=stack.gateway.base_url, timeout=60.0) as client:
        assert client.post("/v1/collections", json={"name": "filters"}).status_code == 201
        response = client.post("/v1/collections/filters/documents", json={"documents": FILTER_DOCS})
        assert response.status_code == 200, response.text
    return "filters"


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
@pytest.mark.parametrize(
    ("condition", "languages", "expected"),
    [
        ({"tag": "news"}, [], {"en-2019", "de-2020", "es-2021"}),
        ({"tag": {"$eq": "food"}}, [], {"en-2022", "de-2023"}),
        ({"tag": {"$ne": "news"}}, [], {"en-2022", "de-2023", "es-2024"}),
        ({"tag": {"$in": ["food", "opinion"]}}, [], {"en-2022", "de-2023", "es-2024"}),
        ({"tag": {"$nin": ["food", "opinion"]}}, [], {"en-2019", "de-2020", "es-2021"}),
        ({"year": {"$gte": 2022}}, [], {"en-2022", "de-2023", "es-2024"}),
        ({"year": {"$gt": 2019, "$lte": 2021}}, [], {"de-2020", "es-2021"}),
        ({"year": 2020}, [], {"de-2020"}),
        ({"draft": False}, [], {"es-2021"}),
        ({"tag": "news", "year": {"$lt": 2021}}, [], {"en-2019", "de-2020"}),
        (None, ["de"], {"de-2020", "de-2023"}),
        (None, ["de", "es"], {"de-2020", "de-2023", "es-2021", "es-2024"}),
        ({"tag": "food"}, ["en", "es"], {"en-2022"}),
        ({"year": {"$gte": 2030}}, [], set()),
    ],
)
async def test_filters_select_documents(
    http: httpx.AsyncClient,
    filtered: str,
    mode: str,
    condition: dict[str, Any] | None,
    languages: list[str],
    expected: set[str],
) -> None:
    # A query that matches English documents lexically too: in hybrid mode the BM25 side
    # would bring excluded documents in if filters were not applied there as well.
    query = "new cycling lane recipe apple pie"
    options: dict[str, Any] = {"mode": mode, "k": 20, "languages": languages}
    if condition is not None:
        options["filter"] = condition

    body = await search(http, filtered, query, **options)

    assert set(ids_of(body)) == expected, body["hits"]
    assert_no_duplicates(body["hits"])
    by_id = {d["id"]: d for d in FILTER_DOCS}
    for hit in body["hits"]:
        assert hit["metadata"] == by_id[hit["document_id"]]["metadata"]
        if languages:
            assert hit["language"] in languages


async def test_filter_applies_to_bm25_too(http: httpx.AsyncClient, filtered: str) -> None:
    unfiltered = await search(http, filtered, "cycling lane downtown", mode="bm25")
    assert ids_of(unfiltered)[:1] == ["en-2019"]

    body = await search(
        http, filtered, "cycling lane downtown", mode="bm25", filter={"tag": "food"}
    )

    assert "en-2019" not in ids_of(body)


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        ({"year": "2021"}, "filter.year"),
        ({"year": {"$gte": "2021"}}, "filter.year"),
        ({"year": {"$in": [2020, "2021"]}}, "filter.year"),
        ({"tag": 5}, "filter.tag"),
        ({"tag": {"$in": []}}, "filter.tag"),
        ({"draft": {"$gt": True}}, "filter.draft"),
        ({"tag": ["news"]}, "filter.tag"),
        ({"tag": {"$regex": "^n"}}, "filter.tag"),
        ({"year": {"$between": [2019, 2021]}}, "filter.year"),
        ({"year": {}}, "filter.year"),
    ],
    ids=[
        "string-for-number",
        "string-for-number-range",
        "mixed-set",
        "number-for-string",
        "empty-set",
        "range-on-boolean",
        "list-for-string",
        "unknown-operator-regex",
        "unknown-operator-between",
        "empty-condition",
    ],
)
async def test_bad_filter_is_422_naming_the_field(
    http: httpx.AsyncClient, filtered: str, condition: dict[str, Any], field: str
) -> None:
    response = await http.post(
        f"/v1/collections/{filtered}/search", json={"query": "news", "filter": condition}
    )

    assert_problem(response, 422, "invalid_argument", field)


# ---------------------------------------------------------------------- chunking
PARAGRAPHS = [
    "Bread is one of the oldest prepared foods. Evidence from Jordan shows that people baked "
    "flatbread more than fourteen thousand years ago. Early bread was made from wild cereals "
    "and the roots of plants. Leavened bread appeared later, when wild yeasts from the air "
    "were allowed to ferment the dough. Egyptian bakers refined the process and built "
    "dedicated ovens. Roman cities had public bakeries that sold loaves to ordinary people.",
    "Lighthouses have guided sailors for more than two thousand years. The Pharos of "
    "Alexandria was the most famous lighthouse of the ancient world. Early lighthouses "
    "burned wood or coal in open fires at the top of tall towers. In the nineteenth century "
    "Fresnel lenses made their beams visible from much further away. Keepers lived in the "
    "towers and trimmed the lamps through the night. Today most lighthouses are automated.",
    "Honey bees live in colonies with a single queen and thousands of workers. A forager "
    "that finds a rich patch of flowers returns to the hive and performs a waggle dance. "
    "The angle of the dance tells the other bees the direction of the food. The duration of "
    "the waggle run tells them how far they have to fly. Bees also share the scent of the "
    "flowers they visited. This system lets a colony exploit the best sources quickly.",
    "Volcanoes form where molten rock reaches the surface of the Earth. Most of them lie "
    "along the edges of tectonic plates, in the so-called Ring of Fire around the Pacific. "
    "Shield volcanoes such as those of Hawaii have gentle slopes built by runny lava. "
    "Stratovolcanoes are steep and explosive, because their magma is thick and full of gas. "
    "The eruption of Krakatoa in 1883 was heard thousands of kilometres away. Ash from large "
    "eruptions can cool the climate of the whole planet for a year or more.",
    "Chess is played on a board of sixty-four squares. Each player starts with sixteen "
    "pieces: a king, a queen, two rooks, two bishops, two knights and eight pawns. The aim "
    "is to checkmate the opposing king. Modern chess rules took shape in southern Europe "
    "around the end of the fifteenth century. Computer programs now play far better than "
    "any human champion. Still, millions of people enjoy the game online every day.",
    "Coral reefs cover less than one percent of the ocean floor. Yet they are home to about "
    "a quarter of all marine species. Reefs are built by tiny animals called polyps that "
    "secrete skeletons of calcium carbonate. Many corals live in partnership with algae that "
    "supply them with food from sunlight. When the water becomes too warm, the corals expel "
    "their algae and turn white. Repeated bleaching can kill large parts of a reef.",
    "Tea was first drunk in China, where legend dates it to almost five thousand years ago. "
    "Buddhist monks carried the habit to Japan, and Dutch traders brought it to Europe. "
    "Green, oolong and black tea all come from the leaves of the same plant. The difference "
    "lies in how long the leaves are left to oxidise after picking. In Britain, tea with milk "
    "became a national custom during the eighteenth century.",
    "Tides are caused mainly by the gravity of the Moon. The side of the Earth facing the "
    "Moon is pulled a little more strongly than the far side. This stretches the oceans into "
    "two bulges, so most coasts see two high tides a day. When the Sun and the Moon line up, "
    "the tides are especially large and are called spring tides. The Bay of Fundy in Canada "
    "has the highest tides in the world.",
    "Emperor penguins breed during the Antarctic winter, on sea ice far from the open water. "
    "The female lays a single egg and leaves it with the male. He balances the egg on his "
    "feet under a fold of skin for about two months without eating. Thousands of males "
    "huddle together against winds of two hundred kilometres an hour. When the chick hatches, "
    "the female returns with food in her stomach.",
    "Johannes Gutenberg built a printing press with movable metal type around 1450. His "
    "workshop in Mainz printed a famous edition of the Bible. Before that, books were copied "
    "by hand and were rare and expensive. Printing spread quickly to more than two hundred "
    "European cities within fifty years. Cheap books helped the Reformation and, later, the "
    "scientific revolution to reach many readers.",
]
LONG_DOCUMENT = "\n\n".join(PARAGRAPHS)


def assert_chunks_cover(text: str, chunks: list[dict[str, Any]], max_chars: int) -> None:
    """Chunks in order: slices of ``text``, within ``max_chars``, covering all of it."""
    assert [c["chunk_index"] for c in chunks] == list(range(len(chunks)))
    starts = [c["start"] for c in chunks]
    ends = [c["end"] for c in chunks]
    assert starts == sorted(set(starts))  # strictly increasing
    assert ends == sorted(set(ends))
    assert starts[0] == 0
    assert ends[-1] == len(text.rstrip())
    for chunk in chunks:
        assert chunk["text"] == text[chunk["start"] : chunk["end"]]
        assert 0 < len(chunk["text"]) <= max_chars
    for before, after in itertools.pairwise(chunks):
        gap = text[before["end"] : after["start"]]
        assert not gap.strip(), f"text between chunks is lost: {gap!r}"


async def test_long_document_is_chunked_in_order(http: httpx.AsyncClient) -> None:
    name = "chunking"
    await create(http, name)
    assert 3_000 < len(LONG_DOCUMENT) < MAX_DOCUMENT_CHARS

    reply = await ingest(http, name, [doc("long", LONG_DOCUMENT)])

    assert reply["chunks"] >= 3
    chunks = await chunks_of(http, name, "long")
    assert len(chunks) == reply["chunks"]
    assert_chunks_cover(LONG_DOCUMENT, chunks, max_chars=1_000)
    assert all(c["language"] == "en" for c in chunks)
    # A question about the fourth paragraph finds the chunk that holds it.
    body = await search(http, name, "Why are stratovolcanoes so explosive?", k=3)
    top = body["hits"][0]
    assert "Stratovolcanoes are steep and explosive" in top["text"]
    assert top["chunk_index"] > 0


async def test_documents_are_listed_by_page_and_their_chunks_read_back(
    http: httpx.AsyncClient,
) -> None:
    """What the search UI's document list and "in context" view read."""
    name = "browse"
    await create(http, name)
    await ingest(
        http,
        name,
        [
            doc("long", LONG_DOCUMENT),
            doc("b/kurz", "Die Zugspitze ist der höchste Berg Deutschlands."),
            doc("a", "A short note in English."),
        ],
    )
    documents = f"/v1/collections/{name}/documents"
    first = (await http.get(documents, params={"limit": 2})).json()
    assert [d["id"] for d in first["documents"]] == ["a", "b/kurz"]
    assert first["next_after"] == "b/kurz"
    rest = (await http.get(documents, params={"limit": 2, "after": "b/kurz"})).json()
    assert [d["id"] for d in rest["documents"]] == ["long"]
    assert rest["next_after"] is None
    long = rest["documents"][0]
    assert first["documents"][1]["languages"] == ["de"]
    assert (long["languages"], long["metadata"]) == (["en"], {"doc": "long"})
    stored = await chunks_of(http, name, "long")
    assert long["chunks"] == len(stored) >= 3

    response = await http.get(
        f"/v1/collections/{name}/chunks", params={"document_id": "long", "first": 1, "limit": 2}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(stored)
    keys = ("chunk_index", "start", "end", "text", "language")
    assert [[c[k] for k in keys] for c in body["chunks"]] == [
        [c[k] for k in keys] for c in stored[1:3]
    ]

    assert_problem(await http.get(documents, params={"limit": 0}), 422, "invalid_argument", "limit")
    assert_problem(
        await http.get(f"/v1/collections/{name}/chunks", params={"document_id": "a", "limit": 99}),
        422,
        "invalid_argument",
        "limit",
    )
    assert_problem(
        await http.get(f"/v1/collections/{name}/chunks"), 422, "invalid_argument", "document_id"
    )
    assert_problem(await http.get("/v1/collections/nope/documents"), 404, "not_found")


@pytest.mark.parametrize(("max_chars", "overlap_chars"), [(400, 0), (400, 150), (250, 100)])
async def test_chunking_is_configurable(
    http: httpx.AsyncClient, max_chars: int, overlap_chars: int
) -> None:
    name = f"chunks-{max_chars}-{overlap_chars}"
    await create(http, name)

    reply = await ingest(
        http,
        name,
        [doc("long", LONG_DOCUMENT)],
        {"max_chars": max_chars, "overlap_chars": overlap_chars},
    )

    chunks = await chunks_of(http, name, "long")
    assert len(chunks) == reply["chunks"]
    assert len(chunks) >= len(LONG_DOCUMENT) // max_chars
    assert_chunks_cover(LONG_DOCUMENT, chunks, max_chars=max_chars)
    overlaps = [
        before["end"] - after["start"]
        for before, after in itertools.pairwise(chunks)
        if after["start"] < before["end"]
    ]
    if overlap_chars == 0:
        assert overlaps == []
    else:
        assert overlaps, "no chunk repeats the end of the one before"
        assert max(overlaps) <= overlap_chars


# ---------------------------------------------------------------------- files
HTML = (
    "<!doctype html><html><head><title>Honey bees</title>"
    "<style>.dance { color: red; }</style><script>var hiddenSecret = 42;</script></head>"
    '<body><h1>The <em>waggle</em> dance</h1><p class="lead">A forager bee dances to tell '
    "her sisters where the flowers are &amp; how far away they grow.</p>"
    '<ul><li>Angle: direction</li><li>Duration: distance</li></ul><a href="https://x.test">'
    "more</a></body></html>"
)
MARKDOWN = (
    "# Volcanoes\n\nA **volcano** is an opening in the crust where [magma](https://x.test/m) "
    "erupts as lava.\n\n- Shield volcanoes\n- Stratovolcanoes\n\n> Krakatoa erupted in 1883.\n"
)
PLAIN = "Gletscher sind langsame Ströme aus Eis.\nSie formen tiefe Täler in den Alpen.\n"
PDF_LINES = ["Chess is played on a board of sixty-four squares.", "The aim is checkmate."]


async def test_file_uploads_are_searchable(http: httpx.AsyncClient) -> None:
    name = "files"
    await create(http, name)
    uploads = [
        ("bees.html", HTML.encode(), "text/html; charset=utf-8", "bees", {"kind": "html"}),
        ("volcano.md", MARKDOWN.encode(), "text/markdown", None, {"kind": "markdown"}),
        ("glacier.txt", PLAIN.encode(), "text/plain", "glacier", None),
        ("chess.pdf", make_pdf(PDF_LINES), "application/pdf", "chess", {"kind": "pdf", "n": 1}),
    ]
    for filename, data, media_type, document_id, metadata in uploads:
        form: dict[str, str] = {}
        if document_id is not None:
            form["id"] = document_id
        if metadata is not None:
            form["metadata"] = json.dumps(metadata)
        response = await http.post(
            f"/v1/collections/{name}/files", files={"file": (filename, data, media_type)}, data=form
        )
        assert response.status_code == 200, (filename, response.text)
        assert response.json() == {"collection": name, "documents": 1, "chunks": 1, "replaced": 0}

    html = await search(http, name, "How does a bee tell where the flowers are?", k=4)
    assert ids_of(html)[0] == "bees"
    text = html["hits"][0]["text"]
    assert "waggle dance" in text
    assert "& how far" in text  # entities decoded
    for markup in ("<", ">", "hiddenSecret", "color: red", "href", "class="):
        assert markup not in text
    assert html["hits"][0]["metadata"] == {"kind": "html", "filename": "bees.html"}

    markdown = await search(http, name, "Where does magma come out of the crust?", k=4)
    assert ids_of(markdown)[0] == "volcano.md"  # no id given: the file name is the id
    assert markdown["hits"][0]["text"].startswith("Volcanoes\n\nA volcano is an opening")
    for markup in ("**", "](", "# ", "> "):
        assert markup not in markdown["hits"][0]["text"]

    plain = await search(http, name, "Wie entstehen Täler in den Alpen?", k=4)
    assert ids_of(plain)[0] == "glacier"
    assert plain["hits"][0]["text"] == PLAIN.strip()
    assert plain["hits"][0]["language"] == "de"
    assert plain["hits"][0]["metadata"] == {"filename": "glacier.txt"}

    pdf = await search(http, name, "sixty-four squares", mode="bm25", k=4)
    assert ids_of(pdf)[0] == "chess"
    assert pdf["hits"][0]["text"] == "\n".join(PDF_LINES)
    assert pdf["hits"][0]["metadata"] == {"kind": "pdf", "n": 1, "filename": "chess.pdf"}

    info = await stats(http, name)
    assert (info["documents"], info["chunks"]) == (4, 4)


TXT = "text/plain"
BAD_UPLOADS = [
    # id: (file name, content, media type), form fields, the field the problem names
    ("corrupt-pdf", ("broken.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Cat", "application/pdf"), {},
     "file"),
    ("truncated-pdf", ("cut.pdf", make_pdf(PDF_LINES)[:150], "application/pdf"), {}, "file"),
    ("png", ("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"), {}, "file"),
    ("octet-stream", ("blob.bin", b"\x00\x01\x02", "application/octet-stream"), {}, "file"),
    ("not-utf8", ("latin.txt", "Größe".encode("latin-1"), TXT), {}, "file"),
    ("blank-text", ("empty.txt", b"  \n ", TXT), {}, "file"),
    ("metadata-not-json", ("a.txt", b"Some text.", TXT), {"metadata": "{oops"}, "metadata"),
    ("metadata-not-object", ("a.txt", b"Some text.", TXT), {"metadata": "[1, 2]"}, "metadata"),
    ("bad-chunking", ("a.txt", b"Some text.", TXT), {"max_chars": "10"}, "chunking.max_chars"),
]  # fmt: skip


async def test_bad_uploads_store_nothing(http: httpx.AsyncClient) -> None:
    name = "bad-files"
    await create(http, name)
    await ingest(http, name, [doc("keep", "A document that is already here.")])
    before = await stats(http, name)

    for case, upload, form, field in BAD_UPLOADS:
        response = await http.post(
            f"/v1/collections/{name}/files", files={"file": upload}, data=form
        )
        assert response.status_code == 422, (case, response.text)
        assert_problem(response, 422, "invalid_argument", field)

    missing = await http.post(
        "/v1/collections/no-such-collection/files",
        files={"file": ("a.txt", b"Some text.", "text/plain")},
    )
    assert_problem(missing, 404, "not_found", "collection")
    after = await stats(http, name)
    assert (after["documents"], after["chunks"], after["languages"]) == (
        before["documents"],
        before["chunks"],
        before["languages"],
    )
    for query in ("Größe", "Some text", "hiddenSecret"):
        assert set(ids_of(await search(http, name, query, mode="bm25", k=10))) <= {"keep"}


# ---------------------------------------------------------------------- bad input
STRICT = "strict"


@pytest.fixture(scope="module")
def strict(stack: Stack) -> str:
    """An empty collection that every refused ingest below aims at (and must leave empty)."""
    with httpx.Client(base_url=stack.gateway.base_url, timeout=30.0) as client:
        assert client.post("/v1/collections", json={"name": STRICT}).status_code == 201
    return STRICT


def _docs(*texts: str) -> dict[str, Any]:
    return {"documents": [{"id": f"d{i}", "text": text} for i, text in enumerate(texts)]}


C = f"/v1/collections/{STRICT}"
NOPE = "/v1/collections/no-such-collection"
TOO_LONG = "Ein Satz über nichts. " * (MAX_DOCUMENT_CHARS // 22 + 1)
CODES = {404: "not_found", 409: "conflict", 422: "invalid_argument"}


def bad(case: str, method: str, path: str, body: Any, status: int, field: str) -> Any:
    """One refused request: the problem has this status, its code, and names ``field``."""
    return pytest.param(method, path, body, status, field, id=case)


BAD_REQUESTS = [
    bad("empty-text", "POST", f"{C}/documents", _docs(""), 422, "documents[0].text"),
    bad("blank-text-second", "POST", f"{C}/documents", _docs("Fine.", " \n\t "), 422,
        "documents[1].text"),
    bad("duplicate-ids", "POST", f"{C}/documents",
        {"documents": [{"id": "x", "text": "One."}, {"id": "x", "text": "Two."}]}, 422,
        "documents[1].id"),
    bad("blank-id", "POST", f"{C}/documents", {"documents": [{"id": " ", "text": "One."}]}, 422,
        "documents[0].id"),
    bad("id-too-long", "POST", f"{C}/documents", {"documents": [{"id": "i" * 257, "text": "1"}]},
        422, "documents[0].id"),
    bad("empty-documents", "POST", f"{C}/documents", {"documents": []}, 422, "documents"),
    bad("missing-documents", "POST", f"{C}/documents", {}, 422, "documents"),
    bad("text-not-a-string", "POST", f"{C}/documents", {"documents": [{"id": "a", "text": 5}]},
        422, "documents[0].text"),
    bad("text-too-long", "POST", f"{C}/documents", _docs("Fine.", TOO_LONG), 422,
        "documents[1].text"),
    bad("chunk-too-small", "POST", f"{C}/documents",
        {**_docs("Fine."), "chunking": {"max_chars": 10}}, 422, "chunking.max_chars"),
    bad("overlap-too-big", "POST", f"{C}/documents",
        {**_docs("Fine."), "chunking": {"max_chars": 100, "overlap_chars": 100}}, 422,
        "chunking.overlap_chars"),
    bad("ingest-unknown-collection", "POST", f"{NOPE}/documents", _docs("Fine."), 404,
        "collection"),
    bad("search-unknown-collection", "POST", f"{NOPE}/search", {"query": "x"}, 404, "collection"),
    bad("describe-unknown-collection", "GET", NOPE, None, 404, "collection"),
    bad("delete-unknown-collection", "DELETE", NOPE, None, 404, "collection"),
    bad("delete-docs-unknown-collection", "POST", f"{NOPE}/documents/delete", {"ids": ["a"]},
        404, "collection"),
    bad("delete-doc-unknown-collection", "DELETE", f"{NOPE}/documents/a", None, 404,
        "collection"),
    bad("delete-no-ids", "POST", f"{C}/documents/delete", {"ids": []}, 422, "ids"),
    bad("duplicate-collection", "POST", "/v1/collections", {"name": STRICT}, 409, "name"),
    bad("bad-name-space", "POST", "/v1/collections", {"name": "bad name"}, 422, "name"),
    bad("bad-name-leading-dash", "POST", "/v1/collections", {"name": "-x"}, 422, "name"),
    bad("bad-name-too-long", "POST", "/v1/collections", {"name": "n" * 65}, 422, "name"),
    bad("bad-name-empty", "POST", "/v1/collections", {"name": ""}, 422, "name"),
    bad("unknown-model", "POST", "/v1/collections", {"name": "other-model", "model": "no-such"},
        404, "model"),
    bad("k-zero", "POST", f"{C}/search", {"query": "x", "k": 0}, 422, "k"),
    bad("k-too-big", "POST", f"{C}/search", {"query": "x", "k": 1000}, 422, "k"),
    bad("empty-query", "POST", f"{C}/search", {"query": ""}, 422, "query"),
    bad("blank-query", "POST", f"{C}/search", {"query": "  \n"}, 422, "query"),
    bad("query-too-long", "POST", f"{C}/search", {"query": "q" * 4001}, 422, "query"),
    bad("bad-mode", "POST", f"{C}/search", {"query": "x", "mode": "fuzzy"}, 422, "mode"),
    bad("bm25-weight-too-big", "POST", f"{C}/search", {"query": "x", "bm25_weight": 2}, 422,
        "bm25_weight"),
    bad("unknown-search-field", "POST", f"{C}/search", {"query": "x", "top_k": 3}, 422, "top_k"),
    bad("embed-unknown-model", "POST", "/v1/embeddings", {"input": "x", "model": "no-such"}, 404,
        "model"),
    bad("embed-empty-list", "POST", "/v1/embeddings", {"input": []}, 422, "input"),
    bad("embed-blank-text", "POST", "/v1/embeddings", {"input": ["ok", " "]}, 422, "input[1]"),
    bad("embed-dimensions", "POST", "/v1/embeddings", {"input": "x", "dimensions": 128}, 422,
        "dimensions"),
    bad("embed-bad-format", "POST", "/v1/embeddings", {"input": "x", "encoding_format": "int8"},
        422, "encoding_format"),
]  # fmt: skip


async def send(http: httpx.AsyncClient, method: str, path: str, body: Any) -> httpx.Response:
    return await http.request(method, path, **({} if body is None else {"json": body}))


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), BAD_REQUESTS)
async def test_bad_input_is_a_problem(
    http: httpx.AsyncClient,
    strict: str,
    method: str,
    path: str,
    body: Any,
    status: int,
    field: str,
) -> None:
    response = await send(http, method, path, body)

    assert_problem(response, status, CODES[status], field)


async def test_still_serving_after_bad_input(
    http: httpx.AsyncClient, stack: Stack, strict: str, mixed: dict[str, Any]
) -> None:
    for case in BAD_REQUESTS:
        method, path, body, status, _field = case.values
        assert (await send(http, method, path, body)).status_code == status

    info = await stats(http, STRICT)
    assert (info["documents"], info["chunks"]) == (0, 0)  # nothing refused was stored
    assert_problem(await http.get("/v1/collections/other-model"), 404, "not_found")
    reply = await ingest(http, STRICT, [doc("fine", "Now a valid document arrives.")])
    assert reply["documents"] == 1
    body = await search(http, MIXED, "Wann landeten die ersten Menschen auf dem Mond?")
    assert ids_of(body)[0] == "en-apollo"
    stack.gateway.assert_alive()
    stack.worker.assert_alive()


# ---------------------------------------------------------------------- limits
async def test_document_size_limit(http: httpx.AsyncClient) -> None:
    name = "limits"
    await create(http, name)
    sentence = "Die Grenze liegt genau hier. "
    at_limit = (sentence * (MAX_DOCUMENT_CHARS // len(sentence) + 1))[:MAX_DOCUMENT_CHARS]

    over = await http.post(f"/v1/collections/{name}/documents", json=_docs(at_limit + "x"))
    accepted = await ingest(http, name, [doc("at-limit", at_limit)])

    body = assert_problem(over, 422, "invalid_argument", "documents[0].text")
    assert str(MAX_DOCUMENT_CHARS) in body["detail"]
    assert accepted["documents"] == 1
    assert accepted["chunks"] >= MAX_DOCUMENT_CHARS // 1_000
    assert (await stats(http, name))["documents"] == 1


def _many_with_a_long_last(count: int) -> dict[str, Any]:
    documents = [{"id": f"many-{i}", "text": f"Short note number {i}."} for i in range(count)]
    documents[-1]["text"] = TOO_LONG
    return {"documents": documents}


async def test_refusal_in_a_later_batch_names_the_document_of_the_request(
    http: httpx.AsyncClient,
) -> None:
    """The gateway sends big ingests in batches of 64; the field must still name the index
    in the caller's list, not in the batch."""
    name = "late-refusal"
    await create(http, name)

    response = await http.post(f"/v1/collections/{name}/documents", json=_many_with_a_long_last(70))

    assert_problem(response, 422, "invalid_argument", "documents[69].text")


async def test_refused_big_ingest_stores_nothing(http: httpx.AsyncClient) -> None:
    name = "late-refusal-atomic"
    await create(http, name)

    response = await http.post(f"/v1/collections/{name}/documents", json=_many_with_a_long_last(70))

    assert response.status_code == 422, response.text
    assert (await stats(http, name))["documents"] == 0


# ---------------------------------------------------------------------- model mismatch
async def test_collection_of_another_model_must_be_reindexed(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    info = await stats(http, LEGACY)
    assert info["model"] == stack.legacy_model != MODEL
    assert (info["documents"], info["chunks"]) == (1, 1)
    upload = {"file": ("a.txt", b"Keepers trimmed the lamps at night.", "text/plain")}

    refusals = [
        await http.post(f"/v1/collections/{LEGACY}/search", json={"query": "lighthouse"}),
        await http.post(
            f"/v1/collections/{LEGACY}/search", json={"query": "lighthouse", "mode": "dense"}
        ),
        await http.post(
            f"/v1/collections/{LEGACY}/documents", json=_docs("Keepers trimmed the lamps.")
        ),
        await http.post(f"/v1/collections/{LEGACY}/files", files=upload),
    ]

    for response in refusals:
        body = assert_problem(response, 409, "conflict", "collection")
        assert "re-index" in body["detail"]
        assert stack.legacy_model in body["detail"]
        assert MODEL in body["detail"]
    after = await stats(http, LEGACY)
    assert (after["documents"], after["chunks"]) == (1, 1)
    # What needs no embedding still works: lexical search, and deleting the collection.
    lexical = await search(http, LEGACY, "lighthouses guide ships", mode="bm25")
    assert [(h["document_id"], h["text"]) for h in lexical["hits"]] == [("lighthouse", LEGACY_TEXT)]
    assert (await http.delete(f"/v1/collections/{LEGACY}")).status_code == 200


# ---------------------------------------------------------------------- /v1/embeddings
EMBED_TEXTS = [
    "The cat is sleeping on the sofa in the living room.",
    "Die Katze schläft auf dem Sofa im Wohnzimmer.",
    "Interest rates rose sharply after the central bank meeting.",
]


def _cosines(vectors: np.ndarray) -> np.ndarray:
    return np.asarray(vectors @ vectors.T)


async def _embed(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await http.post("/v1/embeddings", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_embeddings_float(http: httpx.AsyncClient) -> None:
    body = await _embed(http, input=EMBED_TEXTS, model=MODEL)

    assert body["object"] == "list"
    assert body["model"] == MODEL
    assert [item["index"] for item in body["data"]] == [0, 1, 2]
    assert {item["object"] for item in body["data"]} == {"embedding"}
    vectors = np.asarray([item["embedding"] for item in body["data"]], dtype=np.float64)
    assert vectors.shape == (3, DIM)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    cos = _cosines(vectors)
    assert cos[0, 1] > cos[0, 2] + 0.05  # the translation is closer than the unrelated text
    assert cos[0, 1] > cos[1, 2] + 0.05
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"]
    # More text, more tokens.
    short = await _embed(http, input=EMBED_TEXTS[0])
    assert len(short["data"]) == 1
    assert 0 < short["usage"]["prompt_tokens"] < usage["prompt_tokens"]


async def test_embeddings_base64_and_input_type(http: httpx.AsyncClient) -> None:
    floats = await _embed(http, input=EMBED_TEXTS)

    packed = await _embed(http, input=EMBED_TEXTS, encoding_format="base64")
    passages = await _embed(http, input=EMBED_TEXTS, input_type="passage")

    decoded = np.stack(
        [np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4") for item in packed["data"]]
    )
    expected = np.asarray([item["embedding"] for item in floats["data"]], dtype=np.float32)
    assert decoded.shape == (3, DIM)
    assert np.allclose(decoded, expected, atol=1e-6)
    assert packed["usage"] == floats["usage"]
    passage_vectors = np.asarray([item["embedding"] for item in passages["data"]])
    assert np.allclose(np.linalg.norm(passage_vectors, axis=1), 1.0, atol=1e-3)
    assert not np.allclose(passage_vectors, expected, atol=1e-3)  # "passage: " vs "query: "


async def test_embeddings_with_the_openai_client(http: httpx.AsyncClient, stack: Stack) -> None:
    import openai

    client = openai.AsyncOpenAI(
        base_url=stack.gateway.base_url + "/v1", api_key="x", max_retries=0, timeout=60.0
    )
    try:
        result = await client.embeddings.create(model=MODEL, input=EMBED_TEXTS)
        with pytest.raises(openai.NotFoundError):
            await client.embeddings.create(model="no-such-model", input="x")
    finally:
        await client.close()

    assert result.model == MODEL
    assert len(result.data) == 3
    vectors = np.asarray([item.embedding for item in result.data], dtype=np.float64)
    assert vectors.shape == (3, DIM)
    assert result.usage.prompt_tokens > 0
    ours = await _embed(http, input=EMBED_TEXTS)
    expected = np.asarray([item["embedding"] for item in ours["data"]])
    assert np.allclose(vectors, expected, atol=1e-5)


# ---------------------------------------------------------------------- concurrency
async def test_concurrent_searches_and_an_ingest(stack: Stack, mixed: dict[str, Any]) -> None:
    """32 searches and one ingest at once: each answer is the right one for its request
    (queries share batched forward passes with each other and with the ingest)."""
    name = "concurrent"
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    plan = [
        (CROSS_LANGUAGE[i % len(CROSS_LANGUAGE)], ("dense", "hybrid")[i // len(CROSS_LANGUAGE) % 2])
        for i in range(32)
    ]
    documents = [
        doc(f"c{i}", f"{text} (copy {i})") for i, text in enumerate(list(TOPICS.values()) * 10)
    ]
    async with httpx.AsyncClient(
        base_url=stack.gateway.base_url, timeout=120.0, limits=limits
    ) as client:
        await create(client, name)

        async def one_search(case: tuple[str, ...], mode: str) -> tuple[str, httpx.Response]:
            response = await client.post(
                f"/v1/collections/{MIXED}/search", json={"query": case[1], "mode": mode, "k": 3}
            )
            return case[3], response

        ingesting = asyncio.create_task(
            client.post(f"/v1/collections/{name}/documents", json={"documents": documents})
        )
        answers = await asyncio.gather(*(one_search(case, mode) for case, mode in plan))
        ingested = await ingesting

        for expected, response in answers:
            assert response.status_code == 200, response.text
            assert response.json()["hits"][0]["document_id"] == expected
        assert ingested.status_code == 200, ingested.text
        assert ingested.json()["documents"] == len(documents)
        info = await stats(client, name)
        assert (info["documents"], info["chunks"]) == (len(documents), len(documents))
    stack.worker.assert_alive()


async def test_searches_overtake_a_big_ingest(stack: Stack, mixed: dict[str, Any]) -> None:
    """Searches sent while a 480-chunk ingest is being embedded are answered before the ingest
    ends: interactive texts go ahead of bulk ones in the shared batcher (with one FIFO queue
    each search waited for every chunk queued before it)."""
    name = "big-ingest"
    sentence = "Tide tables list the hours of high and low water for every harbour on the coast."
    documents = [
        doc(f"b{i}", f"{sentence} Entry {i}: " + " ".join([sentence] * 3)) for i in range(480)
    ]
    async with httpx.AsyncClient(base_url=stack.gateway.base_url, timeout=180.0) as client:
        await create(client, name)
        ingesting = asyncio.create_task(
            client.post(f"/v1/collections/{name}/documents", json={"documents": documents})
        )
        await asyncio.sleep(1.0)  # the ingest's chunks are prepared and queued
        searched = []
        for case in CROSS_LANGUAGE[:3]:
            response = await client.post(
                f"/v1/collections/{MIXED}/search", json={"query": case[1], "mode": "dense", "k": 3}
            )
            assert response.status_code == 200, response.text
            assert response.json()["hits"][0]["document_id"] == case[3]
            searched.append(ingesting.done())
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
        ingested = await ingesting
        assert ingested.status_code == 200, ingested.text
        assert searched == [False, False, False], "a search waited for the whole ingest"
        assert (await stats(client, name))["chunks"] == len(documents)


# ---------------------------------------------------------------------- hostile requests
# Each was quadratic, unbounded or a 500 before (issue 11). A second client keeps calling
# an unrelated endpoint of the retrieval service and /readyz meanwhile: no error allowed.
async def test_hostile_files_are_served_while_others_are(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    name, other = "hostile-files", "hostile-other"
    await create(http, name)
    await create(http, other)
    shared_pdf = make_shared_content_pdf(300, ["The same line of text on every page."] * 20)
    with probing(stack.gateway.base_url, [f"/v1/collections/{other}", "/readyz"]) as probes:
        for filename, data, media_type in (
            ("hostile.md", HOSTILE_MARKDOWN.encode(), "text/markdown"),
            ("hostile.html", HOSTILE_HTML.encode(), "text/html"),
        ):
            response = await http.post(
                f"/v1/collections/{name}/files",
                files={"file": (filename, data, media_type)},
                data={"max_chars": "20000"},  # few chunks: the test is about extraction
            )
            assert response.status_code == 200, response.text
            assert response.json()["chunks"] >= 1
        # 48 KB of PDF whose 300 pages share one content object: 220,000 characters
        response = await http.post(
            f"/v1/collections/{name}/files",
            files={"file": ("shared.pdf", shared_pdf, "application/pdf")},
        )
        body = assert_problem(response, 422, "invalid_argument", "file")
        assert f"more than {MAX_DOCUMENT_CHARS} characters" in body["detail"]
    print(f"second client: {probes.calls} calls, p99 {probes.p99_s() * 1000:.0f} ms")
    stack.worker.assert_alive()


async def test_hostile_bodies_are_refused_naming_the_field(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    name, other = "hostile-bodies", "hostile-bystander"
    await create(http, name)
    await create(http, other)
    await ingest(http, name, [doc("one", "Bees make honey from nectar.", n=1)])
    search_path, ingest_path = f"/v1/collections/{name}/search", f"/v1/collections/{name}/documents"
    documents = [doc("two", "Wasps do not make honey.")]
    refused: list[tuple[str, dict[str, Any], int, str, str | None]] = [
        (search_path, {"query": "q", "filter": {"n": {"$in": list(range(5_000))}}}, 422,
         "invalid_argument", "filter"),
        (search_path, {"query": "q", "languages": ["de"] * 5_000}, 422, "invalid_argument",
         "languages"),
        (search_path, {"query": "q", "filter": {"n": HUGE_INT}}, 422, "invalid_argument",
         "filter.n"),
        (search_path, {"query": "q", "filter": {"n": {"$gte": -(2**64)}}}, 422,
         "invalid_argument", "filter.n.$gte"),
        (ingest_path, {"documents": [doc("two", "Wasps.", n=HUGE_INT)]}, 422, "invalid_argument",
         "documents[0].metadata.n"),
        (ingest_path, {"documents": [{**doc("two", "Wasps."), "metadata": deep_dict(40)}]}, 422,
         "invalid_argument", None),
        (ingest_path, {"documents": documents, "chunking": {"max_chars": 100,
         "overlap_chars": 99}}, 422, "invalid_argument", "chunking.overlap_chars"),
        (ingest_path, {"documents": documents, "chunking": {"max_chars": HUGE_INT}}, 422,
         "invalid_argument", "chunking.max_chars"),
        ("/v1/collections", {"name": "kb\n"}, 422, "invalid_argument", "name"),
    ]  # fmt: skip
    with probing(stack.gateway.base_url, [f"/v1/collections/{other}", "/readyz"]) as probes:
        for path, body, status, code, field in refused:
            response = await http.post(path, json=body)
            assert_problem(response, status, code, field)
        # JSON nested past the decoder's recursion limit: a 400, not a 500
        too_deep = too_deep_json(b'"query": "q", "filter": ')
        response = await http.post(
            search_path, content=too_deep, headers={"content-type": "application/json"}
        )
        assert_problem(response, 400, "invalid_json")
        hits = await search(http, name, "honey", filter={"n": {"$in": list(range(100))}})
        assert [h["document_id"] for h in hits["hits"]] == ["one"]
    print(f"second client: {probes.calls} calls, p99 {probes.p99_s() * 1000:.0f} ms")
    stack.worker.assert_alive()


async def test_an_ingest_past_its_deadline_stores_nothing_while_searches_keep_going(
    stack: Stack, mixed: dict[str, Any]
) -> None:
    """Issue 11, classes 3 and 6. Through a second gateway whose ingest timeout is 2 s, a
    480-chunk ingest gets its 504 (bound: within 15 s) and, once the worker is idle again,
    the collection holds nothing: the work stopped at the deadline instead of committing
    after the client was told it failed. Meanwhile a second client keeps searching another
    collection (dense, through the main gateway) and calling /readyz: no error, p99 under
    5 s (its searches go ahead of the ingest's chunks in the shared embedder)."""
    name = "deadline-ingest"
    sentence = "Tide tables list the hours of high and low water for every harbour on the coast."
    documents = [
        doc(f"d{i}", f"{sentence} Entry {i}: " + " ".join([sentence] * 3)) for i in range(480)
    ]
    query = {"query": CROSS_LANGUAGE[0][1], "mode": "dense", "k": 3}
    short = start_gateway(
        redis_url=stack.redis_url,
        log_dir=stack.data_dir.parent,
        name="gateway-short-ingest",
        env={"BABEL_GATEWAY_SERVICES": "retrieval", "BABEL_GATEWAY_INGEST_TIMEOUT_S": 2},
    )
    try:
        async with httpx.AsyncClient(base_url=short.base_url, timeout=60.0) as client:
            await create(client, name)
            probes_on = [(f"/v1/collections/{MIXED}/search", query), "/readyz"]
            with probing(stack.gateway.base_url, probes_on) as probes:
                started = time.monotonic()
                response = await client.post(
                    f"/v1/collections/{name}/documents", json={"documents": documents}
                )
                took = time.monotonic() - started
                assert_problem(response, 504, "deadline_exceeded")
                assert took < 15.0, f"the 504 came after {took:.1f} s"
                await _wait_idle(client, "retrieval")
                assert (await stats(client, name))["documents"] == 0
                await asyncio.sleep(2.0)  # a write that outlived its handler would land now
            assert (await stats(client, name))["documents"] == 0
    finally:
        short.stop()
    print(f"504 after {took:.1f} s; second client: {probes.calls} calls, "
          f"p99 {probes.p99_s() * 1000:.0f} ms")  # fmt: skip
    stack.worker.assert_alive()


async def _wait_idle(client: httpx.AsyncClient, service: str, timeout_s: float = 60.0) -> None:
    """Until every worker of ``service`` reports nothing in flight (its heartbeat)."""
    give_up = time.monotonic() + timeout_s
    while True:
        services = (await client.get("/v1/services")).json()["services"]
        workers = next(s["workers"] for s in services if s["name"] == service)
        if workers and all(w["in_flight"] == 0 for w in workers):
            return
        assert time.monotonic() < give_up, f"{service} still busy after {timeout_s} s: {workers}"
        await asyncio.sleep(0.2)


async def test_uploads_past_the_bytes_in_flight_are_refused(stack: Stack) -> None:
    """Issue 11, class 10. Through a second gateway that keeps at most 30 KB of uploads on
    request streams, a second 19 KB file sent while a first one (cut into ~250 chunks of 100
    characters: seconds of embedding) is being ingested is refused 503 ``overloaded`` within
    2 s (files travel whole in Redis: this bounds its memory); the first completes, and the
    second is taken once it is done. A second client keeps calling another collection and
    /readyz through the main gateway: no error, p99 under 5 s."""
    name, other = "upload-cap", "upload-bystander"
    sentence = "Harbour pilots board ships outside the breakwater and bring them to the quay. "
    data = (sentence * 240).encode()[:19_000]
    capped = start_gateway(
        redis_url=stack.redis_url,
        log_dir=stack.data_dir.parent,
        name="gateway-upload-cap",
        env={"BABEL_GATEWAY_SERVICES": "retrieval",
             "BABEL_GATEWAY_MAX_UPLOAD_BYTES_IN_FLIGHT": 30_000},
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=capped.base_url, timeout=120.0) as client:
            await create(client, name)
            await create(client, other)

            async def upload(document_id: str, max_chars: int) -> httpx.Response:
                return await client.post(
                    f"/v1/collections/{name}/files",
                    files={"file": (f"{document_id}.txt", data, "text/plain")},
                    data={"max_chars": str(max_chars)},
                )

            with probing(stack.gateway.base_url, [f"/v1/collections/{other}", "/readyz"]):
                first = asyncio.create_task(upload("first", 100))
                await asyncio.sleep(0.3)  # the first file is on its way to the worker
                assert not first.done(), (await first).text
                started = time.monotonic()
                refused = await upload("second", 20_000)
                assert time.monotonic() - started < 2.0
                assert_problem(refused, 503, "overloaded")
                assert (await first).status_code == 200
                taken = await upload("second", 20_000)
                assert taken.status_code == 200, taken.text
            assert (await stats(client, name))["documents"] == 2
    finally:
        capped.stop()
    stack.worker.assert_alive()
