"""The extraction run with tiny stand-in encoders: resumability, idempotence, degradations, storage.

The real pretrained encoders are exercised in test_encoders.py and test_extract_real.py; here the
pipeline around them is what is under test.
"""

import json
import shutil

import numpy as np
import pytest

import vidlens
from vidlens.store.vectors import VectorStore


class TinyBank:
    """Deterministic little encoders with the EncoderBank interface; counts its calls."""

    def __init__(self, fail_on=None, crash_after=None):
        self.calls = {"frames": 0, "audio": 0, "asr": 0, "ocr": 0, "text": 0}
        self.fail_on = fail_on
        self.crash_after = crash_after
        self.videos_seen = 0

    def key_of(self, feature):
        role = "frames" if feature == "cover" else "text" if feature.startswith("text.") else feature
        return f"tiny-{role}@1"

    def frames(self, frames):
        self.calls["frames"] += 1
        if self.crash_after is not None:
            self.videos_seen += 1
            if self.videos_seen > self.crash_after:
                raise KeyboardInterrupt("simulated kill")
        if self.fail_on == "frames":
            raise RuntimeError("frame model exploded")
        x = frames.reshape(len(frames), -1, 3).astype(np.float32) / 255
        emb = np.concatenate([x.mean(1), x.std(1)], axis=1)
        return emb, [{"name": "colour", "score": float(emb[:, :3].mean())}]

    def audio(self, wave):
        self.calls["audio"] += 1
        n = max(1, len(wave) // 32000)
        return np.stack([np.array([np.abs(b).mean(), b.std()], np.float32)
                         for b in np.array_split(wave, n)])

    def asr(self, wave, language=None):
        self.calls["asr"] += 1
        speech = float(np.abs(wave).mean()) > 0.01
        text = "hello there" if speech else ""
        return {"language": "en", "language_probability": 0.9, "text": text,
                "segments": [{"start": 0.0, "end": 1.0, "text": text}] if speech else []}

    def ocr(self, frames, times, max_frames):
        self.calls["ocr"] += 1
        return {"lines": [{"text": "SALE", "first_seen": float(times[0]), "last_seen": float(times[-1]),
                           "frames": len(times), "score": 0.9}],
                "text": "SALE", "frames_read": [float(times[0])]}

    def text(self, texts):
        self.calls["text"] += 1
        out = np.zeros((len(texts), 16), np.float32)
        for i, t in enumerate(texts):
            for ch in t:
                out[i, ord(ch) % 16] += 1
            out[i] /= max(np.linalg.norm(out[i]), 1e-6)
        return out


@pytest.fixture
def lib_with_clips(tmp_path, clip_factory):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(clip_factory(duration=2.0, size=(96, 64), speech="hello there", lang="en"), clips / "talk.mp4")
    shutil.copy(clip_factory(duration=1.0, size=(96, 64), color="red", audio=False), clips / "silent.mp4")
    shutil.copy(clip_factory(duration=1.0, video=False, tone_hz=300, suffix=".m4a"), clips / "tone.m4a")
    manifest = tmp_path / "m.jsonl"
    rows = [{"path": "clips/talk.mp4", "title": "a talk"}, {"path": "clips/silent.mp4", "title": "red"},
            {"path": "clips/tone.m4a"}]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    lib = vidlens.open(tmp_path / "lib")
    report = lib.ingest(manifest)
    ids = {r.item.rsplit("/", 1)[-1]: r.video_id for r in report.results}
    yield lib, ids, manifest
    lib.close()


def test_extract_all_with_degradations(lib_with_clips):
    lib, ids, _ = lib_with_clips
    bank = TinyBank()
    report = lib.extract(encoders=bank)
    assert report.videos == 3 and not report.errors
    talk = lib.features(ids["talk.mp4"])
    assert talk.present["frames"] and talk.present["audio"] and talk.present["asr"]
    assert talk.pooled["frames"].shape == (6,)
    assert talk.sequence("frames").shape[0] == 2  # 1 fps over 2 s
    assert talk.texts["asr"] == "hello there" and talk.texts["ocr"] == "SALE"
    assert talk.present["text.title"] and not talk.present["text.summary"]
    silent = lib.features(ids["silent.mp4"])
    assert not silent.present["audio"] and silent.results["audio"]["message"] == "no audio track"
    assert not silent.present["asr"] and silent.sequence("audio") is None
    tone = lib.features(ids["tone.m4a"])
    assert not tone.present["frames"] and tone.results["frames"]["message"] == "no video track"
    assert not tone.present["cover"]
    assert tone.present["audio"]
    summary = talk.summary()
    assert summary["frames"]["sequence"][0] == 2 and summary["text.summary"] == "absent"


def test_rerun_is_a_noop_and_title_change_reembeds_only_title(lib_with_clips):
    lib, _ids, manifest = lib_with_clips
    lib.extract(encoders=TinyBank())
    bank = TinyBank()
    again = lib.extract(encoders=bank)
    assert again.videos == 0 and sum(sum(c.values()) for c in again.counts.values()) == 0  # nothing planned
    assert bank.calls == {"frames": 0, "audio": 0, "asr": 0, "ocr": 0, "text": 0}
    rows = [json.loads(x) for x in manifest.read_text().splitlines()]
    rows[0]["title"] = "a different talk"
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    lib.ingest(manifest)
    bank = TinyBank()
    report = lib.extract(encoders=bank)
    assert dict(report.counts) == {"text.title": {"ok": 1}}
    assert bank.calls["text"] == 1 and bank.calls["frames"] == 0


def test_subset_of_modalities_and_force(lib_with_clips):
    lib, _ids, _ = lib_with_clips
    bank = TinyBank()
    lib.extract(["audio"], encoders=bank)
    assert bank.calls["frames"] == 0 and bank.calls["audio"] == 2
    bank = TinyBank()
    lib.extract(["audio"], force=True, encoders=bank)
    assert bank.calls["audio"] == 2
    with pytest.raises(vidlens.VidlensError, match="unknown modalities"):
        lib.extract(["smell"], encoders=bank)


def test_failure_is_recorded_and_retried(lib_with_clips):
    lib, ids, _ = lib_with_clips
    report = lib.extract(["frames"], encoders=TinyBank(fail_on="frames"))
    assert {e["video_id"] for e in report.errors} == {ids["talk.mp4"], ids["silent.mp4"]}
    assert "frame model exploded" in report.errors[0]["message"]
    assert lib.status()["errors_by_stage"] == {"extract:frames": 2}
    report = lib.extract(["frames"], encoders=TinyBank())
    assert report.counts["frames"]["ok"] == 2
    assert lib.status()["errors"] == 0


def test_killed_run_resumes_without_redoing(lib_with_clips):
    lib, _ids, _ = lib_with_clips
    with pytest.raises(KeyboardInterrupt):
        lib.extract(["frames", "audio"], encoders=TinyBank(crash_after=1))
    done = lib.feature_matrix("frames").ids
    assert len(done) == 1
    bank = TinyBank()
    lib.extract(["frames", "audio"], encoders=bank)
    assert bank.calls["frames"] == 1  # only the video that was not finished
    assert len(lib.feature_matrix("frames").ids) == 2


def test_corrupt_feature_part_is_redone(lib_with_clips):
    lib, _ids, _ = lib_with_clips
    lib.extract(["frames"], encoders=TinyBank())
    store = VectorStore(lib.root / "features")
    (part,) = store.parts("frames")
    part.write_bytes(part.read_bytes()[:40])
    bank = TinyBank()
    lib.extract(["frames"], encoders=bank)
    assert bank.calls["frames"] == 2
    assert len(lib.feature_matrix("frames").ids) == 2
    assert list((lib.root / "features" / "frames").glob("*.corrupt"))


def test_vector_store_roundtrip_and_compaction(tmp_path):
    store = VectorStore(tmp_path)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 8)).astype(np.float32)
    store.write_pooled("f", [("v1", "k1", a)])
    store.write_pooled("f", [("v2", "k1", b), ("v1", "k2", b)])
    m = store.load_pooled("f")
    assert m.ids == ["v1", "v2"] and m.keys[0] == "k2"
    np.testing.assert_array_equal(m.vectors[0], b)
    assert store.compact("f") == 2 and len(store.parts("f")) == 1
    assert store.load_pooled("f", ["v2", "nope"]).ids == ["v2"]
    store.write_sequence("f", "v1", rng.normal(size=(5, 8)))
    assert store.read_sequence("f", "v1").shape == (5, 8)
    assert store.read_sequence("f", "v9") is None


def test_two_hour_file_is_capped_by_max_frames(tmp_path, clip_factory):
    long = clip_factory(duration=7200.0, size=(64, 48), fps=1, color="gray", audio=False, gop=10)
    with vidlens.open(tmp_path / "lib") as lib:
        vid = lib.ingest(long).results[0].video_id
        assert lib.get(vid)["duration"] == pytest.approx(7200, abs=2)
        lib.extract(["frames"], encoders=TinyBank())
        result = lib.features(vid).results["frames"]
        assert result["n_frames"] == lib.config.media.max_frames == 64
        assert result["times"][0] == 0 and result["times"][-1] > 7000  # spread over the whole file
