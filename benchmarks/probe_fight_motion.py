"""Can motion close the fight_detection gap? Linear probes on motion descriptors, side by side.

The trained classifier reaches 0.72 (frames) on ../shared/data/videos/fight_detection against a target
of 0.92 (BENCHMARKS-classify.md). This probe asks whether the missing piece is motion, which the 1-fps
frame embeddings cannot see. Per clip, with real decoding (``vidlens.media.sample_frames``):

- ``frames``: mean EfficientNet-Lite0 embedding at 1 fps (what the classifier sees);
- ``flow``: dense optical flow (OpenCV Farneback) between consecutive frames at 10 fps, 160 px:
  magnitude statistics, a magnitude-weighted direction histogram and its entropy, a log-magnitude
  histogram, a 4×4 grid of motion energy (sorted, so position-free), frame-difference energy, and a
  ViF-style share of pixels whose flow magnitude changes strongly; mean/std/max over time;
- ``embedding change``: EfficientNet-Lite0 at 5 fps, mean absolute difference of consecutive
  embeddings, their spread over time and the relative step size.

Every feature set gets the same fixed classifier (standardise + logistic regression, C = 0.1, chosen
before looking at any fold) on the same stratified 5 folds (seed 0). Nothing is tuned.

Usage: .venv/bin/python benchmarks/probe_fight_motion.py   (about 3 minutes on 2 cores)
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np

from vidlens.encoders import create_encoder
from vidlens.media import sample_frames

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "videos"
OUT = Path(__file__).resolve().parent / "out"


def flow_descriptor(path: Path) -> np.ndarray:
    """Optical-flow statistics of one clip (10 fps, 160 px)."""
    import cv2

    frames = sample_frames(path, fps=10, max_frames=64, max_side=160).frames
    gray = [cv2.GaussianBlur(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (3, 3), 0) for f in frames]
    if len(gray) < 2:
        gray = gray * 2
    mags, steps = [], []
    for a, b in itertools.pairwise(gray):
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 2, 9, 2, 5, 1.1, 0)
        mag, ang = cv2.cartToPolar(flow[..., 0], flow[..., 1])
        mags.append(mag)
        weights = mag.ravel()
        bins = (ang.ravel() / (2 * np.pi) * 8).astype(int) % 8
        directions = np.bincount(bins, weights=weights, minlength=8) / (weights.sum() + 1e-6)
        magnitudes = np.histogram(np.log1p(mag), bins=8, range=(0, 3))[0] / mag.size
        diff = np.abs(b.astype(np.float32) - a.astype(np.float32))
        h, w = (s // 4 * 4 for s in mag.shape)
        grid = np.sort(mag[:h, :w].reshape(4, h // 4, 4, w // 4).mean(axis=(1, 3)).ravel())
        entropy = -(directions * np.log(directions + 1e-9)).sum()
        steps.append(np.concatenate([[mag.mean(), mag.std(), np.percentile(mag, 90), diff.mean(),
                                      (diff > 25).mean(), entropy], directions, magnitudes, grid]))
    table = np.asarray(steps)
    changes = [np.abs(m2 - m1) for m1, m2 in itertools.pairwise(mags)] or [np.zeros_like(mags[0])]
    vif = [(c > c.mean()).mean() for c in changes]
    change = [c.mean() for c in changes]
    return np.concatenate([table.mean(0), table.std(0), table.max(0), [np.mean(vif), np.mean(change), np.std(change)]])


def embedding_descriptors(encoder, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(mean 1-fps embedding, embedding-change statistics at 5 fps) of one clip."""
    slow = np.asarray(encoder.encode_batch(sample_frames(path, fps=1, max_frames=64, max_side=320).frames).embeddings)
    fast = np.asarray(encoder.encode_batch(sample_frames(path, fps=5, max_frames=64, max_side=320).frames).embeddings)
    if len(fast) < 2:
        fast = np.vstack([fast, fast])
    step = np.diff(fast, axis=0)
    size = np.linalg.norm(step, axis=1) / (np.linalg.norm(fast[1:], axis=1) + 1e-6)
    change = np.concatenate([np.abs(step).mean(0), fast.std(0), [size.mean(), size.std(), size.max()]])
    return slow.mean(0), change


def main() -> None:
    import cv2
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cv2.setNumThreads(1)
    rows = [json.loads(line) for line in (DATA / "manifest.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["path"].startswith("fight_detection/")]
    encoder = create_encoder("efficientnet_lite0")
    t0 = time.perf_counter()
    frames, flow, change, labels = [], [], [], []
    for r in rows:
        path = DATA / r["path"]
        flow.append(flow_descriptor(path))
        mean, delta = embedding_descriptors(encoder, path)
        frames.append(mean)
        change.append(delta)
        labels.append(r["label"] == "fight")
    seconds = time.perf_counter() - t0
    y = np.asarray(labels)
    sets = {
        "frames (1 fps mean embedding)": np.asarray(frames),
        "flow (10 fps optical flow)": np.asarray(flow),
        "embedding change (5 fps)": np.asarray(change),
        "frames + flow": np.hstack([frames, flow]),
        "frames + flow + embedding change": np.hstack([frames, flow, change]),
    }
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    results = {}
    print(f"{len(rows)} clips ({int(y.sum())} fight), descriptors in {seconds:.0f} s")
    print("| descriptor | 5-fold accuracy (mean ± std) |\n|---|---|")
    for name, x in sets.items():
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
        scores = cross_val_score(model, x, y, cv=folds)
        results[name] = {"mean": round(float(scores.mean()), 3), "std": round(float(scores.std()), 3),
                         "dim": x.shape[1]}
        print(f"| {name} ({x.shape[1]}-d) | {scores.mean():.3f} ± {scores.std():.3f} |")
    OUT.mkdir(exist_ok=True)
    (OUT / "probe_fight_motion.json").write_text(json.dumps({"clips": len(rows), "seconds": round(seconds, 1),
                                                             "results": results}, indent=2))


if __name__ == "__main__":
    main()
