"""Decoding speed of vidlens.media against the ffmpeg CLI doing the same job.

Two 60 s 1280×720 H.264/AAC clips are generated once (cached under benchmarks/out/): one with a keyframe
every second (short GOP, typical of short videos) and one with a keyframe every 250 frames (long GOP).
For each, and interleaved so that machine noise hits both sides alike, the median of N runs of:

- frames: ``sample_frames(path, fps=1)`` (probe included, RGB arrays in hand) vs
  ``ffmpeg -i X -vf fps=1 -f rawvideo -pix_fmt rgb24 -`` read fully into memory;
- audio: ``read_audio(path)`` vs ``ffmpeg -i X -ac 1 -ar 16000 -f f32le -``.

Targets: frames ratio ≤ 1.2, audio ratio ≤ 1.5. Run: ``.venv/bin/python benchmarks/bench_decode.py``.
The table is printed and written to benchmarks/out/bench_decode.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import av

from vidlens.media import cover_image, probe, read_audio, sample_frames
from vidlens.testing import make_clip

OUT = Path(__file__).resolve().parent / "out"
CLIPS = {
    "short GOP (1 s)": {"gop": 25},
    "long GOP (250 frames)": {"gop": 250},
}
TARGETS = {"frames": 1.2, "audio": 1.5}


def make_inputs(duration: float) -> dict[str, Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, kwargs in CLIPS.items():
        path = OUT / f"bench_{int(duration)}s_720p_gop{kwargs['gop']}.mp4"
        if not path.exists():
            print(f"generating {path.name} ...", flush=True)
            make_clip(path, duration=duration, size=(1280, 720), fps=25, pattern="testsrc2", tone_hz=440.0,
                      vcodec="libx264", acodec="aac", **kwargs)
        paths[name] = path
    return paths


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def ffmpeg_frames(path: Path) -> bytes:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-vf", "fps=1", "-f", "rawvideo",
         "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout


def ffmpeg_audio(path: Path) -> bytes:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-ac", "1", "-ar", "16000", "-f", "f32le",
         "-"],
        capture_output=True, check=True,
    ).stdout


def bench(path: Path, runs: int) -> dict:
    times: dict[str, list[float]] = {"vl_frames": [], "ff_frames": [], "vl_audio": [], "ff_audio": []}
    counts = {}
    for _ in range(runs):
        dt, sampled = timed(lambda: sample_frames(path, fps=1))
        times["vl_frames"].append(dt)
        counts["vl_frames"] = len(sampled)
        dt, raw = timed(lambda: ffmpeg_frames(path))
        times["ff_frames"].append(dt)
        counts["ff_frames"] = len(raw) // (1280 * 720 * 3)
        dt, audio = timed(lambda: read_audio(path))
        times["vl_audio"].append(dt)
        counts["vl_audio"] = len(audio)
        dt, pcm = timed(lambda: ffmpeg_audio(path))
        times["ff_audio"].append(dt)
        counts["ff_audio"] = len(pcm) // 4
    medians = {k: statistics.median(v) for k, v in times.items()}
    extra = {
        "probe": statistics.median(timed(lambda: probe(path))[0] for _ in range(runs)),
        "cover": statistics.median(timed(lambda: cover_image(path))[0] for _ in range(runs)),
    }
    info = probe(path)
    return {"medians": medians, "counts": counts, "extra": extra, "keyframe_interval": info.keyframe_interval}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args()

    inputs = make_inputs(args.duration)
    results = {name: bench(path, args.runs) for name, path in inputs.items()}

    lines = [
        f"Decoding, median of {args.runs} interleaved runs, {int(args.duration)} s 1280×720 H.264 + AAC "
        f"(PyAV {av.__version__}, FFmpeg in PyAV {av.ffmpeg_version_info}; "
        f"CLI {_cli_version()}; {platform.machine()}, {_cpus()} CPUs)",
        "",
        "| clip | task | vidlens (s) | ffmpeg CLI (s) | ratio | target | output |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    ok = True
    for name, res in results.items():
        m, c = res["medians"], res["counts"]
        for task, unit in (("frames", "RGB frames"), ("audio", "samples")):
            ratio = m[f"vl_{task}"] / m[f"ff_{task}"]
            ok &= ratio <= TARGETS[task]
            label = "sample_frames(fps=1)" if task == "frames" else "read_audio (16 kHz mono)"
            lines.append(
                f"| {name} | {label} | {m[f'vl_{task}']:.3f} | {m[f'ff_{task}']:.3f} | **{ratio:.2f}** "
                f"| ≤ {TARGETS[task]} | {c[f'vl_{task}']} vs {c[f'ff_{task}']} {unit} |"
            )
    lines.append("")
    for name, res in results.items():
        lines.append(
            f"- {name}: probe {res['extra']['probe'] * 1000:.0f} ms, cover (keyframes only) "
            f"{res['extra']['cover'] * 1000:.0f} ms, keyframe interval {res['keyframe_interval']} s"
        )
    lines.append(f"- all targets met: {'yes' if ok else 'NO'}")
    table = "\n".join(lines)
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_decode.md").write_text(table + "\n", encoding="utf-8")
    (OUT / "bench_decode.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


def _cli_version() -> str:
    out = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=False).stdout
    return out.split()[2] if out else "?"


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    main()
