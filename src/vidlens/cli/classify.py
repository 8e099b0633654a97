"""Classification commands: train, evaluate, classify, add-category."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click
from rich.table import Table

from vidlens.cli._app import CliContext, cli, err, out, pass_ctx, print_json
from vidlens.cli._engine import engine_options, make_engine


def _lib_or_none(ctx: CliContext):
    try:
        return ctx.lib(create=False)
    except Exception:  # not a library: fine for text-only data and explicit model folders
        return None


def _load_classifier(ctx: CliContext, model: str | None, zero_shot: bool, taxonomy: str | None):
    """A trained model (named, or the newest in the library) or, without one, a zero-shot classifier."""
    from vidlens.classify.runs import find_model, zero_shot_for_library
    from vidlens.classify.trained import TrainedClassifier
    from vidlens.taxonomy import Taxonomy

    lib = _lib_or_none(ctx)
    if not zero_shot:
        folder = find_model(model, lib)
        if folder is not None:
            return TrainedClassifier.load(folder), lib
        if model is None:
            err.print("no trained classifier in this library: classifying zero-shot from category names",
                      highlight=False)
    if lib is None:
        lib = ctx.lib(create=False)
    tax = Taxonomy.load(taxonomy) if taxonomy else None
    return zero_shot_for_library(lib, tax), lib


@cli.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="training config (.toml/.yaml/.json): data, model components by name, training loop")
@click.option("--name", default=None, help="model name (default: the config's name)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="model folder (default LIBRARY/models/NAME)")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar or per-epoch lines")
@click.option("--json", "as_json", is_flag=True, help="print the metrics card as JSON")
@pass_ctx
def train(ctx: CliContext, config_path: str, name: str | None, out_dir: str | None, quiet: bool,
          as_json: bool) -> None:
    """Train a classifier from a config; saves config, weights, taxonomy, split and metrics card."""
    from vidlens.classify.config import TrainConfig
    from vidlens.classify.runs import train_from_config

    config = TrainConfig.load(config_path)
    if name:
        config = config.model_copy(update={"name": name})
    lib = ctx.lib(create=config.data.source == "rows") if config.data.source == "library" or out_dir is None else None
    log = None if quiet or as_json else (lambda line: err.print(line, highlight=False))
    classifier, folder = train_from_config(config, lib, out_dir, progress=not quiet and not as_json, log=log)
    card = classifier.metrics
    if as_json:
        print_json({"model": str(folder), **{k: v for k, v in card.items() if k != "history"}})
        return
    out.print(f"saved [bold]{classifier.name}[/] to {folder}")
    table = Table(show_header=True)
    table.add_column("split")
    for col in ("n", "l1_accuracy", "l2_accuracy", "l2_macro_f1", "mismatch_rate"):
        table.add_column(col)
    for split in ("val", "test"):
        m = card.get(split)
        if m:
            table.add_row(split, *(f"{m.get(c, 0):.4f}" if c != "n" else str(m.get(c, 0))
                                   for c in ("n", "l1_accuracy", "l2_accuracy", "l2_macro_f1", "mismatch_rate")))
    out.print(table)
    t = card["training"]
    out.print(f"{t['epochs_run']} epochs (best {t['best_epoch']}) in {t['seconds']:.1f} s on {t['train_items']} items")


@cli.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="training config (.toml/.yaml/.json), as for `vidlens train`")
@click.option("--folds", default=5, show_default=True, help="number of stratified folds")
@click.option("--seed", default=None, type=int, help="fold assignment seed (default: the config's split seed)")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="HTML report path (default LIBRARY/reports/crossval-NAME-KFOLD-TIME.html)")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar or per-epoch lines")
@click.option("--json", "as_json", is_flag=True, help="print the folds and their summary as JSON")
@pass_ctx
def crossval(ctx: CliContext, config_path: str, folds: int, seed: int | None, report_path: str | None, quiet: bool,
             as_json: bool) -> None:
    """Cross-validate a training config: train it on each of K stratified folds, report each fold's test
    metrics, their mean and spread, and the pooled out-of-fold predictions (per class, confusion matrices).
    Measures the config; saves no model (`vidlens train` does)."""
    from vidlens.classify.config import TrainConfig
    from vidlens.classify.runs import cross_validate_config, default_report_path

    config = TrainConfig.load(config_path)
    lib = ctx.lib(create=config.data.source == "rows")  # as `vidlens train` does: the report goes there
    report_path = report_path or str(default_report_path(lib, config.name, f"{folds}fold", kind="crossval"))
    log = None if quiet or as_json else (lambda line: err.print(line, highlight=False))
    cv, path = cross_validate_config(config, lib, folds, seed=seed, report=report_path,
                                     progress=not quiet and not as_json, log=log)
    if as_json:
        print_json({"report": str(path) if path else None, **cv.to_dict()})
        return
    shown = {"l1_accuracy": "L1 acc", "l2_accuracy": "L2 acc", "l2_macro_f1": "L2 macro-F1"}
    table = Table(title=f"{cv.name}: {len(cv.folds)}-fold cross-validation (seed {cv.seed}), test part of each fold")
    for col in ("fold", "train", "test", "best epoch", *shown.values()):
        table.add_column(col)
    for f in cv.folds:
        table.add_row(str(f["fold"]), str(f["train"]), str(f["test"]), str(f["best_epoch"]),
                      *(f"{f['metrics'][m]:.4f}" for m in shown))
    out.print(table)
    out.print("mean ± std over the folds: " + ", ".join(f"{label} {cv.mean[m]:.4f} ± {cv.std[m]:.4f}"
                                                         for m, label in shown.items()), highlight=False)
    if cv.pooled is not None:
        m = cv.pooled.metrics
        out.print(f"pooled out-of-fold ({m['n']} items): L1 {m['l1_accuracy']:.4f}, L2 {m['l2_accuracy']:.4f}, "
                  f"L2 macro-F1 {m['l2_macro_f1']:.4f}", highlight=False)
        out.print(f"report: {path}")
    else:
        out.print(cv.note)


@cli.command()
@click.option("--model", "model", default=None, help="model name in the library or model folder (default: newest)")
@click.option("--zero-shot", is_flag=True, help="evaluate the zero-shot classifier instead")
@click.option("--taxonomy", type=click.Path(dir_okay=False), default=None, help="taxonomy for --zero-shot")
@click.option("--split", default="test", show_default=True, help="test, val, train or all")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="HTML report path (default LIBRARY/reports/eval-NAME-SPLIT-TIME.html)")
@click.option("--no-ablation", is_flag=True, help="skip the modality ablation")
@click.option("--json", "as_json", is_flag=True, help="print metrics as JSON")
@pass_ctx
def evaluate(ctx: CliContext, model: str | None, zero_shot: bool, taxonomy: str | None, split: str,
             report_path: str | None, no_ablation: bool, as_json: bool) -> None:
    """Measure a classifier on labelled data and write an HTML report (plots embedded)."""
    from vidlens.classify.runs import default_report_path, evaluate_model, model_dataset
    from vidlens.classify.trained import TrainedClassifier

    classifier, lib = _load_classifier(ctx, model, zero_shot, taxonomy)
    if isinstance(classifier, TrainedClassifier):
        dataset = model_dataset(classifier, lib)
    else:
        dataset = classifier.dataset_from_library(lib, require_labels=True)
        split = "all"
    if report_path is None:
        if lib is None:
            report_path = str(Path("reports") / f"eval-{classifier.name}-{split}.html")
        else:
            report_path = str(default_report_path(lib, classifier.name, split))
    ev, path = evaluate_model(classifier, dataset, split=split, report=report_path, ablation=not no_ablation)
    if as_json:
        print_json({"report": str(path), **ev.to_dict()})
        return
    table = Table(title=f"{ev.name} ({ev.method}) on {ev.split}", show_header=False)
    for k, v in ev.metrics.items():
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    out.print(table)
    if ev.ablation:
        at = Table(title="modality contribution")
        for col in ("modality", "videos", "accuracy", "without", "only", "drop", "attention"):
            at.add_column(col)
        for m, v in ev.ablation.items():
            at.add_row(m, str(v["videos"]), f"{v['accuracy']:.4f}", f"{v['without']:.4f}", f"{v['only']:.4f}",
                       f"{v['drop']:+.4f}", f"{(ev.attention or {}).get(m, float('nan')):.4f}")
        out.print(at)
    out.print(f"report: {path}")


@cli.command()
@click.argument("model_a")
@click.argument("model_b")
@click.option("--split", default="test", show_default=True, help="test, val, train or all")
@click.option("--resamples", default=2000, show_default=True, help="bootstrap resamples")
@click.option("--confidence", default=0.95, show_default=True, help="interval level")
@click.option("--seed", default=0, show_default=True, help="bootstrap seed")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="HTML report path (default LIBRARY/reports/compare-A-vs-B-SPLIT-TIME.html)")
@click.option("--json", "as_json", is_flag=True, help="print the comparison as JSON")
@click.option("--rows", "rows_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="compare two zero-shot trees on this labelled rows file (.jsonl/.json/.csv)")
@click.option("--labels", default="l1,l2", show_default=True, metavar="L1COL,L2COL",
              help="with --rows: the label columns")
@click.option("--field", "fields", multiple=True, metavar="NAME=COL[,COL]",
              help="with --rows: a text field and its columns (default title=title, summary=summary,desc,description)")
@click.option("--id-field", default="id", show_default=True, metavar="COL", help="with --rows: the id column")
@pass_ctx
def compare(ctx: CliContext, model_a: str, model_b: str, split: str, resamples: int, confidence: float, seed: int,
            report_path: str | None, as_json: bool, rows_path: str | None, labels: str, fields: tuple[str, ...],
            id_field: str) -> None:
    """Compare two classifiers on the labelled items both are scored on: accuracies and macro-F1 with
    bootstrap intervals, the paired difference, McNemar's test, per-class F1 and an HTML report.

    MODEL_A and MODEL_B are model names or folders, or zero-shot (zero-shot:TAXONOMY.yaml for another tree).
    With --rows, two zero-shot trees on a labelled rows file; zero-shot:from-data is the rows' own label
    names, e.g. `compare zero-shot:from-data zero-shot:curated.yaml --rows labelled.jsonl`."""
    from vidlens.classify.runs import compare_models, default_report_path, is_zero_shot

    lib = _lib_or_none(ctx)
    if report_path is None:
        stem = "-vs-".join(re.sub(r"[^\w.-]+", "_", m if is_zero_shot(m) else Path(m).name or m)
                           for m in (model_a, model_b))
        scope = "all" if rows_path else split  # a rows file is compared on all its labelled rows
        report_path = str(default_report_path(lib, stem, scope, kind="compare") if lib is not None
                          else Path("reports") / f"compare-{stem}-{scope}.html")
    label_columns = [c.strip() for c in labels.split(",") if c.strip()]
    if len(label_columns) != 2:
        raise click.BadParameter(f"{labels!r}: give the L1 and the L2 column, e.g. l1,l2", param_hint="--labels")
    c, path = compare_models([model_a, model_b], lib, split=split, resamples=resamples, confidence=confidence,
                             seed=seed, report=report_path, rows=rows_path, labels=label_columns,
                             fields=_parse_fields(fields) or None, id_field=id_field)
    if as_json:
        print_json({"report": str(path), **c.to_dict()})
        return
    rows = c.summary_rows()
    table = Table(title=f"{c.split}: {c.n} items, {100 * c.confidence:.0f}% bootstrap intervals")
    for col in rows[0]:
        table.add_column(col)
    for row in rows:
        table.add_row(*row.values())
    out.print(table)
    out.print(c.verdict(), highlight=False)
    out.print(f"report: {path}")


def _parse_fields(values: tuple[str, ...]) -> dict[str, list[str]]:
    fields = {}
    for v in values:
        name, sep, columns = v.partition("=")
        if not sep or not name.strip() or not columns.strip():
            raise click.BadParameter(f"{v!r}: use NAME=COLUMN[,COLUMN], e.g. summary=desc,dynamic",
                                     param_hint="--field")
        fields[name.strip()] = [c.strip() for c in columns.split(",") if c.strip()]
    return fields


@cli.command(name="classify")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--model", "model", default=None, help="model name or folder (default: newest; none: zero-shot)")
@click.option("--zero-shot", is_flag=True, help="classify from category names, without a trained model")
@click.option("--taxonomy", type=click.Path(dir_okay=False), default=None, help="taxonomy for zero-shot")
@click.option("--id", "ids", multiple=True, help="only this video (id or prefix); repeatable")
@click.option("--top-k", default=5, show_default=True, help="categories listed per video")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-", help="JSON lines file")
@click.option("--rows", "rows_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="classify text-only rows (.jsonl/.json/.csv: titles, summaries) instead of videos")
@click.option("--field", "fields", multiple=True, metavar="NAME=COL[,COL]",
              help="with --rows: a text field and the columns joined as its text (default: the model's "
                   "training columns; zero-shot: title=title and summary=summary,desc,description)")
@click.option("--id-field", default=None, metavar="COL",
              help="with --rows: the column of row ids (default: the model's; zero-shot: id)")
@engine_options
@pass_ctx
def classify_cmd(ctx: CliContext, paths: tuple[str, ...], model: str | None, zero_shot: bool, taxonomy: str | None,
                 ids: tuple[str, ...], top_k: int, output, rows_path: str | None, fields: tuple[str, ...],
                 id_field: str | None, engine_name: str, address: str | None, workers: int | None,
                 batch_size: int | None) -> None:
    """Categories of the library's videos (or of PATHS, ingested and extracted first, or of text --rows) as
    JSON lines: id, l1, l2, confidences, top-k and the modalities present."""
    from vidlens.classify.runs import classify_files, classify_library, classify_rows, find_model
    from vidlens.classify.trained import TrainedClassifier
    from vidlens.taxonomy import Taxonomy

    engine = make_engine(engine_name, address, workers, batch_size)
    if (fields or id_field) and not rows_path:
        raise click.UsageError("--field and --id-field go with --rows")
    if rows_path:
        if paths or ids or engine.name != "local":
            raise click.UsageError("--rows classifies a rows file on its own: no PATHS, --id or --engine ray")
        lib = _lib_or_none(ctx)
        folder = None if zero_shot else find_model(model, lib)
        classifier = TrainedClassifier.load(folder) if folder is not None else None
        records = classify_rows(rows_path, classifier, taxonomy=Taxonomy.load(taxonomy) if taxonomy else None,
                                lib=lib, fields=_parse_fields(fields) or None, id_field=id_field, top_k=top_k)
    elif engine.name != "local":
        if paths:
            raise click.UsageError("--engine ray classifies library videos: run `vidlens ingest PATHS` and "
                                   "`vidlens extract --engine ray` first, then classify without PATHS")
        from vidlens.engines.tasks import classify_videos

        classifier, lib = _load_classifier(ctx, model, zero_shot, taxonomy)
        folder = find_model(model, lib) if isinstance(classifier, TrainedClassifier) else None
        with engine:
            records = classify_videos(lib, classifier, engine, model_folder=folder, taxonomy=taxonomy,
                                      ids=list(ids) or None, top_k=top_k)
    elif paths:
        lib = ctx.lib(create=True)
        folder = None if zero_shot else find_model(model, lib)
        classifier = TrainedClassifier.load(folder) if folder is not None else None
        tax = Taxonomy.load(taxonomy) if taxonomy else None
        records = classify_files(lib, list(paths), classifier, taxonomy=tax, top_k=top_k,
                                 progress=sys.stderr.isatty())
    else:
        classifier, lib = _load_classifier(ctx, model, zero_shot, taxonomy)
        records = classify_library(lib, classifier, ids=list(ids) or None, top_k=top_k)
    for r in records:
        output.write(json.dumps(r, ensure_ascii=False) + "\n")
    if any("error" in r for r in records):
        sys.exit(1)


@cli.command(name="add-category")
@click.option("--model", "model", default=None, help="model name or folder (default: newest)")
@click.option("--name", "category", required=True, help="the new level-2 category")
@click.option("--parent", required=True, help="its level-1 category (new or existing)")
@click.option("--example", "examples", multiple=True,
              help="id of an example video; default: library videos labelled with the new category")
@click.option("--description", default="", help="one sentence describing it")
@click.option("--alias", "aliases", multiple=True, help="another name; repeatable")
@click.option("--save-as", default=None, help="name of the extended model (default: replace the model)")
@pass_ctx
def add_category_cmd(ctx: CliContext, model: str | None, category: str, parent: str, examples: tuple[str, ...],
                     description: str, aliases: tuple[str, ...], save_as: str | None) -> None:
    """Teach a trained model a new level-2 category from a few example videos, without retraining it."""
    from vidlens.classify.dataset import DatasetError
    from vidlens.classify.extend import add_category
    from vidlens.classify.runs import find_model
    from vidlens.classify.trained import TrainedClassifier

    lib = ctx.lib(create=False)
    folder = find_model(model, lib)
    if folder is None:
        raise click.UsageError("no trained classifier in this library; train one with `vidlens train` first")
    classifier = TrainedClassifier.load(folder)
    if examples:
        with lib.store.session() as s:
            example_ids = [lib.store.resolve_id(s, ref) for ref in examples]
    else:
        wanted = {category.casefold(), *(a.casefold() for a in aliases)}
        example_ids = [v["id"] for v in lib.videos()
                       if any(str(x).strip().casefold() in wanted for x in v.get("labels") or [])]
    if not example_ids:
        raise DatasetError(f"no example videos for {category!r}: pass --example IDs or label some videos with it")
    example_set = classifier.dataset_from_library(lib, ids=example_ids)
    chosen = set(example_ids)
    train_ids = [i for i in classifier.splits.get("train", []) if i not in chosen]
    background = None
    if train_ids:
        from vidlens.classify.sources import ModalitySource, dataset_from_library

        sources = [ModalitySource(m, s["feature"], s["kind"]) for m, s in classifier.sources.items()]
        background = dataset_from_library(lib, sources, classifier.taxonomy, ids=train_ids, skip_unusable=True)
    extended = add_category(classifier, category, parent, example_set, background, description=description,
                            aliases=aliases)
    target = folder if save_as is None else folder.parent / save_as
    if save_as:
        extended.name = save_as
    extended.save(target)
    out.print(f"added {category!r} under {parent!r} from {len(example_set)} examples; saved to {target}")


__all__ = ["add_category_cmd", "classify_cmd", "evaluate", "train"]
