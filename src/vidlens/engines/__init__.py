"""Engines: where the per-item work of ``extract``, ``classify``, ``tag`` and ``embed`` runs.

- ``local`` (default, :class:`LocalEngine`): in this process, one item after another.
- ``ray`` (:class:`RayEngine`): Ray Data actors on a Ray cluster or on a Ray started on this machine;
  each actor loads the models once and works through batches of items.

Both run the same :class:`Task` (``vidlens.features.ExtractTask``, and the tasks in
:mod:`vidlens.engines.tasks`); results come back to the calling process, which alone writes them to the
library, so a run stores the same rows and files under the same keys whichever engine computed them,
and a re-run skips what is done. Example::

    from vidlens.engines import create_engine
    with create_engine("ray", workers=2) as engine:
        lib.extract(engine=engine)

Modules: :mod:`~vidlens.engines.base` (the contract), :mod:`~vidlens.engines.local`,
:mod:`~vidlens.engines.ray_engine`, :mod:`~vidlens.engines.tasks` (classify, tag and embed as tasks).
"""

from __future__ import annotations

from typing import Any

from vidlens.engines.base import Engine, Task
from vidlens.engines.local import LocalEngine
from vidlens.engines.ray_engine import RayEngine
from vidlens.errors import ConfigError

ENGINES: dict[str, type[Engine]] = {"local": LocalEngine, "ray": RayEngine}


def create_engine(name: str = "local", *, address: str | None = None, workers: int | None = None,
                  batch_size: int | None = None) -> Engine:
    """The engine called ``name``.

    Args:
        name: ``local`` or ``ray``.
        address: Ray only: the cluster to join (default: start a Ray on this machine for the run).
        workers: Ray only: actors in the pool (default 1).
        batch_size: Ray only: items per batch (default 4).

    Raises:
        ConfigError: unknown engine, or Ray options given to the local engine.
    """
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r}; available: {', '.join(ENGINES)}")
    params: dict[str, Any] = {k: v for k, v in
                              {"address": address, "workers": workers, "batch_size": batch_size}.items()
                              if v is not None}
    if name == "local":
        if params:
            raise ConfigError(f"--{next(iter(params)).replace('_', '-')} applies to --engine ray only")
        return LocalEngine()
    return RayEngine(**params)


__all__ = ["ENGINES", "Engine", "LocalEngine", "RayEngine", "Task", "create_engine"]
