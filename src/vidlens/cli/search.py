"""Retrieval commands: search, similar, dedup, index."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from vidlens.cli._app import CliContext, cli, err, out, pass_ctx, print_json

BACKENDS = click.Choice(["faiss", "milvus"])


def _index_config(backend: str | None) -> dict | None:
    return {"backend": backend} if backend else None


def _say(messages: list[str]) -> None:
    for m in messages:
        err.print(f"[yellow]{m}[/]", highlight=False)


def _results_table(title: str, results: list[dict]) -> None:
    table = Table(title=title)
    for col in ("#", "score", "id", "title", "duration", "labels"):
        table.add_column(col, overflow="fold")
    for n, r in enumerate(results, 1):
        table.add_row(str(n), f"{r['score']:.3f}", r["id"][:12], r.get("title") or r.get("path") or "",
                      f"{float(r.get('duration') or 0):.1f} s", " / ".join(r.get("labels") or []))
    out.print(table)


@cli.command()
@click.argument("query")
@click.option("--filter", "-f", "filters", multiple=True,
              help="category=NAME[|NAME], duration>=S, duration=A..B, date>=YYYY-MM-DD (repeatable)")
@click.option("-k", "--top", "k", default=10, show_default=True, help="number of results")
@click.option("--json", "as_json", is_flag=True, help="print results as JSON")
@click.option("--backend", type=BACKENDS, default=None, help="index backend (default: faiss)")
@click.option("--model", default=None,
              help="folder of a trained two-tower model, or 'auto' (LIBRARY/models/two_tower if present)")
@pass_ctx
def search(ctx: CliContext, query: str, filters: tuple[str, ...], k: int, as_json: bool, backend: str | None,
           model: str | None) -> None:
    """Find videos matching a text QUERY (any language; matched against titles, summaries, speech,
    on-screen text and visual concepts through the multilingual text encoder)."""
    from vidlens.retrieval import search as run_search

    lib = ctx.lib(create=False)
    messages: list[str] = []
    results = run_search(lib, query, list(filters), k, index_config=_index_config(backend), model=model,
                         messages=messages)
    _say(messages)
    if as_json:
        print_json({"query": query, "filters": list(filters), "results": results})
    else:
        _results_table(f"search: {query[:60]}", results)


@cli.command()
@click.argument("ref")
@click.option("--filter", "-f", "filters", multiple=True, help="as in `vidlens search`")
@click.option("-k", "--top", "k", default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--backend", type=BACKENDS, default=None)
@pass_ctx
def similar(ctx: CliContext, ref: str, filters: tuple[str, ...], k: int, as_json: bool, backend: str | None) -> None:
    """Videos most like REF: a video id (or unique prefix) of the library, or a video file."""
    from vidlens.retrieval import similar as run_similar

    lib = ctx.lib(create=False)
    messages: list[str] = []
    results = run_similar(lib, ref, k, list(filters), index_config=_index_config(backend), messages=messages)
    _say(messages)
    if as_json:
        print_json({"ref": ref, "results": results})
    else:
        _results_table(f"similar to {ref}", results)


@cli.command()
@click.option("--threshold", default=None, type=float, help="alignment score from which videos are copies")
@click.option("--json", "as_json", is_flag=True, help="print the groups as JSON")
@click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False),
              help="where to write the HTML report (default LIBRARY/reports/dedup.html)")
@pass_ctx
def dedup(ctx: CliContext, threshold: float | None, as_json: bool, html_path: str | None) -> None:
    """Find groups of near-duplicate videos (re-encoded, resized, cropped, letterboxed, logo, speed, trimmed)."""
    from vidlens.retrieval import DEFAULT_THRESHOLD, write_dedup_report
    from vidlens.retrieval import dedup as run_dedup

    lib = ctx.lib(create=False)
    groups = run_dedup(lib, threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                       progress=sys.stderr.isatty())
    report = write_dedup_report(lib, groups, html_path)
    if as_json:
        print_json({"groups": groups, "report": str(report)})
        return
    out.print(f"{len(groups)} duplicate groups; report: {report}")
    for n, g in enumerate(groups, 1):
        out.print(f"  group {n} (score {g['score']:.3f}): " + ", ".join(v[:12] for v in g["videos"]))


@cli.command("index")
@click.option("--space", type=click.Choice(["text", "video", "all"]), default="all", show_default=True)
@click.option("--rebuild", is_flag=True, help="rebuild from stored features even when up to date")
@click.option("--backend", type=BACKENDS, default=None)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def index_cmd(ctx: CliContext, space: str, rebuild: bool, backend: str | None, as_json: bool) -> None:
    """Bring the library's vector indexes up to date (or rebuild them) and show their state."""
    from vidlens.retrieval import open_library_index

    lib = ctx.lib(create=False)
    report = []
    for name in (["text", "video"] if space == "all" else [space]):
        li = open_library_index(lib, name, _index_config(backend), rebuild=rebuild)
        try:
            stats = li.index.stats() if hasattr(li.index, "stats") else {"items": len(li.index)}
            report.append({"space": name, "dim": li.index.dim, **stats, "messages": li.messages})
        finally:
            li.close()
    if as_json:
        print_json(report)
        return
    for r in report:
        _say(r["messages"])
        out.print(f"{r['space']}: {r['items']} videos, {r['dim']}-d, {r['backend']}"
                  + (f" ({r['mode']}, efSearch {r['ef_search']})" if r.get("mode") else ""))


@cli.command("train-search")
@click.option("--from", "sources", default="titles,captions,tags,clicks", show_default=True,
              help="pair sources, comma-separated: titles, captions, tags (gold/manual), clicks (query→video)")
@click.option("--pairs", "pairs_file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="extra (query, video) rows: JSONL/JSON/CSV with 'query' and 'video' columns")
@click.option("--holdout", default=0.0, show_default=True, type=click.FloatRange(0, 0.9),
              help="share of videos whose pairs are kept out of training and used to report R@K")
@click.option("--epochs", default=None, type=int, help="round-1 epochs (default: the model's)")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="model folder (default LIBRARY/models/two_tower, which `search --model auto` uses)")
@pass_ctx
def train_search(ctx: CliContext, sources: str, pairs_file: str | None, holdout: float, epochs: int | None,
                 seed: int, out_dir: str | None) -> None:
    """Train the two-tower text → video model on (query, video) pairs the library knows (titles,
    descriptions, gold tags, click logs) and save it; `vidlens search --model auto` then ranks with it."""
    from vidlens.retrieval.pairs import library_pairs, split_pairs
    from vidlens.retrieval.two_tower import TwoTowerModel, train_library_model

    lib = ctx.lib(create=False)
    pairs, counts = library_pairs(lib, [s.strip() for s in sources.split(",") if s.strip()], pairs_file)
    train, held = split_pairs(pairs, holdout, seed)
    err.print(f"pairs: {len(pairs)} ({', '.join(f'{k} {v}' for k, v in counts.items())}); "
              f"training on {len(train)}, holding out {len(held)}", highlight=False)
    config: dict = {"seed": seed}
    if epochs is not None:
        config["epochs_round1"] = epochs
    folder, history = train_library_model(lib, train, config=config, out=out_dir, held_out=held,
                                          log=lambda msg: err.print(str(msg), highlight=False))
    result: dict = {"model": str(folder), "pairs": counts, "trained_on": len(train), "history": history[-3:]}
    held_out = TwoTowerModel.load(folder).meta.get("held_out")
    if held_out:
        result["held_out"] = held_out
    print_json(result)
