"""The ``vidlens`` command line: a thin face over the library calls.

The root group lives in ``_app``; each area adds its commands in its own module, imported here.
"""

from __future__ import annotations

import sys

import click

from vidlens.cli import classify as _classify  # noqa: F401 - registers the commands
from vidlens.cli import library as _library  # noqa: F401 - registers the commands
from vidlens.cli import search as _search  # noqa: F401 - registers search, similar, dedup, index
from vidlens.cli import serve as _serve  # noqa: F401 - registers `vidlens serve`
from vidlens.cli import tags as _tags  # noqa: F401 - registers the tag commands
from vidlens.cli import taxonomy as _taxonomy  # noqa: F401 - registers `vidlens taxonomy`
from vidlens.cli._app import cli, err
from vidlens.errors import VidlensError


def main() -> None:
    """Entry point of the console script; turns vidlens errors into one clear line and exit code 2."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except VidlensError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except SystemExit:
        raise


if __name__ == "__main__":
    main()
