"""Tag commands: ``vidlens tags …`` (the library: mine, review, approve, reject, import, export, history,
diff, rollback, feedback, train …) and ``vidlens tag`` (tag videos of the library or records in files)."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from vidlens.cli._app import CliContext, cli, err, out, pass_ctx, print_json
from vidlens.cli._engine import engine_options, make_engine
from vidlens.errors import VidlensError

TEXT_FIELDS = ("title", "summary", "desc", "dynamic", "ocr", "asr", "query", "sentence", "text")


def _tags(ctx: CliContext, by: str | None = None):
    from vidlens.tags import TagLibrary

    return TagLibrary(ctx.lib(), user=by)


def _encoder(name: str):
    from vidlens.tags.runs import text_encoder

    return text_encoder(name)


def _parse_dims(values: tuple[str, ...]) -> dict[str, str]:
    dims = {}
    for v in values:
        if "=" not in v:
            raise click.BadParameter(f"{v!r}: use dimension=value, e.g. target=product", param_hint="--dim")
        k, val = v.split("=", 1)
        dims[k.strip()] = val.strip()
    return dims


@cli.group()
def tags() -> None:
    """The tag library: add, mine, review, approve/reject, import/export, history, diff, rollback."""


@tags.command("stats")
@pass_ctx
def tags_stats(ctx: CliContext) -> None:
    """Counts by status, kind, source and atomic class; the current version."""
    print_json(_tags(ctx).stats())


@tags.command("add")
@click.argument("name")
@click.option("--kind", type=click.Choice(["atomic", "phrase"]), default=None)
@click.option("--class", "atomic_class", default=None, help="atomic class path, e.g. place/city")
@click.option("--dim", "dims", multiple=True, help="phrase dimension=value (repeatable)")
@click.option("--alias", "aliases", multiple=True)
@click.option("--parent", "parents", multiple=True)
@click.option("--related", multiple=True)
@click.option("--approve", is_flag=True, help="add as approved (default: candidate)")
@click.option("--by", default=None, help="editor name (default: login name)")
@pass_ctx
def tags_add(ctx: CliContext, name: str, kind, atomic_class, dims, aliases, parents, related, approve, by) -> None:
    """Add a tag (or merge into the tag with the same normal form)."""
    tag = _tags(ctx, by).add(name, kind=kind, atomic_class=atomic_class, dimensions=_parse_dims(dims),
                             aliases=aliases, parents=parents, related=related,
                             status="approved" if approve else "candidate")
    print_json(tag)


@tags.command("show")
@click.argument("name")
@pass_ctx
def tags_show(ctx: CliContext, name: str) -> None:
    """One tag (by name, alias or #id)."""
    print_json(_tags(ctx).get(name))


@tags.command("list")
@click.option("--status", type=click.Choice(["candidate", "approved", "rejected"]), default=None)
@click.option("--kind", type=click.Choice(["atomic", "phrase"]), default=None)
@click.option("--source", default=None)
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def tags_list(ctx: CliContext, status, kind, source, limit, as_json) -> None:
    """List tags."""
    rows = _tags(ctx).list(status=status, kind=kind, source=source, limit=limit)
    if as_json:
        print_json(rows)
        return
    table = Table()
    for col in ("id", "name", "kind", "status", "source", "count", "videos"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), r["name"], r["kind"], r["status"], r["source"], str(r["count"]),
                      str(r["video_count"]))
    out.print(table)


def read_corpus(paths: tuple[str, ...], fields: tuple[str, ...]) -> tuple[list[str], list[datetime] | None]:
    """Documents (and times, when every record has one) from text, JSONL and CSV files."""
    docs: list[str] = []
    times: list[datetime | None] = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise VidlensError(f"{path}: corpus file not found")
        suffix = path.suffix.lower()
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            if suffix in (".jsonl", ".json", ".csv"):
                rows = csv.DictReader(fh) if suffix == ".csv" else (
                    json.loads(line) for line in fh if line.strip())
                for row in rows:
                    if not isinstance(row, dict):
                        continue
                    text = " ".join(str(row[f]) for f in fields if row.get(f))
                    if text.strip():
                        docs.append(text)
                        times.append(_row_time(row))
            else:
                for line in fh:
                    if line.strip():
                        docs.append(line.strip())
                        times.append(None)
    have_times = bool(times) and all(t is not None for t in times)
    return docs, (times if have_times else None)  # type: ignore[return-value]


def _row_time(row: dict[str, Any]) -> datetime | None:
    for key in ("time", "pubdate", "date", "created_at"):
        value = row.get(key)
        if value in (None, ""):
            continue
        try:
            if isinstance(value, int | float) or str(value).isdigit():
                return datetime.fromtimestamp(float(value), UTC)
            t = datetime.fromisoformat(str(value))
            return t if t.tzinfo else t.replace(tzinfo=UTC)
        except (ValueError, OverflowError):
            return None
    return None


