"""Taxonomy commands: ``vidlens taxonomy …`` show and edit the library's own category tree.

The tree lives in ``LIBRARY/taxonomy.yaml`` (the HTTP service's ``/api/v1/taxonomy`` reads and writes the
same file); until the first edit it is the shipped default. Zero-shot classification reads it, so a
description and a few keywords per category are what teaches zero-shot a category. Every edit validates
the whole tree before anything is written, and the write is atomic.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click
from rich.table import Table

from vidlens.cli._app import CliContext, cli, out, pass_ctx, print_json


def _load(ctx: CliContext):
    from vidlens.taxonomy import library_taxonomy

    return library_taxonomy(ctx.lib().root)


def _edit(ctx: CliContext, change: Callable, done: str) -> None:
    """Apply ``change(taxonomy)`` to the library's taxonomy and save it; nothing is written on an error."""
    from vidlens.taxonomy import save_library_taxonomy

    tax, _source = _load(ctx)
    change(tax)
    path = save_library_taxonomy(ctx.lib().root, tax)
    out.print(f"{done}; {tax.num_l1} level-1 / {tax.num_l2} level-2 categories in {path}", highlight=False)


@cli.group()
def taxonomy() -> None:
    """The library's category tree: show, add, describe, rename, move, remove, import, export, validate."""


@taxonomy.command("show")
@click.option("--json", "as_json", is_flag=True, help="nested records (as the HTTP API gives them)")
@pass_ctx
def taxonomy_show(ctx: CliContext, as_json: bool) -> None:
    """Print the tree: level-1 categories with their level-2 children, aliases, descriptions, keywords."""
    tax, source = _load(ctx)
    if as_json:
        print_json({"source": source, "level1": tax.num_l1, "level2": tax.num_l2, "categories": tax.to_records()})
        return
    table = Table(title=f"taxonomy ({source}): {tax.num_l1} level-1 / {tax.num_l2} level-2")
    for column in ("category", "aliases", "description", "keywords"):
        table.add_column(column)
    by_name = {c.name: c for c in tax.categories}
    for l1 in tax.l1_names:
        for name in [l1, *tax.children(l1)]:
            c = by_name[name]
            shown = f"[bold]{name}[/]" if c.parent is None else f"  {name}"
            table.add_row(shown, ", ".join(c.aliases), c.description, "、".join(c.keywords))
    out.print(table)


@taxonomy.command("add")
@click.argument("name")
@click.option("--parent", default=None, help="level-1 parent (omit to add a level-1 category)")
@click.option("--description", default="", help="one sentence; zero-shot reads it")
@click.option("--alias", "aliases", multiple=True, help="another name (repeatable)")
@click.option("--keyword", "keywords", multiple=True, help="a word typical of its videos (repeatable)")
@pass_ctx
def taxonomy_add(ctx: CliContext, name: str, parent: str | None, description: str, aliases: tuple[str, ...],
                 keywords: tuple[str, ...]) -> None:
    """Add a category; existing categories keep their indices."""
    _edit(ctx, lambda t: t.add(name, parent=parent, description=description, aliases=aliases, keywords=keywords),
          f"added {name!r}" + (f" under {parent!r}" if parent else ""))


@taxonomy.command("describe")
@click.argument("name")
@click.option("--description", default=None, help="new description")
@click.option("--alias", "aliases", multiple=True, help="replace the aliases (repeatable)")
@click.option("--keyword", "keywords", multiple=True, help="replace the keywords (repeatable)")
@click.option("--add-keyword", "more", multiple=True, help="add a keyword to those it has (repeatable)")
@pass_ctx
def taxonomy_describe(ctx: CliContext, name: str, description: str | None, aliases: tuple[str, ...],
                      keywords: tuple[str, ...], more: tuple[str, ...]) -> None:
    """Replace a category's description, aliases or keywords, or add keywords (what is not given stays)."""
    if description is None and not aliases and not keywords and not more:
        raise click.UsageError("give --description, --alias, --keyword or --add-keyword")

    def change(tax) -> None:
        current = {c.name: c for c in tax.categories}[tax.resolve(name)].keywords
        base = list(keywords) if keywords else current
        words = [*base, *(k for k in more if k not in base)] if (keywords or more) else None
        tax.update(name, description=description, aliases=aliases or None, keywords=words)

    _edit(ctx, change, f"described {name!r}")


@taxonomy.command("rename")
@click.argument("old")
@click.argument("new")
@click.option("--drop-old-name", is_flag=True, help="do not keep OLD as an alias of NEW")
@pass_ctx
def taxonomy_rename(ctx: CliContext, old: str, new: str, drop_old_name: bool) -> None:
    """Rename a category (its children follow; its index stays). OLD stays as an alias, so labels already
    stored on videos still resolve; trained models keep the name they were trained with."""

    def change(tax) -> None:
        canonical = tax.resolve(old)
        tax.rename(canonical, new)
        if not drop_old_name:
            aliases = {c.name: c for c in tax.categories}[new].aliases
            tax.update(new, aliases=[*aliases, canonical])

    _edit(ctx, change, f"renamed {old!r} to {new!r}" + ("" if drop_old_name else f" (alias {old!r} kept)"))


@taxonomy.command("move")
@click.argument("name")
@click.argument("parent")
@pass_ctx
def taxonomy_move(ctx: CliContext, name: str, parent: str) -> None:
    """Put a level-2 category under another level-1 category."""
    _edit(ctx, lambda t: t.move(name, parent), f"moved {name!r} under {parent!r}")


@taxonomy.command("remove")
@click.argument("name")
@click.option("--cascade", is_flag=True, help="also remove a level-1 category's children")
@pass_ctx
def taxonomy_remove(ctx: CliContext, name: str, cascade: bool) -> None:
    """Remove a category (refused for a level-1 category with children unless --cascade)."""
    removed: list[str] = []
    _edit(ctx, lambda t: removed.extend(t.remove(name, cascade=cascade)), f"removed {name!r}")
    if len(removed) > 1:
        out.print(f"with its children: {', '.join(removed[1:])}", highlight=False)


@taxonomy.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_ctx
def taxonomy_import(ctx: CliContext, path: Path) -> None:
    """Replace the library's taxonomy with a YAML / JSON / CSV file (validated first)."""
    from vidlens.taxonomy import Taxonomy, save_library_taxonomy

    new = Taxonomy.load(path)
    saved = save_library_taxonomy(ctx.lib().root, new)
    out.print(f"imported {path}; {new.num_l1} level-1 / {new.num_l2} level-2 categories in {saved}", highlight=False)


@taxonomy.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=".yaml, .json or .csv (default: YAML on standard output)")
@pass_ctx
def taxonomy_export(ctx: CliContext, output: Path | None) -> None:
    """Write the library's taxonomy (the shipped default until the first edit) to a file."""
    tax, source = _load(ctx)
    if output is None:
        sys.stdout.write(tax.dumps(".yaml"))
        return
    tax.save(output)
    out.print(f"wrote the {source} taxonomy ({tax.num_l1} / {tax.num_l2}) to {output}", highlight=False)


@taxonomy.command("validate")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def taxonomy_validate(path: Path) -> None:
    """Check a taxonomy file (unique names, one level-1 parent per level-2, no cycles); exit 2 if invalid."""
    from vidlens.taxonomy import Taxonomy

    tax = Taxonomy.load(path)
    out.print(f"{path}: valid, {tax.num_l1} level-1 / {tax.num_l2} level-2 categories", highlight=False)
