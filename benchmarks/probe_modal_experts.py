"""Probe (validation only): is the cost of removing modalities a fusion problem? Combines per-modality
experts as a product instead of reading the fused head.

On the "no conflict, 90 % informative" data of ``bench_classify_synthetic.py --regimes``, a concat model is
trained with per-modality auxiliary heads (weight 1). Its predictions are then read three ways: the fused
head; a product of the auxiliary heads' softmaxes over the modalities present (each expert normalised,
so an expert that sees noise can stay flat); and that product times the fused head. For each, the
validation accuracy and what removing 10 % of each modality costs, with modal dropout off and at 0.4.

Usage:
    .venv/bin/python benchmarks/probe_modal_experts.py    # about 1 min
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_classify_synthetic import config, no_conflict, remove, validation_setup

from vidlens.classify import classification_metrics, fit
from vidlens.classify.batches import iter_batches
from vidlens.classify.synthetic import make_synthetic_dataset


def product_accuracy(clf, data, with_head: bool) -> float:
    """Accuracy of argmax Σ_present log softmax(aux expert) (+ log softmax of the fused L2 head)."""
    model = clf.model
    model.eval()
    right = 0
    with torch.no_grad():
        for rows, inputs, _targets in iter_batches(data, np.arange(len(data)), model, 512, clf.max_steps):
            out = model(inputs)
            score = torch.zeros(len(rows), data.taxonomy.num_l2)
            for m in model.aux_heads:
                score += out[f"present.{m}"].float()[:, None] * torch.log_softmax(out[f"aux.{m}"], 1)
            if with_head:
                score += torch.log_softmax(out["l2_logits"], 1)
            right += int((score.argmax(1).numpy() == data.l2[rows]).sum())
    return right / len(data)


def main() -> None:
    torch.set_num_threads(1)
    ds = make_synthetic_dataset(n=3000, num_l1=5, l2_per_l1=4, seed=0, modalities=no_conflict(0.9))
    inner, val = validation_setup(ds)
    removed = remove(val, 0.1, 0)
    print("| modal dropout | read as | L2 acc | cost of 10 % removed |\n|---|---|---|---|")
    for p in (0.0, 0.4):
        clf = fit(config(fusion="concat", dropout=p, aux=1.0), ds, inner).classifier
        for name in ("fused head", "product of experts", "product of experts × head"):
            a0, a1 = (classification_metrics(clf.predict(d), d.l2)["l2_accuracy"] if name == "fused head"
                      else product_accuracy(clf, d, with_head=name.endswith("head")) for d in (val, removed))
            print(f"| {p} | {name} | {a0:.3f} | {100 * (a0 - a1):.2f} |", flush=True)


if __name__ == "__main__":
    main()
