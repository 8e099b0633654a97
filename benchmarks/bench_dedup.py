"""Near-duplicate detection on real clips, Meta VSC 2022 style: micro-AP and recall@1 of copy → original.

Usage:
    .venv/bin/python benchmarks/bench_dedup.py [--positives 60] [--negatives 30] [--ablations]

Protocol. The real clips of ../shared/data/videos are split into a *reference* set (every clip but
``negatives`` held-out ones). ``positives`` reference clips each get two transformed copies (queries whose
original is in the reference set); the held-out clips get the same kinds of transformed copies (queries
with no original in the reference set: every match they get is a false positive). Transforms (ffmpeg
CLI): heavy re-encoding, half-size resize, 80 % centre crop, letterbox, logo overlay, 1.5× speed-up,
trimming the first 30 %, and two combinations. Every query is scored against every reference and
predicts its 10 best; the predictions of all queries are pooled into one ranked list for micro-AP;
recall@1 is over the positive queries. Descriptors follow the VSC budget (≤ 512-d, ≤ 1 per second).

Dev / test. Queries are split by their source clip: ``sha1(clip name)`` even → dev, odd → test (both for
copies of reference clips and of held-out clips); the reference set is the same for both. Every setting
of the library's copy descriptors was chosen on the dev part; the test part and the whole set are
reported as they came.

Scene-grouped variant (side by side, the same copies). The fight clips are consecutive cuts of the same
surveillance footage, so a copy of a held-out clip may rightly look like the neighbouring cut. Groups
are linked clips: two clips of one folder with consecutive file numbers (``fi087``, ``fi088``) whose
stored frame vectors agree (cosine of the whitened clip means ≥ 0.25), or any two clips whose vectors
agree closely (≥ 0.35; the fight and no-fight folders are cut from the same footage: ``fi137`` and
``nofi105`` are one camera seconds apart). Random pairs of clips: 99th percentile 0.12. The variant
removes from the reference set every clip that shares a group with a held-out clip (and the copies of
removed clips from the queries).

Compared, on the same queries: the stored 1-fps EfficientNet-Lite0 frame vectors (classification
features: the centre square of the frame), PCA-whitened to 256-d on the references; the copy
descriptors of 2026-12-06 (black borders cut, whole picture and centre views at reduced detail, pooled
embedding, one vector per second, PCA-whitened); and the library's copy descriptors now
(:mod:`vidlens.retrieval.copy_descriptors`: the same views, features over 2 × 2 cells, and a whitening
that also leaves out the directions random copy-style edits of the references' own frames move). Every
whitening is fitted on the references (their frames, and their edited-frame pairs); one more row fits
it on the whole benchmark library, copies included, as ``vidlens dedup`` does. Scores: the temporal
alignment the library uses, and the single best frame pair. ``--thresholds`` prints the precision and
recall of the pooled dev predictions at several alignment scores (how the library's default threshold
was chosen).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

import vidlens
from vidlens.retrieval.copy_descriptors import CopyDescriptorConfig, CopyVectors, as_dict
from vidlens.retrieval.dedup import DEFAULT_THRESHOLD, FrameWhitening, align, fit_whitening, library_copy_vectors
from vidlens.retrieval.embedder import l2n
from vidlens.retrieval.metrics import micro_average_precision

OUT = Path(__file__).resolve().parent / "out"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"

X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
TRANSFORMS: dict[str, list[str]] = {
    "reencode": ["-an", *X264, "-crf", "38"],
    "resize": ["-an", "-vf", "scale=trunc(iw/4)*2:trunc(ih/4)*2", *X264, "-crf", "23"],
    "crop": ["-an", "-vf", "crop=trunc(iw*0.4)*2:trunc(ih*0.4)*2", *X264, "-crf", "23"],
    "letterbox": ["-an", "-vf", "scale=trunc(iw/4)*2:trunc(ih/4)*2,pad=iw:trunc(ih*0.75)*2:0:(oh-ih)/2:black",
                  *X264, "-crf", "23"],
    "logo": ["-an", "-vf", "drawbox=x=iw*0.05:y=ih*0.05:w=iw*0.3:h=ih*0.15:color=white@0.85:t=fill,"
             "drawbox=x=iw*0.65:y=ih*0.8:w=iw*0.3:h=ih*0.12:color=yellow@0.7:t=fill", *X264, "-crf", "23"],
    "speed": ["-an", "-vf", "setpts=PTS/1.5", *X264, "-crf", "23"],
    "trim": ["-an", "-ss", "TRIM", *X264, "-crf", "23"],
    "crop+reencode": ["-an", "-vf", "crop=trunc(iw*0.4)*2:trunc(ih*0.4)*2,scale=trunc(iw/4)*2:trunc(ih/4)*2",
                      *X264, "-crf", "35"],
    "letterbox+logo": ["-an", "-vf", "pad=iw:trunc(ih*0.7)*2:0:(oh-ih)/2:black,"
                       "drawbox=x=iw*0.7:y=ih*0.05:w=iw*0.25:h=ih*0.1:color=white@0.9:t=fill", *X264, "-crf", "28"],
}
PREVIOUS = {"grid": 1, "augment_frames": 0}  # the copy descriptors of 2026-12-06
# Ablations of the copy descriptors (each one more pass of the frame encoder over every clip).
ABLATIONS: dict[str, dict[str, float]] = {
    "pooled embedding (grid 1)": {"grid": 1},
    "plain whitening (no edited pairs)": {"augment_frames": 0},
    "no border cut": {"max_border": 0.0},
    "no centre view": {"centre": 0.0},
    "full detail": {"detail": 0},
}


def transform(src: Path, dst: Path, kind: str, duration: float) -> Path:
    if dst.exists():
        return dst
    args = [a.replace("TRIM", f"{0.3 * duration:.2f}") for a in TRANSFORMS[kind]]
    if kind == "trim":  # seek before the input for an exact cut
        cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-ss", args[2], "-i", str(src), *args[3:]]
    else:
        cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src), *args]
    tmp = dst.with_name("tmp-" + dst.name)
    subprocess.run([*cmd, str(tmp)], check=True)
    os.replace(tmp, dst)
    return dst


def is_dev(clip: Path) -> bool:
    """The fixed dev/test split of source clips (by a hash of the clip's name)."""
    return int(hashlib.sha1(clip.stem.encode()).hexdigest(), 16) % 2 == 0


def scene_groups(clips: list[Path], means: dict[Path, np.ndarray], neighbour_sim: float, any_sim: float
                 ) -> dict[Path, int]:
    """Group number of each clip: clips are linked when their file numbers are consecutive in one folder
    and their vectors agree (cosine ≥ ``neighbour_sim``), or when their vectors agree closely whatever
    their names (cosine ≥ ``any_sim``: the fight and no-fight folders hold cuts of the same footage); a
    group is a connected set of links."""
    parent = {c: c for c in clips}

    def root(c: Path) -> Path:
        while parent[c] != c:
            c = parent[c]
        return c

    def sim(a: Path, b: Path) -> float:
        return float(means[a] @ means[b]) if a in means and b in means else -1.0

    number = {}
    for c in clips:
        m = re.fullmatch(r"([a-z]+)(\d+)", c.stem)
        if m:
            number[(c.parent, m.group(1), int(m.group(2)))] = c
    links = [(c, nxt) for (folder, prefix, num), c in number.items()
             if (nxt := number.get((folder, prefix, num + 1))) is not None and sim(c, nxt) >= neighbour_sim]
    links += [(a, b) for i, a in enumerate(clips) for b in clips[i + 1:] if sim(a, b) >= any_sim]
    for a, b in links:
        parent[root(a)] = root(b)
    roots = {r: i for i, r in enumerate(dict.fromkeys(root(c) for c in clips))}
    return {c: roots[root(c)] for c in clips}


def precision_recall(per_query: list[tuple[np.ndarray, int, str, bool]], thresholds: list[float]
                     ) -> list[dict[str, float]]:
    """Precision and recall of the dev queries' pooled top-10 predictions at each alignment score."""
    rows = [r for r in per_query if r[3]]
    out = []
    for t in thresholds:
        kept = [(s[i] >= t, i == target) for s, target, _, _ in rows for i in np.argsort(-s)[:10]]
        found = sum(1 for keep, hit in kept if keep and hit)
        predicted = sum(1 for keep, _ in kept if keep)
        n_pos = sum(1 for r in rows if r[1] >= 0)
        out.append({"threshold": t, "precision": found / predicted if predicted else 1.0,
                    "recall": found / n_pos if n_pos else 0.0, "false_pairs": predicted - found})
    return out


def evaluate(ref_seqs: dict[Path, np.ndarray], queries: list[tuple[np.ndarray, Path | None, str, bool]],
             score: str, thresholds: list[float] | None = None) -> dict[str, object]:
    """micro-AP, recall@1 and recall@1 per transform over ``queries`` = (descriptors, original or None,
    transform, dev?)."""
    ref_list = list(ref_seqs)
    pos = {p: i for i, p in enumerate(ref_list)}
    out: dict[str, object] = {}
    per_query = []
    for q, src, kind, dev in queries:
        if score == "alignment":
            s = np.array([align(q, ref_seqs[p]).score for p in ref_list])
        else:
            s = np.array([float((q @ ref_seqs[p].T).max()) for p in ref_list])
        per_query.append((s, pos.get(src, -1) if src is not None else -1, kind, dev))
    if thresholds:
        out["dev_thresholds"] = precision_recall(per_query, thresholds)
    for subset in ("dev", "test", "all"):
        rows = [r for r in per_query if subset == "all" or r[3] == (subset == "dev")]
        scores, positives, hits, kinds = [], [], [], {}
        for s, t, kind, _ in rows:
            top = np.argsort(-s)[:10]
            scores.extend(s[top].tolist())
            positives.extend((top == t).tolist())
            if t >= 0:
                hits.append(top[0] == t)
                kinds.setdefault(kind, []).append(top[0] == t)
        n_pos = len(hits)
        out[subset] = {"micro_ap": micro_average_precision(scores, positives, n_pos),
                       "recall@1": float(np.mean(hits)) if hits else 0.0, "positives": n_pos,
                       "negatives": len(rows) - n_pos,
                       "recall@1_by_transform": {k: float(np.mean(v)) for k, v in kinds.items()}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--positives", type=int, default=60, help="reference clips that get copies")
    ap.add_argument("--negatives", type=int, default=30, help="held-out clips whose copies have no original")
    ap.add_argument("--dim", type=int, default=256, help="whitened descriptor size (≤ 512)")
    ap.add_argument("--group-neighbour-sim", type=float, default=0.25,
                    help="cosine (whitened stored vectors) from which neighbouring cuts are one scene")
    ap.add_argument("--group-any-sim", type=float, default=0.35,
                    help="cosine from which any two clips are one scene")
    ap.add_argument("--ablations", action="store_true", help="also the copy descriptors without each part")
    ap.add_argument("--thresholds", action="store_true",
                    help="precision / recall of the dev predictions at several alignment scores (library default)")
    ap.add_argument("--work", default=str(OUT / "dedup"), help="work folder (copies and library are cached)")
    args = ap.parse_args()
    manifest = DATA / "manifest.jsonl"
    if not manifest.exists():
        sys.exit(f"needs {manifest} (../shared/data)")
    clips = [DATA / json.loads(line)["path"] for line in manifest.open()]
    clips += sorted(p for p in (DATA / "misc").iterdir() if p.is_file() and p not in clips)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(clips))
    held = [clips[i] for i in order[: args.negatives]]
    refs = [clips[i] for i in order[args.negatives:]]
    pos_src = refs[: args.positives]
    work = Path(args.work)
    copies_dir = work / "copies"
    copies_dir.mkdir(parents=True, exist_ok=True)
    kinds = list(TRANSFORMS)

    lib = vidlens.open(work / "lib")
    from vidlens.media import probe

    jobs = []
    for n, src in enumerate(pos_src + held):
        # two transforms per source clip, cycling through the kinds
        for kind in (kinds[(2 * n) % len(kinds)], kinds[(2 * n + 1) % len(kinds)]):
            dst = copies_dir / f"{'pos' if src in pos_src else 'neg'}-{src.stem}-{kind.replace('+', '_')}.mp4"
            jobs.append((src, dst, kind))
    t = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda j: transform(j[0], j[1], j[2], probe(j[0]).duration), jobs))
    print(f"{len(jobs)} transformed copies in {time.perf_counter() - t:.0f} s", file=sys.stderr)

    report = lib.ingest([*refs, *held, *(j[1] for j in jobs)])
    id_of = {Path(r.item): r.video_id for r in report.results}
    t = time.perf_counter()
    ext = lib.extract(["frames"], progress=False)
    print(f"frames extracted for {ext.videos} videos in {time.perf_counter() - t:.0f} s; errors: {ext.errors[:3]}",
          file=sys.stderr)

    def stored(path: Path) -> CopyVectors | None:
        """The stored 1-fps frame vectors in the copy descriptors' shape (no edited pairs)."""
        s = lib.features(id_of[path]).sequence("frames")
        if s is None or not len(s):
            return None
        s = np.asarray(s, np.float32)
        return CopyVectors(s, np.arange(len(s), dtype=np.float32), np.zeros((0, 2, s.shape[1]), np.float32))

    everything = [*refs, *held, *(j[1] for j in jobs)]
    descriptor_sets: dict[str, dict[Path, CopyVectors]] = {
        "stored 1-fps frame vectors": {p: s for p in everything if (s := stored(p)) is not None}}
    default = "copy descriptors now (library default)"
    configs = {"copy descriptors of 2026-12-06": replace(CopyDescriptorConfig(), **PREVIOUS),
               default: CopyDescriptorConfig()}
    if args.ablations:
        configs |= {f"now, {name}": replace(CopyDescriptorConfig(), **kw) for name, kw in ABLATIONS.items()}
    timings = {}
    for name, cfg in configs.items():
        t = time.perf_counter()
        vecs = library_copy_vectors(lib, config=cfg)
        timings[name] = time.perf_counter() - t
        descriptor_sets[name] = {p: vecs[id_of[p]] for p in everything if id_of[p] in vecs}
        print(f"{name}: {timings[name]:.0f} s (0 when cached)", file=sys.stderr)
    video_seconds = sum(probe(p).duration or 0.0 for p in everything)
    print(f"{video_seconds:.0f} s of video in all", file=sys.stderr)

    # scene groups, from file numbering verified by the stored vectors (whitened on the references)
    base = descriptor_sets["stored 1-fps frame vectors"]
    w0 = fit_whitening([base[p] for p in refs if p in base], FrameWhitening(dim=args.dim))
    means = {p: l2n(w0.transform(base[p].vectors).mean(0, keepdims=True))[0] for p in clips if p in base}
    group = scene_groups(clips, means, args.group_neighbour_sim, args.group_any_sim)
    held_groups = {group[p] for p in held}
    grouped_refs = [p for p in refs if group[p] not in held_groups]
    sizes = np.bincount(list(group.values()))
    print(f"scene groups: {int((sizes > 1).sum())} of more than one clip (largest {sizes.max()}); "
          f"grouped variant drops {len(refs) - len(grouped_refs)} references", file=sys.stderr)

    results: dict[str, object] = {"references": len(refs), "held_out": len(held), "copies": len(jobs),
                                  "copy_descriptor_config": as_dict(CopyDescriptorConfig()),
                                  "descriptor_seconds": timings, "video_seconds": video_seconds, "rows": []}

    fits = [(name, protocol, ref_set, "references")
            for name in descriptor_sets for protocol, ref_set in (("original", refs), ("scene-grouped", grouped_refs))]
    fits.insert(5, (default, "original", refs, "whole library"))  # what `vidlens dedup` does
    for name, protocol, ref_set, fit_on in fits:
        seqs = {p: entry.vectors for p, entry in descriptor_sets[name].items()}
        ref_ok = [p for p in ref_set if p in seqs]
        fit_paths = ref_ok if fit_on == "references" else [p for p in everything if p in seqs]
        whitening = fit_whitening([descriptor_sets[name][p] for p in fit_paths], FrameWhitening(dim=args.dim))
        ref_desc = {p: whitening.transform(seqs[p]) for p in ref_ok}
        queries = [(whitening.transform(seqs[dst]), src if src in pos_src and src in ref_desc else None,
                    kind, is_dev(src))
                   for src, dst, kind in jobs if dst in seqs and (src in held or src in ref_desc)]
        for score in ("alignment", "best frame pair"):
            if score != "alignment" and (protocol != "original" or fit_on != "references"):
                continue
            thresholds = ([round(0.3 + 0.05 * i, 2) for i in range(11)]
                          if args.thresholds and name == default and protocol == "original" and score == "alignment"
                          else None)
            row = {"descriptors": name, "protocol": protocol, "score": score, "whitening_fit_on": fit_on,
                   "dim": int(next(iter(ref_desc.values())).shape[1]), "references": len(ref_desc),
                   **evaluate(ref_desc, queries, score, thresholds)}
            results["rows"].append(row)
            print(f"{name} | {protocol} | {score} | fit on {fit_on} | " + " | ".join(
                f"{s}: AP {row[s]['micro_ap']:.3f} R@1 {row[s]['recall@1']:.3f}" for s in ("dev", "test", "all")),
                file=sys.stderr)
            for t in row.get("dev_thresholds", []):
                print(f"  dev, alignment score >= {t['threshold']:.2f}: precision {t['precision']:.3f} "
                      f"recall {t['recall']:.3f} false pairs {t['false_pairs']}"
                      + ("  <- library default" if abs(t["threshold"] - DEFAULT_THRESHOLD) < 1e-9 else ""),
                      file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_dedup.json").write_text(json.dumps(results, indent=2))
    print("\n| descriptors | protocol | score | whitening fitted on | dev AP | dev R@1 | test AP | test R@1 | all AP "
          "| all R@1 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results["rows"]:
        print(f"| {r['descriptors']} | {r['protocol']} ({r['references']} refs) | {r['score']} | "
              f"{r['whitening_fit_on']} | " + " | ".join(
            f"{r[s]['micro_ap']:.3f} | {r[s]['recall@1']:.3f}" for s in ("dev", "test", "all")) + " |")
    print("\nrecall@1 by transform (alignment, original protocol, test / all):\n")
    rows = [r for r in results["rows"] if r["protocol"] == "original" and r["score"] == "alignment"
            and r["whitening_fit_on"] == "references"]
    print("| transform | " + " | ".join(r["descriptors"] for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for kind in kinds:
        print(f"| {kind} | " + " | ".join(
            f"{r['test']['recall@1_by_transform'].get(kind, float('nan')):.2f} / "
            f"{r['all']['recall@1_by_transform'].get(kind, float('nan')):.2f}" for r in rows) + " |")
    lib.close()


if __name__ == "__main__":
    main()
