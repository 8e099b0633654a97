"""Library commands: init, ingest, status, show, extract, embed, export, config, models, demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from vidlens.cli._app import CliContext, cli, err, out, pass_ctx, print_json
from vidlens.cli._engine import engine_options, make_engine
from vidlens.config import config_to_toml


@cli.command()
@pass_ctx
def init(ctx: CliContext) -> None:
    """Create an empty library folder (other commands also create it on first use)."""
    lib = ctx.lib()
    click.echo(f"library ready at {lib.root}")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="print per-item results as JSON lines")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar")
@pass_ctx
def ingest(ctx: CliContext, paths: tuple[str, ...], as_json: bool, quiet: bool) -> None:
    """Take in video files, folders (recursively) and manifests (.jsonl/.json/.csv).

    Exits with status 1 when some items failed; they are recorded and listed by `vidlens status`.
    """
    lib = ctx.lib()
    report = lib.ingest(list(paths), progress=not quiet and not as_json)
    if as_json:
        for r in report.results:
            click.echo(json.dumps(r.to_dict(), ensure_ascii=False))
    else:
        counts = report.counts
        out.print(
            f"ingested {len(report.results)} items: [green]{counts['added']} added[/], "
            f"{counts['updated']} updated, {counts['unchanged']} unchanged, "
            f"[{'red' if counts['failed'] else 'green'}]{counts['failed']} failed[/]"
        )
        for r in report.failed:
            err.print(f"[red]failed[/] {r.item}: {r.message}", markup=True, highlight=False)
        for r in report.results:
            for w in r.warnings:
                err.print(f"[yellow]warning[/] {r.item}: {w}", highlight=False)
    if report.failed:
        sys.exit(1)


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--errors", "n_errors", default=20, show_default=True, help="how many recent errors to list")
@pass_ctx
def status(ctx: CliContext, as_json: bool, n_errors: int) -> None:
    """What is in the library: counts, duration, modalities, recent per-item errors."""
    lib = ctx.lib(create=False)
    info = lib.status()
    errors = lib.errors(limit=n_errors)
    if as_json:
        print_json({**info, "recent_errors": errors})
        return
    table = Table(title=f"vidlens library {info['library']}", show_header=False)
    for key, value in info.items():
        if key in ("library",):
            continue
        if key == "total_duration_s":
            value = f"{value:.1f} s ({value / 3600:.2f} h)"
        table.add_row(key.replace("_", " "), str(value))
    out.print(table)
    if errors:
        et = Table(title=f"recent errors ({info['errors']} in all)")
        for col in ("stage", "item", "message", "attempts"):
            et.add_column(col, overflow="fold")
        for e in errors:
            et.add_row(e["stage"], e["item"], e["message"], str(e["attempts"]))
        out.print(et)


@cli.command()
@click.argument("video_id")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show(ctx: CliContext, video_id: str, as_json: bool) -> None:
    """Everything stored about one video (id or unique id prefix): metadata, transcript, OCR lines,
    visual concepts and feature shapes."""
    lib = ctx.lib(create=False)
    record = lib.get(video_id)
    fs = lib.features(record["id"])
    if as_json:
        print_json({**record, "features": fs.summary(), "texts": fs.texts,
               "results": {k: v for k, v in fs.results.items() if not k.startswith("text.")}})
        return
    table = Table(title=f"video {record['id']}", show_header=False)
    for key, value in record.items():
        if value in (None, [], {}):
            continue
        table.add_row(key, json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(value))
    out.print(table)
    if not fs.results:
        out.print("[dim]no features yet: run `vidlens extract`[/]")
        return
    ft = Table(title="features")
    for col in ("feature", "status", "shape / note"):
        ft.add_column(col)
    for name, summary in fs.summary().items():
        note = fs.results[name].get("message") if summary == "absent" else json.dumps(summary)
        ft.add_row(name, "ok" if summary != "absent" else "absent", note or "")
    out.print(ft)
    asr = fs.results.get("asr", {})
    if asr.get("status") == "ok":
        out.print(f"[bold]transcript[/] ({asr.get('language')}, p={asr.get('language_probability', 0):.2f})")
        for seg in asr.get("segments", []):
            out.print(f"  [{seg['start']:7.2f}–{seg['end']:7.2f}] {seg['text']}", highlight=False)
    ocr = fs.results.get("ocr", {})
    if ocr.get("status") == "ok":
        out.print("[bold]on-screen text[/]")
        for line in ocr.get("lines", []):
            out.print(f"  [{line['first_seen']:7.2f}–{line['last_seen']:7.2f}] {line['text']}", highlight=False)
    concepts = fs.results.get("frames", {}).get("concepts")
    if concepts:
        out.print("[bold]visual concepts[/] " + ", ".join(f"{c['name']} {c['score']:.2f}" for c in concepts[:10]))


@cli.command()
@click.option("-m", "--modalities", default=None,
              help="comma-separated: frames,cover,audio,ocr,asr,text (default: the configured list)")
@click.option("--id", "ids", multiple=True, help="only these videos (repeatable; unique id prefixes work)")
@click.option("--force", is_flag=True, help="recompute features that are up to date")
@click.option("--json", "as_json", is_flag=True, help="print the run report as JSON")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar")
@engine_options
@pass_ctx
def extract(ctx: CliContext, modalities: str | None, ids: tuple[str, ...], force: bool, as_json: bool,
            quiet: bool, engine_name: str, address: str | None, workers: int | None, batch_size: int | None
            ) -> None:
    """Compute features with the pretrained encoders; resumable and idempotent.

    With --engine ray the decoding and encoders run in Ray workers (each loads the models once); this
    process stores the results, so a re-run skips what either engine finished.

    Exits with status 1 when some features failed; they are recorded and listed by `vidlens status`.
    """
    lib = ctx.lib(create=False)
    mods = [m.strip() for m in modalities.split(",") if m.strip()] if modalities else None
    with make_engine(engine_name, address, workers, batch_size) as engine:
        report = lib.extract(mods, ids=list(ids) or None, force=force, progress=not quiet and not as_json,
                             engine=engine)
    summary = report.to_dict()
    if as_json:
        print_json(summary)
    else:
        table = Table(title=f"extracted {report.videos} videos in {report.wall_seconds:.1f} s")
        for col in ("feature", "ok", "absent", "failed", "seconds"):
            table.add_column(col, justify="right" if col != "feature" else "left")
        for name, c in summary["features"].items():
            table.add_row(name, str(c.get("ok", 0)), str(c.get("absent", 0)), str(c.get("failed", 0)),
                          f"{c['seconds']:.2f}")
        table.add_row("decode", "", "", "", f"{summary['decode_seconds']:.2f}")
        out.print(table)
        for e in report.errors[:20]:
            err.print(f"[red]failed[/] {e['video_id']} {e['feature']}: {e['message']}", highlight=False)
    if report.errors:
        sys.exit(1)


@cli.command()
@click.option("--space", type=click.Choice(["text", "video", "all"]), default="all", show_default=True,
              help="which index: text-side vectors, fused video vectors, or both")
@click.option("--rebuild", is_flag=True, help="rebuild the indexes from stored features even when up to date")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@engine_options
@pass_ctx
def embed(ctx: CliContext, space: str, rebuild: bool, as_json: bool, engine_name: str, address: str | None,
          workers: int | None, batch_size: int | None) -> None:
    """Refresh the text vectors (titles, summaries, OCR/ASR text changed since the last run) on the
    engine, then bring the vector indexes up to date from the stored features.

    The index backend is the library's [index] setting (FAISS files in the library by default, or a
    Milvus collection); this process writes the index.
    """
    from vidlens.engines.tasks import embed_library

    lib = ctx.lib(create=False)
    spaces = ["text", "video"] if space == "all" else [space]
    with make_engine(engine_name, address, workers, batch_size) as engine:
        report = embed_library(lib, engine, spaces=spaces, rebuild=rebuild)
    if as_json:
        print_json(report)
        return
    text = report["text_vectors"]
    out.print(f"text vectors: {text['videos']} videos refreshed in {text['wall_seconds']:.1f} s")
    for r in report["indexes"]:
        for m in r["messages"]:
            err.print(f"[yellow]{m}[/]", highlight=False)
        out.print(f"{r['space']}: {r['items']} videos, {r['dim']}-d, {r.get('backend', '')}")
    if text["errors"]:
        sys.exit(1)


@cli.group()
def models() -> None:
    """Derived model files (ONNX export of the frame model, the joined Whisper model)."""


@models.command("build")
@click.option("--force", is_flag=True, help="rebuild even if the cached files are intact")
def models_build(force: bool) -> None:
    """Build (or verify) the derived model files in the cache folder; rebuilds corrupt ones."""
    from vidlens.encoders.assets import asset_status, build_assets

    build_assets(force=force, progress=True)
    for row in asset_status():
        out.print(row)


@models.command("status")
def models_status() -> None:
    """Show the derived model files, their sizes and whether their checksums hold."""
    from vidlens.encoders.assets import asset_status

    for row in asset_status():
        out.print(row)


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="file to write (default: stdout)")
@pass_ctx
def export(ctx: CliContext, output: Path | None) -> None:
    """Write every video's record as JSON lines."""
    lib = ctx.lib(create=False)
    if output is None:
        lib.export(sys.stdout)
        return
    tmp = output.with_name(output.name + ".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        n = lib.export(fh)
    tmp.replace(output)
    err.print(f"wrote {n} videos to {output}")


@cli.command("config")
@pass_ctx
def show_config(ctx: CliContext) -> None:
    """Print the effective configuration as TOML."""
    click.echo(config_to_toml(ctx.lib(create=False).config), nl=False)


@cli.command()
@click.option("--samples", "samples_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="where to write the generated sample clips (default: LIBRARY/../vidlens-samples)")
@click.option("-n", "n_clips", default=6, show_default=True, help="how many sample clips")
@pass_ctx
def demo(ctx: CliContext, samples_dir: Path | None, n_clips: int) -> None:
    """The main job on generated sample clips: make them, ingest them, print what was found."""
    from vidlens.testing.clips import make_sample_set, require_tools

    require_tools()
    lib = ctx.lib()
    samples = samples_dir or lib.root.resolve().parent / "vidlens-samples"
    samples.mkdir(parents=True, exist_ok=True)
    rows = make_sample_set(samples, n=n_clips)
    manifest = samples / "manifest.jsonl"
    with open(manifest, "w", encoding="utf-8") as fh:
        for row in rows:
            rel = dict(row, path=str(Path(row["path"]).relative_to(samples)))
            fh.write(json.dumps(rel, ensure_ascii=False) + "\n")
    report = lib.ingest([manifest], progress=True)
    out.print(f"[bold]ingested[/] {report.counts}")
    extracted = lib.extract(progress=True)
    out.print(f"[bold]extracted[/] features of {extracted.videos} videos in {extracted.wall_seconds:.1f} s")
    ids = [r.video_id for r in report.results if r.video_id is not None]
    # Zero-shot over the shipped taxonomy: what `vidlens classify` gives before any training.
    categories = {c["id"]: c for c in lib.classify(ids, zero_shot=True, top_k=1)} if ids else {}
    table = Table(title="what vidlens found", show_lines=True)
    for col in ("id", "title", "media", "speech (ASR)", "on-screen text (OCR)", "visual concepts",
                "category (zero-shot)"):
        table.add_column(col, overflow="fold")
    for r in report.results:
        if r.video_id is None:
            continue
        v = lib.get(r.video_id)
        fs = lib.features(r.video_id)
        media = f"{v['container']} {v['duration']:.1f} s"
        media += f"\n{v['width']}×{v['height']} {v['video_codec']}" if v["has_video"] else "\nno video"
        media += f"\n{v['audio_codec']}" if v["has_audio"] else "\nno audio"
        asr = fs.results.get("asr", {})
        speech = f"[{asr.get('language')}] {fs.texts['asr']}" if fs.texts["asr"] else asr.get("message") or "-"
        c = categories.get(r.video_id, {})
        category = (f"{c['l1']} → {c['l2']}\n({c['confidence']['l2']:.2f})" if "l1" in c
                    else c.get("error", "-"))
        table.add_row(v["id"][:10], v["title"] or "", media, speech, fs.texts["ocr"] or "-",
                      fs.texts["concepts"] or "-", category)
    out.print(table)
    if extracted.errors:
        for e in extracted.errors:
            err.print(f"[red]failed[/] {e['video_id']} {e['feature']}: {e['message']}", highlight=False)
    if report.failed or extracted.errors:
        sys.exit(1)
