"""Where classification datasets come from: a library's stored features, or text-only rows.

- :func:`dataset_from_library` reads the pooled vectors of a whole library in one pass per feature
  (``Library.feature_matrix``), sequences lazily from memory-mapped files, the text fields and the
  labels of the videos' manifests.
- :func:`dataset_from_rows` turns JSONL/CSV rows (title, summary, … and labels, no video file) into the
  same dataset: each text column group is embedded with the multilingual text encoder (as the library
  does for ``text.*`` features) and kept as raw text for the trainable n-gram branch.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vidlens.classify.dataset import (
    ClassificationDataset,
    DatasetError,
    Kind,
    LabelError,
    ModalityData,
    default_feature,
    default_kind,
    encoder_version,
    resolve_labels,
)
from vidlens.errors import NotFoundError
from vidlens.features.featureset import SEQUENCE_FEATURES, VECTOR_FEATURES
from vidlens.taxonomy import Category, Taxonomy

if TYPE_CHECKING:
    from vidlens.library import Library


class ModalitySource:
    """Which stored feature a model modality reads, and how.

    Args:
        name: model modality name (``frames``, ``title`` …).
        feature: library feature (default from the name: ``title`` -> ``text.title``).
        kind: ``sequence``, ``vector`` or ``text`` (default from the feature).
    """

    def __init__(self, name: str, feature: str | None = None, kind: Kind | None = None):
        self.name = name
        self.feature = feature or default_feature(name)
        self.kind: Kind = kind or default_kind(self.feature)
        if self.feature not in VECTOR_FEATURES:
            raise DatasetError(
                f"modality {name!r}: no stored feature {self.feature!r}; features are {', '.join(VECTOR_FEATURES)}"
            )
        if self.kind == "sequence" and self.feature not in SEQUENCE_FEATURES:
            raise DatasetError(f"modality {name!r}: feature {self.feature!r} has no sequence (use kind 'vector')")
        if self.kind == "text" and not self.feature.startswith("text."):
            raise DatasetError(f"modality {name!r}: kind 'text' needs a text.* feature, not {self.feature!r}")

    def __repr__(self) -> str:
        return f"ModalitySource({self.name!r}, feature={self.feature!r}, kind={self.kind!r})"


def _as_sources(modalities: Iterable[ModalitySource | str]) -> list[ModalitySource]:
    out = [m if isinstance(m, ModalitySource) else ModalitySource(m) for m in modalities]
    if not out:
        raise DatasetError("no modalities given")
    return out


def _video_name(video: Mapping[str, Any]) -> str:
    title = (video.get("title") or "").strip()
    if title:
        return title[:60]
    paths = video.get("paths") or []
    return Path(paths[0]).name if paths else str(video.get("id", ""))[:12]


def _where(video: Mapping[str, Any]) -> str:
    return f"video {str(video['id'])[:12]} ({_video_name(video)!r})"


# ---- library -----------------------------------------------------------------------------------


def dataset_from_library(
    lib: Library,
    modalities: Iterable[ModalitySource | str],
    taxonomy: Taxonomy,
    *,
    ids: Sequence[str] | None = None,
    require_labels: bool = True,
    skip_unusable: bool = False,
    read_labels: bool = True,
    dims: Mapping[str, int] | None = None,
) -> ClassificationDataset:
    """Build a dataset from a library's extracted features.

    Labels come from each video's ``labels`` (``[L1, L2]`` or just the L2, names or aliases, resolved
    through ``taxonomy``); with ``require_labels`` only labelled videos are taken.

    Args:
        lib: the library.
        modalities: model modalities (names like ``frames``/``title`` or :class:`ModalitySource`).
        taxonomy: the category tree.
        ids: only these videos (full ids); default all.
        require_labels: take only labelled videos and fail when none is; False takes every video
            and still resolves the labels it finds (for evaluation of what is labelled).
        skip_unusable: leave out (rather than fail on) videos without any of the modalities.
        read_labels: False ignores labels altogether (for prediction, where a label outside the
            taxonomy must not stop anything).
        dims: modality -> size, for modalities that may be absent from every selected video (a model
            knows its input sizes); such a modality is then simply absent instead of an error.

    Raises:
        LabelError: a label is not in the taxonomy (names the video and the label).
        DatasetError: no labelled video; a labelled video that was never extracted; a modality that
            no video has; features of one modality from different encoder versions; a video with
            none of the modalities (unless ``skip_unusable``).
    """
    from sqlalchemy import select

    from vidlens.features import video_texts
    from vidlens.store.models import Extraction

    sources = _as_sources(modalities)
    wanted = set(ids) if ids is not None else None
    videos = [v for v in lib.videos() if wanted is None or v["id"] in wanted]
    if wanted is not None and len(videos) < len(wanted):
        found = {v["id"] for v in videos}
        missing = [i for i in ids if i not in found]
        raise NotFoundError(f"library has no video {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if
                                                                     len(missing) > 1 else ""))
    if require_labels:
        videos = [v for v in videos if any(str(x).strip() for x in v.get("labels") or [])]
        if not videos:
            raise DatasetError(
                f"{lib.root}: no video has labels; give labels in the manifest (a `labels` column: "
                "'L2' or 'L1|L2') and ingest it again"
            )
    labels: list[int] = []
    extra: list[tuple[int, ...]] = []
    for v in videos:
        if read_labels and any(str(x).strip() for x in v.get("labels") or []):
            first, rest = resolve_labels(taxonomy, v["labels"], _where(v))
        else:
            first, rest = -1, ()
        labels.append(first)
        extra.append(rest)
    video_ids = [v["id"] for v in videos]

    # Extraction states and the small results texts need, for all videos in one query.
    text_results = {"ocr", "asr", "frames"} if any(s.kind == "text" for s in sources) else set()
    states: dict[str, dict[str, str]] = {vid: {} for vid in video_ids}
    results: dict[str, dict[str, dict]] = {vid: {} for vid in video_ids}
    with lib.store.session() as s:
        for start in range(0, len(video_ids), 500):
            chunk = video_ids[start : start + 500]
            rows = s.execute(
                select(Extraction.video_id, Extraction.feature, Extraction.status).where(
                    Extraction.video_id.in_(chunk)
                )
            )
            for vid, feature, status in rows:
                states[vid][feature] = status
            if text_results:
                for row in s.scalars(
                    select(Extraction).where(Extraction.video_id.in_(chunk), Extraction.feature.in_(text_results))
                ):
                    if row.status == "ok":
                        results[row.video_id][row.feature] = dict(row.result or {})
    never = [v for v, lab in zip(videos, labels, strict=True) if not states[v["id"]] and lab >= 0]
    if never:
        raise DatasetError(
            f"{_where(never[0])} is labelled {never[0]['labels']!r} but has no extracted features"
            + (f" (nor have {len(never) - 1} more labelled videos)" if len(never) > 1 else "")
            + "; run `vidlens extract` first"
        )

    data: dict[str, ModalityData] = {}
    versions: dict[str, str] = {}
    n = len(videos)
    texts_of = None
    if text_results:
        texts_of = [video_texts(v, results[v["id"]].get("ocr"), results[v["id"]].get("asr"),
                                results[v["id"]].get("frames")) for v in videos]
    for src in sources:
        matrix = lib.feature_matrix(src.feature, video_ids)
        if not matrix.ids and dims and src.name in dims:
            dim = int(dims[src.name])
            data[src.name] = ModalityData(
                src.name, src.kind, src.feature, dim, np.zeros(n, dtype=bool), np.zeros((n, dim), np.float32),
                [None] * n if src.kind == "sequence" else None, [""] * n if src.kind == "text" else None,
            )
            continue
        if not matrix.ids:
            raise DatasetError(
                f"modality {src.name!r}: none of the {n} videos has feature {src.feature!r}; extract it "
                f"(`vidlens extract --modalities ...`) or leave the modality out"
            )
        row_of = matrix.index()
        present = np.array([vid in row_of and states[vid].get(src.feature) == "ok" for vid in video_ids])
        dim = int(matrix.vectors.shape[1])
        vectors = np.zeros((n, dim), np.float32)
        rows = np.array([row_of[vid] for vid, p in zip(video_ids, present, strict=True) if p], dtype=np.int64)
        vectors[present] = matrix.vectors[rows]
        found = Counter(encoder_version(src.feature, matrix.keys[r]) for r in rows)
        if len(found) > 1:
            listed = ", ".join(f"{k!r} ({c} videos)" for k, c in found.most_common())
            raise DatasetError(
                f"feature {src.feature!r} comes from several encoder versions: {listed}; "
                f"re-extract it (`vidlens extract --force`) so all videos agree"
            )
        versions[src.feature] = next(iter(found))
        sequences = None
        if src.kind == "sequence":
            sequences = [
                lib.vectors.read_sequence(src.feature, vid) if p else None
                for vid, p in zip(video_ids, present, strict=True)
            ]
            for i, seq in enumerate(sequences):
                if present[i] and (seq is None or len(seq) == 0):
                    sequences[i] = vectors[i][None]  # sequence file lost: fall back to the pooled vector
        texts = None
        if src.kind == "text":
            field_name = src.feature.split(".", 1)[1]
            texts = [t[field_name] if p else "" for t, p in zip(texts_of, present, strict=True)]
        data[src.name] = ModalityData(src.name, src.kind, src.feature, dim, present, vectors, sequences, texts)

    any_present = np.zeros(n, dtype=bool)
    for m in data.values():
        any_present |= m.present
    keep = np.arange(n)
    if not any_present.all():
        bad = [videos[i] for i in np.flatnonzero(~any_present)]
        if not skip_unusable:
            raise DatasetError(
                f"{_where(bad[0])} has none of the modalities {[s.name for s in sources]}"
                + (f" (nor have {len(bad) - 1} more videos)" if len(bad) > 1 else "")
                + "; extract them, or set skip_unusable to leave such videos out"
            )
        keep = np.flatnonzero(any_present)
    dataset = ClassificationDataset(
        ids=video_ids,
        taxonomy=taxonomy,
        modalities=data,
        l2=np.asarray(labels, dtype=np.int64),
        extra_l2=extra,
        encoder_versions=versions,
        titles=[_video_name(v) for v in videos],
        source={"kind": "library", "path": str(lib.root), "skipped_unusable": int(n - len(keep))},
    )
    return dataset if len(keep) == n else dataset.subset(keep)


# ---- text-only rows ----------------------------------------------------------------------------


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``.jsonl``, ``.json`` (a list) or ``.csv`` file, as dicts.

    Raises:
        NotFoundError: no such file.
        DatasetError: a line that is not a JSON object (the line number is named), or another format.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{path}: rows file not found")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DatasetError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            row.setdefault("_line", number)
            rows.append(row)
        return rows
    if suffix == ".json":
        data = json.loads(text)
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DatasetError(f"{path}: expected a JSON list of objects")
        return data
    if suffix == ".csv":
        return [dict(r, _line=i + 2) for i, r in enumerate(csv.DictReader(text.splitlines()))]
    raise DatasetError(f"{path}: unknown rows format {suffix!r} (use .jsonl, .json or .csv)")


def _label_values(row: Mapping[str, Any], columns: Sequence[str]) -> list[str]:
    out: list[str] = []
    for col in columns:
        value = row.get(col)
        if value is None:
            continue
        if isinstance(value, list | tuple):
            out.extend(str(v) for v in value)
        else:
            out.append(str(value))
    return [v for v in (x.strip() for x in out) if v]


def taxonomy_from_rows(rows: Iterable[Mapping[str, Any]], labels: Sequence[str]) -> Taxonomy:
    """A taxonomy made of the label pairs that occur in rows.

    Args:
        rows: the rows.
        labels: the label columns: ``[l1_column, l2_column]``; with a single column every class
            becomes an L2 under one L1 named ``all``.

    Raises:
        DatasetError: more than two label columns, or an L2 name seen under two L1s.
    """
    if not 1 <= len(labels) <= 2:
        raise DatasetError(f"taxonomy from rows needs one or two label columns, not {list(labels)}")
    parent_of: dict[str, str] = {}
    order: list[str] = []
    for position, row in enumerate(rows):
        values = [str(row.get(c) or "").strip() for c in labels]
        if not all(values):
            continue
        l1, l2 = ("all", values[0]) if len(values) == 1 else (values[0], values[1])
        if parent_of.setdefault(l2, l1) != l1:
            raise DatasetError(f"label {l2!r} appears under both {parent_of[l2]!r} and {l1!r} "
                               f"(the second at line {row.get('_line', position + 1)})")
        if l1 not in order:
            order.append(l1)
    cats = [Category(name=a) for a in order] + [Category(name=b, parent=a) for b, a in parent_of.items()]
    return Taxonomy(cats)


class TextEmbedder:
    """The text encoder behind a ``muse_v3``-like interface, with an optional on-disk cache.

    Args:
        encoder: an object with ``encode_batch(list[str]) -> (N, D)`` and ``name``/``version``
            (a vidlens encoder), or a registry name for ``vidlens.encoders.create_encoder``.
        cache_dir: folder for cached embeddings (keyed by encoder version and a hash of the texts).
    """

    def __init__(self, encoder: Any = "muse_v3", cache_dir: str | Path | None = None):
        if isinstance(encoder, str):
            from vidlens.encoders import create_encoder

            encoder = create_encoder(encoder)
        self.encoder = encoder
        self.cache_dir = Path(cache_dir) if cache_dir else None

    @property
    def version(self) -> str:
        """``name@version``, as the library keys its text features."""
        return f"{self.encoder.name}@{self.encoder.version}"

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """(N, D) float32 vectors (rows for empty strings are zeros)."""
        texts = [t or "" for t in texts]
        path = None
        if self.cache_dir is not None:
            digest = hashlib.sha1(("\x00".join([self.version, *texts])).encode("utf-8")).hexdigest()[:20]
            path = self.cache_dir / f"emb-{digest}.npy"
            if path.is_file():
                return np.load(path)
        out = []
        step = 256
        for start in range(0, len(texts), step):
            chunk = texts[start : start + step]
            vec = np.asarray(self.encoder.encode_batch(chunk), np.float32)
            empty = np.array([not t.strip() for t in chunk])
            vec[empty] = 0.0
            out.append(vec)
            if progress is not None:
                progress(len(chunk))
        dim = int(getattr(self.encoder, "dim", None) or (out[0].shape[1] if out else 0))
        result = np.concatenate(out) if out else np.zeros((0, dim), np.float32)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, result)
            tmp.replace(path)
        return result


def dataset_from_rows(
    rows: Sequence[Mapping[str, Any]],
    taxonomy: Taxonomy,
    *,
    fields: Mapping[str, Sequence[str]],
    labels: Sequence[str] | None,
    embedder: TextEmbedder,
    id_field: str = "id",
    text_branch: bool = True,
    skip_bad_labels: bool = False,
    name: str = "rows",
    progress: bool = False,
) -> ClassificationDataset:
    """Build a dataset from text-only rows (no video file).

    Each modality is a group of columns joined by newlines (``{"title": ["title"], "summary": ["desc",
    "dynamic"]}``); it is stored as feature ``text.<modality>``, embedded with ``embedder`` and, with
    ``text_branch``, kept as raw text for the trainable n-gram branch.

    Args:
        rows: the rows (:func:`read_rows`).
        taxonomy: the category tree.
        fields: modality name -> columns.
        labels: label columns, in order (``["l1", "l2"]`` or ``["label"]``); None for unlabelled rows.
        embedder: the text encoder.
        id_field: column holding a row id (default ``id``; rows without one are named ``name-<line>``).
        text_branch: kind ``text`` (sentence vector + n-grams) rather than ``vector``.
        skip_bad_labels: leave out rows whose labels do not resolve instead of failing.
        name: names rows without ids and the dataset source.
        progress: draw a progress bar while embedding.

    Raises:
        LabelError: a label not in the taxonomy (names the row and the label).
        DatasetError: no fields, a modality name that is not an identifier, or no row left.
    """
    from vidlens.progress import progress_bar

    if not fields:
        raise DatasetError("text rows: no fields given (modality -> columns, e.g. {'title': ['title']})")
    for modality in fields:
        if not str(modality).isidentifier():
            raise DatasetError(f"text rows: modality name {modality!r} must be a Python identifier")
    ids: list[str] = []
    l2: list[int] = []
    extra: list[tuple[int, ...]] = []
    kept: list[Mapping[str, Any]] = []
    skipped: Counter = Counter()
    examples: list[str] = []  # the first few skipped rows, as their errors name them
    for position, row in enumerate(rows):
        line = row.get("_line", position + 1)
        rid = str(row.get(id_field) or f"{name}-{line}")
        if labels:
            values = _label_values(row, labels)
            try:
                first, rest = resolve_labels(taxonomy, values, f"row {rid} (line {line})")
            except LabelError as exc:
                if not skip_bad_labels:
                    raise
                skipped[str(exc).split(": ", 1)[-1][:60]] += 1
                if len(examples) < 3:
                    examples.append(str(exc))
                continue
        else:
            first, rest = -1, ()
        ids.append(rid)
        l2.append(first)
        extra.append(rest)
        kept.append(row)
    if not kept:
        raise DatasetError(f"text rows: no usable row ({sum(skipped.values())} skipped for bad labels)")
    data: dict[str, ModalityData] = {}
    versions: dict[str, str] = {}
    total = len(kept) * len(fields)
    with progress_bar(total, "embed text", enabled=progress) as advance:
        for modality, columns in fields.items():
            texts = ["\n".join(str(r.get(c) or "").strip() for c in columns if str(r.get(c) or "").strip())
                     for r in kept]
            vectors = embedder.encode(texts, progress=lambda k: advance(k))
            present = np.array([bool(t.strip()) for t in texts])
            kind: Kind = "text" if text_branch else "vector"
            feature = f"text.{modality}"
            data[modality] = ModalityData(
                modality, kind, feature, int(vectors.shape[1]), present, vectors, None,
                texts if text_branch else None,
            )
            versions[feature] = embedder.version
    titles = []
    first_field = next(iter(fields.values()))
    for r, rid in zip(kept, ids, strict=True):
        titles.append(str(r.get(first_field[0]) or rid)[:60])
    return ClassificationDataset(
        ids=ids,
        taxonomy=taxonomy,
        modalities=data,
        l2=np.asarray(l2, dtype=np.int64),
        extra_l2=extra,
        encoder_versions=versions,
        titles=titles,
        source={"kind": "rows", "name": name, "skipped_bad_labels": int(sum(skipped.values())),
                **({"skipped_examples": examples} if examples else {})},
    )


__all__ = [
    "ModalitySource",
    "TextEmbedder",
    "dataset_from_library",
    "dataset_from_rows",
    "read_rows",
    "taxonomy_from_rows",
]
