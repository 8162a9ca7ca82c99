"""One ``babelstack ingest`` run: create the collection if missing, upload each file that
changed (``POST /v1/collections/{name}/files``, one file per request, so the gateway
extracts PDF, HTML and Markdown), keep the resume manifest, count what happened.

A file the service refuses on its own account (413, or 422 about the file: no text, not
UTF-8, a damaged PDF) is skipped with the service's reason; any other refusal (unknown
collection, service unavailable, ...) stops the run with a ``BabelError``, the files
done so far staying done (manifest saved).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from services.launcher.api_client import ApiClient, Reply, problem_detail, problem_error
from services.launcher.ingest_files import (
    Candidate,
    Discovery,
    content_skip_reason,
    sha256_of,
    size_skip_reason,
)
from services.launcher.ingest_manifest import Manifest, fingerprint, manifest_path
from shared.progress import Advance

MAX_LISTED_SKIPS = 50


@dataclass(frozen=True)
class Skipped:
    path: str
    document_id: str
    reason: str


@dataclass
class IngestSummary:
    collection: str
    created: bool = False
    documents: int = 0
    """Files stored (new or replaced) in this run."""
    chunks: int = 0
    replaced: int = 0
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    unsearched_folders: int = 0
    manifest: str = ""
    completed: bool = False

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        lines = [f"collection {self.collection} created"] if self.created else []
        head = "" if self.completed else "stopped early: "
        lines.append(
            f"{head}{self.collection}: {_count(self.documents, 'document')} ingested "
            f"({_count(self.chunks, 'chunk')}, {self.replaced} replaced), "
            f"{self.unchanged} unchanged, {len(self.skipped)} skipped"
        )
        for skipped in self.skipped[:MAX_LISTED_SKIPS]:
            lines.append(f"  skipped {skipped.path}: {skipped.reason}")
        if len(self.skipped) > MAX_LISTED_SKIPS:
            lines.append(f"  ... and {len(self.skipped) - MAX_LISTED_SKIPS} more skipped")
        if self.unsearched_folders:
            lines.append(
                f"  {_count(self.unsearched_folders, 'subfolder')} not searched (add --recursive)"
            )
        return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def collection_path(name: str) -> str:
    return f"/v1/collections/{quote(name, safe='')}"


def ensure_collection(client: ApiClient, name: str) -> tuple[dict[str, Any], bool]:
    """The collection's statistics, creating it when missing; True when it was created."""
    reply = client.send("GET", collection_path(name))
    if reply.ok:
        return reply.body, False
    if reply.status != 404:
        raise problem_error(reply)
    created = client.send("POST", "/v1/collections", json_body={"name": name})
    if created.ok:
        return created.body, True
    if created.status == 409:  # created meanwhile by someone else
        return client.call("GET", collection_path(name)), False
    raise problem_error(created)


def _refused_file(reply: Reply) -> bool:
    """The service refused this file, not the request: skip it and go on."""
    if reply.status == 413:
        return True
    body = reply.body
    problem_field = str(body.get("field") or "") if isinstance(body, dict) else ""
    return reply.status == 422 and (
        problem_field == "file" or problem_field.startswith("documents[")
    )


def run_ingest(
    client: ApiClient,
    summary: IngestSummary,
    discovery: Discovery,
    *,
    metadata: dict[str, Any],
    state_dir: Path,
    max_bytes: int,
    force: bool,
    advance: Advance,
) -> None:
    """Ingest the discovered files, filling ``summary`` as it goes (so a caller that sees an
    error or Ctrl-C still has the counts so far)."""
    info, summary.created = ensure_collection(client, summary.collection)
    summary.unsearched_folders = discovery.unsearched_folders
    path = manifest_path(state_dir, client.base_url, summary.collection)
    summary.manifest = str(path)
    manifest = Manifest.load(path, client.base_url, summary.collection, float(info["created_at"]))
    metadata_hash = fingerprint(metadata)
    upload_path = collection_path(summary.collection) + "/files"
    try:
        for candidate in discovery.candidates:
            _ingest_one(
                client, summary, manifest, candidate, metadata, metadata_hash, upload_path,
                max_bytes=max_bytes, force=force,
            )  # fmt: skip
            advance(1)
        summary.completed = True
    finally:
        manifest.save()


def _ingest_one(
    client: ApiClient,
    summary: IngestSummary,
    manifest: Manifest,
    candidate: Candidate,
    metadata: dict[str, Any],
    metadata_hash: str,
    upload_path: str,
    *,
    max_bytes: int,
    force: bool,
) -> None:
    def skip(reason: str) -> None:
        summary.skipped.append(Skipped(str(candidate.path), candidate.document_id, reason))

    if candidate.skip is not None or candidate.media_type is None:
        skip(candidate.skip or "unsupported type")
        return
    try:
        reason = size_skip_reason(candidate.path.stat().st_size, max_bytes)
        data = b"" if reason else candidate.path.read_bytes()
    except OSError as exc:
        skip(f"cannot read: {exc.strerror or exc}")
        return
    reason = reason or content_skip_reason(data, candidate.media_type)
    if reason:
        skip(reason)
        return
    digest = sha256_of(data)
    if not force and manifest.unchanged(candidate.document_id, digest, metadata_hash):
        summary.unchanged += 1
        return
    reply = client.send(
        "POST",
        upload_path,
        files={"file": (candidate.path.name, data, candidate.media_type)},
        data={
            "id": candidate.document_id,
            "metadata": json.dumps({**metadata, "sha256": digest}, ensure_ascii=False),
        },
    )
    if reply.ok:
        summary.documents += 1
        summary.chunks += int(reply.body.get("chunks", 0))
        summary.replaced += int(reply.body.get("replaced", 0))
        manifest.record(candidate.document_id, digest, metadata_hash, int(reply.body["chunks"]))
    elif _refused_file(reply):
        skip(problem_detail(reply))
    else:
        raise problem_error(reply)
