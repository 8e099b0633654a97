"""Near-duplicate detection on real clips, Meta VSC 2022 style: micro-AP and recall@1 of copy → original.

Usage:
    .venv/bin/python benchmarks/bench_dedup.py [--positives 60] [--negatives 30]

Protocol. The real clips of ../shared/data/videos are split into a *reference* set (every clip but
``negatives`` held-out ones). ``positives`` reference clips each get transformed copies (queries whose
original is in the reference set); the held-out clips get the same kinds of transformed copies (queries
with no original in the reference set: every match they get is a false positive). Transforms (ffmpeg
CLI): heavy re-encoding, half-size resize, 80 % centre crop, letterbox, logo overlay, 1.5× speed-up,
trimming the first 30 %, and two combinations. Descriptors follow the VSC budget (≤ 512-d, ≤ 1 per
second): the stored 1-fps EfficientNet-Lite0 frame embeddings, PCA-whitened to 256-d on the reference
set. Every query is scored against every reference; the predictions (query, reference, score) of all
queries are pooled into one ranked list for micro-AP; recall@1 is over the positive queries.

Several scores are compared on the same descriptors: the temporal alignment (the library default), the
single best frame pair, and the cosine of the video-level descriptors (raw and whitened).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import vidlens
from vidlens.retrieval.dedup import FrameWhitening, VideoDescriptors, align
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--positives", type=int, default=60, help="reference clips that get copies")
    ap.add_argument("--negatives", type=int, default=30, help="held-out clips whose copies have no original")
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

    lib_dir = work / "lib"
    lib = vidlens.open(lib_dir)
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
    id_of = {r.item: r.video_id for r in report.results}
    t = time.perf_counter()
    ext = lib.extract(["frames"], progress=False)
    print(f"frames extracted for {ext.videos} videos in {time.perf_counter() - t:.0f} s; errors: {ext.errors[:3]}",
          file=sys.stderr)

    def seq(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        fs = lib.features(id_of[str(path)])
        s = fs.sequence("frames")
        if s is None or not len(s):
            return None
        return np.asarray(s, np.float32), np.asarray(fs.results["frames"]["times"], np.float32)

    ref_seqs = {p: seq(p) for p in refs}
    ref_seqs = {p: s for p, s in ref_seqs.items() if s is not None}
    queries = [(dst, src if src in pos_src else None, kind) for src, dst, kind in jobs]
    q_seqs = {q: seq(q) for q, _, _ in queries}
    queries = [q for q in queries if q_seqs[q[0]] is not None]
    n_frames = sum(len(s[0]) for s in ref_seqs.values())
    whitening = FrameWhitening(dim=256).fit(np.concatenate([s[0] for s in ref_seqs.values()]))
    ref_list = list(ref_seqs)
    ref_desc = [VideoDescriptors(str(p), whitening.transform(ref_seqs[p][0]), ref_seqs[p][1]) for p in ref_list]
    q_desc = [VideoDescriptors(str(q), whitening.transform(q_seqs[q][0]), q_seqs[q][1]) for q, _, _ in queries]
    ref_global = np.stack([d.global_descriptor for d in ref_desc])
    ref_raw = l2n(np.stack([ref_seqs[p][0].mean(0) for p in ref_list]))

    t = time.perf_counter()
    methods = {"alignment (default)": [], "best frame pair": [], "video-level whitened": [], "video-level raw": []}
    for (q, _, _), qd in zip(queries, q_desc, strict=True):
        align_scores = np.array([align(qd.descriptors, rd.descriptors).score for rd in ref_desc])
        pair_scores = np.array([float((qd.descriptors @ rd.descriptors.T).max()) for rd in ref_desc])
        methods["alignment (default)"].append(align_scores)
        methods["best frame pair"].append(pair_scores)
        methods["video-level whitened"].append(ref_global @ qd.global_descriptor)
        methods["video-level raw"].append(ref_raw @ l2n(q_seqs[q][0].mean(0, keepdims=True))[0])
    score_s = time.perf_counter() - t
    truth = [ref_list.index(src) if src is not None else -1 for _, src, _ in queries]
    n_pos = sum(t >= 0 for t in truth)
    rows = []
    for name, per_query in methods.items():
        scores, positives = [], []
        top1 = 0
        for s, t_ in zip(per_query, truth, strict=True):
            top = np.argsort(-s)[:10]  # each query predicts its 10 best references
            scores.extend(s[top].tolist())
            positives.extend((top == t_).tolist())
            top1 += int(t_ >= 0 and top[0] == t_)
        rows.append({"score": name, "micro_ap": micro_average_precision(scores, positives, n_pos),
                     "recall@1": top1 / n_pos})
    per_kind = {}
    for kind in kinds:
        idx = [i for i, (_, src, k) in enumerate(queries) if k == kind and src is not None]
        if idx:
            per_kind[kind] = float(np.mean([np.argmax(methods["alignment (default)"][i]) == truth[i] for i in idx]))
    result = {"references": len(ref_desc), "reference_frames": n_frames, "queries": len(queries),
              "positive_queries": n_pos, "negative_queries": len(queries) - n_pos, "descriptor_dim":
              ref_desc[0].descriptors.shape[1], "scoring_seconds": score_s, "rows": rows,
              "recall@1_by_transform": per_kind}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_dedup.json").write_text(json.dumps(result, indent=2))
    print(f"\n{len(ref_desc)} references ({n_frames} frames, ≤1/s), {len(queries)} queries "
          f"({n_pos} copies of references, {len(queries) - n_pos} copies of held-out clips), "
          f"{result['descriptor_dim']}-d descriptors\n")
    print("| score | micro-AP | recall@1 |\n|---|---|---|")
    for r in rows:
        print(f"| {r['score']} | {r['micro_ap']:.3f} | {r['recall@1']:.3f} |")
    print("\n| transform | recall@1 (alignment) |\n|---|---|")
    for kind, v in per_kind.items():
        print(f"| {kind} | {v:.2f} |")
    lib.close()


if __name__ == "__main__":
    main()