@tags.command("mine")
@click.argument("corpus", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--from-library", is_flag=True, help="also mine the library's titles, summaries, ASR and OCR")
@click.option("--miner", "miners", multiple=True, type=click.Choice(["autophrase", "pattern", "trending"]),
              help="miners to run (repeatable; default autophrase and pattern, plus trending when times exist)")
@click.option("--field", "fields", multiple=True, help=f"JSONL/CSV text fields (default: {', '.join(TEXT_FIELDS)})")
@click.option("--min-count", default=2, show_default=True)
@click.option("--max", "max_phrases", default=200, show_default=True, help="most phrases per miner")
@click.option("--dry-run", is_flag=True, help="print what would be proposed, change nothing")
@click.option("--by", default=None)
@pass_ctx
def tags_mine(ctx: CliContext, corpus, from_library, miners, fields, min_count, max_phrases, dry_run, by) -> None:
    """Mine new tags from a corpus; they enter the library as candidates with evidence."""
    from vidlens.tags import MINERS

    lib = _tags(ctx, by)
    docs, times = read_corpus(tuple(corpus), tuple(fields) or TEXT_FIELDS)
    if from_library:
        for video in ctx.lib().videos():
            text = " ".join(x for x in (video.get("title"), video.get("summary")) if x)
            if text:
                docs.append(text)
        times = None
    if not docs:
        err.print("the corpus is empty: nothing to mine")
        print_json({"documents": 0, "proposed": {}})
        return
    known = [r["name"] for r in lib.iter_records(status="approved")]
    # Candidates and rejected tags are proposed again: counts and evidence add up, rejected stay rejected.
    exclude: list[str] = []
    chosen = list(miners) or ["autophrase", "pattern"] + (["trending"] if times else [])
    result: dict[str, Any] = {"documents": len(docs), "proposed": {}}
    for name in chosen:
        params = {"max_phrases": max_phrases}
        if name in ("autophrase", "pattern", "trending"):
            params["min_count"] = min_count if name != "trending" else max(min_count, 3)
        miner = MINERS.create(name, **params)
        if name == "trending" and times is None:
            err.print("trending needs a time per document (time/pubdate field); skipped")
            continue
        phrases = miner.mine(docs, known=known, exclude=exclude, times=times)
        records = [p.to_record() for p in phrases]
        if dry_run:
            result["proposed"][name] = records
        else:
            report = lib.propose(records, source=name, who=by)
            result["proposed"][name] = {"phrases": len(records), **report.to_dict()}
    print_json(result)


@tags.command("review")
@click.option("--source", default=None, help="only candidates from this miner/source")
@click.option("--limit", default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def tags_review(ctx: CliContext, source, limit, as_json) -> None:
    """Candidates waiting for review, best score first, with their evidence."""
    rows = _tags(ctx).list(status="candidate", source=source, limit=limit, order="-score")
    if as_json:
        print_json(rows)
        return
    table = Table(title="candidates (approve/reject with `vidlens tags approve|reject NAME…`)")
    for col in ("id", "name", "score", "count", "source", "evidence"):
        table.add_column(col, overflow="fold")
    for r in rows:
        ev = r["evidence"] or {}
        hint = ev.get("pattern") or "; ".join(ev.get("examples", [])[:1])
        table.add_row(str(r["id"]), r["name"], f"{r['score'] or 0:.3f}", str(r["count"]), r["source"], hint)
    out.print(table)


def _review(ctx: CliContext, names, min_score, source, by, note, status: str) -> None:
    lib = _tags(ctx, by)
    refs: list[Any] = list(names)
    if min_score is not None:
        refs += [r["id"] for r in lib.list(status="candidate", source=source) if (r["score"] or 0) >= min_score]
    if not refs:
        raise click.UsageError("name tags, or give --min-score")
    n = lib.approve(refs, who=by, note=note) if status == "approved" else lib.reject(refs, who=by, note=note)
    print_json({status: n, "version": lib.version})


@tags.command("approve")
@click.argument("names", nargs=-1)
@click.option("--min-score", type=float, default=None, help="approve every candidate scoring at least this")
@click.option("--source", default=None, help="with --min-score: only candidates from this source")
@click.option("--by", default=None)
@click.option("--note", default=None)
@pass_ctx
def tags_approve(ctx: CliContext, names, min_score, source, by, note) -> None:
    """Approve tags (names, aliases or #ids)."""
    _review(ctx, names, min_score, source, by, note, "approved")


@tags.command("reject")
@click.argument("names", nargs=-1)
@click.option("--min-score", type=float, default=None, help="reject every candidate scoring at least this")
@click.option("--source", default=None)
@click.option("--by", default=None)
@click.option("--note", default=None)
@pass_ctx
def tags_reject(ctx: CliContext, names, min_score, source, by, note) -> None:
    """Reject tags: never recalled again, and they stay rejected when mined again."""
    _review(ctx, names, min_score, source, by, note, "rejected")


@tags.command("merge")
@click.argument("source")
@click.argument("into")
@click.option("--by", default=None)
@pass_ctx
def tags_merge(ctx: CliContext, source, into, by) -> None:
    """Merge a duplicate tag into another (its name becomes an alias)."""
    print_json(_tags(ctx, by).merge(source, into))


@tags.command("alias")
@click.argument("name")
@click.argument("alias")
@click.option("--by", default=None)
@pass_ctx
def tags_alias(ctx: CliContext, name, alias, by) -> None:
    """Give a tag a synonym."""
    print_json(_tags(ctx, by).add_alias(name, alias))


@tags.command("link")
@click.argument("name")
@click.argument("other")
@click.option("--relation", type=click.Choice(["parent", "related"]), default="related", show_default=True)
@click.option("--by", default=None)
@pass_ctx
def tags_link(ctx: CliContext, name, other, relation, by) -> None:
    """Link two tags (``--relation parent``: OTHER becomes NAME's parent)."""
    lib = _tags(ctx, by)
    lib.link(name, other, relation)
    print_json(lib.get(name))


@tags.command("decompose")
@click.argument("name")
@pass_ctx
def tags_decompose(ctx: CliContext, name) -> None:
    """The atomic parts of a phrase tag."""
    print_json(_tags(ctx).decompose(name))


@tags.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--status", type=click.Choice(["candidate", "approved", "rejected"]), default="approved",
              show_default=True, help="status of new tags whose record does not say")
@click.option("--source", default="import", show_default=True)
@click.option("--decompose", is_flag=True, help="link phrase tags to their atomic parts")
@click.option("--by", default=None)
@pass_ctx
def tags_import(ctx: CliContext, path, status, source, decompose, by) -> None:
    """Import tags from JSONL, CSV or a plain list (one name per line); bad lines are reported."""
    report = _tags(ctx, by).import_file(path, status=status, source=source, decompose=decompose,
                                        progress=sys.stderr.isatty())
    print_json(report.to_dict())
    if report.errors:
        err.print(f"{len(report.errors)} line(s) could not be imported (see errors)")


@tags.command("export")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default=None)
@click.option("--status", type=click.Choice(["candidate", "approved", "rejected"]), default=None)
@pass_ctx
def tags_export(ctx: CliContext, path, fmt, status) -> None:
    """Export tags to JSONL or CSV (``-`` for stdout, JSONL)."""
    lib = _tags(ctx)
    n = lib.export(sys.stdout, fmt or "jsonl", status) if path == "-" else lib.export(path, fmt, status)
    err.print(f"exported {n} tags")


