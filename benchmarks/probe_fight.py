"""Linear probe on the real fight / no_fight clips: do the pooled frame and audio features separate them?

Usage: .venv/bin/python benchmarks/probe_fight.py [--data ../shared/data/videos]

Ingests fight_detection/{fight,no_fight} into a library under benchmarks/out/, extracts frames, cover
and audio with the real encoders (resumable: a second run reuses the features), then runs logistic
regression (standardised features, C=1, fixed) with stratified 5-fold CV (shuffled, seed 0) on:
frames alone, audio alone (clips with an audio track only), and frames + audio (audio absent → zeros
plus a presence flag). Reports mean ± std accuracy and per-class precision/recall from the pooled
out-of-fold predictions. Nothing is tuned: one fixed setting.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import classification_report
from sklearn.model_selection import StratifiedKFold, cross_val_predict, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import vidlens

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT.parents[1] / "shared" / "data" / "videos")
    args = parser.parse_args()
    lib = vidlens.open(OUT / "fight_lib")
    t0 = time.perf_counter()
    report = lib.ingest(args.data / "fight_detection", progress=True)
    print(f"ingest: {report.counts} in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    ex = lib.extract(["frames", "cover", "audio"], progress=True)
    print(f"extract: {ex.videos} videos in {time.perf_counter() - t0:.1f} s; errors: {len(ex.errors)}")

    labels: dict[str, int] = {}
    for video in lib.videos():
        path = video["paths"][0]
        labels[video["id"]] = 0 if "/no_fight/" in path else 1
    ids = sorted(labels)
    y = np.array([labels[i] for i in ids])
    frames = lib.feature_matrix("frames", ids)
    assert frames.ids == ids, "every clip must have frame features"
    audio = lib.feature_matrix("audio", ids)
    a_index = audio.index()
    has_audio = np.array([i in a_index for i in ids])
    a_full = np.zeros((len(ids), audio.vectors.shape[1]), np.float32)
    for row, vid in enumerate(ids):
        if vid in a_index:
            a_full[row] = audio.vectors[a_index[vid]]
    sets = {
        "frames": (frames.vectors, y),
        "audio (clips with sound)": (audio.vectors, np.array([labels[i] for i in audio.ids])),
        "frames + audio": (np.hstack([frames.vectors, a_full, has_audio[:, None].astype(np.float32)]), y),
    }
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    print(f"\n{len(ids)} clips: {int(y.sum())} fight, {int((1 - y).sum())} no_fight; "
          f"{int(has_audio.sum())} with an audio track\n")
    print("| features | clips | 5-fold accuracy (mean ± std) | fight P / R | no_fight P / R |")
    print("|---|---:|---:|---:|---:|")
    for name, (x, yy) in sets.items():
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        scores = cross_val_score(model, x, yy, cv=cv)
        pred = cross_val_predict(model, x, yy, cv=cv)
        rep = classification_report(yy, pred, output_dict=True, zero_division=0)
        print(f"| {name} | {len(yy)} | {scores.mean():.3f} ± {scores.std():.3f} | "
              f"{rep['1']['precision']:.2f} / {rep['1']['recall']:.2f} | "
              f"{rep['0']['precision']:.2f} / {rep['0']['recall']:.2f} |")
    lib.close()


if __name__ == "__main__":
    main()
