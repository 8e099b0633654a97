"""The contract between batch work and the engines that run it.

A :class:`Task` is the per-item work of one command (extract the features of a video, classify a
video, tag a video, fuse a video's vectors). It is set up once per worker (where models load) and then
turns items into results; it computes and never writes to the library. An :class:`Engine` runs a task
over items and hands the results back to the caller as they finish; the caller (the *driver*) is the
one process that stores them, so every write happens once per item, with the same keys whichever
engine computed it.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from typing import Any


class Task(abc.ABC):
    """Per-item work that an engine may run in other processes or on other machines.

    A task must pickle (engines ship it to their workers); whatever cannot (DB connections, loaded
    models) is made in :meth:`setup`, which each worker calls once before its first item.
    """

    def setup(self) -> None:  # noqa: B027 - most tasks need no set-up
        """Load what the work needs (models, a read-only handle on the library). Called once per worker."""

    @abc.abstractmethod
    def process(self, items: Iterable[Any]) -> Iterator[Any]:
        """One result per item, in the order of ``items``. Must not write to the library."""

    def close(self) -> None:  # noqa: B027 - most tasks hold nothing
        """Release what :meth:`setup` opened."""


class Engine(abc.ABC):
    """Runs a :class:`Task` over items.

    Attributes:
        name: the engine's name (``local`` or ``ray``), as the CLI's ``--engine`` spells it.
    """

    name: str = ""

    @abc.abstractmethod
    def map(self, task: Task, items: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
        """``(item, result)`` pairs as results arrive (an engine may reorder them).

        The caller stores each result before asking for the next pair, so a run that stops (killed,
        failed) has stored exactly the results it was handed.
        """

    def map_groups(self, task: Task, items: Sequence[Any]) -> Iterator[list[tuple[Any, Any]]]:
        """The pairs of :meth:`map` in the groups they arrive in (a worker's batch comes back whole), so
        the caller can store a group at once: fewer, larger writes, and a kill loses at most one group."""
        for pair in self.map(task, items):
            yield [pair]

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release workers and connections."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


__all__ = ["Engine", "Task"]
