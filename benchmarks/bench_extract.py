"""Full extraction of a 60 s 720p clip with speech: seconds per video-minute per stage, and the pipeline
overhead against the encoders' pure compute on pre-decoded inputs, measured side by side in one run.

Usage: .venv/bin/python benchmarks/bench_extract.py [--repeat 3] [--asr-beam 5]

- "pure compute": frames, audio and cover decoded once beforehand, then each encoder call timed alone
  (frames + concepts, cover, audio, ASR, OCR frame choice + OCR, text for the six text fields);
- "pipeline": `Library.extract(force=True)` on the same clip with the same (already loaded) encoders:
  decoding, DB, feature files and bookkeeping included.
Both exclude model loading (a warm-up run first). Medians over --repeat runs, interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

import vidlens
from vidlens.config import load_config
from vidlens.features.encoding import EncoderBank
from vidlens.features.extract import video_texts
from vidlens.media import cover_image, read_audio, sample_frames
from vidlens.testing.clips import make_clip

OUT = Path(__file__).resolve().parent / "out"
SPEECH = (
    "Today we will learn how to cook braised pork at home. First cut the pork belly into small cubes. "
    "Then fry them with sugar until golden. Add soy sauce, ginger and water, and let it simmer for forty "
    "minutes. The football match starts at eight tonight, so we have time to eat first. "
    "Please like and subscribe for more recipes every day. This new phone has a bigger battery and a "
    "better camera, and it records video in four K. Thanks for watching and see you next time. "
)


def make_input() -> Path:
    path = OUT / "bench_extract_60s_720p_speech.mp4"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        make_clip(path, duration=60.0, size=(1280, 720), fps=25, speech=SPEECH * 2, lang="en",
                  text="红烧肉的做法 Braised pork", gop=25)
    return path


def pure_compute(bank: EncoderBank, path: Path, cfg) -> dict[str, float]:
    m, x = cfg.media, cfg.extract
    frames = sample_frames(path, fps=m.fps, max_frames=m.max_frames, max_side=m.frame_max_side)
    audio = read_audio(path, sample_rate=m.audio_sample_rate, max_seconds=m.max_audio_seconds)
    cover = cover_image(path, max_side=m.frame_max_side)
    t: dict[str, float] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        result = fn()
        t[name] = time.perf_counter() - t0
        return result

    _, concepts = timed("frames", lambda: bank.frames(frames.frames))
    timed("cover", lambda: bank.frames(cover[None]))
    timed("audio", lambda: bank.audio(audio))
    asr = timed("asr", lambda: bank.asr(audio))
    ocr = timed("ocr", lambda: bank.ocr(frames.frames, frames.times, x.ocr_max_frames))
    texts = video_texts({"title": "红烧肉的做法"}, ocr, asr, {"concepts": concepts})
    timed("text", lambda: [bank.text([s]) for s in texts.values() if s.strip()])
    return t


def pipeline(lib, bank: EncoderBank) -> dict[str, float]:
    report = lib.extract(force=True, encoders=bank)
    assert not report.errors, report.errors
    d = report.to_dict()
    stages = {f: v["seconds"] for f, v in d["features"].items()}
    out = {k: stages.get(k, 0.0) for k in ("frames", "cover", "audio", "asr", "ocr")}
    out["text"] = sum(v for k, v in stages.items() if k.startswith("text."))
    out["decode"] = d["decode_seconds"]
    out["total"] = d["wall_seconds"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--asr-beam", type=int, default=None, help="Whisper beam width (default: the config's)")
    args = parser.parse_args()
    path = make_input()
    overrides = {"extract": {"asr_beam_size": args.asr_beam}} if args.asr_beam else None
    cfg = load_config(environ={}, overrides=overrides)
    lib_dir = OUT / "bench_extract_lib"
    shutil.rmtree(lib_dir, ignore_errors=True)
    lib = vidlens.open(lib_dir, overrides=overrides)
    lib.ingest(path)
    bank = EncoderBank(cfg)
    pipeline(lib, bank)  # warm-up: loads every model
    pure_runs, pipe_runs = [], []
    for _ in range(args.repeat):
        pure_runs.append(pure_compute(bank, path, cfg))
        pipe_runs.append(pipeline(lib, bank))
    med = lambda runs, k: statistics.median(r[k] for r in runs)  # noqa: E731
    stages = ("frames", "cover", "audio", "ocr", "asr", "text")
    pure_total = [sum(r[k] for k in stages) for r in pure_runs]
    rows = []
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; medians of {args.repeat} runs; "
          f"60 s 1280×720 H.264 + English speech; ASR beam {cfg.extract.asr_beam_size}; "
          "seconds per video-minute\n")
    print("| stage | pure compute (s/min) | in the pipeline (s/min) |")
    print("|---|---:|---:|")
    for k in stages:
        rows.append((k, med(pure_runs, k), med(pipe_runs, k)))
        print(f"| {k} | {med(pure_runs, k):.2f} | {med(pipe_runs, k):.2f} |")
    print(f"| decode (background thread) | – | {med(pipe_runs, 'decode'):.2f} |")
    fast = ("frames", "cover", "audio", "text")
    print(f"| **frames + cover + audio + text** | {statistics.median(sum(r[k] for k in fast) for r in pure_runs):.2f}"
          f" | {statistics.median(sum(r[k] for k in fast) for r in pipe_runs):.2f} |")
    pipe_total = [r["total"] for r in pipe_runs]
    ratio = statistics.median(p / q for p, q in zip(pipe_total, pure_total, strict=True))
    print(f"| **total (wall)** | {statistics.median(pure_total):.2f} | {statistics.median(pipe_total):.2f} |")
    print(f"\npipeline overhead: wall / pure compute = **{ratio:.3f}** (target ≤ 1.15)")
    (OUT / f"bench_extract_beam{cfg.extract.asr_beam_size}.json").write_text(
        json.dumps({"pure": pure_runs, "pipeline": pipe_runs}, indent=1))
    lib.close()


if __name__ == "__main__":
    main()
