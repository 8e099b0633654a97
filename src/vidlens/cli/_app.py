"""The root ``vidlens`` command group and what its sub-command modules share."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console

import vidlens

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DEFAULT_LIBRARY = "vidlens-library"


class CliContext:
    def __init__(self, library: str, config_file: str | None):
        self.library_path = library
        self.config_file = config_file
        self._lib: vidlens.Library | None = None

    def lib(self, create: bool = True) -> vidlens.Library:
        if self._lib is None:
            self._lib = vidlens.open(self.library_path, create=create, config_file=self.config_file)
        return self._lib


pass_ctx = click.make_pass_decorator(CliContext)


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-L", "--library", envvar="VIDLENS_LIBRARY", default=DEFAULT_LIBRARY, show_default=True,
              help="library folder (env VIDLENS_LIBRARY)")
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML file with settings that win over the library's vidlens.toml")
@click.version_option(vidlens.__version__, prog_name="vidlens")
@click.pass_context
def cli(ctx: click.Context, library: str, config_file: str | None) -> None:
    """vidlens: categories, tags, search and duplicates for short videos."""
    ctx.obj = CliContext(library, config_file)
    ctx.call_on_close(lambda: ctx.obj._lib.close() if ctx.obj._lib else None)


