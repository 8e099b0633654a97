"""Probe: does blending the zero-shot scores into the trained model's help where classes have few examples?

Usage:
    .venv/bin/python benchmarks/probe_bilibili_blend.py      # about 2 min on 2 cores (text vectors cached)

Bilibili (title + desc + dynamic → 30 L1 / 98 L2, 359 rows): the same stratified 5 folds and the same
trained model as ``bench_classify_text.py --datasets bilibili``. For each fold the trained model's and
the zero-shot classifier's L1 confidences are mixed, ``(1 − α) · trained + α · zero-shot`` (arithmetic)
or ``(1 − α) · log trained + α · log zero-shot`` (geometric), for α = 0, 0.1, …, 1. α is chosen on the
folds' validation parts pooled (the first α with the best accuracy); the test parts are reported beside
it for every α, so that the choice can be checked, but they are not used to make it.

This is a probe, not a product setting: the library does not blend yet (see BENCHMARKS-classify.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_classify_text as bench

ALPHAS = [round(0.1 * i, 1) for i in range(11)]


def main() -> None:
    torch.set_num_threads(1)
    embedder = bench.TextEmbedder("muse_v3", cache_dir=bench.OUT / "cache")
    config, ds = bench.load("bilibili", embedder)
    zero_shot = bench.ZeroShotClassifier(ds.taxonomy, embedder, name="bilibili-zero-shot")
    folds = bench.kfold_splits(ds.l2, folds=5, val=config.data.split.val, seed=config.data.split.seed)
    parents = np.asarray(ds.taxonomy.l2_to_l1)
    hits = {(part, mix, a): [] for part in ("val", "test") for mix in ("arithmetic", "geometric") for a in ALPHAS}
    for k, split in enumerate(folds):
        torch.manual_seed(0)
        result = bench.fit(config, ds, split, log=None)
        for part in ("val", "test"):
            sub = ds.subset(split[part])
            truth = parents[np.asarray(sub.l2)]
            trained = result.classifier.predict(sub).l1_probs
            zs = zero_shot.predict(sub).l1_probs
            for a in ALPHAS:
                hits[(part, "arithmetic", a)] += list(((1 - a) * trained + a * zs).argmax(1) == truth)
                hits[(part, "geometric", a)] += list(
                    ((1 - a) * np.log(trained + 1e-9) + a * np.log(zs + 1e-9)).argmax(1) == truth)
        bench.log(f"fold {k} done")
    rows = {mix: [{"alpha": a, "val_l1": float(np.mean(hits[("val", mix, a)])),
                   "test_l1": float(np.mean(hits[("test", mix, a)]))} for a in ALPHAS]
            for mix in ("arithmetic", "geometric")}
    chosen = {mix: max(r, key=lambda x: (x["val_l1"], -x["alpha"])) for mix, r in rows.items()}
    out = {"rows": rows, "chosen_on_validation": chosen,
           "validation_rows": len(hits[("val", "arithmetic", 0.0)]),
           "test_rows": len(hits[("test", "arithmetic", 0.0)])}
    bench.OUT.mkdir(exist_ok=True)
    (bench.OUT / "probe_bilibili_blend.json").write_text(json.dumps(out, indent=2))
    print("| α | arithmetic: val L1 | test L1 | geometric: val L1 | test L1 |\n|---|---|---|---|---|")
    for ar, ge in zip(rows["arithmetic"], rows["geometric"], strict=True):
        print(f"| {ar['alpha']:.1f} | {ar['val_l1']:.3f} | {ar['test_l1']:.3f} "
              f"| {ge['val_l1']:.3f} | {ge['test_l1']:.3f} |")
    for mix, c in chosen.items():
        print(f"chosen on validation ({mix}): α {c['alpha']:.1f}, val {c['val_l1']:.3f}, test {c['test_l1']:.3f}")


if __name__ == "__main__":
    main()
