"""Probe: how should a category's texts become its zero-shot vector? (Bilibili, curated taxonomy)

Zero-shot has no training split, so this probe makes its own: the 359 Bilibili rows are halved by the
sha1 of their id into a *dev* half (choices) and a *test* half. Variants of the category vector, each
with the parent's weight 0.5 and 1 in joint decoding:

- joined: mean of the unit vectors of name, aliases, description and the keywords joined into one
  string (what zero-shot did before 2026-12-07);
- each: the same, but every keyword a text of its own (what it does now: ``category_texts``);
- max: the best cosine over those texts instead of their mean;
- joined + max: an even mix, or 0.7 / 0.3.

Usage:
    .venv/bin/python benchmarks/probe_zero_shot_texts.py      # about 20 s with the embedding cache warm
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_classify_text as bench

from vidlens.classify import TextEmbedder
from vidlens.classify.zeroshot import ZeroShotClassifier
from vidlens.retrieval.embedder import l2n as unit


def main() -> None:
    embedder = TextEmbedder("muse_v3", cache_dir=bench.OUT / "cache")
    ds, dev = bench.bilibili_halves(embedder)
    tax = ds.taxonomy
    text = ZeroShotClassifier(tax, embedder).text_vectors(ds)
    cats = {c.name: c for c in tax.categories}
    names = [*tax.l1_names, *tax.l2_names]
    pieces = {}
    for n in names:
        c = cats[n]
        head = unit(embedder.encode([n, *c.aliases, *([c.description] if c.description else [])]))
        words = unit(embedder.encode(list(c.keywords))) if c.keywords else np.zeros((0, head.shape[1]), np.float32)
        joined = unit(embedder.encode(["、".join(c.keywords)])) if c.keywords else head[:0]
        pieces[n] = (head, words, joined)

    def joined(n):
        head, _, j = pieces[n]
        return text @ unit(np.concatenate([head, j]).mean(0))

    def each(n):
        head, words, _ = pieces[n]
        return text @ unit(np.concatenate([head, words]).mean(0))

    def best(n):
        head, words, _ = pieces[n]
        return (text @ np.concatenate([head, words]).T).max(1)

    variants = {"joined (before)": joined, "each (now)": each, "max": best,
                "joined + max, 0.5": lambda n: 0.5 * joined(n) + 0.5 * best(n),
                "joined + max, 0.3": lambda n: 0.7 * joined(n) + 0.3 * best(n)}
    parents, y1 = tax.l2_to_l1, tax.l2_to_l1[ds.l2]
    print(f"dev {int(dev.sum())} rows, test {int((~dev).sum())} rows; L1 accuracy\n")
    print("| category vector | parent weight | dev | test |\n|---|---|---|---|")
    for label, score in variants.items():
        s = np.stack([score(n) for n in names], 1)
        for l1_weight in (0.5, 1.0):
            l1 = parents[(s[:, tax.num_l1:] + l1_weight * s[:, : tax.num_l1][:, parents]).argmax(1)]
            right = l1 == y1
            print(f"| {label} | {l1_weight} | {right[dev].mean():.3f} | {right[~dev].mean():.3f} |")


if __name__ == "__main__":
    main()
