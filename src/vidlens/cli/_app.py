"""The root ``vidlens`` command group and what its sub-command modules share."""

from __future__ import annotations

import json
import os
from typing import Any

import click
from rich.console import Console

import vidlens

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DEFAULT_LIBRARY = "vidlens-library"
DATABASE_URL_ENV = "VIDLENS_DATABASE_URL"


class CliContext:
    def __init__(self, library: str, config_file: str | None, database_url: str | None = None):
        self.library_path = library
        self.config_file = config_file
        self.overrides = {"database_url": database_url} if database_url else None
        self._lib: vidlens.Library | None = None

    def lib(self, create: bool = True) -> vidlens.Library:
        if self._lib is None:
            self._lib = vidlens.open(self.library_path, create=create, config_file=self.config_file,
                                     overrides=self.overrides)
        return self._lib


pass_ctx = click.make_pass_decorator(CliContext)


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-L", "--library", envvar="VIDLENS_LIBRARY", default=DEFAULT_LIBRARY, show_default=True,
              help="library folder (env VIDLENS_LIBRARY)")
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML file with settings that win over the library's vidlens.toml")
@click.option("--database-url", envvar=DATABASE_URL_ENV, default=None, metavar="URL",
              help="SQLAlchemy URL of the metadata DB, e.g. postgresql+psycopg://user@host/db "
                   f"(env {DATABASE_URL_ENV}; default: SQLite inside the library folder)")
@click.version_option(vidlens.__version__, prog_name="vidlens")
@click.pass_context
def cli(ctx: click.Context, library: str, config_file: str | None, database_url: str | None) -> None:
    """vidlens: categories, tags, search and duplicates for short videos."""
    from_env = os.environ.get(DATABASE_URL_ENV)
    if database_url and from_env and database_url != from_env:
        # The environment variable is also a config setting, which would win over the option.
        raise click.UsageError(f"--database-url and {DATABASE_URL_ENV} name different databases; give one")
    ctx.obj = CliContext(library, config_file, database_url)
    ctx.call_on_close(lambda: ctx.obj._lib.close() if ctx.obj._lib else None)


