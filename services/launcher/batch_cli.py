"""``babelstack batch``: submit a JSONL file as a batch, watch it, cancel it, read its results.

``submit FILE --endpoint /v1/sentiment [--wait]`` uploads the file (``POST /v1/files``) and
creates the batch; with ``--wait`` a progress bar follows its request counts until it ends.
``status ID``, ``cancel ID`` and ``results ID [--errors]`` do what they say.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from services.launcher.api_client import ApiClient, problem_error
from services.launcher.progress import TerminalProgress
from services.launcher.work_cli import (
    ApiKey,
    AsJson,
    Timeout,
    Url,
    _client,
    _print_json,
    reported_errors,
)
from shared.errors import BabelError, ErrorCode
from shared.progress import Progress

batch_app = typer.Typer(help="Batch jobs: the OpenAI Batch API from the command line.")

FINAL = frozenset({"completed", "failed", "expired", "cancelled"})
POLL_S = 0.5


def describe(batch: dict[str, Any]) -> list[str]:
    """A batch as readable lines: status, counts, files, validation errors."""
    counts = batch.get("request_counts") or {}
    lines = [
        f"batch      {batch['id']}  {batch['status']}",
        f"endpoint   {batch['endpoint']}",
        f"requests   {counts.get('completed', 0)} completed, {counts.get('failed', 0)} failed, "
        f"{counts.get('total', 0)} in all",
    ]
    if batch.get("output_file_id"):
        lines.append(f"output     {batch['output_file_id']}")
    if batch.get("error_file_id"):
        lines.append(f"errors     {batch['error_file_id']}")
    for error in (batch.get("errors") or {}).get("data") or []:
        where = f"line {error['line']}" if error.get("line") else "file"
        lines.append(f"  {where}: {error['code']}: {error['message']}")
    return lines


def follow(client: ApiClient, batch_id: str, progress: Progress) -> dict[str, Any]:
    """Poll the batch until it ends, advancing a bar by the lines finished."""
    batch: dict[str, Any] = client.call("GET", f"/v1/batches/{batch_id}")
    while batch["status"] == "validating":
        time.sleep(POLL_S)
        batch = client.call("GET", f"/v1/batches/{batch_id}")
    total = batch["request_counts"]["total"] or None
    shown = 0
    with progress.task(f"batch {batch_id}", total=total, unit="lines") as advance:
        while True:
            counts = batch["request_counts"]
            finished = counts["completed"] + counts["failed"]
            if finished > shown:
                advance(finished - shown)
                shown = finished
            if batch["status"] in FINAL:
                return batch
            time.sleep(POLL_S)
            batch = client.call("GET", f"/v1/batches/{batch_id}")


@batch_app.command()
def submit(
    file: Annotated[Path, typer.Argument(help="JSONL: one request a line.", exists=True)],
    endpoint: Annotated[str, typer.Option(help="The endpoint every line calls.")],
    window: Annotated[str, typer.Option(help="completion_window: 24h, 90m, ...")] = "24h",
    wait: Annotated[bool, typer.Option(help="Follow the batch with a progress bar.")] = False,
    url: Url = "http://127.0.0.1:8080",
    api_key: ApiKey = None,
    timeout: Timeout = 600.0,
    as_json: AsJson = False,
) -> None:
    """Upload FILE and run it as a batch on ENDPOINT; print the batch (and wait, if asked)."""
    with reported_errors(), _client(url, api_key, timeout) as client:
        reply = client.send(
            "POST",
            "/v1/files",
            files={"file": (file.name, file.read_bytes(), "application/jsonl")},
            data={"purpose": "batch"},
        )
        if not reply.ok:
            raise problem_error(reply)
        body = {
            "input_file_id": reply.body["id"],
            "endpoint": endpoint,
            "completion_window": window,
        }
        batch = client.call("POST", "/v1/batches", json_body=body)
        if wait:
            batch = follow(client, batch["id"], TerminalProgress())
        _show(batch, as_json)
        if wait and batch["status"] != "completed":
            raise typer.Exit(code=1)


def _show(batch: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(batch)
    else:
        typer.echo("\n".join(describe(batch)))


@batch_app.command()
def status(
    batch_id: Annotated[str, typer.Argument(help="The batch id.")],
    url: Url = "http://127.0.0.1:8080",
    api_key: ApiKey = None,
    timeout: Timeout = 60.0,
    as_json: AsJson = False,
) -> None:
    """Status, request counts and files of a batch."""
    with reported_errors(), _client(url, api_key, timeout) as client:
        _show(client.call("GET", f"/v1/batches/{batch_id}"), as_json)


@batch_app.command()
def cancel(
    batch_id: Annotated[str, typer.Argument(help="The batch id.")],
    url: Url = "http://127.0.0.1:8080",
    api_key: ApiKey = None,
    timeout: Timeout = 60.0,
    as_json: AsJson = False,
) -> None:
    """Cancel a batch: its finished lines stay in its output file."""
    with reported_errors(), _client(url, api_key, timeout) as client:
        _show(client.call("POST", f"/v1/batches/{batch_id}/cancel"), as_json)


@batch_app.command()
def results(
    batch_id: Annotated[str, typer.Argument(help="The batch id.")],
    errors: Annotated[bool, typer.Option(help="The error file instead of the output.")] = False,
    url: Url = "http://127.0.0.1:8080",
    api_key: ApiKey = None,
    timeout: Timeout = 600.0,
) -> None:
    """Print the batch's output file (or, with --errors, its error file): JSONL, input order."""
    with reported_errors(), _client(url, api_key, timeout) as client:
        batch = client.call("GET", f"/v1/batches/{batch_id}")
        file_id = batch.get("error_file_id" if errors else "output_file_id")
        if file_id is None:
            if batch["status"] not in FINAL:
                raise BabelError(
                    ErrorCode.CONFLICT, f"batch {batch_id} is {batch['status']}; no results yet"
                )
            return  # finished, with nothing of that kind
        sys.stdout.buffer.write(client.content(f"/v1/files/{file_id}/content"))
        sys.stdout.flush()
