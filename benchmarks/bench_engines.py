"""Extraction on the local engine vs Ray with 1 and 2 workers, real encoders: throughput, CPU, memory.

Usage:
    flock /tmp/vidlens-bench.lock .venv/bin/python benchmarks/bench_engines.py [--n 24] [--engines local,ray1,ray2]
    flock /tmp/vidlens-bench.lock .venv/bin/python benchmarks/bench_engines.py --commit-only

N generated clips (10 s, 854×480, H.264, English espeak speech, a drawn caption, a different test pattern
each) are ingested once; each engine extracts every modality of all of them into a fresh copy of that
library, with the real pretrained encoders (model loading included in "wall", excluded from "steady").

Per engine: wall seconds; videos/min over the whole run and in steady state (from the first stored video
to the last); CPU seconds per video summed over the driver and every process it started (Ray's own
processes and workers included); the driver's time in storing (`Extractor.commit`) per video; peak memory
as the sum of PSS over the same processes (shared pages counted once). The machine's load average is
recorded before and after (other jobs share its 2 cores). Results go to benchmarks/out/bench_engines.json.

``--commit-only`` measures the driver's storing cost per video when results come back one at a time or in
groups (a Ray batch is stored as one group), with synthetic outcomes of real sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import threading
import time
from pathlib import Path

import psutil

import vidlens
from vidlens.engines import LocalEngine, RayEngine
from vidlens.features.extract import Extractor
from vidlens.testing.clips import make_clip

OUT = Path(__file__).resolve().parent / "out"
PATTERNS = ("testsrc2", "smptebars", "mandelbrot", "rgbtestsrc", "testsrc", "smptehdbars", "cellauto", "pal75bars")
SENTENCES = (
    "Today we cook braised pork at home with soy sauce and ginger.",
    "The football match starts at eight tonight in the new stadium.",
    "This phone has a bigger battery and a better camera than last year.",
    "Please like and subscribe for more travel videos every week.",
)


def make_clips(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"clip{i:03d}.mp4"
        if not path.exists():
            make_clip(path, duration=10.0, size=(854, 480), fps=25, pattern=PATTERNS[i % len(PATTERNS)],
                      speech=SENTENCES[i % len(SENTENCES)], lang="en", text=f"第{i}集 episode {i}", gop=25)
        paths.append(path)
    return paths


class ProcessTree:
    """CPU seconds and peak PSS of this process and every process it started (sampled each second)."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.cpu_seen: dict[int, float] = {}
        self.peak_pss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _procs(self) -> list[psutil.Process]:
        return [self.me, *self.me.children(recursive=True)]

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            self.sample()

    def sample(self) -> None:
        pss = 0.0
        for p in self._procs():
            try:
                t = p.cpu_times()
                self.cpu_seen[p.pid] = t.user + t.system
                pss += p.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self.peak_pss = max(self.peak_pss, pss)

    def __enter__(self) -> ProcessTree:
        self.sample()
        self.base = dict(self.cpu_seen)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()

    def cpu(self) -> float:
        return sum(v - self.base.get(pid, 0.0) for pid, v in self.cpu_seen.items())


def run(engine_name: str, template: Path, work: Path) -> dict:
    lib_dir = work / f"lib-{engine_name}"
    shutil.rmtree(lib_dir, ignore_errors=True)
    shutil.copytree(template, lib_dir)
    engine = LocalEngine() if engine_name == "local" else RayEngine(workers=int(engine_name[3:]), batch_size=2)
    stamps: list[float] = []
    commit_seconds = [0.0]
    original = Extractor.commit

    def timed_commit(self, outcomes):
        t0 = time.perf_counter()
        original(self, outcomes)
        t1 = time.perf_counter()
        stamps.extend([t1] * len(outcomes))
        commit_seconds[0] += t1 - t0

    Extractor.commit = timed_commit  # the driver's storing time, whatever engine computed the outcome
    load_before = os.getloadavg()
    try:
        with vidlens.open(lib_dir, create=False) as lib, ProcessTree() as tree:
            t0 = time.perf_counter()
            report = lib.extract(engine=engine)
            wall = time.perf_counter() - t0
            tree.sample()
            cpu = tree.cpu()
            engine.close()
    finally:
        Extractor.commit = original
    n = report.videos
    steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) * 60 if len(stamps) > 2 else None
    return {"engine": engine_name, "videos": n, "errors": len(report.errors), "wall_s": round(wall, 1),
            "videos_per_min": round(n / wall * 60, 2), "steady_videos_per_min": steady and round(steady, 2),
            "cpu_s_per_video": round(cpu / n, 2), "commit_ms_per_video": round(commit_seconds[0] / n * 1000, 1),
            "peak_pss_mib": round(tree.peak_pss / 2**20), "stage_seconds": report.to_dict()["features"],
            "decode_s": report.to_dict()["decode_seconds"], "load_before": load_before, "load_after": os.getloadavg()}