@tags.command("history")
@click.argument("name", required=False)
@click.option("--limit", default=20, show_default=True)
@pass_ctx
def tags_history(ctx: CliContext, name, limit) -> None:
    """Versions of the library (or of one tag, with what changed)."""
    print_json(_tags(ctx).history(name, limit=limit))


@tags.command("diff")
@click.argument("from_version", type=int)
@click.argument("to_version", type=int, required=False)
@pass_ctx
def tags_diff(ctx: CliContext, from_version, to_version) -> None:
    """What changed between two versions (default: up to now)."""
    print_json(_tags(ctx).diff(from_version, to_version))


@tags.command("rollback")
@click.argument("version", type=int)
@click.option("--by", default=None)
@pass_ctx
def tags_rollback(ctx: CliContext, version, by) -> None:
    """Restore the library as it was at VERSION (as a new, undoable version)."""
    print_json(_tags(ctx, by).rollback(version))


@tags.command("assign")
@click.argument("video")
@click.argument("names", nargs=-1, required=True)
@click.option("--source", default="gold", show_default=True)
@pass_ctx
def tags_assign(ctx: CliContext, video, names, source) -> None:
    """Put tags on a video (gold labels that train the ranker and feed similar-video recall)."""
    lib = ctx.lib()
    video_id = lib.get(video)["id"]
    ids = _tags(ctx).assign(video_id, list(names), source=source)
    print_json({"video_id": video_id, "tags": len(ids)})


def _library_docs(ctx: CliContext, encoder) -> list:
    from vidlens.tags.runs import library_docs

    return library_docs(ctx.lib(create=False), encoder)


