"""The controlled multimodal benchmark: reproducing the Taobao write-up's findings on data whose label
is spread over frames, audio and title, with some modalities missing (vidlens.classify.synthetic).

Tables (mean over training seeds, one fixed dataset and split; choices on validation only):

1. fusion: modal attention vs concat vs TFN vs LMF (HMC head);
2. head: HMC vs flat softmax; mismatch loss on (β = 0.1) vs off (β = 0): L2 accuracy and the raw rate
   at which the L1 and L2 heads disagree before consistent decoding;
3. modal dropout off / on (p = 0.2), tested with 0 %, 10 % and 40 % of each modality's values removed
   at test time on top of what is naturally missing.

``--dropout-sweep`` asks why removal still costs points with modal dropout on: on the *validation*
split only (early stopping on a part carved out of training), modal dropout p ∈ {0, 0.2, 0.4} × 2 seeds,
on the default data (modalities that complement each other: each shows the class for 50–70 % of
videos) and on a redundant variant (each modality shows the class for 90 % of videos, weaker signal).

``--regimes`` asks where Taobao's "< 0.5 points" can hold: validation only, concat fusion, modal dropout
p ∈ {0, 0.4} × 2 seeds, on the default data and on data without conflicting evidence (a modality either
shows the true class or is noise) whose every modality alone shows the class for 90 % / 97 % of videos,
nearly always present in training. Besides the cost of removal it scores each pattern of present
modalities on the fully present validation videos: all three, each pair, each one alone.

``--speed`` instead times training on 10,000 videos with real-sized features (frames 1280-d × 20
steps through NetVLAD, audio 512-d × 10 steps, title 512-d + n-gram branch).

Usage:
    .venv/bin/python benchmarks/bench_classify_synthetic.py [--seeds 3] [--n 4000]
    .venv/bin/python benchmarks/bench_classify_synthetic.py --dropout-sweep
    .venv/bin/python benchmarks/bench_classify_synthetic.py --regimes
    .venv/bin/python benchmarks/bench_classify_synthetic.py --speed
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vidlens.classify import TrainConfig, classification_metrics, fit, make_splits
from vidlens.classify.synthetic import SyntheticModality, make_synthetic_dataset

OUT = Path(__file__).resolve().parent / "out"


def config(fusion="modal_attention", head="hmc", mismatch=0.1, dropout=0.0, seed=0, epochs=30, aux=0.0):
    fusion_params = {"modal_attention": {"hidden_dim": 64}, "tfn": {"proj_dim": 8}, "lmf": {}}.get(fusion, {})
    head_params = {"hmc": {"mismatch_weight": mismatch}}.get(head, {})
    return TrainConfig.from_dict({
        "name": f"{fusion}-{head}",
        "model": {
            "modalities": [
                {"name": "frames", "aggregator": {"name": "netvlad", "params": {"num_clusters": 4, "proj_dim": 64}}},
                {"name": "audio", "aggregator": {"name": "netvlad", "params": {"num_clusters": 4, "proj_dim": 32}}},
                {"name": "title"},
            ],
            "fusion": {"name": fusion, "params": fusion_params},
            "head": {"name": head, "params": head_params},
            "modal_dropout": dropout,
            "aux_loss_weight": aux,
        },
        "train": {"epochs": epochs, "patience": 5, "batch_size": 64, "lr": 3e-3, "seed": seed},
    })


def remove(ds, share: float, seed: int):
    """Hide ``share`` of each modality's present values (independently), keeping one per video."""
    rng = np.random.default_rng(10_000 + seed)
    out = ds
    names = list(ds.modalities)
    draws = {m: rng.random(len(ds)) < share for m in names}
    keep_one = rng.integers(0, len(names), size=len(ds))
    for j, m in enumerate(names):
        others_gone = np.all([draws[o] | ~ds.modalities[o].present for o in names if o != m], axis=0)
        drop = draws[m] & ~(others_gone & (keep_one == j))
        out = out.with_presence(m, ~drop)
    return out


def run(cfg, ds, split, missing=(0.0,)):
    result = fit(cfg, ds, split)
    test = ds.subset(split["test"])
    out = {}
    for share in missing:
        pred = result.classifier.predict(remove(test, share, 0) if share else test)
        out[share] = classification_metrics(pred, test.l2)
    return out


def mean(rows, key):
    vals = [r[key] for r in rows if key in r]
    return round(float(np.mean(vals)), 4) if vals else None


