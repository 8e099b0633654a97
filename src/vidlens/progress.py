"""Progress bars for long work (rich), one way for every stage."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Advance(Protocol):
    """Callback that moves a bar on by ``n`` items, optionally with a note."""

    def __call__(self, n: int = 1, note: str | None = None) -> None: ...


@contextmanager
def progress_bar(total: int | None, description: str, enabled: bool = True) -> Iterator[Advance]:
    """A bar with count, rate-based ETA and elapsed time, drawn on stderr.

    Args:
        total: number of items, or None when unknown.
        description: what is being done ("ingest", "extract frames").
        enabled: False gives a no-op callback (library use, tests).
    """
    if not enabled:
        yield lambda n=1, note=None: None
        return
    console = Console(file=sys.stderr)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}", style="dim"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total, note="")

        def advance(n: int = 1, note: str | None = None) -> None:
            bar.update(task, advance=n, note=(note or "")[:60])

        yield advance
