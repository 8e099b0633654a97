"""Extraction with the real pretrained encoders, end to end through the CLI (one short clip)."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def vidlens(*args):
    proc = subprocess.run([sys.executable, "-m", "vidlens", *map(str, args)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"vidlens {args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_extract_and_show_with_real_encoders(tmp_path, clip_factory):
    clip = clip_factory(duration=4.0, size=(480, 270), speech="Hello, welcome to my cooking show.", lang="en",
                        text="HELLO 2026")
    lib = tmp_path / "lib"
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"path": str(clip), "title": "红烧肉的做法"}, ensure_ascii=False) + "\n")
    vidlens("-L", lib, "ingest", "-q", manifest)
    report = json.loads(vidlens("-L", lib, "extract", "--json"))
    assert report["videos"] == 1 and not report["errors"]
    vid = json.loads(vidlens("-L", lib, "export").splitlines()[0])["id"]
    shown = json.loads(vidlens("-L", lib, "show", "--json", vid))
    feats = shown["features"]
    assert feats["frames"]["pooled"] == [1280] and feats["frames"]["sequence"] == [4, 1280]
    assert feats["audio"]["pooled"] == [512]
    assert feats["cover"]["pooled"] == [1280]
    assert feats["text.title"]["pooled"] == [512] and feats["text.summary"] == "absent"
    asr = shown["results"]["asr"]
    assert asr["language"] == "en"
    assert "welcome" in asr["text"].lower() or "cooking" in asr["text"].lower(), asr["text"]
    assert "HELLO" in shown["texts"]["ocr"].upper(), shown["texts"]["ocr"]
    assert shown["results"]["frames"]["concepts"]
    assert (lib / "thumbnails" / f"{vid}.jpg").exists()
    # a second run does nothing
    again = json.loads(vidlens("-L", lib, "extract", "--json"))
    assert again["features"] == {}


@pytest.fixture(scope="module")
def real_bank():
    from vidlens.config import load_config
    from vidlens.features.encoding import EncoderBank

    return EncoderBank(load_config(environ={}))


def test_degenerate_videos_with_real_encoders(tmp_path, clip_factory, real_bank):
    """One frame, a black screen, no speech, no on-screen text, a corrupt middle: clear outcomes."""
    import shutil

    import vidlens

    one_frame = clip_factory(duration=0.04, size=(160, 120), fps=25, color="blue", tone_hz=0)
    black = clip_factory(duration=2.0, size=(160, 120), color="black", tone_hz=0)
    corrupt = tmp_path / "corrupt.mp4"
    shutil.copy(clip_factory(duration=3.0, size=(160, 120), pattern="testsrc2", tone_hz=440, gop=10), corrupt)
    data = bytearray(corrupt.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 2000] = b"\x00" * 2000
    corrupt.write_bytes(bytes(data))
    with vidlens.open(tmp_path / "lib") as lib:
        ids = {r.item.rsplit("/", 1)[-1]: r.video_id for r in lib.ingest([one_frame, black, corrupt]).results}
        report = lib.extract(["frames", "audio", "ocr", "asr", "text"], encoders=real_bank)
        assert not report.errors, report.errors
        single = lib.features(ids[one_frame.name])
        assert single.sequence("frames").shape == (1, 1280)
        dark = lib.features(ids[black.name])
        assert dark.present["frames"] and dark.results["ocr"]["lines"] == []
        assert dark.results["asr"]["text"] == "" and not dark.present["text.asr"]
        assert not dark.present["text.ocr"]
        broken = lib.features(ids["corrupt.mp4"])
        assert broken.present["frames"] and broken.sequence("frames").shape[0] >= 2
