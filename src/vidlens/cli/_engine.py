"""The ``--engine`` options that ``extract``, ``classify``, ``tag`` and ``embed`` share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from vidlens.engines import ENGINES, Engine, create_engine


def engine_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--engine``, ``--address``, ``--workers`` and ``--batch-size`` to a command."""
    options = [
        click.option("--engine", "engine_name", type=click.Choice(sorted(ENGINES)), default="local",
                     show_default=True, help="where the per-video work runs: in this process, or on Ray"),
        click.option("--address", default=None, metavar="ADDR",
                     help="Ray cluster to join, e.g. ray://head:10001 or auto (default: $RAY_ADDRESS, else "
                          "start Ray on this machine for the run)"),
        click.option("--workers", type=click.IntRange(1, 4096), default=None,
                     help="Ray workers (actors), each loading the models once [default: 1]"),
        click.option("--batch-size", type=click.IntRange(1, 100_000), default=None,
                     help="videos per batch handed to a Ray worker [default: 4]"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def make_engine(engine_name: str, address: str | None, workers: int | None, batch_size: int | None) -> Engine:
    """The engine the options name; Ray options with ``--engine local`` are a usage error."""
    if engine_name == "local" and any(v is not None for v in (address, workers, batch_size)):
        raise click.UsageError("--address, --workers and --batch-size apply to --engine ray only")
    return create_engine(engine_name, address=address, workers=workers, batch_size=batch_size)


__all__ = ["engine_options", "make_engine"]
