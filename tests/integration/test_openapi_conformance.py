"""The OpenAPI document tells the truth: schemathesis against the whole running stack.

Every operation of ``/schema/openapi.json`` (the static UI files at ``/ui`` are not part of
the JSON API and not in the document) is driven by ``st run`` with **all** its checks:
no 5xx, only documented status codes, content types, headers and bodies, schema-valid
requests accepted and schema-invalid ones refused, missing auth refused, undocumented
methods answered 405 with ``Allow``, deleted resources gone, created ones reachable. The
phases are examples, coverage (boundary values of every constraint), fuzzing and stateful
(sequences along the links schemathesis infers). Real processes: the session's Redis, the
gateway with API keys on (the bootstrap admin key holds every scope), tasks, retrieval,
vLLM on SmolLM2 and the Celery batch worker (``tests.support.full_stack``).

Resources that random data cannot make (a trained classifier, batches on a valid file,
collections with a document, keys) are created first and their names given to the
operations that read, use or delete them (``_seed``). Generation is kept short by
``tests.support.conformance_hooks`` (max_tokens ≤ 8). The run's summary (operations,
cases, responses by status class, each check's runs and failures) is printed in pytest's
terminal summary.

Where a check cannot hold for an operation because acceptance depends on something the
document cannot state, it is relaxed for that operation only, in ``RELAXED`` below, with
the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.launcher.redis_server import RedisServer
from tests.support.full_stack import FullStack, full_stack
from tests.support.processes import REPO_ROOT
from tests.support.redis_db import fresh_db_url

pytestmark = pytest.mark.timeout(600)

REDIS_DB = 2
"""Shared with test_gateway_http's second stack: modules run one after the other, and each
flushes its database when it starts."""
MAX_EXAMPLES = 5
"""Cases per operation and phase: the run takes ~2 min on an idle 2-core machine."""
GATEWAY_BOUNDS = {
    "BABEL_GATEWAY_MAX_BATCH": 8,
    "BABEL_GATEWAY_MAX_TEXT_CHARS": 1_000,
    "BABEL_GATEWAY_MAX_PROMPTS": 4,
}
"""Smaller bounds than the defaults, stated in the document as the defaults are: the coverage
phase sends every boundary (8 texts of 1,000 characters, not 128 of 10,000) to CPU models."""
SEED = 20261201
"""Fixed, so a failure in CI replays locally (``st run ... --seed``)."""
POSITIVE_OK = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
"""Schemathesis' default for positive_data_acceptance (5xx are not_a_server_error's)."""


@dataclass(frozen=True)
class Relaxed:
    method: str
    path: str
    check: str
    setting: dict[str, Any]
    reason: str


RELAXED = (
    *(
        Relaxed(
            method,
            path,
            "ignored_auth",
            {"enabled": False},
            "LibreTranslate answers a missing key with 400 (its clients expect that code); "
            "the document says so and test_api_keys checks 400/403 on these routes",
        )
        for method, path in (("GET", "/languages"), ("POST", "/detect"), ("POST", "/translate"))
    ),
    *(
        Relaxed(
            "POST",
            path,
            "negative_data_rejection",
            {"enabled": False},
            "LibreTranslate's request parsing is lenient on purpose, as LibreTranslate's is "
            "(numbers given as strings, unknown fields ignored, fields from the query string)",
        )
        for path in ("/detect", "/translate")
    ),
    *(
        Relaxed(
            "POST",
            path,
            "positive_data_acceptance",
            {"expected-statuses": [*POSITIVE_OK, "400"]},
            "400 unsupported_language: which languages exist depends on the running "
            "translation model (GET /v1/translate/languages), not on the document",
        )
        for path in ("/v1/translate", "/translate")
    ),
    Relaxed(
        "POST",
        "/v1/classifiers",
        "positive_data_acceptance",
        {"expected-statuses": [*POSITIVE_OK, "400"]},
        "400 not_enough_examples: at least 2 labels with 3 examples each is a rule over the "
        "values of a list that JSON Schema cannot state (the description does)",
    ),
    Relaxed(
        "POST",
        "/v1/collections/{name}/files",
        "positive_data_acceptance",
        {"expected-statuses": [*POSITIVE_OK, "422"]},
        "422 for the file itself: UTF-8/UTF-16 text with some text in it, or a readable PDF; "
        "`format: binary` cannot say what bytes are inside",
    ),
)


CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
    "object_level_authorization",
)
"""Every check of ``st run --checks all`` (schemathesis 4.32), enabled in the config file:
``--checks all`` on the command line would override the per-operation settings."""
MAX_RESPONSE_TIME_S = 120
"""The last check, ``max_response_time``, as a generous bound (the request timeout): the
machine is shared, and a test must not fail on a timing."""


Seeds = dict[tuple[str, str], dict[str, str]]


def _seed(stack: FullStack) -> Seeds:
    """Resources that random values rarely or never create (a classifier needs 2 labels with
    3 examples each; a batch a valid JSONL file; a collection a name that matches), made
    first; the operations that read, use, cancel or delete them get their names and ids, so
    they are tested past their 404. What is deleted is a resource of its own."""
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    examples = [
        {"text": text, "label": label}
        for label, texts in (
            ("greeting", ("hello there", "good morning", "hi, how are you")),
            ("farewell", ("goodbye", "see you later", "good night, take care")),
        )
        for text in texts
    ]
    document = {"id": "doc", "text": "The Eiffel Tower is 330 metres tall. " * 40}
    line = {"custom_id": "a", "method": "POST", "url": "/v1/detect", "body": {"q": "Hallo"}}
    with httpx.Client(base_url=stack.gateway.base_url, headers=headers, timeout=120) as http:
        for name in ("seeded", "seeded-to-delete"):
            created = http.post("/v1/collections", json={"name": name})
            assert created.status_code == 201, created.text
            ingested = http.post(
                f"/v1/collections/{name}/documents", json={"documents": [document]}
            )
            assert ingested.status_code == 200, ingested.text
            key = http.post("/v1/keys", json={"name": name, "scopes": ["search"]})
            assert key.status_code == 201, key.text
            trained = http.post("/v1/classifiers", json={"name": name, "examples": examples})
            assert trained.status_code == 201, trained.text
        uploaded = http.post(
            "/v1/files",
            files={"file": ("in.jsonl", json.dumps(line).encode())},
            data={"purpose": "batch"},
        )
        assert uploaded.status_code == 200, uploaded.text
        file_id = uploaded.json()["id"]
        batch_ids = []
        for _ in range(2):
            batch = http.post(
                "/v1/batches", json={"input_file_id": file_id, "endpoint": "/v1/detect"}
            )
            assert batch.status_code == 200, batch.text
            batch_ids.append(batch.json()["id"])
    kept, doomed = {"path.name": "seeded"}, {"path.name": "seeded-to-delete"}
    return {
        **{
            (method, path): kept
            for method, path in (
                ("GET", "/v1/collections/{name}"),
                ("GET", "/v1/collections/{name}/documents"),
                ("POST", "/v1/collections/{name}/documents"),
                ("POST", "/v1/collections/{name}/documents/delete"),
                ("POST", "/v1/collections/{name}/search"),
                ("POST", "/v1/collections/{name}/files"),
                ("GET", "/v1/keys/{name}"),
            )
        },
        ("GET", "/v1/collections/{name}/chunks"): {**kept, "query.document_id": "doc"},
        ("DELETE", "/v1/collections/{name}"): doomed,
        ("DELETE", "/v1/collections/{name}/documents/{document_id}"): {
            **doomed,
            "path.document_id": "doc",
        },
        ("DELETE", "/v1/keys/{name}"): doomed,
        ("GET", "/v1/services/{name}/ping"): {"path.name": "tasks"},
        ("GET", "/v1/classifiers/{name}"): {"path.name": "seeded"},
        ("POST", "/v1/classifiers/{name}/predict"): {"path.name": "seeded"},
        ("DELETE", "/v1/classifiers/{name}"): {"path.name": "seeded-to-delete"},
        ("GET", "/v1/files/{file_id}/content"): {"path.file_id": file_id},
        ("POST", "/v1/batches"): {"body.input_file_id": file_id},
        ("GET", "/v1/batches/{batch_id}"): {"path.batch_id": batch_ids[0]},
        ("POST", "/v1/batches/{batch_id}/cancel"): {"path.batch_id": batch_ids[1]},
    }


def _config(folder: Path, seeds: Seeds) -> Path:
    """schemathesis.toml: every check on; the relaxed ones changed for their one operation;
    the seeded names and ids for the operations that take them."""
    lines = [f"checks.{name}.enabled = true" for name in CHECKS]
    lines += [f"checks.max_response_time = {MAX_RESPONSE_TIME_S}", ""]
    by_operation: dict[tuple[str, str], list[str]] = {}
    for item in RELAXED:
        by_operation.setdefault((item.method, item.path), []).extend(
            f"checks.{item.check}.{key} = {json.dumps(value)}"
            for key, value in item.setting.items()
        )
    for operation, parameters in seeds.items():
        by_operation.setdefault(operation, []).extend(
            f"parameters.{json.dumps(key)} = {json.dumps(value)}"
            for key, value in parameters.items()
        )
    for (method, path), settings in by_operation.items():
        lines += ["[[operations]]", f'include-method = "{method}"', f'include-path = "{path}"']
        lines += [*settings, ""]
    path = folder / "schemathesis.toml"
    path.write_text("\n".join(lines))
    return path


@dataclass
class Run:
    returncode: int
    output: str
    report: dict[str, Any]
    events: list[dict[str, Any]]


@pytest.fixture(scope="module")
def stack(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FullStack]:
    folder = tmp_path_factory.mktemp("openapi-conformance")
    url = fresh_db_url(redis_server, REDIS_DB)
    with full_stack(url, folder, gateway_env=GATEWAY_BOUNDS) as running:
        yield running


@pytest.fixture(scope="module")
def run(stack: FullStack, request: pytest.FixtureRequest) -> Run:
    reports = stack.folder / "schemathesis"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(_config(stack.folder, _seed(stack))),
        "run",
        f"{stack.gateway.base_url}/schema/openapi.json",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        str(MAX_RESPONSE_TIME_S),
        "--header",
        f"Authorization: Bearer {stack.admin_key}",
        "--report",
        "json,ndjson",
        "--report-json-path",
        str(reports / "report.json"),
        "--report-ndjson-path",
        str(reports / "events.ndjson"),
        "--no-color",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "SCHEMATHESIS_HOOKS": "tests.support.conformance_hooks",
    }
    done = subprocess.run(
        command, cwd=stack.folder, env=env, capture_output=True, text=True, timeout=540
    )
    events = [
        json.loads(line)
        for line in (reports / "events.ndjson").read_text().splitlines()
        if line.strip()
    ]
    result = Run(
        done.returncode,
        done.stdout + done.stderr,
        json.loads((reports / "report.json").read_text()),
        events,
    )
    request.config.pluginmanager.register(_Summary(_summary(result)), "openapi-conformance")
    return result


def _interactions(run: Run) -> Iterator[tuple[str, dict[str, Any]]]:
    """(operation, check results, response status) of every case the run sent."""
    for event in run.events:
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished["recorder"]
        for case_id, checks in recorder.get("checks", {}).items():
            yield (
                case_id,
                {
                    "checks": checks,
                    "interaction": recorder.get("interactions", {}).get(case_id) or {},
                },
            )


def _summary(run: Run) -> list[str]:
    report = run.report
    checks: Counter[tuple[str, str]] = Counter()
    statuses: Counter[str] = Counter()
    for _, case in _interactions(run):
        for check in case["checks"]:
            checks[(check["name"], check["status"])] += 1
        response = (case["interaction"] or {}).get("response") or {}
        if "status_code" in response:
            statuses[f"{response['status_code'] // 100}xx"] += 1
    operations = report["operations"]
    cases = report["test_cases"]
    lines = [
        f"schemathesis {report['schemathesis_version']}, seed {report['seed']}, "
        f"{report['running_time']:.0f} s, exit status {run.returncode}",
        f"operations: {operations['tested']} tested of {operations['total']} "
        f"(selected {operations['selected']}, errored {operations['errored']})",
        "phases: "
        + ", ".join(f"{name} {phase['status']}" for name, phase in report["phases"].items()),
        f"cases: {cases['generated']} generated, {cases['with_failures']} with failures, "
        f"{cases['errored']} errored",
        "responses: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())),
        "checks (runs / failures):",
    ]
    names = sorted({name for name, _ in checks})
    for name in names:
        runs = sum(count for (n, _), count in checks.items() if n == name)
        lines.append(f"  {name:32} {runs:6} / {checks[(name, 'failure')]}")
    for failure in report["failures"]:
        lines.append(
            f"FAILED {failure['code']} {failure['title']}: {failure['count']} "
            f"({', '.join(failure['operations'])})"
        )
    lines.append(f"relaxed for one operation each: {len(RELAXED)} (see RELAXED in this module)")
    return lines


class _Summary:
    """Prints the run's summary in pytest's terminal summary (shown without ``-s``)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.section("OpenAPI conformance (schemathesis)")
        for line in self.lines:
            terminalreporter.write_line(line)


