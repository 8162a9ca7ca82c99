"""An HTTP client of a running gateway, for the everyday commands (``ingest``, ``ask``, ...).

Every failure is a ``BabelError`` whose message is one readable line: a problem-details
answer becomes ``<status> <code>: <detail>`` (field errors appended), an unreachable gateway
names its URL. Streamed answers (server-sent events) are read with :func:`sse_events`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from shared.errors import BabelError, ErrorCode

DEFAULT_URL = "http://127.0.0.1:8080"
CONNECT_TIMEOUT_S = 10.0

_CODE_BY_STATUS = {
    400: ErrorCode.INVALID_ARGUMENT,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    422: ErrorCode.INVALID_ARGUMENT,
    503: ErrorCode.UNAVAILABLE,
    504: ErrorCode.DEADLINE_EXCEEDED,
}
_MAX_TEXT_IN_LINE = 200


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: its status and its body (decoded JSON, else the text)."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def error_code_of(status: int, body: Any) -> ErrorCode:
    """The problem's ``code`` when it is one of ours, else the usual one for the status."""
    if isinstance(body, dict):
        try:
            return ErrorCode(str(body.get("code")))
        except ValueError:
            pass
    return _CODE_BY_STATUS.get(status, ErrorCode.INTERNAL)


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_TEXT_IN_LINE else line[: _MAX_TEXT_IN_LINE - 1] + "…"


def problem_line(status: int | None, body: Any) -> str:
    """``<status> <code>: <detail>`` of a problem-details body (or of any other body), one line.

    The field is added when the detail does not name it already, and so is every further
    field error of a validation problem (the gateway puts the first one in the detail).
    """
    prefix = f"{status} " if status is not None else ""
    if not isinstance(body, dict) or not ({"detail", "code", "message"} & body.keys()):
        text = _one_line(body if isinstance(body, str) else json.dumps(body))
        return f"{prefix}http_error: {text or 'no body'}"
    code = str(body.get("code") or "error")
    detail = _one_line(str(body.get("detail") or body.get("message") or body.get("title") or ""))
    extras: list[str] = []
    field = body.get("field") or body.get("param")
    errors = body.get("errors")
    if isinstance(errors, list):
        for error in errors:
            if not isinstance(error, dict):
                continue
            said = f"{error.get('field')}: {error.get('message')}"
            if said not in detail:
                extras.append(said)
    if field and str(field) not in detail and not extras:
        extras.append(f"field {field}")
    line = f"{prefix}{code}: {detail}"
    return f"{line} ({'; '.join(extras)})" if extras else line


def problem_error(reply: Reply) -> BabelError:
    """The ``BabelError`` for an unsuccessful reply; its message is :func:`problem_line`."""
    body = reply.body
    field = body.get("field") if isinstance(body, dict) else None
    return BabelError(
        error_code_of(reply.status, body),
        problem_line(reply.status, body),
        field=str(field) if field else None,
    )


def problem_detail(reply: Reply) -> str:
    """The detail alone (for a per-file reason), falling back to the whole line."""
    body = reply.body
    if isinstance(body, dict) and body.get("detail"):
        return _one_line(str(body["detail"]))
    return problem_line(reply.status, body)


def sse_events(lines: Iterable[str]) -> Iterator[Any]:
    """The decoded ``data:`` payloads of a server-sent event stream, up to ``[DONE]``.

    Data lines of one event are joined with newlines; comments and other fields (``event:``,
    ``id:``) are ignored. A payload that is not JSON is a ``BabelError``.
    """
    data: list[str] = []

    def flush() -> tuple[bool, Any]:
        payload = "\n".join(data)
        data.clear()
        if payload == "[DONE]":
            return True, None
        try:
            return False, json.loads(payload)
        except json.JSONDecodeError as exc:
            raise BabelError(
                ErrorCode.INTERNAL, f"the event stream sent bad JSON: {_one_line(payload)}"
            ) from exc

    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                done, event = flush()
                if done:
                    return
                yield event
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        done, event = flush()
        if not done:
            yield event


class ApiClient:
    """Calls one gateway; ``api_key``, when given, goes as ``Authorization: Bearer <key>``."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"the gateway URL must start with http:// or https://, not {base_url!r}",
                field="url",
            )
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S),
            transport=transport,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ calls
    def send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> Reply:
        """One request; any HTTP status is returned, transport failures raise ``BabelError``."""
        try:
            response = self._http.request(method, path, json=json_body, files=files, data=data)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        return Reply(status=response.status_code, body=_body_of(response))

    def call(self, method: str, path: str, *, json_body: Any = None) -> Any:
        """The JSON body of a successful answer; any other answer raises ``BabelError``."""
        reply = self.send(method, path, json_body=json_body)
        if not reply.ok:
            raise problem_error(reply)
        return reply.body

    def content(self, path: str) -> bytes:
        """The raw body of a successful GET (a file's content); any other answer raises."""
        try:
            response = self._http.get(path)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        if response.status_code >= 300:
            raise problem_error(Reply(status=response.status_code, body=_body_of(response)))
        return response.content

    def stream_events(self, path: str, json_body: Any) -> Iterator[Any]:
        """POST and yield the server-sent events as they arrive (see :func:`sse_events`)."""
        try:
            with self._http.stream(
                "POST", path, json=json_body, headers={"Accept": "text/event-stream"}
            ) as response:
                if response.status_code >= 300:
                    response.read()
                    raise problem_error(Reply(status=response.status_code, body=_body_of(response)))
                yield from sse_events(response.iter_lines())
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc

    def _transport_error(self, exc: httpx.HTTPError) -> BabelError:
        if isinstance(exc, httpx.ConnectError):
            return BabelError(
                ErrorCode.UNAVAILABLE,
                f"cannot reach the gateway at {self.base_url} ({_reason(exc)}); is it running "
                "(babelstack up)? Set another with --url or BABEL_URL",
                retryable=True,
            )
        if isinstance(exc, httpx.TimeoutException):
            return BabelError(
                ErrorCode.DEADLINE_EXCEEDED,
                f"the gateway at {self.base_url} did not answer in time ({type(exc).__name__}); "
                "raise --timeout for long work",
                retryable=True,
            )
        return BabelError(
            ErrorCode.UNAVAILABLE,
            f"talking to the gateway at {self.base_url} failed: {_reason(exc)}",
            retryable=True,
        )


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    return _one_line(text)


def _body_of(response: httpx.Response) -> Any:
    if not response.content:
        return ""
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except ValueError:
            pass
    return response.text
