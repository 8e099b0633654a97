"""Ingest speed and memory: hash + probe + DB row for N small generated clips.

Usage: .venv/bin/python benchmarks/bench_ingest.py [--n 1000]

Reports clips/s for a first ingest and for a re-run (everything unchanged), and the process RSS sampled
every 50 items, to show that memory stays flat (items are streamed; no frames are kept).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

import vidlens
from vidlens.testing.clips import make_clip

OUT = Path(__file__).resolve().parent / "out"
COLORS = ["red", "green", "blue", "white", "yellow", "cyan", "magenta", "orange", "purple", "gray"]


def make_corpus(folder: Path, n: int) -> list[Path]:
    """n distinct 1 s 160×120 H.264/AAC clips (cached between runs)."""
    folder.mkdir(parents=True, exist_ok=True)

    def one(i: int) -> Path:
        path = folder / f"clip{i:05d}.mp4"
        if not path.exists():
            make_clip(path, duration=1.0, size=(160, 120), color=COLORS[i % 10], tone_hz=100 + i, fps=10)
        return path

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, range(n)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    corpus = OUT / "ingest_corpus"
    t0 = time.perf_counter()
    make_corpus(corpus, args.n)
    print(f"corpus of {args.n} clips ready in {time.perf_counter() - t0:.1f} s")
    lib_dir = OUT / "ingest_lib"
    shutil.rmtree(lib_dir, ignore_errors=True)
    proc = psutil.Process()
    rss: list[float] = []
    with vidlens.open(lib_dir) as lib:
        counter = {"n": 0}

        def sample(_result) -> None:
            counter["n"] += 1
            if counter["n"] % 50 == 0:
                rss.append(proc.memory_info().rss / 2**20)

        from vidlens.ingest import Ingestor, iter_items

        items = list(iter_items([corpus], lib.config.ingest.extensions))
        t0 = time.perf_counter()
        report = Ingestor(lib.store).run(items, progress=sample)
        first = time.perf_counter() - t0
        assert report.counts["added"] == args.n, report.counts
        t0 = time.perf_counter()
        report = Ingestor(lib.store).run(items)
        rerun = time.perf_counter() - t0
        assert report.counts["unchanged"] == args.n
    print()
    print(f"| ingest of {args.n} clips (1 s, 160×120, H.264/AAC) | value |")
    print("|---|---|")
    print(f"| first ingest (hash + probe + DB row) | {first:.2f} s = **{args.n / first:.0f} clips/s** |")
    print(f"| re-run, all unchanged | {rerun:.2f} s = {args.n / rerun:.0f} clips/s |")
    print(f"| RSS after 50 items / median / last / peak | {rss[0]:.0f} / {statistics.median(rss):.0f} / "
          f"{rss[-1]:.0f} / {max(rss):.0f} MiB |")


if __name__ == "__main__":
    main()