def _tagger(ctx: CliContext, encoder, ranker: str | None, docs: list):
    from vidlens.tags.runs import library_tagger

    return library_tagger(ctx.lib(create=False), _tags(ctx), encoder, ranker, docs)


@tags.command("train")
@click.option("--ranker", type=click.Choice(["late_fusion", "attention_fusion"]), default="late_fusion",
              show_default=True)
@click.option("--encoder", default="muse_v3", show_default=True, help="text encoder for tags ('none' to skip)")
@click.option("--epochs", default=30, show_default=True)
@pass_ctx
def tags_train(ctx: CliContext, ranker, encoder, epochs) -> None:
    """Train the relevance ranker on the library's videos with gold tags; saved in models/tag_ranker."""
    from vidlens.tags import RANKERS

    enc = _encoder(encoder)
    docs = _library_docs(ctx, enc)
    tagger = _tagger(ctx, enc, "zero_shot", docs)
    gold = tagger.tags.video_tags(sources=["gold", "manual"])
    tagger.ranker = RANKERS.create(ranker, epochs=epochs)
    tagger.fit(docs, gold)
    from vidlens.tags.runs import ranker_folder

    folder = ranker_folder(ctx.lib())
    tagger.ranker.save(folder)
    print_json({"ranker": ranker, "videos": len(gold), "loss": tagger.ranker.history_[-3:], "saved": str(folder)})


@tags.command("feedback")
@click.argument("log", type=click.Path(exists=True, dir_okay=False))
@click.option("--retrain", "do_retrain", is_flag=True, help="retrain the ranker and report before/after")
@click.option("--ranker", type=click.Choice(["late_fusion", "attention_fusion"]), default="late_fusion")
@click.option("--encoder", default="muse_v3", show_default=True)
@pass_ctx
def tags_feedback(ctx: CliContext, log, do_retrain, ranker, encoder) -> None:
    """Ingest a click log (video–tag or query–video, JSONL/CSV); malformed lines are counted, not fatal."""
    from vidlens.tags import ingest_clicks, retrain

    lib = _tags(ctx)
    report = ingest_clicks(lib, log)
    result: dict[str, Any] = {"clicks": report.to_dict()}
    if do_retrain:
        enc = _encoder(encoder)
        docs = _library_docs(ctx, enc)
        tagger = _tagger(ctx, enc, None, docs)
        gold = {k: set(v) for k, v in lib.video_tags(sources=["gold", "manual"]).items()}
        result["retrain"] = retrain(tagger, docs, gold, ranker=ranker)
        from vidlens.tags.runs import ranker_folder

        tagger.ranker.save(ranker_folder(ctx.lib()))
    print_json(result)


@cli.command("tag")
@click.argument("videos", nargs=-1)
@click.option("--all", "all_videos", is_flag=True, help="every video of the library")
@click.option("--input", "inputs", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="JSONL/JSON records (title, summary, ocr, asr, product, queries) to tag instead")
@click.option("--encoder", default="muse_v3", show_default=True, help="text encoder ('none': text matching only)")
@click.option("--ranker", default=None, help="zero_shot, or a saved ranker folder (default: the library's)")
@click.option("--save", is_flag=True, help="store the result as the videos' 'tagger' tags")
@engine_options
@pass_ctx
def tag_command(ctx: CliContext, videos, all_videos, inputs, encoder, ranker, save, engine_name, address, workers,
                batch_size) -> None:
    """Tag videos: core tags, related tags, scores, and the channels that recalled each (JSON)."""
    from vidlens.tags import VideoDoc
    from vidlens.tags.runs import tag_library

    if not (videos or all_videos or inputs):
        raise click.UsageError("name videos, or give --all or --input FILE")
    engine = make_engine(engine_name, address, workers, batch_size)
    if engine.name != "local":
        if inputs:
            raise click.UsageError("--engine ray tags library videos; tag --input records without it")
        from vidlens.engines.tasks import tag_videos

        with engine:
            print_json(tag_videos(ctx.lib(), engine, ids=list(videos) or None, encoder=encoder, ranker=ranker,
                                  save=save, tags=_tags(ctx)))
        return
    if not inputs:
        print_json(tag_library(ctx.lib(), list(videos) or None, encoder=encoder, ranker=ranker, save=save,
                               tags=_tags(ctx)))
        return
    enc = _encoder(encoder)
    tagger = _tagger(ctx, enc, ranker, [])
    targets = []
    for path in inputs:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        records = json.loads(text) if path.endswith(".json") else [
            json.loads(line) for line in text.splitlines() if line.strip()]
        targets += [VideoDoc.from_record(r, encoder=enc) for r in (records if isinstance(records, list)
                                                                    else [records])]
    print_json([tagger.tag(doc) for doc in targets])
