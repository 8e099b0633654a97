"""`ClassificationDataset`: labelled (or unlabelled) model inputs for many videos, in memory.

One dataset holds, per model modality, the presence mask and either a vector per video, a (T, D)
sequence per video (loaded lazily from memory-mapped files) or a sentence vector plus the raw text for
the trainable n-gram branch; and, per video, its L2 label (-1 when unlabelled) and any further L2
labels (multi-label). Datasets come from a library (:func:`vidlens.classify.sources.dataset_from_library`)
or from text-only rows (:func:`vidlens.classify.sources.dataset_from_rows`); both give the same thing,
so title/summary datasets train the same model as videos do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from vidlens.errors import NotFoundError, VidlensError
from vidlens.features.featureset import SEQUENCE_FEATURES, TEXT_FIELDS
from vidlens.taxonomy import Taxonomy

Kind = Literal["sequence", "vector", "text"]


class DatasetError(VidlensError):
    """Data cannot be turned into a classification dataset; the message names the video and the problem."""


class LabelError(DatasetError):
    """A video's labels do not resolve to one level-2 category of the taxonomy."""


def default_feature(modality: str) -> str:
    """The library feature a modality reads by default: ``frames``/``cover``/``audio`` as is, a text
    field (``title``, ``summary``, ``product``, ``ocr``, ``asr``, ``concepts``) as ``text.<field>``."""
    if modality in TEXT_FIELDS:
        return f"text.{modality}"
    return modality


def default_kind(feature: str) -> Kind:
    """``sequence`` for frames/audio, ``text`` for text features, ``vector`` otherwise."""
    if feature in SEQUENCE_FEATURES:
        return "sequence"
    if feature.startswith("text."):
        return "text"
    return "vector"


def encoder_version(feature: str, key: str) -> str:
    """The part of a stored feature key that identifies the encoder (and its parameters).

    Text feature keys end in ``#<hash of the input text>``, which differs per video; that part is
    dropped so that every video's title vector counts as coming from the same encoder.
    """
    return key.split("#", 1)[0] if feature.startswith("text.") else key


@dataclass
class ModalityData:
    """One modality of a dataset.

    Attributes:
        name: model modality name (a Python identifier).
        kind: ``sequence`` (``sequences`` used), ``vector`` or ``text`` (``vectors`` used; ``text`` also
            reads ``texts`` through the trainable n-gram branch).
        feature: the library feature it comes from (``frames``, ``text.title`` …).
        dim: vector / step size.
        present: (N,) bool presence mask.
        vectors: (N, dim) float32, zero rows where absent (for a sequence: its pooled vector).
        sequences: per video a (T, dim) array or None where absent (sequence kind only).
        texts: per video the raw text, "" where absent (text kind only).
    """

    name: str
    kind: Kind
    feature: str
    dim: int
    present: np.ndarray
    vectors: np.ndarray
    sequences: list[np.ndarray | None] | None = None
    texts: list[str] | None = None

    def subset(self, index: np.ndarray) -> ModalityData:
        """The rows ``index``."""
        return replace(
            self,
            present=self.present[index],
            vectors=self.vectors[index],
            sequences=None if self.sequences is None else [self.sequences[i] for i in index],
            texts=None if self.texts is None else [self.texts[i] for i in index],
        )


