"""Show :mod:`shared.progress` reports in a terminal, with rich.

On a terminal a task is a bar (done/total, rate, elapsed, time left) or, without a total, a
spinner with the elapsed time; a board is one live line per name (spinner, state, detail).
Anywhere else (a pipe, a log file, CI) tasks show nothing and a board prints one plain line
each time a name's state changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from shared.progress import Advance, StatusBoard

FINAL_STATES = {"ready": "green", "failed": "red", "exited": "red"}
"""States that end a line's spinner, with their colour; any other state is yellow."""


def _ignore(_: int) -> None:
    pass


def rate_text(speed: float | None, unit: str) -> str:
    """``12.5 tensors/s``, or ``3.2 s/tensor``-style seconds per item when slower than 1/s."""
    if not speed:
        return ""
    if speed >= 1:
        return f"{speed:,.1f} {unit}/s"
    return f"{1 / speed:,.1f} s each"


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(rate_text(speed, str(task.fields.get("unit", ""))), style="cyan")


class _LiveBoard:
    def __init__(self, names: Sequence[str], live: Live) -> None:
        self._rows: dict[str, tuple[str, str]] = {name: ("waiting", "") for name in names}
        self._spinners = {name: Spinner("dots") for name in names}
        self._live = live

    def update(self, name: str, state: str, detail: str = "") -> None:
        self._rows[name] = (state, detail)
        self._live.update(self.render())

    def render(self) -> RenderableType:
        table = Table.grid(padding=(0, 1))
        for name, (state, detail) in self._rows.items():
            colour = FINAL_STATES.get(state)
            mark: RenderableType = (
                Text("●", style=colour) if colour is not None else self._spinners[name]
            )
            table.add_row(mark, Text(f"{name:<10}"), Text(state, style=colour or "yellow"), detail)
        return table


class _LogBoard:
    def __init__(self, console: Console) -> None:
        self._console = console
        self._states: dict[str, str] = {}

    def update(self, name: str, state: str, detail: str = "") -> None:
        if self._states.get(name) == state:
            return
        self._states[name] = state
        suffix = f" ({detail})" if detail else ""
        self._console.out(f"{name:<10} {state}{suffix}", highlight=False)


class TerminalProgress:
    """A :class:`shared.progress.Progress` that draws on ``console`` when it is a terminal."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()

    @contextmanager
    def task(self, description: str, total: int | None = None, unit: str = "") -> Iterator[Advance]:
        if not self.console.is_terminal:
            yield _ignore
            return
        columns: list[ProgressColumn] = [SpinnerColumn(), TextColumn("{task.description}")]
        if total is not None:
            columns += [
                BarColumn(),
                MofNCompleteColumn(),
                RateColumn(),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
            ]
        else:
            columns.append(TimeElapsedColumn())
        with Progress(*columns, console=self.console) as bars:
            task_id = bars.add_task(description, total=total, unit=unit)

            def advance(n: int) -> None:
                bars.advance(task_id, n)

            yield advance

    @contextmanager
    def board(self, names: Sequence[str]) -> Iterator[StatusBoard]:
        if not self.console.is_terminal:
            yield _LogBoard(self.console)
            return
        with Live(console=self.console, refresh_per_second=8) as live:
            board = _LiveBoard(names, live)
            live.update(board.render())
            yield board