def tables(n: int, seeds: int) -> dict:
    ds = make_synthetic_dataset(n=n, num_l1=5, l2_per_l1=4, seed=0)
    split = make_splits(ds.l2, val=0.15, test=0.25, seed=0)
    presence = {m: round(float(d.present.mean()), 3) for m, d in ds.modalities.items()}
    print(f"dataset: {n} videos, 5 L1 / 20 L2, presence {presence}", file=sys.stderr)
    experiments = {
        "fusion": {f: dict(fusion=f) for f in ("modal_attention", "concat", "tfn", "lmf")},
        "head": {"hmc β=0.1": dict(), "hmc β=0 (no mismatch loss)": dict(mismatch=0.0),
                 "flat softmax": dict(head="flat_softmax")},
        "modal dropout": {"off": dict(dropout=0.0), "on (p=0.2)": dict(dropout=0.2)},
    }
    results: dict = {"dataset": {"n": n, "presence": presence, "test": len(split["test"])}}
    for table, variants in experiments.items():
        results[table] = {}
        for label, kw in variants.items():
            runs = []
            for seed in range(seeds):
                t0 = time.perf_counter()
                missing = (0.0, 0.1, 0.4) if table == "modal dropout" else (0.0,)
                runs.append(run(config(seed=seed, **kw), ds, split, missing))
                print(f"{table} / {label} / seed {seed}: "
                      f"{ {s: round(m['l2_accuracy'], 4) for s, m in runs[-1].items()} } "
                      f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
            row = {}
            for share in runs[0]:
                rs = [r[share] for r in runs]
                suffix = "" if share == 0.0 else f"@{int(share * 100)}%missing"
                row[f"l2_accuracy{suffix}"] = mean(rs, "l2_accuracy")
                if share == 0.0:
                    row["l1_accuracy"] = mean(rs, "l1_accuracy")
                    row["raw_mismatch_rate"] = mean(rs, "raw_mismatch_rate")
            results[table][label] = row
    return results


REDUNDANT = (
    SyntheticModality("frames", 32, steps=8, informative=0.9, signal_steps=2, strength=0.72, missing=0.1),
    SyntheticModality("audio", 16, steps=6, informative=0.9, signal_steps=3, strength=0.54, missing=0.3),
    SyntheticModality("title", 24, informative=0.9, misleading=0.05, strength=0.84, missing=0.2),
)


def validation_setup(ds):
    """For the validation-only studies: an inner split whose early-stopping part is carved out of training
    (so the validation videos stay unseen) and whose ``test`` is the validation split; and that split."""
    split = make_splits(ds.l2, val=0.15, test=0.25, seed=0)
    train = np.array(split["train"])
    np.random.default_rng(1).shuffle(train)
    stop = len(train) // 6
    inner = {"train": list(train[stop:]), "val": list(train[:stop]), "test": split["val"]}
    return inner, ds.subset(split["val"])


REMOVED = (0.0, 0.1, 0.4)  # shares of each modality removed at validation time


def removal_accuracy(clf, val) -> dict[float, float]:
    """L2 accuracy on ``val`` as it is and with 10 % / 40 % of each modality removed."""
    return {share: classification_metrics(clf.predict(remove(val, share, 0) if share else val),
                                          val.l2)["l2_accuracy"] for share in REMOVED}


def removal_summary(mean: dict) -> dict[str, float]:
    """Accuracy with nothing removed and, in points, what removing 10 % / 40 % costs."""
    return {"l2_accuracy": round(mean[0.0], 4), "cost@10%": round(100 * (mean[0.0] - mean[0.1]), 2),
            "cost@40%": round(100 * (mean[0.0] - mean[0.4]), 2)}


def dropout_sweep(n: int) -> dict:
    """Validation-only: the cost of removing 10 % / 40 % of each modality, by modal-dropout rate."""
    out: dict = {}
    for data, modalities in (("complementary (default)", None), ("redundant", REDUNDANT)):
        extra = {"modalities": modalities} if modalities else {}
        ds = make_synthetic_dataset(n=n, num_l1=5, l2_per_l1=4, seed=0, **extra)
        inner, val = validation_setup(ds)
        out[data] = {}
        for p in (0.0, 0.2, 0.4):
            rows = []
            for seed in range(2):
                clf = fit(config(dropout=p, seed=seed), ds, inner).classifier
                acc = removal_accuracy(clf, val)
                rows.append(acc)
                print(f"{data} / p={p} / seed {seed}: {acc}", file=sys.stderr, flush=True)
            mean = {share: float(np.mean([r[share] for r in rows])) for share in REMOVED}
            out[data][f"p={p}"] = removal_summary(mean)
    return out


def no_conflict(informative: float) -> tuple[SyntheticModality, ...]:
    """Every modality alone shows the class for ``informative`` of the videos and is noise otherwise
    (never another class), with a strong signal, and is nearly always present in training."""
    return (
        SyntheticModality("frames", 32, steps=8, informative=informative, misleading=0.0, signal_steps=4,
                          strength=2.4, missing=0.02),
        SyntheticModality("audio", 16, steps=6, informative=informative, misleading=0.0, signal_steps=3,
                          strength=2.4, missing=0.1),
        SyntheticModality("title", 24, informative=informative, misleading=0.0, strength=2.8, missing=0.05),
    )


def pattern_accuracy(clf, val) -> dict[str, float]:
    """L2 accuracy on the validation videos that have every modality, shown all / all but one / one."""
    names = list(val.modalities)
    full = val.subset(np.flatnonzero(np.all([val.modalities[m].present for m in names], axis=0)))
    out = {}
    for shown in [tuple(names)] + [tuple(n for n in names if n != m) for m in names] + [(m,) for m in names]:
        ds = full
        for m in names:
            if m not in shown:
                ds = ds.with_presence(m, np.zeros(len(full), bool))
        out["+".join(shown)] = classification_metrics(clf.predict(ds), full.l2)["l2_accuracy"]
    return out


def regimes(n: int) -> dict:
    """Validation-only: the cost of removal and the accuracy per pattern of modalities, by data regime."""
    out: dict = {}
    for data, modalities in (("complementary (default)", None), ("no conflict, 90 % informative", no_conflict(0.9)),
                             ("no conflict, 97 % informative", no_conflict(0.97))):
        extra = {"modalities": modalities} if modalities else {}
        ds = make_synthetic_dataset(n=n, num_l1=5, l2_per_l1=4, seed=0, **extra)
        inner, val = validation_setup(ds)
        out[data] = {}
        for p in (0.0, 0.4):
            rows = []
            for seed in range(2):
                clf = fit(config(fusion="concat", dropout=p, seed=seed), ds, inner).classifier
                acc = removal_accuracy(clf, val)
                rows.append({**acc, **pattern_accuracy(clf, val)})
                print(f"{data} / p={p} / seed {seed}: {rows[-1]}", file=sys.stderr, flush=True)
            mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
            out[data][f"p={p}"] = {**removal_summary(mean),
                                   "patterns": {k: round(v, 4) for k, v in mean.items() if isinstance(k, str)}}
    return out


def speed(n: int = 10_000) -> dict:
    mods = (
        SyntheticModality("frames", 1280, steps=20, informative=0.7, signal_steps=3, strength=0.6, missing=0.05),
        SyntheticModality("audio", 512, steps=10, informative=0.5, signal_steps=3, strength=0.5, missing=0.3),
        SyntheticModality("title", 512, informative=0.6, misleading=0.2, strength=0.8, missing=0.1, words=True),
    )
    t0 = time.perf_counter()
    ds = make_synthetic_dataset(n=n, num_l1=30, l2_per_l1=5, modalities=mods, seed=0)
    made = time.perf_counter() - t0
    split = make_splits(ds.l2, val=0.1, test=0.1, seed=0)
    cfg = TrainConfig.from_dict({
        "name": "speed",
        "data": {"max_steps": 32},
        "model": {
            "modalities": [
                {"name": "frames", "aggregator": {"name": "netvlad", "params": {"num_clusters": 8, "proj_dim": 256}}},
                {"name": "audio", "aggregator": {"name": "netvlad", "params": {"num_clusters": 4, "proj_dim": 128}}},
                {"name": "title", "text_branch": {"out_dim": 128, "embed_dim": 64, "num_buckets": 100000}},
            ],
            "fusion": {"name": "modal_attention", "params": {"hidden_dim": 128}},
            "head": {"name": "hmc"},
            "modal_dropout": 0.1,
        },
        "train": {"epochs": 15, "patience": 3, "batch_size": 128, "lr": 2e-3},
    })
    cpu0 = time.process_time()
    result = fit(cfg, ds, split, progress=True)
    cpu = time.process_time() - cpu0
    test = ds.subset(split["test"])
    m = classification_metrics(result.classifier.predict(test), test.l2)
    return {"videos": n, "train_videos": len(split["train"]), "epochs_run": len(result.history),
            "best_epoch": result.best_epoch, "train_seconds": round(result.seconds, 1),
            "train_cpu_seconds": round(cpu, 1), "load_average": [round(x, 1) for x in __import__("os").getloadavg()],
            "seconds_per_epoch": round(result.seconds / len(result.history), 1), "data_seconds": round(made, 1),
            "threads": torch.get_num_threads(), "test_l2_accuracy": round(m["l2_accuracy"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--dropout-sweep", action="store_true", help="validation-only modal-dropout sweep")
    parser.add_argument("--regimes", action="store_true", help="validation-only: removal cost by data regime")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.speed:
        res, name = speed(), "bench_classify_speed.json"
    elif args.regimes:
        res, name = regimes(min(args.n, 3000)), "bench_classify_regimes.json"
    elif args.dropout_sweep:
        res, name = dropout_sweep(min(args.n, 3000)), "bench_classify_dropout_sweep.json"
    else:
        res, name = tables(args.n, args.seeds), "bench_classify_synthetic.json"
    OUT.mkdir(exist_ok=True)
    (OUT / name).write_text(json.dumps(res, ensure_ascii=False, indent=2))
    print(json.dumps(res, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
