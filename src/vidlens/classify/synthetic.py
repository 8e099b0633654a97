"""A controlled multimodal dataset whose label is spread over frames, audio and title.

Made for tests and for the fusion benchmark (benchmarks/bench_classify_synthetic.py): every class has
a hidden prototype per modality, built as an L1 part plus an L2 part (so sibling classes look alike,
as in a real taxonomy). Each video's modalities carry that signal only sometimes — a frame sequence
shows it in a few steps among noise, a title may be "clickbait" pointing at another class, audio is
weak — and some modalities are missing. No single modality suffices; fusing them does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vidlens.classify.dataset import ClassificationDataset, ModalityData
from vidlens.taxonomy import Category, Taxonomy


@dataclass
class SyntheticModality:
    """How one synthetic modality is made.

    Attributes:
        name: modality name (``frames``, ``audio``, ``title`` …).
        dim: vector size.
        steps: sequence length (0: a single vector).
        informative: chance that a video's modality shows its own class.
        misleading: chance that it shows another class instead (a clickbait title).
        signal_steps: for a sequence, how many steps carry the signal (the rest is noise).
        strength: signal-to-noise scale.
        missing: chance that the modality is absent.
        words: give the modality raw text (class words among filler) for the n-gram branch.
    """

    name: str
    dim: int
    steps: int = 0
    informative: float = 0.6
    misleading: float = 0.1
    signal_steps: int = 2
    strength: float = 1.0
    missing: float = 0.0
    words: bool = False


DEFAULT_MODALITIES = (
    SyntheticModality("frames", 32, steps=8, informative=0.7, signal_steps=2, strength=1.2, missing=0.1),
    SyntheticModality("audio", 16, steps=6, informative=0.5, signal_steps=3, strength=0.9, missing=0.3),
    SyntheticModality("title", 24, informative=0.6, misleading=0.2, strength=1.4, missing=0.2),
)


@dataclass
class SyntheticSpec:
    """Size and make-up of a synthetic dataset."""

    n: int = 2000
    num_l1: int = 5
    l2_per_l1: int = 4
    l1_share: float = 0.6
    modalities: tuple[SyntheticModality, ...] = field(default_factory=lambda: DEFAULT_MODALITIES)
    seed: int = 0


def synthetic_taxonomy(num_l1: int, l2_per_l1: int) -> Taxonomy:
    """``d0 … d{num_l1-1}``, each with children ``d<i>.s<j>``."""
    cats = [Category(name=f"d{i}", aliases=[f"domain {i}"]) for i in range(num_l1)]
    cats += [Category(name=f"d{i}.s{j}", parent=f"d{i}") for i in range(num_l1) for j in range(l2_per_l1)]
    return Taxonomy(cats)


def make_synthetic_dataset(spec: SyntheticSpec | None = None, **overrides) -> ClassificationDataset:
    """A labelled synthetic dataset (see the module docstring); deterministic for a seed.

    Args:
        spec: the make-up; keyword ``overrides`` replace its fields (``n=500, seed=3``).
    """
    spec = spec or SyntheticSpec()
    if overrides:
        spec = SyntheticSpec(**{**spec.__dict__, **overrides})
    rng = np.random.default_rng(spec.seed)
    proto_rng = np.random.default_rng(1000 + spec.seed // 1000)  # same prototypes across nearby seeds
    tax = synthetic_taxonomy(spec.num_l1, spec.l2_per_l1)
    c2 = tax.num_l2
    parents = tax.l2_to_l1
    y = rng.integers(0, c2, size=spec.n)
    data: dict[str, ModalityData] = {}
    presence = rng.random((len(spec.modalities), spec.n)) >= np.array([[m.missing] for m in spec.modalities])
    nothing = ~presence.any(axis=0)
    presence[rng.integers(0, len(spec.modalities), size=int(nothing.sum())), np.flatnonzero(nothing)] = True
    for j, mod in enumerate(spec.modalities):
        l1_part = proto_rng.standard_normal((spec.num_l1, mod.dim))
        l2_part = proto_rng.standard_normal((c2, mod.dim))
        protos = spec.l1_share * l1_part[parents] + (1 - spec.l1_share) * l2_part
        protos /= np.linalg.norm(protos, axis=1, keepdims=True) / np.sqrt(mod.dim) * 1.0
        draw = rng.random(spec.n)
        other = rng.integers(0, c2, spec.n)
        shown = np.where(draw < mod.informative, y, np.where(draw < mod.informative + mod.misleading, other, -1))
        present = presence[j]
        steps = max(mod.steps, 1)
        x = rng.standard_normal((spec.n, steps, mod.dim)).astype(np.float32)
        for i in np.flatnonzero(shown >= 0):
            k = min(mod.signal_steps, steps) if mod.steps else 1
            where = rng.choice(steps, size=k, replace=False)
            x[i, where] += mod.strength * protos[shown[i]]
        x[~present] = 0.0
        texts = None
        if mod.words:
            texts = []
            for i in range(spec.n):
                filler = [f"w{int(v)}" for v in rng.integers(0, 50, size=6)]
                if shown[i] >= 0:
                    filler[rng.integers(0, 6)] = f"k{int(shown[i])}x"
                texts.append(" ".join(filler) if present[i] else "")
        pooled = x.mean(axis=1)
        sequences = [x[i] if present[i] else None for i in range(spec.n)] if mod.steps else None
        kind = "sequence" if mod.steps else ("text" if mod.words else "vector")
        feature = mod.name if mod.steps else f"text.{mod.name}"
        data[mod.name] = ModalityData(mod.name, kind, feature, mod.dim, present, pooled.astype(np.float32),
                                      sequences, texts)
    return ClassificationDataset(
        ids=[f"syn-{spec.seed}-{i}" for i in range(spec.n)],
        taxonomy=tax,
        modalities=data,
        l2=y,
        encoder_versions={m.feature: "synthetic@1" for m in data.values()},
        source={"kind": "synthetic", "seed": spec.seed, "n": spec.n},
    )


__all__ = ["SyntheticModality", "SyntheticSpec", "make_synthetic_dataset", "synthetic_taxonomy"]
