"""Classification over a real library: tiny generated clips, tiny stand-in encoders, labels from the
manifest; bad input; and the CLI end to end (train -> evaluate -> classify) as subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import vidlens
from vidlens.classify import DatasetError, LabelError, ModalitySource, TextEmbedder, TrainConfig, dataset_from_library
from vidlens.classify.runs import classify_files, classify_library
from vidlens.classify.zeroshot import ZeroShotClassifier
from vidlens.taxonomy import Taxonomy
from vidlens.testing.encoders import CharBagEncoder

TAXONOMY = """categories:
- name: warm
  children:
  - {name: red-ish, aliases: [Red], keywords: [apple, tomato]}
  - {name: green-ish, keywords: [leaf, grass]}
- name: cool
  children:
  - {name: blue-ish, keywords: [sky, sea]}
"""
CLASSES = [("red", "red-ish", "warm", "red apple tomato"), ("green", "green-ish", "warm", "green leaf grass"),
           ("blue", "blue-ish", "cool", "blue sky sea")]




class Bank:
    """Stand-in encoders with the EncoderBank interface: colour statistics, loudness, character bags."""

    def key_of(self, feature):
        role = "frames" if feature == "cover" else "text" if feature.startswith("text.") else feature
        return f"tiny-{role}@1"

    def frames(self, frames):
        x = frames.reshape(len(frames), -1, 3).astype(np.float32) / 255
        return np.concatenate([x.mean(1), x.std(1)], axis=1), [{"name": "colour", "score": 0.5}]

    def audio(self, wave):
        n = max(1, len(wave) // 16000)
        return np.stack([np.array([np.abs(b).mean(), b.std()], np.float32) for b in np.array_split(wave, n)])

    def text(self, texts):
        return CharBagEncoder().encode_batch(texts)


@pytest.fixture(scope="module")
def library(tmp_path_factory, clip_factory):
    root = tmp_path_factory.mktemp("classify-lib")
    clips = root / "clips"
    clips.mkdir()
    rows = []
    for c, (color, l2, l1, words) in enumerate(CLASSES):
        for k in range(4):
            name = f"{color}{k}.mp4"
            has_audio = not (color == "blue" and k == 3)
            shutil.copy(clip_factory(duration=1.0, size=(48, 32), color=color, tone_hz=200 + 150 * c + 10 * k,
                                     audio=has_audio), clips / name)
            label = f"{l1}|{l2}" if k % 2 else l2
            rows.append({"path": f"clips/{name}", "title": f"{words} {k}", "labels": label})
    (root / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (root / "taxonomy.yaml").write_text(TAXONOMY)
    lib = vidlens.open(root / "lib")
    assert not lib.ingest(root / "m.jsonl").failed
    report = lib.extract(["frames", "audio", "text"], encoders=Bank())
    assert not report.errors
    yield lib, root
    lib.close()


def test_dataset_from_library(library):
    lib, root = library
    tax = Taxonomy.load(root / "taxonomy.yaml")
    ds = dataset_from_library(lib, ["frames", "audio", "title"], tax)
    assert len(ds) == 12 and ds.counts() == {"red-ish": 4, "green-ish": 4, "blue-ish": 4}
    assert ds.modalities["frames"].kind == "sequence" and ds.modalities["frames"].sequences[0].shape == (1, 6)
    assert ds.modalities["title"].kind == "text" and "apple" in " ".join(ds.modalities["title"].texts)
    assert ds.modalities["audio"].present.sum() == 11  # one clip has no audio track
    assert ds.encoder_versions["text.title"] == "tiny-text@1"
    assert ds.encoder_versions["frames"].startswith("tiny-frames@1#")
    pooled = dataset_from_library(lib, [ModalitySource("frames_pooled", "frames", "vector")], tax)
    assert pooled.modalities["frames_pooled"].kind == "vector" and pooled.modalities["frames_pooled"].sequences is None
    with pytest.raises(DatasetError, match="feature 'cover' has no sequence"):
        ModalitySource("c", "cover", "sequence")


def test_bad_labels_and_missing_features(library, tmp_path, clip_factory):
    lib, root = library
    small = Taxonomy.from_records([{"name": "warm", "children": [{"name": "red-ish"}, {"name": "green-ish"}]}])
    with pytest.raises(LabelError, match=r"video [0-9a-f]+ \('blue sky sea \d'\): label 'blue-ish' is not a category"):
        dataset_from_library(lib, ["frames"], small)
    tax = Taxonomy.load(root / "taxonomy.yaml")
    with pytest.raises(DatasetError, match=r"'blue sky sea 3'\) has none of the modalities \['audio'\]"):
        dataset_from_library(lib, ["audio"], tax)
    assert len(dataset_from_library(lib, ["audio"], tax, skip_unusable=True)) == 11
    with pytest.raises(DatasetError, match=r"none of the 12 videos has feature 'text\.ocr'"):
        dataset_from_library(lib, ["ocr"], tax)
    fresh = vidlens.open(tmp_path / "fresh")
    clip = tmp_path / "c.mp4"
    shutil.copy(clip_factory(duration=1.0, size=(48, 32), color="red", tone_hz=777), clip)
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "c.mp4", "title": "t", "labels": "red-ish"}) + "\n")
    fresh.ingest(tmp_path / "m.jsonl")
    with pytest.raises(DatasetError, match=r"is labelled \['red-ish'\] but has no extracted features"):
        dataset_from_library(fresh, ["frames"], tax)
    fresh.close()
    unlabelled = vidlens.open(tmp_path / "unlabelled")
    shutil.copy(clip, tmp_path / "d.mp4")
    unlabelled.ingest(tmp_path / "d.mp4")
    with pytest.raises(DatasetError, match="no video has labels"):
        dataset_from_library(unlabelled, ["frames"], tax)
    unlabelled.close()


def test_zero_shot_over_library(library):
    lib, root = library
    zs = ZeroShotClassifier(Taxonomy.load(root / "taxonomy.yaml"), TextEmbedder(CharBagEncoder()))
    records = classify_library(lib, zs, top_k=2)
    assert len(records) == 12
    tax = zs.taxonomy
    for r in records:
        assert tax.parent(r["l2"]) == r["l1"] and r["method"] == "zero-shot" and len(r["top_k"]) == 2
    right = sum(r["l2"] == next(c[1] for c in CLASSES if r["title"].startswith(c[3])) for r in records)
    assert right >= 8


def _run(*args, cwd):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "vidlens", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def test_cli_train_evaluate_classify(library, tmp_path, clip_factory):
    lib, root = library
    config = tmp_path / "tiny.toml"
    config.write_text(f"""
