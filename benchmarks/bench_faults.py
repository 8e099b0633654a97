"""The fault suite, long version: many faults at random (seeded) moments, recovery, and items lost.

Usage:
    flock /tmp/vidlens-bench.lock .venv/bin/python benchmarks/bench_faults.py [--runs 20] [--clips 24]
        [--real-extract 0] [--real-clips 6] [--seed 8] [--only ingest,extract,real,disk,db,damage]

Each trial starts from a fresh copy of the library, injects one fault, recovers the way a user would
(re-run the command; free the disk; put the DB file back) and compares the library with a run that had no
fault: every video, path, extraction row and vector must be there exactly once and equal.

- ``kill -9`` of ``vidlens ingest`` (the CLI), ``--runs`` times, at a moment drawn uniformly over a clean
  run's duration;
- ``kill -9`` of an extraction process (stand-in encoders, slowed to 0.1 s a video so the kill lands
  anywhere in the batch), ``--runs`` times; with ``--real-extract N`` also N kills of the real
  ``vidlens extract`` CLI with the pretrained encoders (every modality, Whisper ASR included) on a library
  of the first ``--real-clips`` clips, each killed after a random number k of videos were stored, a
  random part of one video's time later (vectors compared with a tolerance: the encoders run on several
  threads);
- a full disk: the library on a 20 MB tmpfs, filled to several levels before extraction (skipped with the
  reason when mounting is not permitted);
- the metadata DB moved away in the middle of a batch, then put back;
- a damaged feature part, sequence file, index file or index state (a byte flipped, or the file cut).

*Recovery time* is the wall time of what a user does to recover, per trial: the re-run of the killed
command, the extraction after the disk is freed or the DB file is back, the next extraction or index open
after a file was damaged (median and maximum over the trials).

Prints one JSON line per fault kind and writes them to ``--out`` (benchmarks/out/bench_faults.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import vidlens
from vidlens.errors import StorageError
from vidlens.testing.clips import make_clip
from vidlens.testing.faults import (
    StandInEncoders,
    compare_states,
    fill_disk,
    library_state,
    lost_videos,
    run_extract_child,
    size_limited_folder,
)

OUT = Path(__file__).resolve().parent / "out"
WORK = OUT / "faults"
COLOURS = ("red", "blue", "green", "yellow", "white", "gray", "orange", "purple", "pink", "brown", "cyan", "navy")


def make_clips(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = folder / f"clip{i:03d}.mp4"
        if not path.exists():
            make_clip(path, duration=2.0, size=(160, 120), color=COLOURS[i % len(COLOURS)], tone_hz=200 + 25 * i,
                      text=f"#{i}", **({"speech": "hello world", "lang": "en"} if i % 3 == 0 else {}))
    return folder


def kill_after(proc: subprocess.Popen, seconds: float) -> bool:
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


def cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vidlens", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kw)


def committed_after(proc: subprocess.Popen, lib: Path, k: int) -> float:
    """Wait until ``k`` videos' frames are stored in ``lib`` (one part each, in this process's engine) or
    ``proc`` ends; seconds waited."""
    start = time.perf_counter()
    folder = lib / "features" / "frames"
    while proc.poll() is None and len(list(folder.glob("part-*.arrow"))) < k:
        time.sleep(0.02)
    return time.perf_counter() - start


def fresh(src: Path, name: str) -> Path:
    dest = WORK / name
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest)
    return dest


def summary(kind: str, runs: int, injected: int, problems: list[list[str]], lost: int, seconds: float,
            recovery: list[float], **extra) -> dict:
    flat = [p for ps in problems for p in ps]
    return {"fault": kind, "runs": runs, "faults_injected": injected, "items_lost": lost,
            "runs_with_problems": sum(bool(ps) for ps in problems),
            "duplicates": sum("duplicate" in p for p in flat), "problems": flat[:10],
            "recovery_s_median": round(statistics.median(recovery), 2) if recovery else None,
            "recovery_s_max": round(max(recovery), 2) if recovery else None,
            "seconds": round(seconds, 1), **extra}


def timed_wait(proc: subprocess.Popen, recovery: list[float], start: float) -> int:
    """Wait for ``proc`` (started at ``start``) and record how long it ran."""
    rc = proc.wait()
    recovery.append(time.perf_counter() - start)
    return rc


def bench_kill_ingest(clips: Path, runs: int, rng: random.Random) -> dict:
    t0 = time.perf_counter()
    ref = WORK / "ingest-ref" / "lib"
    shutil.rmtree(ref.parent, ignore_errors=True)
    start = time.perf_counter()
    assert cli("-L", str(ref), "ingest", "-q", str(clips)).wait() == 0
    duration = time.perf_counter() - start
    want = {v: sorted(map(os.path.basename, p)) for v, p in library_state(ref)["videos"].items()}
    problems, injected, lost, recovery = [], 0, 0, []
    for i in range(runs):
        lib = WORK / f"ingest-{i}" / "lib"
        shutil.rmtree(lib.parent, ignore_errors=True)
        injected += kill_after(cli("-L", str(lib), "ingest", "-q", str(clips)), rng.uniform(0.05, 1.0) * duration)
        begin = time.perf_counter()
        proc = cli("-L", str(lib), "ingest", "-q", str(clips))
        rc = timed_wait(proc, recovery, begin)
        got = library_state(lib)
        ps = [f"re-run exited {rc}: {proc.stderr.read()[-300:]}"] if rc else []
        ps += [f"duplicate {d}" for d in got["duplicates"]]
        names = {v: sorted(map(os.path.basename, p)) for v, p in got["videos"].items()}
        missing = {v for v in want if names.get(v) != want[v]}
        ps += [f"video {v} missing or its paths differ" for v in sorted(missing)]
        lost += len(missing)
        problems.append(ps)
        shutil.rmtree(lib.parent, ignore_errors=True)
    return summary("kill -9 vidlens ingest", runs, injected, problems, lost, time.perf_counter() - t0, recovery,
                   clean_run_s=round(duration, 1))


def bench_kill_extract(template: Path, runs: int, rng: random.Random, real: bool = False) -> dict:
    t0 = time.perf_counter()

    def start(lib: Path) -> subprocess.Popen:
        if real:
            return cli("-L", str(lib), "extract", "-q")
        return run_extract_child(lib, delay=0.1, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    ref = fresh(template, "extract-ref")
    begin = time.perf_counter()
    proc = start(ref)
    first = committed_after(proc, ref, 1)  # the real CLI spends its first seconds loading the models
    assert proc.wait() == 0, proc.stderr.read()
    duration = time.perf_counter() - begin
    expected = library_state(ref)
    n = len(expected["videos"])
    per_video = (duration - first) / max(1, n - 1)
    tolerance = {"atol": 1e-4, "exact_results": False} if real else {}
    problems, injected, lost, recovery, kill_points = [], 0, 0, [], []
    for i in range(runs):
        lib = fresh(template, f"extract-{i}")
        proc = start(lib)
        if real:  # kill while videos are being extracted: after k of them were stored, part-way into the next
            k = rng.randint(1, n - 1)
            delay = rng.uniform(0, per_video)
            kill_points.append(f"{k} + {delay:.1f} s")
            committed_after(proc, lib, k)
            injected += kill_after(proc, delay)
        else:
            injected += kill_after(proc, rng.uniform(0.05, 1.0) * duration)
        mid = library_state(lib)
        ps = [f"after the kill: duplicate {d}" for d in mid["duplicates"]]
        ps += [f"after the kill: ok row without vector {x}" for x in mid["rows_without_vector"]]
        begin = time.perf_counter()
        proc = start(lib)
        rc = timed_wait(proc, recovery, begin)
        ps += [f"re-run exited {rc}: {proc.stderr.read()[-300:]}"] if rc else []
        got = library_state(lib)
        ps += compare_states(expected, got, **tolerance)
        lost += len(lost_videos(expected, got, **tolerance))
        problems.append(ps)
        shutil.rmtree(lib, ignore_errors=True)
    kind = "kill -9 vidlens extract (real encoders)" if real else "kill -9 extraction (stand-in encoders)"
    return summary(kind, runs, injected, problems, lost, time.perf_counter() - t0, recovery,
                   clean_run_s=round(duration, 1), videos=n, **({"killed_after_videos": kill_points} if real else {}))


def bench_full_disk(template: Path, expected: dict, levels: list[int]) -> dict:
    t0 = time.perf_counter()
    problems, injected, lost, errors, recovery = [], 0, 0, [], []
    for i, leave in enumerate(levels):
        try:
            with size_limited_folder(WORK / f"disk-{i}", 20) as folder:
                lib_dir = folder / "lib"
                shutil.copytree(template, lib_dir)
                ps: list[str] = []
                with vidlens.open(lib_dir, create=False) as lib:
                    lib.extract(ids=lib.store.video_ids()[:3], encoders=StandInEncoders())
                    ballast = fill_disk(folder, leave_bytes=leave)
                    try:
                        lib.extract(encoders=StandInEncoders())
                        ps.append(f"no error with {leave} bytes free")
                    except StorageError as exc:
                        injected += 1
                        errors.append(str(exc)[:150])
                    mid = library_state(lib_dir)
                    ps += [f"while full: duplicate {d}" for d in mid["duplicates"]]
                    ps += [f"while full: ok row without vector {x}" for x in mid["rows_without_vector"]]
                    ballast.unlink()
                    begin = time.perf_counter()
                    lib.extract(encoders=StandInEncoders())
                    recovery.append(time.perf_counter() - begin)
                got = library_state(lib_dir)
                ps += compare_states(expected, got)
                lost += len(lost_videos(expected, got))
                problems.append(ps)
        except PermissionError as exc:
            return {"fault": "full disk", "skipped": str(exc)}
    return summary("full disk (20 MB tmpfs)", len(levels), injected, problems, lost, time.perf_counter() - t0,
                   recovery, free_bytes_left=levels, error_example=errors[:1])


def bench_db_moved(template: Path, expected: dict, runs: int, rng: random.Random) -> dict:
    t0 = time.perf_counter()
    problems, injected, lost, errors, recovery = [], 0, 0, [], []
    for i in range(runs):
        lib = fresh(template, f"db-{i}")
        proc = run_extract_child(lib, delay=0.2, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(1.5, 5.0))
        away = WORK / f"db-{i}-away"
        shutil.rmtree(away, ignore_errors=True)
        away.mkdir()
        for f in lib.glob("library.db*"):
            f.rename(away / f.name)
        rc = proc.wait()
        stderr = proc.stderr.read()
        ps = []
        if rc == 2 and "moved away during the run" in stderr:
            injected += 1
            errors.append(stderr.strip().splitlines()[-1][:150])
        elif rc != 0 or "Traceback" in stderr:
            ps.append(f"unclear failure: exit {rc}: {stderr[-300:]}")
        for f in away.iterdir():
            f.rename(lib / f.name)
        begin = time.perf_counter()
        proc = run_extract_child(lib, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if timed_wait(proc, recovery, begin) != 0:
            ps.append(f"re-run failed: {proc.stderr.read()[-300:]}")
        got = library_state(lib)
        ps += compare_states(expected, got)
        lost += len(lost_videos(expected, got))
        problems.append(ps)
        shutil.rmtree(lib, ignore_errors=True)
        shutil.rmtree(away, ignore_errors=True)
    return summary("metadata DB moved away mid-batch", runs, injected, problems, lost, time.perf_counter() - t0,
                   recovery, error_example=errors[:1])


DAMAGES = (("feature part", "cut"), ("feature part", "flip"), ("sequence file", "cut"), ("index file", "cut"),
           ("index file", "flip"), ("index state", "cut"))


def bench_damage(template: Path, expected: dict, runs: int, rng: random.Random) -> dict:
    """A file of a finished library damaged (cut short at a random byte, or one byte flipped past the
    headers), then the next extract or index open; detected = redone or rebuilt, recovered = equal to
    the clean library again."""
    import numpy as np

    from vidlens.retrieval import open_library_index

    t0 = time.perf_counter()
    base = fresh(template, "damage-base")
    with vidlens.open(base, create=False) as lib:
        lib.extract(encoders=StandInEncoders())
        li = open_library_index(lib, "video", {"backend": "faiss"})
        ids = sorted(li.index.ids())
        ref_vectors = li.index.get_vectors(ids)
        li.close()
    table: dict[str, dict[str, int]] = {}
    problems, lost, recovery = [], 0, []
    for i in range(runs):
        kind, damage = DAMAGES[i % len(DAMAGES)]
        lib_dir = fresh(base, f"damage-{i}")
        with vidlens.open(lib_dir, create=False) as lib:
            if kind == "feature part":
                target = rng.choice([p for f in lib.vectors.features() for p in lib.vectors.parts(f)])
            elif kind == "sequence file":
                target = rng.choice(sorted((lib_dir / "features").glob("*/seq/*/*.npy")))
            elif kind == "index file":
                target = rng.choice(sorted((lib_dir / "index" / "video").glob("gen-*/*")))
            else:
                target = lib_dir / "index" / "video" / "state.json"
            data = bytearray(target.read_bytes())
            if damage == "cut":
                target.write_bytes(bytes(data[: rng.randrange(1, len(data))]))
            else:
                data[rng.randrange(len(data) // 4, len(data))] ^= 0xFF
                target.write_bytes(bytes(data))
            crash = None
            begin = time.perf_counter()
            if kind in ("feature part", "sequence file"):
                try:
                    report = lib.extract(encoders=StandInEncoders())
                    recovery.append(time.perf_counter() - begin)
                    detected = sum(sum(c.values()) for c in report.counts.values()) > 0
                    got = library_state(lib_dir)
                    gone = lost_videos(expected, got)
                    recovered = not gone and not compare_states(expected, got)
                except Exception as exc:  # a damaged file that makes the next run fail outright
                    crash = f"{type(exc).__name__}: {exc}"[:160]
                    detected, recovered, gone = False, False, {"library unusable"}
            else:
                li = open_library_index(lib, "video", {"backend": "faiss"})
                recovery.append(time.perf_counter() - begin)
                try:
                    detected = any("rebuilding" in m for m in li.messages)
                    recovered = np.array_equal(li.index.get_vectors(ids), ref_vectors)
                    gone = set() if recovered else {"index"}
                finally:
                    li.close()
        row = table.setdefault(f"{kind}, {damage}", {"runs": 0, "detected": 0, "moved_aside": 0, "recovered": 0,
                                                     "crashed": 0})
        row["runs"] += 1
        row["moved_aside"] += target.with_suffix(".corrupt").exists()
        row["detected"] += detected
        row["recovered"] += recovered
        row["crashed"] += crash is not None
        lost += len(gone)
        problems.append([] if recovered else [f"{kind} {target.name} ({damage}): detected={detected}, not recovered"
                                              + (f", the next run failed: {crash}" if crash else "")])
        shutil.rmtree(lib_dir, ignore_errors=True)
    return summary("damaged feature / index files", runs, runs, problems, lost, time.perf_counter() - t0,
                   recovery, by_kind=table)


def real_template(n: int) -> Path:
    """A library of the first ``n`` clips, ingested, nothing extracted (for the real-encoder kills)."""
    lib_dir = WORK / "template-real" / "lib"
    shutil.rmtree(lib_dir.parent, ignore_errors=True)
    with vidlens.open(lib_dir) as lib:
        lib.ingest(make_clips(OUT / f"fault_clips_{n}", n))
    return lib_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--real-extract", type=int, default=0, help="kills of the real `vidlens extract` CLI")
    parser.add_argument("--real-clips", type=int, default=6, help="clips in the library of the real-encoder kills")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--only", default="ingest,extract,real,disk,db,damage")
    parser.add_argument("--out", type=Path, default=OUT / "bench_faults.json")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    WORK.mkdir(parents=True, exist_ok=True)
    clips = make_clips(OUT / "fault_clips", args.clips)
    template = WORK / "template" / "lib"
    shutil.rmtree(template.parent, ignore_errors=True)
    with vidlens.open(template) as lib:
        lib.ingest(clips)
    clean = fresh(template, "clean")
    with vidlens.open(clean, create=False) as lib:
        lib.extract(encoders=StandInEncoders())
    expected = library_state(clean)
    only = set(args.only.split(","))
    results = [{"load_before": os.getloadavg(), "clips": args.clips, "seed": args.seed}]
    steps = [("ingest", lambda: bench_kill_ingest(clips, args.runs, rng)),
             ("extract", lambda: bench_kill_extract(template, args.runs, rng)),
             ("real", lambda: bench_kill_extract(real_template(args.real_clips), args.real_extract, rng, real=True)
              if args.real_extract else None),
             ("disk", lambda: bench_full_disk(template, expected, [0, 4_000, 20_000, 60_000, 150_000])),
             ("db", lambda: bench_db_moved(template, expected, max(5, args.runs // 4), rng)),
             ("damage", lambda: bench_damage(template, expected, args.runs, rng))]
    for key, step in steps:
        if key in only:
            r = step()
            if r is not None:
                results.append(r)
                print(json.dumps(r, ensure_ascii=False), flush=True)
    results[0]["load_after"] = os.getloadavg()
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
