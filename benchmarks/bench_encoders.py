"""Pure compute cost and accuracy of the pretrained encoders, on inputs made here (already decoded).

Usage: .venv/bin/python benchmarks/bench_encoders.py [--repeat 2] [--skip asr]

Speed (model load excluded, one warm-up call first):
- frames: EfficientNet-Lite0 ms/frame on 640×360 RGB frames, batches of 16 (preprocessing included);
- audio: aiSFX seconds per 60 s of 16 kHz audio;
- OCR: PP-OCRv5 seconds per 960×540 frame with two caption lines;
- ASR: Whisper base seconds per 60 s of espeak-ng speech, English and Chinese, beam 5 and greedy;
- text: multilingual USE ms/sentence in batches of 64 (real Bilibili titles when ../shared/data is
  present, else generated sentences).
Accuracy: OCR character accuracy on rendered zh+en captions; ASR character error rate on espeak-ng
sentences (espeak's Mandarin voice is robotic: its CER says more about espeak than about Whisper).

Every row gives wall seconds and process CPU seconds (all threads): on a shared machine the wall time
grows with the load average (printed), the CPU time much less.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vidlens.encoders import create_encoder

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")

EN_SENTENCES = [
    "Today we will learn how to cook braised pork at home.",
    "First cut the pork belly into small cubes and wash them.",
    "The football match starts at eight o'clock tonight.",
    "Please like and subscribe for more videos every day.",
    "This new phone has a bigger battery and a better camera.",
]
ZH_SENTENCES = [
    "今天我们来学习红烧肉的做法。",
    "首先把五花肉切成小块。",
    "今晚八点足球比赛正式开始。",
    "喜欢的话请点赞关注。",
    "这款新手机的电池更大，拍照也更好。",
]
OCR_SAMPLES = [
    ("红烧肉的做法 第三步", "Step 3: add soy sauce"),
    ("限时优惠 全场五折", "Limited offer 50% OFF"),
    ("关注我 每天分享美食", "Follow for daily recipes"),
    ("今晚八点 足球比赛直播", "Live football 8 PM"),
    ("新手机开箱测评", "Unboxing the new phone 2026"),
    ("第一集 旅行日记", "Episode 1: travel diary"),
]


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """Best-of-``repeat`` (wall, cpu) seconds of ``fn()``, after one untimed warm-up, and its result."""
    result = fn()
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best_wall, best_cpu, result


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def chars(text: str) -> list[str]:
    return [c for c in text.lower() if c.isalnum()]


def render_caption(lines: tuple[str, ...], size=(960, 540), seed: int = 0) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    h, w = size[1], size[0]
    gradient = np.linspace(0, 1, h)[:, None, None] * rng.integers(60, 200, 3)[None, None, :]
    noise = rng.normal(0, 12, (h, w, 3))
    image = Image.fromarray(np.clip(gradient + 40 + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(CJK_FONT), 40)
    for k, line in enumerate(lines):
        y = h - 140 + k * 56
        width = draw.textlength(line, font=font)
        draw.text(((w - width) / 2, y), line, font=font, fill="white", stroke_width=2, stroke_fill="black")
    return np.asarray(image)


def espeak(text: str, voice: str, folder: Path) -> np.ndarray:
    import soundfile
    import soxr

    wav = folder / "tts.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True, capture_output=True)
    wave, rate = soundfile.read(wav, dtype="float32")
    return soxr.resample(wave, rate, 16000).astype(np.float32)


def sixty_seconds_of_speech(sentences: list[str], voice: str, folder: Path) -> np.ndarray:
    pieces, total = [], 0
    while total < 60 * 16000:
        for sentence in sentences:
            piece = espeak(sentence, voice, folder)
            pieces += [piece, np.zeros(8000, np.float32)]
            total += piece.size + 8000
    return np.concatenate(pieces)[: 60 * 16000]


def titles(n: int) -> list[str]:
    path = SHARED / "text" / "bilibili_videos.jsonl"
    if path.is_file():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        found = [str(r["title"]) for r in rows if r.get("title")]  # some titles are bare numbers
        if found:
            return (found * (n // len(found) + 1))[:n]
    return [(EN_SENTENCES + ZH_SENTENCES)[i % 10] + f" #{i}" for i in range(n)]


class _Log(list):
    """A list that also prints each item as it comes, so a long run that fails later loses nothing."""

    def append(self, item) -> None:
        print("  ", item, flush=True)
        super().append(item)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per row (best is reported)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["frames", "audio", "ocr", "asr", "text"])
    parser.add_argument("--beams", nargs="*", type=int, default=[5, 1], help="ASR beam sizes to measure")
    args = parser.parse_args()
    rows: _Log = _Log()
    notes: _Log = _Log()
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="vidlens-bench-"))
    rng = np.random.default_rng(0)

    if "frames" not in args.skip:
        enc = create_encoder("efficientnet_lite0")
        enc.load()
        frames = [render_caption(("sample",), size=(640, 360), seed=i) for i in range(64)]
        wall, cpu, _ = timed(lambda: enc.encode_batch(frames), args.repeat)
        rows.append(("frames", "efficientnet_lite0, 640×360, batch 16", wall / 64 * 1000, cpu / 64 * 1000,
                     "ms/frame"))

    if "audio" not in args.skip:
        enc = create_encoder("aisfx")
        enc.load()
        t = np.arange(60 * 16000) / 16000
        wave = (0.2 * np.sin(2 * np.pi * 220 * t * (1 + t / 60)) + rng.normal(0, 0.05, t.size)).astype(np.float32)
        wall, cpu, out = timed(lambda: enc.encode_batch([wave]), args.repeat)
        rows.append(("audio", f"aisfx, 60 s → {out[0].shape[0]} blocks", wall, cpu, "s per 60 s"))

    if "ocr" not in args.skip:
        if not CJK_FONT.is_file():
            notes.append(f"OCR skipped: {CJK_FONT} missing (apt-get install fonts-noto-cjk)")
        else:
            enc = create_encoder("ppocrv5")
            enc.load()
            images = [render_caption(sample, seed=i) for i, sample in enumerate(OCR_SAMPLES)]
            wall, cpu, reads = timed(lambda: enc.encode_batch(images), args.repeat)
            rows.append(("ocr", "ppocrv5 mobile, 960×540, 2 lines", wall / len(images), cpu / len(images),
                         "s/frame"))
            edits = total = 0
            for sample, lines in zip(OCR_SAMPLES, reads, strict=True):
                ref, hyp = chars("".join(sample)), chars("".join(line.text for line in lines))
                edits += edit_distance(hyp, ref)
                total += len(ref)
            notes.append(f"OCR character accuracy on {len(images)} rendered zh+en captions: "
                         f"{1 - edits / total:.3f} ({edits} edits / {total} chars)")

    if "asr" not in args.skip:
        if shutil.which("espeak-ng") is None:
            notes.append("ASR skipped: espeak-ng missing (apt-get install espeak-ng)")
        else:
            for beam in args.beams:
                enc = create_encoder("whisper_base", beam_size=beam)
                enc.load()
                for lang, voice, sentences in (("en", "en", EN_SENTENCES), ("zh", "cmn", ZH_SENTENCES)):
                    speech = sixty_seconds_of_speech(sentences, voice, work)
                    wall, cpu, result = timed(lambda s=speech, e=enc: e.transcribe(s), 1)
                    rows.append(("asr", f"whisper_base beam {beam}, espeak {lang}, detected "
                                 f"{result['language']}", wall, cpu, "s per 60 s"))
                    edits = total = 0
                    for sentence in sentences:
                        hyp = enc.transcribe(espeak(sentence, voice, work))["text"]
                        ref = chars(sentence)
                        edits += edit_distance(chars(hyp), ref)
                        total += len(ref)
                    notes.append(f"ASR CER, beam {beam}, {lang} ({len(sentences)} espeak sentences): "
                                 f"{edits / total:.3f}")

    if "text" not in args.skip:
        enc = create_encoder("muse_v3")
        enc.load()
        sentences = titles(512)
        wall, cpu, _ = timed(lambda: enc.encode_batch(sentences), args.repeat)
        source = "Bilibili titles" if (SHARED / "text").is_dir() else "generated sentences"
        rows.append(("text", f"muse_v3, {len(sentences)} {source}, batch 64", wall / len(sentences) * 1000,
                     cpu / len(sentences) * 1000, "ms/sentence"))

    shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average before: {load_before:.2f}, after: {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs\n")
    print("| modality | what | wall | CPU | unit |")
    print("|---|---|---:|---:|---|")
    for modality, what, wall, cpu, unit in rows:
        print(f"| {modality} | {what} | {wall:.3g} | {cpu:.3g} | {unit} |")
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
