"""`LocalEngine`: the default engine, which runs a task in this process, one item after another."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from vidlens.engines.base import Engine, Task


class LocalEngine(Engine):
    """Runs a task in the calling process.

    Results stream: the task's ``process`` sees the items as one iterator, so a task may overlap work
    across items (extraction decodes the next video while the encoders work on this one), and the
    caller stores each result before the next one is computed.
    """

    name = "local"

    def map(self, task: Task, items: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
        """``(item, result)`` pairs in the order of ``items``."""
        task.setup()
        results = task.process(iter(items))
        try:
            for item in items:
                yield item, next(results)
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()


__all__ = ["LocalEngine"]
