"""The engines: Ray (a local ``ray.init`` shared by this module) computes what the local engine computes;
and the deployment files in ``deploy/`` are valid.

Extraction, zero-shot classification, tagging and ``embed`` run on generated clips with stand-in encoders
(colour layout for frames, loudness for audio, the registered ``hashed_ngrams`` for text, fixed OCR and
ASR), once in this process and once on Ray with two workers; the stored features, records and index
vectors must be the same, and a re-run must do no work. Ray takes seconds to start on two shared cores,
so those tests carry the ``ray`` marker (``-m "not ray"`` leaves them out).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

import vidlens
from vidlens.engines import LocalEngine, RayEngine, Task, create_engine
from vidlens.errors import ConfigError, VidlensError
from vidlens.store.models import Extraction

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


class StandInBank:
    """EncoderBank stand-in that pickles (Ray ships it to the workers); text is ``hashed_ngrams``."""

    def __init__(self):
        self._text = None

    def __getstate__(self):
        return {"_text": None}  # encoders hold locks; the worker makes its own

    def _text_encoder(self):
        if self._text is None:
            from vidlens.encoders import create_encoder
            from vidlens.retrieval import lexical  # noqa: F401  (registers hashed_ngrams)

            self._text = create_encoder("hashed_ngrams")
        return self._text

    def key_of(self, feature):
        if feature.startswith("text."):
            enc = self._text_encoder()
            return f"{enc.name}@{enc.version}"
        return f"stand-in-{'frames' if feature == 'cover' else feature}@1"

    def frames(self, frames):
        x = frames.astype(np.float32) / 255
        _, h, w, _ = x.shape
        grid = [x[:, i * h // 2:(i + 1) * h // 2, j * w // 2:(j + 1) * w // 2].mean(axis=(1, 2))
                for i in range(2) for j in range(2)]
        emb = np.concatenate(grid, axis=1)
        name = "red thing" if emb[:, 0].mean() > 0.6 and emb[:, 1].mean() < 0.3 else "pattern"
        return emb, [{"name": name, "score": 0.9}]

    def audio(self, wave):
        n = max(1, len(wave) // 16000)
        return np.stack([np.array([np.abs(b).mean(), b.std()], np.float32) for b in np.array_split(wave, n)])

    def asr(self, wave, language=None):
        text = "一起做饭 红烧肉" if float(np.abs(wave).mean()) > 0.01 else ""
        return {"language": "zh", "language_probability": 0.9, "text": text,
                "segments": [{"start": 0.0, "end": 1.0, "text": text}] if text else []}

    def ocr(self, frames, times, max_frames):
        return {"lines": [{"text": "美食教程", "first_seen": float(times[0]), "last_seen": float(times[-1]),
                           "frames": len(times), "score": 0.9}], "text": "美食教程", "frames_read": [float(times[0])]}

    def text(self, texts):
        return self._text_encoder().encode_batch(texts)


class Doubles(Task):
    def process(self, items):
        for x in items:
            yield 2 * x


class FailsInWorker(Task):
    def process(self, items):
        raise VidlensError("the stand-in model file is damaged")
        yield  # a generator, as tasks are


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray for the module: two CPUs, a small object store, no dashboard."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'vidlens[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 * 2**20, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test file
    yield ray
    ray.shutdown()


CLIPS = [("cook.mp4", {"pattern": "testsrc2", "speech": "红烧肉", "lang": "zh"}, "红烧肉的做法"),
         ("game.mp4", {"pattern": "smptebars"}, "王者荣耀 高光时刻"),
         ("red.mp4", {"color": "red", "audio": False}, "red screen"),
         ("tone.m4a", {"video": False, "tone_hz": 300}, None)]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, clip_factory):
    """A library with the clips ingested and nothing extracted (copy it before use)."""
    root = tmp_path_factory.mktemp("engines")
    (root / "clips").mkdir()
    rows = []
    for name, kwargs, title in CLIPS:
        suffix = Path(name).suffix
        extra = {} if suffix == ".m4a" else {"size": (96, 64)}
        shutil.copy(clip_factory(suffix, duration=2.0, **extra, **kwargs), root / "clips" / name)
        rows.append({"path": f"clips/{name}", **({"title": title} if title else {})})
    manifest = root / "m.jsonl"
    manifest.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    with vidlens.open(root / "lib") as lib:
        report = lib.ingest(manifest)
        assert [r.status for r in report.results] == ["added"] * len(CLIPS)
    return root


def _copy(ingested: Path, dest: Path) -> vidlens.Library:
    shutil.copytree(ingested, dest)
    return vidlens.open(dest / "lib", create=False)


def _stored(lib: vidlens.Library) -> dict:
    """Everything extraction stored: rows, pooled vectors, sequences, thumbnails."""
    with lib.store.session() as s:
        rows = {(r.video_id, r.feature): (r.key, r.status, r.message, r.result)
                for r in s.scalars(select(Extraction))}
    pooled = {}
    for feature in lib.vectors.features():
        m = lib.feature_matrix(feature)
        assert len(set(m.ids)) == len(m.ids)
        pooled[feature] = dict(zip(m.ids, m.vectors, strict=True))
    seqs = {(f, vid): lib.vectors.read_sequence(f, vid, mmap=False) for f in ("frames", "audio")
            for vid in lib.store.video_ids()}
    thumbs = sorted(p.name for p in (lib.root / "thumbnails").glob("*.jpg"))
    return {"rows": rows, "pooled": pooled, "seqs": seqs, "thumbs": thumbs}


def _same(a: dict, b: dict) -> None:
    assert a["rows"] == b["rows"]
    assert a["thumbs"] == b["thumbs"] and a["thumbs"]
    assert a["pooled"].keys() == b["pooled"].keys()
    for feature, vecs in a["pooled"].items():
        assert vecs.keys() == b["pooled"][feature].keys(), feature
        for vid, v in vecs.items():
            np.testing.assert_array_equal(v, b["pooled"][feature][vid])
    for key, seq in a["seqs"].items():
        other = b["seqs"][key]
        assert (seq is None) == (other is None), key
        if seq is not None:
            np.testing.assert_array_equal(seq, other)


@pytest.fixture(scope="module")
def extracted(ingested, tmp_path_factory, ray_local):
    """The same library extracted by the local engine and by Ray with two workers."""
    base = tmp_path_factory.mktemp("extracted")
    local, on_ray = _copy(ingested, base / "local"), _copy(ingested, base / "ray")
    local_report = local.extract(encoders=StandInBank())
    ray_report = on_ray.extract(encoders=StandInBank(), engine=RayEngine(workers=2, batch_size=1))
    yield local, on_ray, local_report, ray_report
    local.close()
    on_ray.close()


@pytest.mark.ray
def test_ray_extract_stores_what_local_stores_and_a_rerun_does_nothing(extracted):
    local, on_ray, local_report, ray_report = extracted
    assert local_report.videos == ray_report.videos == len(CLIPS)
    assert not local_report.errors and not ray_report.errors
    assert {f: dict(c) for f, c in local_report.counts.items()} == {f: dict(c) for f, c in ray_report.counts.items()}
    _same(_stored(local), _stored(on_ray))
    cook = on_ray.features(next(v["id"] for v in on_ray.videos() if v["title"] == "红烧肉的做法"))
    assert cook.texts["asr"] == "一起做饭 红烧肉" and cook.texts["ocr"] == "美食教程"

    again = on_ray.extract(encoders=StandInBank(), engine=RayEngine(workers=2))
    assert again.videos == 0 and not again.counts  # nothing planned: no worker was started


@pytest.mark.ray
def test_ray_classify_tag_and_embed_match_local(extracted, tmp_path):
    from vidlens.classify.runs import classify_library, zero_shot_for_library
    from vidlens.engines.tasks import classify_videos, embed_library, tag_videos
    from vidlens.retrieval import open_library_index
    from vidlens.tags.library import TagLibrary
    from vidlens.tags.runs import tag_library

    local, on_ray, _, _ = extracted
    classifier = zero_shot_for_library(on_ray)
    expected = classify_library(on_ray, classifier)
    engine = RayEngine(workers=1, batch_size=2)
    got = classify_videos(on_ray, classifier, engine)
    assert got == expected and all("l2" in r for r in got)

    for lib in (local, on_ray):
        tags = TagLibrary(lib)
        for name in ("红烧肉", "美食", "王者荣耀"):
            tags.add(name, status="approved")
    expected_tags = tag_library(local, encoder="none", save=True)
    got_tags = tag_videos(on_ray, engine, encoder="none", save=True)
    assert got_tags == expected_tags and any(r["core"] for r in got_tags)
    assert TagLibrary(on_ray).video_tags(sources=["tagger"]) == TagLibrary(local).video_tags(sources=["tagger"])

    # A changed title: embed re-encodes that one text on Ray and brings both indexes up to date.
    for lib in (local, on_ray):
        manifest = lib.root.parent / "m.jsonl"
        rows = [json.loads(x) for x in manifest.read_text(encoding="utf-8").splitlines()]
        rows[1]["title"] = "王者荣耀 五杀集锦"
        manifest.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
        lib.ingest(manifest)
    report = embed_library(on_ray, engine, encoders=StandInBank())
    local_report = embed_library(local, LocalEngine(), encoders=StandInBank())
    assert report["text_vectors"]["videos"] == local_report["text_vectors"]["videos"] == 1
    assert [r["items"] for r in report["indexes"]] == [r["items"] for r in local_report["indexes"]]
    for space in ("text", "video"):
        a, b = open_library_index(local, space), open_library_index(on_ray, space)
        try:
            ids = sorted(a.index.ids())
            assert ids == sorted(b.index.ids())
            np.testing.assert_allclose(a.index.get_vectors(ids), b.index.get_vectors(ids), atol=1e-6)
        finally:
            a.close()
            b.close()
    engine.close()


@pytest.mark.ray
def test_end_to_end_embedded_and_scaled_out_agree(ingested, tmp_path, ray_local, request):
    """ingest → extract → embed → classify → search, once embedded (SQLite, this process, FAISS) and once
    scaled out (PostgreSQL, Ray, Milvus Lite with one URI for both index spaces, as a Milvus server is
    used): the same features, categories and search results."""
    pytest.importorskip("pymilvus", reason="the milvus extra is not installed")
    from vidlens.classify.runs import zero_shot_for_library
    from vidlens.engines.tasks import classify_videos, embed_library
    from vidlens.testing.faults import compare_states, library_state

    try:
        database_url = request.getfixturevalue("postgres_url")
    except pytest.skip.Exception as exc:  # no PostgreSQL here: the rest of the stack still runs
        database_url = f"sqlite:///{tmp_path / 'scaled-metadata.db'}"
        request.node.add_marker(pytest.mark.xfail(reason=f"PostgreSQL unavailable ({exc}); ran on SQLite",
                                                  strict=False))
    manifest = ingested / "m.jsonl"
    stacks = {
        "embedded": ({}, LocalEngine()),
        "scaled": ({"database_url": database_url,
                    "index": {"backend": "milvus", "milvus_uri": str(tmp_path / "milvus-server.db")}},
                   RayEngine(workers=1, batch_size=2)),
    }
    out = {}
    for name, (overrides, engine) in stacks.items():
        with vidlens.open(tmp_path / name, overrides=overrides) as lib:
            assert lib.ingest(manifest).counts["added"] == len(CLIPS)
            lib.extract(encoders=StandInBank(), engine=engine)
            report = embed_library(lib, engine, encoders=StandInBank())
            records = classify_videos(lib, zero_shot_for_library(lib), engine)
            hits = lib.search("红烧肉", k=3)
            out[name] = (library_state(lib), records, [(h["id"], round(h["score"], 4)) for h in hits],
                         [(r["space"], r["items"], r["dim"]) for r in report["indexes"]])
    embedded, scaled = out["embedded"], out["scaled"]
    assert compare_states(embedded[0], scaled[0]) == []
    assert embedded[1] == scaled[1] and all("l2" in r for r in scaled[1])
    assert embedded[2] == scaled[2] and len(scaled[2]) == 3
    assert embedded[3] == scaled[3] and scaled[3][1][1] == len(CLIPS)  # every clip has a fused vector


@pytest.mark.ray
def test_worker_errors_reach_the_driver_as_vidlens_errors(ray_local):
    with pytest.raises(VidlensError, match="stand-in model file is damaged"):
        list(RayEngine().map(FailsInWorker(), [1, 2, 3]))


def test_local_engine_and_engine_options():
    assert [r for _, r in LocalEngine().map(Doubles(), [1, 2, 3])] == [2, 4, 6]
    assert isinstance(create_engine("ray", workers=2), RayEngine)
    with pytest.raises(ConfigError, match="unknown engine"):
        create_engine("spark")
    with pytest.raises(ConfigError, match="--workers applies to --engine ray only"):
        create_engine("local", workers=2)


@pytest.mark.ray
def test_cli_engine_ray(extracted, tmp_path):
    """`vidlens tag --engine ray` in a fresh process starts its own Ray and gives the in-process result."""
    from vidlens.tags.runs import tag_library

    _, on_ray, _, _ = extracted
    copy = tmp_path / "lib"
    shutil.copytree(on_ray.root, copy)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "vidlens", "-L", str(copy), *args], capture_output=True,
                              text=True, timeout=300)

    proc = run("tag", "--all", "--encoder", "none", "--engine", "ray", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    with vidlens.open(copy, create=False) as lib:
        assert json.loads(proc.stdout) == json.loads(json.dumps(tag_library(lib, encoder="none"), ensure_ascii=False))
    bad = run("extract", "--workers", "2")
    assert bad.returncode == 2 and "apply to --engine ray only" in bad.stderr


def test_deploy_compose_file_is_valid_and_complete():
    """docker-compose.yml parses and has each piece the README starts (Docker itself is not run here)."""
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"etcd", "minio", "milvus", "postgres", "ray-head", "ray-worker"} <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
    assert services["milvus"]["environment"]["ETCD_ENDPOINTS"] == "etcd:2379"
    assert services["milvus"]["environment"]["MINIO_ADDRESS"] == "minio:9000"
    assert "--head" in services["ray-head"]["command"] and "ray-head:6379" in services["ray-worker"]["command"]
    for node in ("ray-head", "ray-worker"):  # every node sees the library at the same path, with the same settings
        env = services[node]["environment"]
        assert env["VIDLENS_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["VIDLENS_INDEX__BACKEND"] == "milvus" and env["VIDLENS_INDEX__MILVUS_URI"].startswith("http://milvus:")
        assert "data:/data" in services[node]["volumes"]
    assert set(compose["volumes"]) >= {"etcd", "minio", "milvus", "postgres", "data"}
    # The settings the nodes get are valid vidlens settings.
    from vidlens.config import load_config

    env = {k: v for k, v in services["ray-head"]["environment"].items() if k != "VIDLENS_CACHE_DIR"}
    config = load_config(environ=env)
    assert config.index.backend == "milvus" and config.database_url == env["VIDLENS_DATABASE_URL"]
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for command in ("docker compose", "--engine ray", "--address", "VIDLENS_DATABASE_URL", "milvus_uri"):
        assert command in readme
