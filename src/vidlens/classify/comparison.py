"""Comparing two classifiers on the same labelled items, with the uncertainty a test set of that size has.

Two accuracies a point apart on a few hundred videos are often the same model. A comparison therefore
gives, on exactly the items both classifiers were scored on:

- each one's L1/L2 accuracy and L2 macro-F1 with a percentile bootstrap interval (items resampled with
  replacement);
- the paired difference B − A with its own bootstrap interval (the same resample for both, so what the
  items have in common cancels out) and McNemar's exact test on the items one gets right and the other
  wrong (Dietterich, "Approximate Statistical Tests for Comparing Supervised Classification Learning
  Algorithms", 1998, recommends it for one test set);
- the per-class L2 F1 of both and its change.

Classes are matched by name, so the two may use different taxonomies (say, a model extended with a new
category, or zero-shot over an edited tree); a class one of them lacks is simply never predicted by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vidlens.classify.dataset import DatasetError
from vidlens.classify.metrics import f1_per_class, macro_f1
from vidlens.classify.predictions import Predictions

METRICS = ("l1_accuracy", "l2_accuracy", "l2_macro_f1")


@dataclass
class Comparison:
    """The outcome of :func:`compare_predictions`.

    Attributes:
        models: the two classifiers' names, A then B.
        split: which items (``test``, ``val``, ``all``).
        n: items compared.
        confidence: level of the intervals (e.g. 0.95).
        metrics: metric -> ``{"a": {"value", "low", "high"}, "b": {...}, "difference": {...}}``;
            the difference is B − A.
        mcnemar: level (``l1``, ``l2``) -> ``{"a_only", "b_only", "p_value"}``: items only A / only B got
            right, and the exact two-sided p-value of the two being equally good.
        agreement: share of items on which both predict the same L2.
        per_class: one row per L2 class in the truth or in either prediction: ``name``, ``support``,
            ``f1_a``, ``f1_b``, ``delta`` (sorted by ``delta``, most improved first).
        resampled_difference: the bootstrap's L2 accuracy differences (for the report's plot).
    """

    models: tuple[str, str]
    split: str
    n: int
    confidence: float
    metrics: dict[str, dict[str, dict[str, float]]]
    mcnemar: dict[str, dict[str, float]]
    agreement: float
    per_class: list[dict[str, Any]]
    resampled_difference: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def verdict(self, metric: str = "l2_accuracy", alpha: float = 0.05) -> str:
        """One line: the difference, its interval and whether McNemar's test calls it real."""
        d = self.metrics[metric]["difference"]
        p = self.mcnemar["l2" if metric.startswith("l2") else "l1"]["p_value"]
        a, b = self.models
        sign = "no different from" if p >= alpha else ("better than" if d["value"] > 0 else "worse than")
        return (f"{b} is {sign} {a} on {metric} ({100 * d['value']:+.1f} points, "
                f"{100 * self.confidence:.0f}% interval [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]; "
                f"McNemar p {'' if p < 1e-16 else '= '}{format_p(p)}, {self.n} items)")

    def summary_rows(self) -> list[dict[str, str]]:
        """The summary as display rows: metric, A and B with intervals, B − A in points, McNemar's p."""
        a, b = self.models
        level = {"l1_accuracy": "l1", "l2_accuracy": "l2"}

        def cell(v: dict[str, float], scale: float = 1.0, fmt: str = ".4f") -> str:
            return f"{scale * v['value']:{fmt}} [{scale * v['low']:{fmt}}, {scale * v['high']:{fmt}}]"

        return [{"metric": m, f"{a} (A)": cell(v["a"]), f"{b} (B)": cell(v["b"]),
                 "B − A (points)": cell(v["difference"], 100.0, "+.1f"),
                 "McNemar p": format_p(self.mcnemar[level[m]]["p_value"]) if m in level else ""}
                for m, v in self.metrics.items()]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the resampled differences)."""
        return {"models": list(self.models), "split": self.split, "n": self.n, "confidence": self.confidence,
                "metrics": self.metrics, "mcnemar": self.mcnemar, "agreement": self.agreement,
                "per_class": self.per_class, "verdict": self.verdict()}


def format_p(p: float) -> str:
    """A p-value for people: three significant digits, and "<1e-16" below what a double tells apart from 0."""
    return "<1e-16" if p < 1e-16 else f"{p:.3g}"


def mcnemar_p_value(a_only: int, b_only: int) -> float:
    """Exact two-sided McNemar p-value: the chance of a split of the discordant items at least this uneven
    if each were a fair coin (1.0 when there are none)."""
    from scipy.stats import binomtest

    n = a_only + b_only
    return 1.0 if n == 0 else float(binomtest(min(a_only, b_only), n, 0.5).pvalue)


def _interval(samples: np.ndarray, value: float, confidence: float) -> dict[str, float]:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return {"value": round(float(value), 4), "low": round(float(low), 4), "high": round(float(high), 4)}


def compare_predictions(
    a: Predictions,
    b: Predictions,
    truth_l2: Sequence[str],
    truth_l1: Sequence[str],
    *,
    split: str = "test",
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Compare two classifiers' predictions for the same items against the true class names.

    Args:
        a, b: predictions for the same items in the same order (their ids must match).
        truth_l2, truth_l1: the true L2 / L1 name of each item.
        split: shown in outputs.
        resamples: bootstrap resamples (at least 100).
        confidence: interval level, in (0, 1).
        seed: the bootstrap's random seed (the same seed gives the same intervals).

    Raises:
        DatasetError: the predictions are for other items, or there are none.
    """
    if list(a.ids) != list(b.ids) or len(a.ids) != len(truth_l2) or len(truth_l2) != len(truth_l1):
        raise DatasetError("comparison: both classifiers must predict the same items, in the order of the truth")
    if not truth_l2:
        raise DatasetError("comparison: no labelled items to compare on")
    if resamples < 100 or not 0 < confidence < 1:
        raise DatasetError("comparison: resamples must be at least 100 and confidence in (0, 1)")
    names = {
        "l2": [np.asarray(a.taxonomy.l2_names)[a.l2_pred], np.asarray(b.taxonomy.l2_names)[b.l2_pred],
               np.asarray(truth_l2)],
        "l1": [np.asarray(a.taxonomy.l1_names)[a.l1_pred], np.asarray(b.taxonomy.l1_names)[b.l1_pred],
               np.asarray(truth_l1)],
    }
    classes = sorted(set(np.concatenate(names["l2"]).tolist()))
    code = {c: i for i, c in enumerate(classes)}
    pa, pb, y = ([code[v] for v in arr] for arr in names["l2"])
    pa, pb, y = np.asarray(pa), np.asarray(pb), np.asarray(y)
    right = {level: (pred_a == truth, pred_b == truth) for level, (pred_a, pred_b, truth) in names.items()}
    n, k = len(y), len(classes)

    def values(weights: np.ndarray | None) -> dict[str, tuple[float, float]]:
        w = np.ones(n) if weights is None else weights
        total = w.sum()
        return {
            "l1_accuracy": (float(w @ right["l1"][0]) / total, float(w @ right["l1"][1]) / total),
            "l2_accuracy": (float(w @ right["l2"][0]) / total, float(w @ right["l2"][1]) / total),
            "l2_macro_f1": (macro_f1(y, pa, k, w), macro_f1(y, pb, k, w)),
        }

    observed = values(None)
    rng = np.random.default_rng(seed)
    samples = {m: np.empty((resamples, 2)) for m in METRICS}
    for r in range(resamples):
        weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
        for m, pair in values(weights).items():
            samples[m][r] = pair
    metrics = {
        m: {"a": _interval(samples[m][:, 0], observed[m][0], confidence),
            "b": _interval(samples[m][:, 1], observed[m][1], confidence),
            "difference": _interval(samples[m][:, 1] - samples[m][:, 0], observed[m][1] - observed[m][0],
                                    confidence)}
        for m in METRICS
    }
    mcnemar = {}
    for level, (ra, rb) in right.items():
        a_only, b_only = int((ra & ~rb).sum()), int((~ra & rb).sum())
        mcnemar[level] = {"a_only": a_only, "b_only": b_only, "p_value": mcnemar_p_value(a_only, b_only)}
    _, _, f1_a, support = f1_per_class(y, pa, k)
    f1_b = f1_per_class(y, pb, k)[2]
    per_class = []
    for c, name in enumerate(classes):
        fa, fb = round(float(f1_a[c]), 4), round(float(f1_b[c]), 4)
        per_class.append({"name": name, "support": int(support[c]), "f1_a": fa, "f1_b": fb, "delta": round(fb - fa, 4)})
    per_class.sort(key=lambda r: (-r["delta"], r["name"]))
    return Comparison(
        models=(a.model or "A", b.model or "B"),
        split=split,
        n=n,
        confidence=confidence,
        metrics=metrics,
        mcnemar=mcnemar,
        agreement=round(float((pa == pb).mean()), 4),
        per_class=per_class,
        resampled_difference=samples["l2_accuracy"][:, 1] - samples["l2_accuracy"][:, 0],
    )


__all__ = ["METRICS", "Comparison", "compare_predictions", "format_p", "mcnemar_p_value"]
