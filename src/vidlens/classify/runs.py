"""End-to-end calls behind ``vidlens train``, ``vidlens evaluate`` and ``vidlens classify``.

Each is a plain function over the library and the classify building blocks; the CLI only parses
options and prints.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vidlens.classify.comparison import Comparison, compare_predictions
from vidlens.classify.config import TrainConfig
from vidlens.classify.crossval import CrossValidation, cross_validate
from vidlens.classify.dataset import ClassificationDataset, DatasetError, make_splits
from vidlens.classify.evaluation import Evaluation, evaluate
from vidlens.classify.metrics import classification_metrics
from vidlens.classify.report import write_comparison_report, write_report
from vidlens.classify.sources import (
    ModalitySource,
    TextEmbedder,
    dataset_from_library,
    dataset_from_rows,
    read_rows,
    taxonomy_from_rows,
)
from vidlens.classify.trained import CLASSIFIER_FILE, TrainedClassifier
from vidlens.classify.trainer import fit
from vidlens.classify.zeroshot import ZeroShotClassifier, embedder_for_library
from vidlens.errors import ConfigError, NotFoundError
from vidlens.taxonomy import Taxonomy, library_taxonomy

if TYPE_CHECKING:
    from vidlens.library import Library

ZERO_SHOT = "zero-shot"  # in place of a model name: classify from the category texts


def load_taxonomy(spec: str, rows: Sequence[dict] | None = None, labels: Sequence[str] | None = None,
                  lib: Library | None = None) -> Taxonomy:
    """``"default"`` (the library's own taxonomy when ``lib`` has one, else the shipped one), ``"from-data"``
    (the label pairs in ``rows``) or a taxonomy file."""
    if spec == "default":
        return default_taxonomy(lib)
    if spec == "from-data":
        if rows is None or not labels:
            raise ConfigError("data.taxonomy: 'from-data' needs rows and label columns")
        return taxonomy_from_rows(rows, labels)
    return Taxonomy.load(spec)


def build_dataset(
    config: TrainConfig,
    lib: Library | None = None,
    embedder: TextEmbedder | None = None,
    progress: bool = False,
) -> ClassificationDataset:
    """The labelled dataset a training config describes.

    Args:
        config: the config (``data`` section used).
        lib: the library, for source ``library``.
        embedder: text encoder for source ``rows`` (default: ``data.text_encoder`` with ``data.cache_dir``).
        progress: progress bar while embedding text rows.
    """
    data = config.data
    if data.source == "library":
        if lib is None:
            raise ConfigError("data.source is 'library' but no library was given")
        taxonomy = load_taxonomy(data.taxonomy, lib=lib)
        sources = [ModalitySource(m.name, m.feature, m.kind) for m in config.model.modalities]
        return dataset_from_library(lib, sources, taxonomy, skip_unusable=data.skip_unusable)
    rows = read_rows(data.path)
    taxonomy = load_taxonomy(data.taxonomy, rows, data.labels)
    fields = data.fields or {m.name: [m.name] for m in config.model.modalities}
    text_branch = any((m.kind or "text") == "text" for m in config.model.modalities)
    embedder = embedder or TextEmbedder(data.text_encoder, cache_dir=data.cache_dir)
    return dataset_from_rows(
        rows,
        taxonomy,
        fields=fields,
        labels=data.labels,
        embedder=embedder,
        id_field=data.id_field,
        text_branch=text_branch,
        skip_bad_labels=data.skip_bad_labels,
        name=Path(data.path).stem,
        progress=progress,
    )


def train_from_config(
    config: TrainConfig,
    lib: Library | None = None,
    out: str | os.PathLike | None = None,
    *,
    embedder: TextEmbedder | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> tuple[TrainedClassifier, Path]:
    """Build the data, split it (fixed, seeded), train, measure on validation and test, save.

    Args:
        config: the training config.
        lib: the library (needed for source 'library'; gives the default output folder).
        out: model folder (default ``LIBRARY/models/<config.name>``).
        embedder: text encoder for source 'rows'.
        progress: progress bars.
        log: one line per epoch.

    Returns:
        The classifier and the folder it was saved to.
    """
    if out is None:
        if lib is None:
            raise ConfigError("no output folder: give a library or an output folder")
        out = lib.folder("models") / config.name
    dataset, embedder = _training_data(config, lib, embedder, progress, log)
    s = config.data.split
    splits = make_splits(dataset.l2, val=s.val, test=s.test, seed=s.seed)
    result = fit(config, dataset, splits, progress=progress, log=log, embedder=embedder)
    classifier = result.classifier
    card = dict(classifier.metrics)
    card["data"] = dataset.describe()
    for split in ("val", "test"):
        if len(splits[split]):
            sub = dataset.subset(splits[split])
            pred = classifier.predict(sub, config.train.eval_batch_size)
            card[split] = classification_metrics(pred, sub.l2, sub.multi_hot() if any(sub.extra_l2) else None)
    classifier.metrics = card
    folder = classifier.save(out)
    return classifier, folder


def _training_data(
    config: TrainConfig, lib: Library | None, embedder: TextEmbedder | None, progress: bool,
    log: Callable[[str], None] | None,
) -> tuple[ClassificationDataset, TextEmbedder | None]:
    """The labelled data of a config (rows it leaves out are logged) and the text encoder training uses."""
    if embedder is None and config.data.source == "rows":
        # one encoder embeds the rows and, for train.zero_shot_blend, the category descriptions
        embedder = TextEmbedder(config.data.text_encoder, cache_dir=config.data.cache_dir)
    dataset = build_dataset(config, lib, embedder, progress)
    skipped = dataset.source.get("skipped_bad_labels", 0)
    if skipped and log is not None:
        log(f"left out {skipped} row(s) whose labels are not in the taxonomy (data.skip_bad_labels), e.g. "
            + "; ".join(dataset.source.get("skipped_examples", [])))
    labelled = dataset.labelled
    if labelled.sum() < 2:
        raise DatasetError(f"only {int(labelled.sum())} labelled item(s); training needs more")
    if config.train.zero_shot_blend and embedder is None and lib is not None:
        embedder = embedder_for_library(lib)  # source 'library': the encoder that made its text features
    return dataset, embedder


def cross_validate_config(
    config: TrainConfig,
    lib: Library | None = None,
    folds: int = 5,
    *,
    seed: int | None = None,
    report: str | os.PathLike | None = None,
    embedder: TextEmbedder | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> tuple[CrossValidation, Path | None]:
    """k-fold cross-validation of a training config (see :mod:`vidlens.classify.crossval`); nothing is saved
    but the report.

    Args:
        config: the training config.
        lib: the library (source 'library').
        folds: number of folds.
        seed: fold assignment seed (default the config's split seed).
        report: write the HTML report of the pooled out-of-fold predictions (and its JSON) here.
        embedder, progress, log: as for :func:`train_from_config`.
    """
    dataset, embedder = _training_data(config, lib, embedder, progress, log)
    cv = cross_validate(config, dataset, folds, seed=seed, embedder=embedder, progress=progress, log=log)
    path = None
    if report is not None and cv.pooled is not None:
        extra = {"data": dataset.describe(), "folds": cv.folds, "mean": cv.mean, "std": cv.std, "seed": cv.seed}
        path = write_report(cv.pooled, report, extra=extra, folds=cv.folds)
    return cv, path


# ---- finding and loading models ------------------------------------------------------------------


def find_model(ref: str | None, lib: Library | None) -> Path | None:
    """A model folder: ``ref`` as a path, or a name under ``LIBRARY/models``; without ``ref`` the most
    recently saved model of the library, or None when it has none.

    Raises:
        NotFoundError: ``ref`` names no model.
    """
    if ref:
        path = Path(ref)
        if (path / CLASSIFIER_FILE).is_file():
            return path
        if lib is not None and (lib.root / "models" / ref / CLASSIFIER_FILE).is_file():
            return lib.root / "models" / ref
        known = ", ".join(list_models(lib)) if lib is not None else ""
        raise NotFoundError(f"no trained classifier {ref!r}" + (f"; the library has: {known}" if known else ""))
    if lib is None:
        return None
    folders = [lib.root / "models" / n for n in list_models(lib)]
    if not folders:
        return None
    return max(folders, key=lambda p: (p / CLASSIFIER_FILE).stat().st_mtime)


def list_models(lib: Library) -> list[str]:
    """Names of the trained classifiers in a library."""
    root = lib.root / "models"
    return sorted(p.name for p in root.iterdir() if (p / CLASSIFIER_FILE).is_file()) if root.is_dir() else []


def default_taxonomy(lib: Library | None, taxonomy: Taxonomy | None = None) -> Taxonomy:
    """The tree to use where none is named (zero-shot, ``data.taxonomy = "default"``): ``taxonomy`` if given,
    else the library's own (``LIBRARY/taxonomy.yaml``, edited by ``vidlens taxonomy``), else the shipped one."""
    if taxonomy is not None:
        return taxonomy
    return library_taxonomy(lib.root)[0] if lib is not None else Taxonomy.default()


def zero_shot_for_library(lib: Library, taxonomy: Taxonomy | None = None) -> ZeroShotClassifier:
    """A zero-shot classifier over the library's text features and :func:`default_taxonomy`'s tree."""
    return ZeroShotClassifier(default_taxonomy(lib, taxonomy), embedder_for_library(lib))


# ---- evaluation ----------------------------------------------------------------------------------


def model_dataset(
    classifier: TrainedClassifier, lib: Library | None, embedder: TextEmbedder | None = None
) -> ClassificationDataset:
    """The labelled data a trained classifier was trained on (its training config's data section)."""
    if classifier.train_config is None:
        raise ConfigError(f"model {classifier.name!r} has no training config; pass the data explicitly")
    config = TrainConfig.from_dict(classifier.train_config, where=f"model {classifier.name} config")
    if config.data.source == "library":
        if lib is None:
            raise ConfigError("this model was trained on a library; open it (-L LIBRARY)")
        return classifier.dataset_from_library(lib, require_labels=True, skip_unusable=config.data.skip_unusable)
    rows = read_rows(config.data.path)
    fields, embedder, text_branch = _row_inputs(classifier, config, embedder)
    return dataset_from_rows(
        rows, classifier.taxonomy, fields=fields, labels=config.data.labels, embedder=embedder,
        id_field=config.data.id_field, text_branch=text_branch, skip_bad_labels=config.data.skip_bad_labels,
        name=Path(config.data.path).stem,
    )


def _row_inputs(classifier: TrainedClassifier, config: TrainConfig, embedder: TextEmbedder | None
                ) -> tuple[dict[str, list[str]], TextEmbedder, bool]:
    """How a model trained on rows reads rows: columns per modality, the text encoder, n-gram texts or not."""
    fields = config.data.fields or {m: [m] for m in classifier.sources}
    embedder = embedder or TextEmbedder(config.data.text_encoder, cache_dir=config.data.cache_dir)
    return fields, embedder, any(s["kind"] == "text" for s in classifier.sources.values())


def evaluate_model(
    classifier: TrainedClassifier | ZeroShotClassifier,
    dataset: ClassificationDataset,
    *,
    split: str = "test",
    report: str | os.PathLike | None = None,
    ablation: bool = True,
) -> tuple[Evaluation, Path | None]:
    """Evaluate on a split of ``dataset`` (the model's saved split by ids; ``all`` for every labelled
    item) and optionally write the HTML report.

    Raises:
        DatasetError: the split is unknown or empty.
    """
    dataset = split_dataset(classifier, dataset, split)
    if isinstance(classifier, TrainedClassifier):
        ev = evaluate(classifier.predict, dataset, name=classifier.name, method="trained", split=split,
                      ablation=ablation, history=classifier.metrics.get("history"))
    else:
        ev = evaluate(classifier.predict, dataset, name=classifier.name, method="zero-shot", split=split,
                      ablation=ablation)
    path = None
    if report is not None:
        path = write_report(ev, report, extra={"data": dataset.describe()})
    return ev, path


def split_dataset(
    classifier: TrainedClassifier | ZeroShotClassifier, dataset: ClassificationDataset, split: str
) -> ClassificationDataset:
    """The rows of ``dataset`` in the classifier's saved ``split`` (by id), or with ``all`` every labelled row.

    Raises:
        DatasetError: the split is unknown for this classifier (zero-shot knows only ``all``) or empty here.
    """
    if split == "all":
        return dataset.subset(np.flatnonzero(dataset.labelled))
    if not isinstance(classifier, TrainedClassifier) or split not in classifier.splits:
        raise DatasetError(f"split {split!r} is not known for this model; use 'all' or one of "
                           f"{sorted(getattr(classifier, 'splits', {}) or {}) or ['all']}")
    known = set(dataset.ids)
    ids = [i for i in classifier.splits[split] if i in known]
    if not ids:
        raise DatasetError(f"split {split!r} is empty in this data")
    return dataset.select_ids(ids)


def compare_models(
    refs: Sequence[str],
    lib: Library | None,
    *,
    split: str = "test",
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    report: str | os.PathLike | None = None,
    embedder: TextEmbedder | None = None,
    rows: str | os.PathLike | None = None,
    labels: Sequence[str] = ("l1", "l2"),
    fields: dict[str, list[str]] | None = None,
    id_field: str = "id",
) -> tuple[Comparison, Path | None]:
    """Compare two classifiers on the labelled items both are scored on (see :mod:`vidlens.classify.comparison`).

    Args:
        refs: two trained models (names in the library or folders), or ``zero-shot`` /
            ``zero-shot:TAXONOMY_FILE`` (zero-shot over that tree; plain ``zero-shot``: the trained model's
            tree when it was trained on rows, else the library's own). With ``rows``,
            ``zero-shot:from-data`` is the tree of the rows' own label names (names only).
        lib: the library (needed for models trained on its videos, and for zero-shot without a rows model).
        split: a trained model is scored on its saved split (``all``: every labelled item); zero-shot on
            every labelled item; the comparison keeps the items both have.
        resamples, confidence, seed: the bootstrap.
        report: write the HTML report (and its JSON) here.
        embedder: the text encoder for rows data (default: the models' own).
        rows: compare two zero-shot trees on this labelled rows file instead (``.jsonl``/``.json``/``.csv``;
            what a taxonomy owner runs to see what an edited tree gains).
        labels, fields, id_field: with ``rows``: the L1 and L2 label columns, the text fields (default
            :data:`ZERO_SHOT_ROW_FIELDS`) and the id column.

    Raises:
        ConfigError: not two references, zero-shot without data to read, or a trained model with ``rows``.
        DatasetError: no item in common, or the two read different labels for the same item.
        NotFoundError: a model is not found.
    """
    if len(refs) != 2:
        raise ConfigError(f"compare takes two classifiers, got {len(refs)}")
    if rows is not None:
        return _compare_trees_on_rows(refs, lib, rows, labels, fields, id_field, embedder, resamples=resamples,
                                      confidence=confidence, seed=seed, report=report)
    loaded = [_comparison_classifier(ref, lib) for ref in refs]
    rows_model = next((c for c in loaded if isinstance(c, TrainedClassifier)
                       and (c.train_config or {}).get("data", {}).get("source") == "rows"), None)
    datasets: dict[int, ClassificationDataset] = {}  # a rows model's data is read once, also for zero-shot

    def data_of(model: TrainedClassifier) -> ClassificationDataset:
        if id(model) not in datasets:
            datasets[id(model)] = model_dataset(model, lib, embedder)
        return datasets[id(model)]

    scored = []
    for ref, clf in zip(refs, loaded, strict=True):
        if isinstance(clf, TrainedClassifier):
            scored.append((clf.name, clf, split_dataset(clf, data_of(clf), split)))
            continue
        if rows_model is not None:
            dataset = data_of(rows_model)
            config = TrainConfig.from_dict(rows_model.train_config, where=f"model {rows_model.name} config")
            zero = ZeroShotClassifier(clf or rows_model.taxonomy, _row_inputs(rows_model, config, embedder)[1])
        elif lib is not None:
            zero = zero_shot_for_library(lib, clf)
            dataset = zero.dataset_from_library(lib, require_labels=True)
        else:
            raise ConfigError(f"{ref}: zero-shot needs labelled data: a library (-L) or a model trained on rows")
        scored.append((ref, zero, split_dataset(zero, dataset, "all")))
    return _compare_scored(scored, refs, split, resamples=resamples, confidence=confidence, seed=seed, report=report)


def _compare_trees_on_rows(
    refs: Sequence[str], lib: Library | None, rows_path: str | os.PathLike, labels: Sequence[str],
    fields: dict[str, list[str]] | None, id_field: str, embedder: TextEmbedder | None, **options: Any,
) -> tuple[Comparison, Path | None]:
    """Two zero-shot trees scored on every labelled row of a file; the truth is the rows' own label names."""
    if not all(map(is_zero_shot, refs)):
        raise ConfigError("--rows compares zero-shot trees (zero-shot, zero-shot:FILE, zero-shot:from-data); "
                          "a trained model is compared on its own data, without --rows")
    rows = read_rows(rows_path)
    own = taxonomy_from_rows(rows, list(labels))
    embedder = embedder or TextEmbedder()
    dataset = dataset_from_rows(rows, own, fields=fields or ZERO_SHOT_ROW_FIELDS, labels=list(labels),
                                embedder=embedder, id_field=id_field, name=Path(rows_path).stem)
    zeros = [ZeroShotClassifier(own if ref == f"{ZERO_SHOT}:from-data"
                                else default_taxonomy(lib, _comparison_classifier(ref, lib)), embedder) for ref in refs]
    labelled = split_dataset(zeros[0], dataset, "all")  # the same rows for both trees
    return _compare_scored([(ref, zero, labelled) for ref, zero in zip(refs, zeros, strict=True)], refs, "all",
                           **options)


def _compare_scored(
    scored: list[tuple[str, Any, ClassificationDataset]], refs: Sequence[str], split: str, *, resamples: int,
    confidence: float, seed: int, report: str | os.PathLike | None,
) -> tuple[Comparison, Path | None]:
    """``(name, classifier, dataset)`` twice -> the comparison on the ids both datasets hold."""
    if scored[0][0] == scored[1][0]:
        scored = [(f"{name} ({side})", clf, ds) for (name, clf, ds), side in zip(scored, "AB", strict=True)]
    other = set(scored[1][2].ids)
    common = [i for i in scored[0][2].ids if i in other]
    if not common:
        raise DatasetError(f"{refs[0]} and {refs[1]} have no labelled {split} item in common; compare models "
                           "trained on the same data and split, or use --split all")
    predictions, truths = [], []
    for name, clf, dataset in scored:
        subset = dataset.select_ids(common)
        predictions.append(replace(clf.predict(subset), model=name))
        tax = subset.taxonomy
        truths.append((np.asarray(tax.l2_names)[subset.l2], np.asarray(tax.l1_names)[tax.l2_to_l1[subset.l2]]))
    differ = np.flatnonzero(truths[0][0] != truths[1][0])
    if len(differ):
        i = differ[0]
        raise DatasetError(f"the two classifiers' data label {len(differ)} items differently, e.g. {common[i]!r}: "
                           f"{truths[0][0][i]!r} vs {truths[1][0][i]!r}; compare models trained on the same labels")
    comparison = compare_predictions(*predictions, list(truths[0][0]), list(truths[0][1]), split=split,
                                     resamples=resamples, confidence=confidence, seed=seed)
    path = write_comparison_report(comparison, report) if report is not None else None
    return comparison, path


def is_zero_shot(ref: str) -> bool:
    """Whether a classifier reference names zero-shot (``zero-shot`` or ``zero-shot:TREE``), not a model."""
    return ref == ZERO_SHOT or ref.startswith(ZERO_SHOT + ":")


def _comparison_classifier(ref: str, lib: Library | None) -> TrainedClassifier | Taxonomy | None:
    """A loaded model, or for ``zero-shot[:FILE]`` the tree it names (None: the default tree)."""
    if is_zero_shot(ref):
        path = ref[len(ZERO_SHOT) + 1 :]
        if path == "from-data":
            raise ConfigError(f"{ref}: the rows' own label names are a tree only with --rows")
        return Taxonomy.load(path) if path else None
    return TrainedClassifier.load(find_model(ref, lib))


def default_report_path(lib: Library, name: str, split: str, kind: str = "eval") -> Path:
    """``LIBRARY/reports/<kind>-<name>-<split>-<time>.html`` (kind ``eval`` or ``compare``)."""
    return lib.folder("reports") / f"{kind}-{name}-{split}-{time.strftime('%Y%m%d-%H%M%S')}.html"


# ---- prediction ----------------------------------------------------------------------------------


def classify_library(
    lib: Library,
    classifier: TrainedClassifier | ZeroShotClassifier,
    ids: list[str] | None = None,
    top_k: int = 5,
) -> list[dict[str, Any]]:
    """One JSON-ready record per video (see :meth:`Predictions.records`); videos the classifier cannot
    read (none of its modalities) get ``{"id", "error"}`` instead.

    Raises:
        ModelVersionError: the library's features come from other encoder versions.
    """
    if ids is not None:
        with lib.store.session() as s:
            ids = [lib.store.resolve_id(s, ref) for ref in ids]
    try:
        dataset = classifier.dataset_from_library(lib, ids=ids, require_labels=False)
    except DatasetError as exc:
        if "none of the" in str(exc) or "no text features" in str(exc):
            wanted = ids if ids is not None else [v["id"] for v in lib.videos()]
            return [{"id": vid, "error": str(exc)} for vid in wanted]
        raise
    pred = classifier.predict(dataset)
    records = {r["id"]: r for r in pred.records(top_k=top_k, titles=dataset.titles)}
    wanted = ids if ids is not None else [v["id"] for v in lib.videos()]
    needs = sorted(getattr(classifier, "sources", None) or dataset.modalities)
    return [
        records.get(vid) or {"id": vid, "error": f"no usable modality: the classifier reads {', '.join(needs)} "
                                               "and this video has none of them"}
        for vid in wanted
    ]


ZERO_SHOT_ROW_FIELDS: dict[str, list[str]] = {"title": ["title"], "summary": ["summary", "desc", "description"]}


def classify_rows(
    path: str | os.PathLike,
    classifier: TrainedClassifier | None = None,
    *,
    taxonomy: Taxonomy | None = None,
    lib: Library | None = None,
    fields: dict[str, list[str]] | None = None,
    id_field: str | None = None,
    top_k: int = 5,
    embedder: TextEmbedder | None = None,
) -> list[dict[str, Any]]:
    """Classify text-only rows (``.jsonl``/``.json``/``.csv``: titles, summaries, no video file).

    A model trained on rows reads the columns of its training config (``data.fields``, ``data.id_field``)
    with its text encoder. Without a model, zero-shot over :func:`default_taxonomy` (``taxonomy``, else
    ``lib``'s own, else the shipped one) reads ``fields`` (default :data:`ZERO_SHOT_ROW_FIELDS`; a field is
    one of the zero-shot text fields, e.g. ``title`` or ``summary``, and names the columns joined as its
    text). ``fields`` and ``id_field`` (the column of row ids) replace the model's columns when given.

    Returns:
        One record per row (see :meth:`Predictions.records`); a row with no text in any field gets
        ``{"id", "error"}``.

    Raises:
        ConfigError: the model was trained on library videos, not on rows.
        ModelVersionError: ``embedder`` is another version than the model was trained with.
        NotFoundError, DatasetError: the file is missing or malformed.
    """
    rows = read_rows(path)
    if classifier is not None:
        if classifier.train_config is None:
            raise ConfigError(f"model {classifier.name!r} has no training config, so no row columns to read")
        config = TrainConfig.from_dict(classifier.train_config, where=f"model {classifier.name} config")
        if config.data.source != "rows":
            raise ConfigError(f"model {classifier.name!r} was trained on library videos; classifying rows needs "
                              "a model trained on text rows (data.source = 'rows'), or --zero-shot")
        model_fields, embedder, text_branch = _row_inputs(classifier, config, embedder)
        fields = fields or model_fields
        tax, id_field = classifier.taxonomy, id_field or config.data.id_field
        model: TrainedClassifier | ZeroShotClassifier = classifier
    else:
        fields = fields or ZERO_SHOT_ROW_FIELDS
        embedder = embedder or TextEmbedder()
        tax, id_field, text_branch = default_taxonomy(lib, taxonomy), id_field or "id", False
        model = ZeroShotClassifier(tax, embedder)
    dataset = dataset_from_rows(rows, tax, fields=fields, labels=None, embedder=embedder, id_field=id_field,
                                text_branch=text_branch, name=Path(path).stem)
    records = model.predict(dataset).records(top_k=top_k, titles=dataset.titles)
    empty = ~np.any([m.present for m in dataset.modalities.values()], axis=0)
    wanted = ", ".join(f"{name} ({'/'.join(cols)})" for name, cols in fields.items())
    return [{"id": r["id"], "error": f"row has no text in {wanted}"} if e else r
            for r, e in zip(records, empty, strict=True)]


def needed_modalities(classifier: TrainedClassifier | ZeroShotClassifier) -> list[str]:
    """The ``vidlens extract`` modalities a classifier reads."""
    if isinstance(classifier, ZeroShotClassifier):
        return ["frames", "ocr", "asr", "text"]  # frames give the visual concept names
    out = []
    for s in classifier.sources.values():
        feature = s["feature"]
        if feature.startswith("text."):
            field = feature.split(".", 1)[1]
            out += {"ocr": ["ocr"], "asr": ["asr"], "concepts": ["frames"]}.get(field, [])
            out.append("text")
        else:
            out.append(feature)
    return list(dict.fromkeys(out))


def classify_files(
    lib: Library,
    paths: Sequence[str | os.PathLike],
    classifier: TrainedClassifier | ZeroShotClassifier | None,
    *,
    taxonomy: Taxonomy | None = None,
    top_k: int = 5,
    encoders: Any = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Ingest files into the library, extract what the classifier reads, and classify them.

    Args:
        lib: the library the files are added to.
        paths: files, folders or manifests.
        classifier: the classifier; None classifies zero-shot (over :func:`default_taxonomy`) once the
            text features are extracted.
        taxonomy: for zero-shot (default: the library's own, else the shipped one).
        top_k: categories listed per video.
        encoders: an ``EncoderBank`` stand-in (tests).
        progress: progress bars.

    Returns:
        One record per video; files that cannot be ingested get ``{"path", "error"}``.
    """
    report = lib.ingest(list(paths), progress=progress)
    failed = [{"path": r.item, "error": r.message} for r in report.results if r.video_id is None]
    ids = list(dict.fromkeys(r.video_id for r in report.results if r.video_id is not None))
    if not ids:
        return failed
    needs = needed_modalities(classifier) if classifier is not None else ["frames", "ocr", "asr", "text"]
    lib.extract(needs, ids=ids, progress=progress, encoders=encoders)
    if classifier is None:
        classifier = zero_shot_for_library(lib, taxonomy)
    return classify_library(lib, classifier, ids=ids, top_k=top_k) + failed


__all__ = [
    "build_dataset",
    "classify_files",
    "classify_library",
    "classify_rows",
    "compare_models",
    "cross_validate_config",
    "default_report_path",
    "default_taxonomy",
    "evaluate_model",
    "find_model",
    "is_zero_shot",
    "list_models",
    "load_taxonomy",
    "model_dataset",
    "needed_modalities",
    "split_dataset",
    "train_from_config",
    "zero_shot_for_library",
]

