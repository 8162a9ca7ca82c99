"""Progress reporting as a parameter: library code reports, the caller decides how it shows.

A long step takes a :class:`Progress` (default :data:`SILENT`) and reports through it:

- ``with progress.task("converting tensors", total=338, unit="tensors") as advance:`` then
  ``advance(1)`` per item (``total=None`` for a step that has no count, shown as elapsed time);
- ``with progress.board(["generation", "tasks"]) as board:`` then
  ``board.update("tasks", "ready", "12 s")``: one status line per name.

Nothing here prints; the terminal rendering lives in ``services.launcher.progress``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

Advance = Callable[[int], None]
"""``advance(n)``: ``n`` more items of the current task are done."""


class StatusBoard(Protocol):
    def update(self, name: str, state: str, detail: str = "") -> None:
        """``state`` is the stable word (``loading``, ``ready``); ``detail`` may change often."""
        ...


class Progress(Protocol):
    def task(
        self, description: str, total: int | None = None, unit: str = ""
    ) -> AbstractContextManager[Advance]: ...

    def board(self, names: Sequence[str]) -> AbstractContextManager[StatusBoard]: ...


def ignore_advance(_: int) -> None:
    """An :data:`Advance` that counts nowhere."""


class _SilentBoard:
    def update(self, name: str, state: str, detail: str = "") -> None:
        pass


class SilentProgress:
    """Reports nowhere: the default of every function that takes a :class:`Progress`."""

    @contextmanager
    def task(self, description: str, total: int | None = None, unit: str = "") -> Iterator[Advance]:
        yield ignore_advance

    @contextmanager
    def board(self, names: Sequence[str]) -> Iterator[StatusBoard]:
        yield _SilentBoard()


SILENT: Progress = SilentProgress()
