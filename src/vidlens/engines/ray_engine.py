"""`RayEngine`: runs a task on a Ray cluster (or a Ray started on this machine) with Ray Data actors.

The items go into a Ray dataset and through ``map_batches`` with a pool of actors: each actor builds the
task once (so the encoders load once per worker) and processes batches of items. Results stream back
to the driver, which stores them one by one (see :mod:`vidlens.engines.base`). Memory in flight is
bounded three ways: each actor gets at most ``max_batches_in_flight`` batches queued, the Ray Data
executor is capped at ``object_store_mb`` of object-store memory (it stops launching work when results
are not consumed), and the driver pulls one result batch at a time.

Items and results travel pickled, one ``bytes`` cell per item, so a task's results can be any Python
objects (feature outcomes with numpy arrays, JSON records) without a fixed Arrow schema.

On a 2-CPU machine two model-holding workers of one CPU each would leave no CPU for the dataset's read
task and the run would stall (DESIGN.md, "Known traps"), so by default a worker asks for one CPU only
while that leaves half a CPU free, and for a share of what is left otherwise.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from vidlens.engines.base import Engine, Task
from vidlens.errors import MissingDependencyError, VidlensError

log = logging.getLogger(__name__)

PIP_LINE = "pip install 'vidlens[ray]'  (ray[data]==2.60.0)"


def _ray() -> Any:
    try:
        import ray
        import ray.data  # the Data library is a separate import
    except ImportError:
        raise MissingDependencyError("the ray engine", PIP_LINE) from None
    return ray


class TaskActor:
    """The Ray Data actor around a task: sets it up once, then maps batches of pickled items."""

    def __init__(self, task: Task):
        self.task = task
        task.setup()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = [pickle.loads(cell) for cell in batch["item"]]
        results = [pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in self.task.process(items)]
        if len(results) != len(items):
            raise RuntimeError(f"{type(self.task).__name__} gave {len(results)} results for {len(items)} items")
        out = np.empty(len(results), dtype=object)
        out[:] = results
        return {"n": batch["n"], "result": out}


class RayEngine(Engine):
    """Runs tasks as Ray Data actors.

    Args:
        address: the Ray cluster to join (``ray://head:10001`` or ``head:6379``; ``auto`` for the one this
            machine belongs to). None: ``$RAY_ADDRESS`` if set, else a Ray started on this machine for the
            run; a process that has already joined a Ray uses that one and leaves it running.
        workers: actors in the pool (each loads the task's models once).
        batch_size: items per batch handed to an actor.
        cpus_per_worker: CPUs each actor reserves; default 1, or a share that leaves half a CPU free.
        max_batches_in_flight: batches queued per actor at most.
        object_store_mb: cap on the object-store memory the run's data may hold at once.
        progress: draw Ray Data's progress bars.
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int = 1, batch_size: int = 4,
                 cpus_per_worker: float | None = None, max_batches_in_flight: int = 2,
                 object_store_mb: int = 512, progress: bool = False):
        if workers < 1:
            raise VidlensError(f"the ray engine needs at least one worker, got {workers}")
        if batch_size < 1:
            raise VidlensError(f"batch size must be at least 1, got {batch_size}")
        self.address = address
        self.workers = workers
        self.batch_size = batch_size
        self.cpus_per_worker = cpus_per_worker
        self.max_batches_in_flight = max_batches_in_flight
        self.object_store_mb = object_store_mb
        self.progress = progress
        self._started = False

    def _connect(self) -> Any:
        ray = _ray()
        if not ray.is_initialized():
            address = self.address or os.environ.get("RAY_ADDRESS") or None
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "logging_level": logging.WARNING}
            if address is None:
                # A Ray of our own for this run: as many CPUs as the machine has, a modest object store.
                kwargs.update(num_cpus=os.cpu_count() or 1,
                              object_store_memory=max(self.object_store_mb, 100) * 2**20 * 2)
            try:
                ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise VidlensError(f"cannot reach the Ray cluster at {address or 'this machine'}: {exc}") from None
            self._started = True
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        return ray

    def _cpus(self, ray: Any) -> float:
        if self.cpus_per_worker is not None:
            return self.cpus_per_worker
        total = float(ray.cluster_resources().get("CPU", 1.0))
        if total - self.workers >= 0.5:
            return 1.0
        return max(0.05, (total - 0.5) / self.workers)

    def map(self, task: Task, items: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
        """``(item, result)`` pairs in the order the workers finish them."""
        for group in self.map_groups(task, items):
            yield from group

    def map_groups(self, task: Task, items: Sequence[Any]) -> Iterator[list[tuple[Any, Any]]]:
        """The pairs of each batch a worker finished, one list per batch."""
        if not items:
            return
        ray = self._connect()
        from ray.data import ActorPoolStrategy, DataContext

        ctx = DataContext.get_current()
        ctx.enable_progress_bars = self.progress
        ctx.execution_options.resource_limits = ctx.execution_options.resource_limits.copy(
            object_store_memory=self.object_store_mb * 2**20)
        rows = [{"n": n, "item": pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)}
                for n, item in enumerate(items)]
        blocks = max(1, min(len(rows), self.workers * 4, len(rows) // self.batch_size + 1))
        ds = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            TaskActor,
            fn_constructor_kwargs={"task": task},
            batch_size=self.batch_size,
            batch_format="numpy",
            compute=ActorPoolStrategy(size=self.workers, max_tasks_in_flight_per_actor=self.max_batches_in_flight),
            num_cpus=self._cpus(ray),
        )
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1):
                yield [(items[int(n)], pickle.loads(cell)) for n, cell in zip(batch["n"], batch["result"], strict=True)]
        except Exception as exc:
            raise _worker_error(exc) from exc

    def close(self) -> None:
        """Shut down the Ray this engine started (a cluster it joined keeps running)."""
        if self._started:
            _ray().shutdown()
            self._started = False

    def __repr__(self) -> str:
        return f"RayEngine(address={self.address!r}, workers={self.workers}, batch_size={self.batch_size})"


_RAISED = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)): (.+)$", re.MULTILINE)


def _worker_error(exc: BaseException) -> VidlensError:
    """The error a worker raised, as a VidlensError with its message.

    Ray hands the driver a wrapper whose text holds the worker's traceback; the first exception named
    there outside Ray is the one the task raised (a vidlens error keeps its message as it is).
    """
    seen: set[int] = set()
    node: BaseException | None = exc
    texts = []
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        texts.append(str(node))
        node = node.__cause__ or getattr(node, "cause", None)
    for text in texts:
        for name, message in _RAISED.findall(text):
            if name.startswith("ray.") or name in ("UserCodeException", "RayTaskError"):
                continue
            if name.startswith("vidlens.errors."):
                return VidlensError(message.strip())
            return VidlensError(f"ray engine: a worker failed: {name.rsplit('.', 1)[-1]}: {message.strip()}")
    last = texts[-1].strip().splitlines() if texts else []
    return VidlensError(f"ray engine: a worker failed: {last[-1] if last else type(exc).__name__}")


__all__ = ["RayEngine", "TaskActor"]
