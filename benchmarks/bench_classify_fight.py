"""fight_detection: real surveillance clips, real encoders, 5-fold cross-validation.

Ingests ../shared/data/videos/fight_detection (205 clips, fight / no_fight) into a library under
benchmarks/out/fight-lib (kept, so a re-run does not re-extract), extracts frames (EfficientNet-Lite0)
and audio (aisfx) with the real encoders, then trains frames-only, audio-only and frames+audio
classifiers on the same stratified 5 folds (each fold's training part gives up a validation split for
early stopping) and reports mean test accuracy.

Usage:
    .venv/bin/python benchmarks/bench_classify_fight.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import vidlens
from vidlens.classify import TrainConfig, classification_metrics, dataset_from_library, fit, kfold_splits
from vidlens.taxonomy import Taxonomy

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "videos"
OUT = HERE / "out"
TAXONOMY = Taxonomy.from_records([
    {"name": "surveillance", "children": [
        {"name": "fight", "aliases": ["打架"], "description": "people fighting"},
        {"name": "no_fight", "aliases": ["正常"], "description": "people not fighting"},
    ]},
])


def config(modalities: list[str], fusion: str, seed: int) -> TrainConfig:
    mods = [{"name": m, "aggregator": {"name": "mean"}, "project_dim": 64} for m in modalities]
    return TrainConfig.from_dict({
        "name": "fight-" + "_".join(modalities),
        "model": {"modalities": mods, "fusion": {"name": fusion if len(mods) > 1 else "concat"},
                  "head": {"name": "flat_softmax", "params": {"dropout": 0.3}},
                  "modal_dropout": 0.2 if len(mods) > 1 else 0.0},
        "train": {"epochs": 60, "patience": 10, "batch_size": 16, "lr": 1e-3, "weight_decay": 1e-3, "seed": seed},
    })


def main() -> None:
    torch.set_num_threads(1)
    lib_dir = OUT / "fight-lib"
    manifest = OUT / "fight-manifest.jsonl"
    OUT.mkdir(exist_ok=True)
    rows = [json.loads(x) for x in (DATA / "manifest.jsonl").read_text().splitlines() if x.strip()]
    rows = [{"path": str(DATA / r["path"]), "labels": r["label"]} for r in rows if r["path"].startswith("fight_")]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    lib = vidlens.open(lib_dir)
    t0 = time.perf_counter()
    ingest = lib.ingest(manifest)
    print(f"ingested {len(rows)} clips ({ingest.counts}) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    t0 = time.perf_counter()
    report = lib.extract(["frames", "audio"], progress=True)
    print(f"extracted in {time.perf_counter() - t0:.1f} s: {json.dumps(report.to_dict()['features'])}",
          file=sys.stderr)
    ds = dataset_from_library(lib, ["frames", "audio"], TAXONOMY, skip_unusable=True)
    print(f"dataset: {ds.describe()}", file=sys.stderr)
    folds = kfold_splits(ds.l2, folds=5, val=0.15, seed=0)
    variants = {"frames": (["frames"], "concat"), "audio": (["audio"], "concat"),
                "frames+audio (concat)": (["frames", "audio"], "concat"),
                "frames+audio (modal attention)": (["frames", "audio"], "modal_attention")}
    table = {}
    for label, (mods, fusion) in variants.items():
        accs = []
        for k, split in enumerate(folds):
            sub = ds
            result = fit(config(mods, fusion, seed=k), sub, split)
            test = ds.subset(split["test"])
            accs.append(classification_metrics(result.classifier.predict(test), test.l2)["l2_accuracy"])
        table[label] = {"accuracy_mean": round(float(np.mean(accs)), 4), "accuracy_std": round(float(np.std(accs)), 4),
                        "folds": [round(a, 4) for a in accs]}
        print(label, table[label], file=sys.stderr, flush=True)
    out = {"clips": len(ds), "presence": {m: round(float(d.present.mean()), 3) for m, d in ds.modalities.items()},
           "encoders": ds.encoder_versions, "table": table}
    (OUT / "bench_classify_fight.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    lib.close()


if __name__ == "__main__":
    main()
