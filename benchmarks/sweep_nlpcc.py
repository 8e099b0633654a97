"""The validation-only sweep behind the NLPCC config (BENCHMARKS-classify.md, "validation choices").

Trains on the fixed split's training part, early-stops and reports on its validation part; the test part
never reaches training or selection. Each variant is a set of overrides of the *2026-12-06* config (HMC
λ = 2, no label smoothing): ``benchmarks/configs/nlpcc_hmc.toml`` as it is now, with those two settings
put back. One line of JSON per variant: validation L2 accuracy at the best epoch, the curve and the time.

Usage:
    .venv/bin/python benchmarks/sweep_nlpcc.py --list
    flock /tmp/vidlens-bench.lock .venv/bin/python benchmarks/sweep_nlpcc.py base l2w8_ls01 base_s1 l2w8_ls01_s1

Each variant takes about 90 s on one thread (2^20 buckets: about 500 s).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from bench_classify_text import load

from vidlens.classify import TextEmbedder, TrainConfig, fit, make_splits

OUT = Path(__file__).resolve().parent / "out"
BASE = {"head.l2_weight": 2.0, "head.label_smoothing": 0.0}  # the 2026-12-06 settings
VARIANTS: dict[str, dict[str, float | int]] = {
    "base": {},
    "base_s1": {"train.seed": 1},
    "ep30": {"train.epochs": 30},
    "ls01_p5ep30": {"head.label_smoothing": 0.1, "train.epochs": 30, "train.patience": 5},
    "b20": {"branch.num_buckets": 1 << 20},
    "bs128": {"train.batch_size": 128},
    "ls01": {"head.label_smoothing": 0.1},
    "ls01_s1": {"head.label_smoothing": 0.1, "train.seed": 1},
    "l2w4": {"head.l2_weight": 4.0},
    "l2w8": {"head.l2_weight": 8.0},
    "l2w8_s1": {"head.l2_weight": 8.0, "train.seed": 1},
    "l2w16": {"head.l2_weight": 16.0},
    "l2w4_ls01": {"head.l2_weight": 4.0, "head.label_smoothing": 0.1},
    "l2w4_mm0": {"head.l2_weight": 4.0, "head.mismatch_weight": 0.0},
    "l2w4_slr3": {"head.l2_weight": 4.0, "train.sparse_lr": 3.0},
    "td09": {"branch.token_dropout": 0.9},
    "emb64": {"branch.embed_dim": 64},
    "lr4": {"train.lr": 0.004},
    "l2w8_ls01": {"head.l2_weight": 8.0, "head.label_smoothing": 0.1},
    "l2w8_ls01_s1": {"head.l2_weight": 8.0, "head.label_smoothing": 0.1, "train.seed": 1},
}


def variant(config: TrainConfig, overrides: dict[str, float | int]) -> TrainConfig:
    """``config`` with ``section.key`` overrides (sections: train, head, branch = the title's text branch)."""
    d = config.model_dump()
    for dotted, value in {**BASE, **overrides}.items():
        section, key = dotted.split(".")
        if section == "train":
            d["train"][key] = value
        elif section == "head":
            d["model"]["head"]["params"][key] = value
        elif section == "branch":
            d["model"]["modalities"][0]["text_branch"][key] = value
        else:
            raise SystemExit(f"unknown override section {section!r} in {dotted!r}")
    return TrainConfig.model_validate(d)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", help="variant names (see --list)")
    parser.add_argument("--list", action="store_true", help="print the variants and exit")
    args = parser.parse_args()
    if args.list or not args.variants:
        for name, overrides in VARIANTS.items():
            print(f"{name:14s} {overrides}")
        return
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s): {', '.join(unknown)} (see --list)")
    torch.set_num_threads(1)
    config, ds = load("nlpcc_hmc", TextEmbedder("muse_v3", cache_dir=OUT / "cache"))
    s = config.data.split
    split = make_splits(ds.l2, val=s.val, test=s.test, seed=s.seed)
    split = {"train": split["train"], "val": split["val"]}  # the test part never reaches fit
    for name in args.variants:
        cfg = variant(config, VARIANTS[name])
        torch.manual_seed(0)
        t0 = time.perf_counter()
        result = fit(cfg, ds, split, log=None)
        curve = [round(h.get("val_l2_accuracy", 0.0), 4) for h in result.history]
        print(json.dumps({"variant": name, "val_l2": curve[result.best_epoch - 1], "best_epoch": result.best_epoch,
                          "epochs_run": len(curve), "seconds": round(time.perf_counter() - t0, 1),
                          "curve": curve}), flush=True)


if __name__ == "__main__":
    main()