def bench_commit(work: Path, videos: int, groups: list[int]) -> list[dict]:
    """The driver's cost of storing one video's outcome, by group size (what a Ray batch hands back).

    Outcomes are synthetic but of real sizes (1280-d frames and cover, 10 frame and 5 audio steps,
    512-d audio and six 512-d text vectors, ASR and OCR results, a 12 kB thumbnail); the videos' rows are
    inserted directly. SQLite in the library folder, on this machine's disk.
    """
    import numpy as np

    from vidlens.features.extract import FeatureOutcome, VideoOutcome
    from vidlens.features.featureset import TEXT_FIELDS
    from vidlens.store.models import Video

    rng = np.random.default_rng(0)

    def outcome(vid: str) -> VideoOutcome:
        f = {
            "frames": FeatureOutcome("ok", "k", result={"n_frames": 10, "concepts": [{"name": "x", "score": 0.5}]},
                                     pooled=rng.random(1280, np.float32), sequence=rng.random((10, 1280), np.float32)),
            "cover": FeatureOutcome("ok", "k", result={"thumbnail": f"{vid}.jpg"}, pooled=rng.random(1280, np.float32),
                                    thumbnail=bytes(12_000)),
            "audio": FeatureOutcome("ok", "k", result={"n_blocks": 5}, pooled=rng.random(512, np.float32),
                                    sequence=rng.random((5, 512), np.float32)),
            "asr": FeatureOutcome("ok", "k", result={"text": "hello " * 20, "segments": [{"start": 0, "end": 5,
                                                                                         "text": "hello " * 20}]}),
            "ocr": FeatureOutcome("ok", "k", result={"text": "SALE", "lines": [{"text": "SALE"}]}),
        }
        for field in TEXT_FIELDS:
            f[f"text.{field}"] = FeatureOutcome("ok", "k", result={"chars": 20}, pooled=rng.random(512, np.float32))
        return VideoOutcome(vid, f)

    rows = []
    for g in groups:
        lib_dir = work / f"commit-{g}"
        shutil.rmtree(lib_dir, ignore_errors=True)
        with vidlens.open(lib_dir) as lib:
            ids = [f"{g:04d}{i:016d}" for i in range(videos)]
            with lib.store.session() as s:
                s.add_all(Video(id=vid, size_bytes=1, has_video=True, has_audio=True) for vid in ids)
                s.commit()
            ext = Extractor(lib.store, lib.vectors, lib.config, thumbnails=lib.folder("thumbnails"),
                            encoders=object())  # only commit is used: no encoder is called
            outs = [outcome(vid) for vid in ids]
            t0 = time.perf_counter()
            for start in range(0, videos, g):
                ext.commit(outs[start:start + g])
            seconds = time.perf_counter() - t0
        rows.append({"group": g, "videos": videos, "ms_per_video": round(seconds / videos * 1000, 2),
                     "videos_per_s": round(videos / seconds, 1)})
        print(json.dumps(rows[-1]), flush=True)
        shutil.rmtree(lib_dir, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--engines", default="local,ray1,ray2")
    parser.add_argument("--commit-only", action="store_true",
                        help="only measure the driver's storing cost per video by group size")
    args = parser.parse_args()
    work = OUT / "engines"
    if args.commit_only:
        rows = bench_commit(work, 256, [1, 4, 16, 64])
        (OUT / "bench_engines_commit.json").write_text(json.dumps({"load": os.getloadavg(), "rows": rows}, indent=2))
        return
    clips = make_clips(OUT / "engines_clips", args.n)
    template = work / "template"
    shutil.rmtree(template, ignore_errors=True)
    with vidlens.open(template) as lib:
        lib.ingest(clips)
    results = []
    for name in args.engines.split(","):
        r = run(name, template, work)
        results.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "stage_seconds"}), flush=True)
    (OUT / "bench_engines.json").write_text(json.dumps(results, indent=2))
    print(f"\n{'engine':8} {'videos':>6} {'wall s':>8} {'v/min':>7} {'steady':>7} {'CPU s/v':>8} {'commit ms':>9} "
          f"{'PSS MiB':>8}")
    for r in results:
        print(f"{r['engine']:8} {r['videos']:>6} {r['wall_s']:>8} {r['videos_per_min']:>7} "
              f"{r['steady_videos_per_min'] or '-':>7} {r['cpu_s_per_video']:>8} {r['commit_ms_per_video']:>9} "
              f"{r['peak_pss_mib']:>8}")


if __name__ == "__main__":
    main()