@dataclass
class ClassificationDataset:
    """Inputs and labels of N videos (or text rows) for one taxonomy.

    Attributes:
        ids: video (or row) ids.
        taxonomy: the category tree the labels index into.
        modalities: model modality name -> its data, in model order.
        l2: (N,) int64 L2 index of each video's (first) label; -1 when unlabelled.
        extra_l2: per video, further L2 indices (multi-label), usually empty.
        encoder_versions: feature -> encoder version of its vectors (what a model records).
        titles: per video a short display name (title, file name or row id).
        source: how the dataset was made (for reports).
    """

    ids: list[str]
    taxonomy: Taxonomy
    modalities: dict[str, ModalityData]
    l2: np.ndarray
    extra_l2: list[tuple[int, ...]] = field(default_factory=list)
    encoder_versions: dict[str, str] = field(default_factory=dict)
    titles: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)
    _token_cache: dict[tuple, list[np.ndarray]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        n = len(self.ids)
        self.l2 = np.asarray(self.l2, dtype=np.int64).reshape(-1)
        if len(self.l2) != n:
            raise DatasetError(f"dataset: {n} ids but {len(self.l2)} labels")
        if not self.extra_l2:
            self.extra_l2 = [() for _ in range(n)]
        if not self.titles:
            self.titles = list(self.ids)
        for m in self.modalities.values():
            if len(m.present) != n or len(m.vectors) != n:
                raise DatasetError(f"dataset: modality {m.name!r} has {len(m.present)} rows for {n} ids")
        if (self.l2 >= self.taxonomy.num_l2).any():
            raise DatasetError("dataset: an L2 label index is outside the taxonomy")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def l1(self) -> np.ndarray:
        """(N,) L1 index of each video's label; -1 when unlabelled."""
        parents = self.taxonomy.l2_to_l1
        return np.where(self.l2 >= 0, parents[np.maximum(self.l2, 0)], -1)

    @property
    def labelled(self) -> np.ndarray:
        """(N,) bool: the video has a label."""
        return self.l2 >= 0

    def multi_hot(self, index: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """(N, C2) float32 0/1 of the rows ``index`` (default all): primary plus extra labels."""
        rows = range(len(self)) if index is None else [int(i) for i in index]
        out = np.zeros((len(rows), self.taxonomy.num_l2), np.float32)
        for r, i in enumerate(rows):
            if self.l2[i] >= 0:
                out[r, self.l2[i]] = 1.0
            for j in self.extra_l2[i]:
                out[r, j] = 1.0
        return out

    def subset(self, index: Sequence[int] | np.ndarray) -> ClassificationDataset:
        """The rows ``index`` (a new dataset sharing the arrays' memory where it can)."""
        index = np.asarray(index, dtype=np.int64)
        return replace(
            self,
            ids=[self.ids[i] for i in index],
            modalities={k: m.subset(index) for k, m in self.modalities.items()},
            l2=self.l2[index],
            extra_l2=[self.extra_l2[i] for i in index],
            titles=[self.titles[i] for i in index],
            _token_cache={k: [v[i] for i in index] for k, v in self._token_cache.items()},
        )

    def select_ids(self, ids: Sequence[str]) -> ClassificationDataset:
        """The rows with these ids, in this order.

        Raises:
            NotFoundError: an id is not in the dataset (the first few are named).
        """
        where = {vid: i for i, vid in enumerate(self.ids)}
        missing = [vid for vid in ids if vid not in where]
        if missing:
            raise NotFoundError(
                f"dataset has no item {', '.join(map(repr, missing[:3]))}"
                + (f" (and {len(missing) - 3} more)" if len(missing) > 3 else "")
            )
        return self.subset([where[vid] for vid in ids])

    def with_presence(self, modality: str, present: np.ndarray) -> ClassificationDataset:
        """A copy in which ``modality``'s presence mask is ``present & current`` (for ablations and
        missing-modality tests); data arrays are shared."""
        if modality not in self.modalities:
            raise DatasetError(f"dataset has no modality {modality!r}; it has {sorted(self.modalities)}")
        mods = dict(self.modalities)
        m = mods[modality]
        mods[modality] = replace(m, present=m.present & np.asarray(present, dtype=bool))
        return replace(self, modalities=mods, _token_cache=self._token_cache)

    def token_ids(self, modality: str, hasher: Any) -> list[np.ndarray]:
        """Hashed n-gram ids of a text modality's texts (cached per hasher settings)."""
        m = self.modalities[modality]
        if m.texts is None:
            raise DatasetError(f"modality {modality!r} has no texts for a text branch")
        key = (modality, hasher.num_buckets, hasher.char_ngrams, hasher.word_ngrams, hasher.max_tokens)
        if key not in self._token_cache:
            self._token_cache[key] = [
                np.asarray(hasher.ids(t) if p else [], dtype=np.int64)
                for t, p in zip(m.texts, m.present, strict=True)
            ]
        return self._token_cache[key]

    def counts(self) -> dict[str, int]:
        """Number of labelled videos per L2 name (only classes that occur)."""
        names = self.taxonomy.l2_names
        values, n = np.unique(self.l2[self.l2 >= 0], return_counts=True)
        return {names[v]: int(c) for v, c in zip(values, n, strict=True)}

    def describe(self) -> dict[str, Any]:
        """Sizes, label counts and presence rates, for logs and reports."""
        return {
            "items": len(self),
            "labelled": int(self.labelled.sum()),
            "classes": len(self.counts()),
            "modalities": {
                name: {"kind": m.kind, "feature": m.feature, "dim": m.dim, "present": round(float(m.present.mean()), 4)
                       if len(self) else 0.0}
                for name, m in self.modalities.items()
            },
            "encoder_versions": dict(self.encoder_versions),
            **({"source": self.source} if self.source else {}),
        }


# ---- labels ------------------------------------------------------------------------------------


def resolve_labels(taxonomy: Taxonomy, labels: Sequence[str], where: str) -> tuple[int, tuple[int, ...]]:
    """Turn a video's labels into (first L2 index, further L2 indices).

    Accepted: ``[L2]``, ``[L1, L2]``, names or aliases, several L2s (multi-label; each given L1 must be
    the parent of one of them). Labels are resolved through the taxonomy.

    Args:
        taxonomy: the category tree.
        labels: the label strings of one video.
        where: how to name the video in errors ("video 3f2a… 'my title'").

    Raises:
        LabelError: an unknown name, only level-1 labels, or an L2 outside the L1 given with it.
    """
    l1s: list[str] = []
    l2s: list[str] = []
    for raw in labels:
        label = str(raw).strip()
        if not label:
            continue
        try:
            name = taxonomy.resolve(label)
        except NotFoundError:
            raise LabelError(
                f"{where}: label {label!r} is not a category of the taxonomy "
                f"({taxonomy.num_l1} level-1 / {taxonomy.num_l2} level-2 categories; "
                "add it with `vidlens taxonomy add` or fix the label)"
            ) from None
        (l1s if taxonomy.parent(name) is None else l2s).append(name)
    if not l2s:
        if l1s:
            kids = taxonomy.children(l1s[0])
            raise LabelError(
                f"{where}: labels {list(labels)!r} name only the level-1 category {l1s[0]!r}; "
                f"give one of its level-2 categories ({', '.join(kids[:8])}{' …' if len(kids) > 8 else ''})"
            )
        raise LabelError(f"{where}: no label")
    parents = {taxonomy.parent(n) for n in l2s}
    for name in l1s:
        if name not in parents:
            raise LabelError(
                f"{where}: level-2 label {l2s[0]!r} belongs to {taxonomy.parent(l2s[0])!r}, "
                f"not to the level-1 label {name!r} given with it"
            )
    index = taxonomy.l2_index
    ordered = list(dict.fromkeys(index[n] for n in l2s))
    return ordered[0], tuple(ordered[1:])


# ---- splits ------------------------------------------------------------------------------------


def make_splits(
    labels: np.ndarray, val: float = 0.1, test: float = 0.1, seed: int = 0, stratify: bool = True
) -> dict[str, np.ndarray]:
    """Seeded train/val/test split of row indices, stratified by label.

    Each class is shuffled with the seed and cut in proportion; a class with fewer than 3 items keeps
    with probabilistic rounding (so small classes still reach val/test in the expected share); every
    class keeps at least one item in train. Unlabelled rows (label -1) are left out.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}``, each sorted.
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise DatasetError(f"split fractions val={val}, test={test} must be >= 0 and sum to < 1")
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels[labels >= 0])] if stratify else [
        np.flatnonzero(labels >= 0)
    ]
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for members in groups:
        members = members[rng.permutation(len(members))]
        n = len(members)
        # Probabilistic rounding keeps the expected share right for small classes; train keeps one.
        n_test = min(int(np.floor(n * test + rng.random())), max(n - 1, 0))
        n_val = min(int(np.floor(n * val + rng.random())), max(n - n_test - 1, 0))
        out["test"].extend(members[:n_test])
        out["val"].extend(members[n_test : n_test + n_val])
        out["train"].extend(members[n_test + n_val :])
    return {k: np.sort(np.asarray(v, dtype=np.int64)) for k, v in out.items()}


def in_order_of_appearance(labels: np.ndarray) -> np.ndarray:
    """The labels renumbered by where each class first appears (-1 stays -1), so that folds made from them
    are the same whichever taxonomy file, and so whichever class order, the data was read with."""
    labels = np.asarray(labels)
    classes, first = np.unique(labels[labels >= 0], return_index=True)
    rank = np.full(int(labels.max(initial=-1)) + 1, -1)
    rank[classes[np.argsort(first)]] = np.arange(len(classes))
    return np.where(labels >= 0, rank[np.maximum(labels, 0)] if len(rank) else -1, -1)


def kfold_splits(labels: np.ndarray, folds: int = 5, val: float = 0.1, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Stratified k-fold cross-validation splits; each fold's training part gives up ``val`` for a
    validation split (for early stopping), so nothing is ever tuned on the fold's test part.

    Returns:
        ``folds`` dicts ``{"train", "val", "test"}`` of sorted row indices; every labelled row is in
        exactly one ``test``.
    """
    if folds < 2:
        raise DatasetError(f"k-fold needs at least 2 folds, not {folds}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    fold_of = np.full(len(labels), -1)
    offset = 0
    for c in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == c)
        members = members[rng.permutation(len(members))]
        fold_of[members] = (np.arange(len(members)) + offset) % folds
        offset += len(members)  # spread small classes over different folds
    out = []
    for k in range(folds):
        test = np.flatnonzero(fold_of == k)
        rest = np.flatnonzero((fold_of >= 0) & (fold_of != k))
        inner = make_splits(labels[rest], val=val, test=0.0, seed=seed + 1 + k)
        out.append({"train": np.sort(rest[inner["train"]]), "val": np.sort(rest[inner["val"]]), "test": test})
    return out


__all__ = [
    "ClassificationDataset",
    "DatasetError",
    "LabelError",
    "ModalityData",
    "default_feature",
    "default_kind",
    "encoder_version",
    "in_order_of_appearance",
    "kfold_splits",
    "make_splits",
    "resolve_labels",
]
