"""Terminal progress: bars and live lines on a terminal, quiet or plain lines elsewhere."""

from __future__ import annotations

import io

from rich.console import Console

from services.launcher.progress import TerminalProgress, rate_text
from services.launcher.stack import readiness_states


def _console(*, terminal: bool) -> tuple[Console, io.StringIO]:
    sink = io.StringIO()
    return Console(file=sink, force_terminal=terminal, width=120), sink


def test_a_task_prints_nothing_when_not_a_terminal() -> None:
    console, sink = _console(terminal=False)
    progress = TerminalProgress(console)
    with progress.task("converting tensors", total=3, unit="tensors") as advance:
        for _ in range(3):
            advance(1)
    with progress.task("chat check"):
        pass
    assert sink.getvalue() == ""


def test_a_task_draws_a_bar_with_counts_on_a_terminal() -> None:
    console, sink = _console(terminal=True)
    with TerminalProgress(console).task("converting tensors", total=3, unit="tensors") as advance:
        for _ in range(3):
            advance(1)
    drawn = sink.getvalue()
    assert "converting tensors" in drawn
    assert "3/3" in drawn


def test_a_board_prints_a_plain_line_per_state_change_when_not_a_terminal() -> None:
    console, sink = _console(terminal=False)
    with TerminalProgress(console).board(["tasks", "gateway"]) as board:
        board.update("tasks", "starting", "0 s")
        board.update("tasks", "loading", "1 s")
        board.update("tasks", "loading", "2 s")  # same state: no new line
        board.update("gateway", "ready", "2 s")
        board.update("tasks", "ready", "3 s")
    assert sink.getvalue().splitlines() == [
        "tasks      starting (0 s)",
        "tasks      loading (1 s)",
        "gateway    ready (2 s)",
        "tasks      ready (3 s)",
    ]
    assert "\x1b[" not in sink.getvalue()  # no terminal escapes in a log


def test_a_board_shows_every_name_live_on_a_terminal() -> None:
    console, sink = _console(terminal=True)
    with TerminalProgress(console).board(["generation", "tasks"]) as board:
        board.update("generation", "loading", "4 s")
        board.update("tasks", "ready", "2 s")
    drawn = sink.getvalue()
    assert "generation" in drawn
    assert "loading" in drawn
    assert "ready" in drawn


def test_rates_read_per_second_or_seconds_each() -> None:
    assert rate_text(12.345, "tensors") == "12.3 tensors/s"
    assert rate_text(0.25, "wheels") == "4.0 s each"
    assert rate_text(None, "texts") == ""


def test_readiness_states_follow_the_gateway_answer() -> None:
    assert readiness_states(0, {"error": "refused"}, ["tasks"]) == {
        "tasks": "starting",
        "gateway": "starting",
    }
    body: dict[str, object] = {
        "services": {"tasks": {"ready": True}, "generation": {"ready": False}}
    }
    assert readiness_states(503, body, ["generation", "tasks", "retrieval"]) == {
        "generation": "loading",
        "tasks": "ready",
        "retrieval": "loading",
        "gateway": "ready",
    }
