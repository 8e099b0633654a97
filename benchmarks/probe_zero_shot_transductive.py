"""Probe: can zero-shot learn from the unlabelled videos it classifies? (Bilibili, curated taxonomy)

Zero-shot sees every row it classifies, though none of their labels. Two ways to use that, both without
labels, over all 359 rows:

- centring: subtract the mean text vector of the rows (and/or the mean category vector) before the
  cosine, which removes the direction every text shares;
- self-training: label every row zero-shot, move each category vector towards the rows it got,
  ``normalise(w · v + Σ confidence · row)`` (hard: the top category only; soft: every category by its
  confidence, with softmax temperature T), and classify again; ``it`` rounds.

The choice is made on the *dev* half (sha1 of the id, as in ``probe_zero_shot_texts.py``) and read on the
other half. The labels are used for scoring only.

Usage:
    .venv/bin/python benchmarks/probe_zero_shot_transductive.py    # a few seconds with the embedding cache warm
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_classify_text as bench

from vidlens.classify import TextEmbedder
from vidlens.classify.zeroshot import ZeroShotClassifier
from vidlens.retrieval.embedder import l2n


def main() -> None:
    embedder = TextEmbedder("muse_v3", cache_dir=bench.OUT / "cache")
    ds, dev = bench.bilibili_halves(embedder)
    tax = ds.taxonomy
    parents = np.asarray(tax.l2_to_l1)
    zs = ZeroShotClassifier(tax, embedder)
    rows = zs.text_vectors(ds)
    c1, c2 = zs.category_vectors()

    def confidences(x, v1, v2, temperature=zs.temperature):
        joint = (x @ v2.T + zs.l1_weight * (x @ v1.T)[:, parents]) / temperature
        p = np.exp(joint - joint.max(1, keepdims=True))
        return p / p.sum(1, keepdims=True)

    def self_trained(w, rounds, hard, temperature):
        v1, v2 = c1, c2
        for _ in range(rounds):
            p = confidences(rows, v1, v2, temperature)
            if hard:
                p = np.where(p == p.max(1, keepdims=True), p, 0.0)
            s2 = p.T @ rows
            s1 = np.zeros_like(c1)
            np.add.at(s1, parents, s2)
            v1, v2 = l2n(w * c1 + s1), l2n(w * c2 + s2)
        return confidences(rows, v1, v2)

    variants = {
        "zero-shot as shipped": confidences(rows, c1, c2),
        "centre rows": confidences(l2n(rows - rows.mean(0)), c1, c2),
        "centre categories": confidences(rows, l2n(c1 - c1.mean(0)), l2n(c2 - c2.mean(0))),
        "centre both": confidences(l2n(rows - rows.mean(0)), l2n(c1 - c1.mean(0)), l2n(c2 - c2.mean(0))),
    }
    for t in (0.05, 0.1):
        for w in (2, 4, 8):
            for rounds in (1, 2):
                for hard in (True, False):
                    name = f"self-train T {t}, w {w}, {rounds} round{'s' * (rounds > 1)}, {'hard' if hard else 'soft'}"
                    variants[name] = self_trained(w, rounds, hard, t)
    truth = parents[ds.l2]
    scored = {k: parents[p.argmax(1)] == truth for k, p in variants.items()}
    chosen = max(scored, key=lambda k: (scored[k][dev].mean(), k == "zero-shot as shipped"))
    print(f"dev {int(dev.sum())} rows, test {int((~dev).sum())} rows; L1 accuracy\n")
    print("| variant | dev | test |\n|---|---|---|")
    for k, right in scored.items():
        mark = " (chosen on dev)" if k == chosen else ""
        print(f"| {k}{mark} | {right[dev].mean():.3f} | {right[~dev].mean():.3f} |")


if __name__ == "__main__":
    main()
