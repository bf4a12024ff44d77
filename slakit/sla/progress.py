"""Time-based progress per story (and ramp step) on stderr with rich, or nothing."""

from __future__ import annotations

import asyncio
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress as Bar
    from rich.progress import TaskID

TICK_S = 0.2


class Progress:
    """A context manager; `track` shows one bar for the duration of a measurement."""

    def __init__(self, enabled: bool | None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar: Bar | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            # rich is only imported when a bar is shown
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)

    def track(self, description: str, seconds: float) -> AbstractContextManager[object]:
        if self._bar is None:
            return nullcontext()
        return _Track(self._bar, description, seconds)


class _Track:
    """One bar, advanced by wall time from a task on the running event loop."""

    def __init__(self, bar: Bar, description: str, seconds: float) -> None:
        self.bar, self.description, self.seconds = bar, description, seconds

    async def _tick(self, task: TaskID) -> None:
        start = time.monotonic()
        while True:
            self.bar.update(task, completed=min(time.monotonic() - start, self.seconds))
            await asyncio.sleep(TICK_S)

    def __enter__(self) -> _Track:
        self.task = self.bar.add_task(self.description, total=self.seconds)
        self.ticker = asyncio.get_running_loop().create_task(self._tick(self.task))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.ticker.cancel()
        self.bar.remove_task(self.task)