name = "tiny"
[data]
source = "library"
taxonomy = "{root / 'taxonomy.yaml'}"
split = {{ val = 0.25, test = 0.25, seed = 0 }}

[[model.modalities]]
name = "frames"
aggregator = {{ name = "netvlad", params = {{ num_clusters = 2, proj_dim = 8 }} }}
[[model.modalities]]
name = "audio"
[[model.modalities]]
name = "title"
text_branch = {{ out_dim = 8, embed_dim = 8, num_buckets = 500, word_ngrams = [] }}

[model]
fusion = {{ name = "modal_attention", params = {{ hidden_dim = 8, attention_hidden = 8 }} }}
head = {{ name = "hmc" }}
modal_dropout = 0.1

[train]
epochs = 4
batch_size = 4
lr = 0.01
""")
    libdir = str(lib.root)
    done = _run("-L", libdir, "train", "--config", str(config), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    card = json.loads(done.stdout)
    folder = lib.root / "models" / "tiny"
    assert card["model"] == str(folder) and (folder / "weights.safetensors").is_file()
    assert card["test"]["n"] >= 3 and card["data"]["items"] == 12

    done = _run("-L", libdir, "evaluate", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ev = json.loads(done.stdout)
    assert ev["split"] == "test" and set(ev["ablation"]) <= {"frames", "audio", "title"}
    report = open(ev["report"], encoding="utf-8").read()
    assert str(lib.root / "reports") in ev["report"] and "data:image/png;base64," in report

    # a model against itself (by name and by folder): the same everywhere, and the table says so
    done = _run("-L", libdir, "compare", "tiny", str(folder), "--resamples", "200", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "tiny (B) is no different from tiny (A)" in " ".join(done.stdout.split()) and "McNemar" in done.stdout
    assert list((lib.root / "reports").glob("compare-tiny-vs-tiny-test-*.html"))

    done = _run("-L", libdir, "classify", "--top-k", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    tax = Taxonomy.load(root / "taxonomy.yaml")
    assert len(records) == 12 and all(tax.parent(r["l2"]) == r["l1"] for r in records)
    assert {"frames", "title"} <= set(records[0]["modalities"]) and records[0]["model"] == "tiny"

    # A single new file: ingested, extracted with the stand-in encoders, classified (Python API).
    new = tmp_path / "new.mp4"
    shutil.copy(clip_factory(duration=1.0, size=(48, 32), color="green", tone_hz=555), new)
    from vidlens.classify import TrainedClassifier

    clf = TrainedClassifier.load(folder)
    out = classify_files(lib, [new, tmp_path / "missing.mp4"], clf, encoders=Bank())
    assert "l2" in out[0], out
    assert out[0]["l2"] in tax.l2_names and "frames" in out[0]["modalities"]
    assert out[1]["path"].endswith("missing.mp4") and out[1]["error"]

    # Features from another encoder version are refused with a clear message.
    other = dict(clf.model.encoder_versions, **{"text.title": "muse_v3@other"})
    clf.model.encoder_versions = other
    with pytest.raises(vidlens.VidlensError, match=r"text\.title: model trained on 'muse_v3@other'"):
        classify_library(lib, clf)

    # No installed encoder made the library's text features: zero-shot says so.
    from vidlens.classify.runs import zero_shot_for_library

    with pytest.raises(vidlens.VidlensError, match="tiny-text"):
        zero_shot_for_library(lib)


def test_default_taxonomy_of_a_library_config_is_the_librarys_own(library):
    from vidlens.classify.runs import build_dataset
    from vidlens.taxonomy import library_taxonomy_path, save_library_taxonomy

    lib, root = library
    config = TrainConfig.from_dict({"name": "own", "data": {"source": "library"},
                                    "model": {"modalities": [{"name": "title"}]}})
    own = Taxonomy.load(root / "taxonomy.yaml")
    save_library_taxonomy(lib.root, own)  # as `vidlens taxonomy import` or the HTTP API would
    try:
        ds = build_dataset(config, lib)
        assert ds.taxonomy.fingerprint() == own.fingerprint() and len(ds) == 12
    finally:
        library_taxonomy_path(lib.root).unlink()