def test_every_operation_of_the_document_is_tested(stack: FullStack, run: Run) -> None:
    document = httpx.get(f"{stack.gateway.base_url}/schema/openapi.json", timeout=30).json()
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    count = sum(1 for item in document["paths"].values() for method in item if method in methods)
    assert count >= 46
    assert run.report["operations"]["total"] == count
    assert run.report["operations"]["tested"] == count, run.output[-5000:]
    assert run.report["operations"]["errored"] == 0, run.output[-5000:]
    assert not any(path.startswith("/ui") for path in document["paths"])


def test_all_checks_ran_in_every_phase(run: Run) -> None:
    ran = {check["name"] for _, case in _interactions(run) for check in case["checks"]}
    for name in (*CHECKS, "max_response_time"):
        assert name in ran, f"{name} never ran"
    assert {name for name, phase in run.report["phases"].items() if phase["status"] != "skip"} >= {
        "coverage",
        "fuzzing",
        "stateful",
    }


def test_no_server_error(run: Run) -> None:
    errors = [
        (case_id, case["interaction"]["request"]["method"], case["interaction"]["request"]["uri"])
        for case_id, case in _interactions(run)
        if ((case["interaction"] or {}).get("response") or {}).get("status_code", 0) >= 500
    ]
    assert errors == []


def test_the_document_tells_the_truth(run: Run) -> None:
    assert run.report["failures"] == [], run.output[-20000:]
    assert run.report["errors"] == [], run.output[-20000:]
    assert run.returncode == 0, run.output[-20000:]
