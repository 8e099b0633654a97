"""Tagging: recall channels, rankers (zero-shot and trained), selection, feedback; a tiny stand-in encoder."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from vidlens.tags import (
    RANKERS,
    RECALL_CHANNELS,
    Tagger,
    TagLibrary,
    VideoDoc,
    evaluate,
    ingest_clicks,
    load_ranker,
    retrain,
)
from vidlens.tags.normalize import normalize_text


class HashingEncoder:
    """Stand-in for the multilingual text encoder: hashed character uni/bi-grams, unit rows (zero for "")."""

    name = "hashing"
    version = "1"

    def encode_batch(self, items):
        out = np.zeros((len(items), 512), np.float32)
        for r, text in enumerate(items):
            t = normalize_text(text)
            for gram in [*t, *(t[i:i + 2] for i in range(len(t) - 1))]:
                out[r, int(hashlib.md5(gram.encode()).hexdigest()[:6], 16) % 512] += 1
            n = np.linalg.norm(out[r])
            if n:
                out[r] /= n
        return out


TOPICS = {
    "穿搭": ["复古穿搭", "白色连衣裙", "发箍"],
    "美食": ["成都美食", "火锅", "探店"],
    "足球": ["欧冠决赛", "皇马", "姆巴佩"],
    "宠物": ["猫咪", "柯基", "萌宠日常"],
}


def make_corpus(n_per_topic: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    records = []
    for topic, tag_names in TOPICS.items():
        for i in range(n_per_topic):
            picked = [t for t in tag_names if rng.random() < 0.7] or tag_names[:1]
            title = f"{topic}分享{i}：" + "和".join(picked[:2])
            summary = "今天聊聊" + (picked[-1] if rng.random() < 0.5 else topic)
            records.append({"id": f"{topic}-{i}", "title": title, "summary": summary, "gold": picked,
                            "extra": [np.float32(rng.normal()) for _ in range(8)]})
    return records


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("tagging")
    tags = TagLibrary(f"sqlite:///{root / 'tags.db'}", user="tester")
    tags.import_records([{"name": n} for names in TOPICS.values() for n in names] + [{"name": "分享"}])
    enc = HashingEncoder()
    records = make_corpus()
    docs = []
    for r in records:
        doc = VideoDoc.from_record(r, encoder=enc)
        doc.vectors["frames"] = np.asarray(r["extra"], np.float32)  # a non-text modality, 8-d
        docs.append(doc)
    gold = {}
    for r in records[::2]:  # even rows: tagged training videos
        gold[r["id"]] = tags.assign(r["id"], r["gold"], source="gold")
    test_gold = {r["id"]: {tags.get(n)["id"] for n in r["gold"]} for r in records[1::2]}
    return tags, enc, docs, gold, test_gold


def test_every_channel_is_registered_with_explicit_params():
    assert set(RECALL_CHANNELS.list()) == {"content_text", "product_text", "query", "cross_modal",
                                           "similar_videos"}
    for name in RECALL_CHANNELS.list():
        ch = RECALL_CHANNELS.create(name)
        params = ch.get_params()
        assert params and ch.set_params(**params) is ch
    assert set(RANKERS.list()) == {"zero_shot", "late_fusion", "attention_fusion"}


def test_zero_shot_tagging_reports_channels_and_scores(setup):
    tags, enc, docs, _, test_gold = setup
    tagger = Tagger(tags, encoder=enc)
    tagger.use_tagged_videos(docs)
    doc = next(d for d in docs if d.video_id == "足球-1")
    result = tagger.tag(doc)
    names = [t["tag"] for t in result["core"] + result["related"]]
    assert result["video_id"] == "足球-1" and names
    assert all(0 <= t["score"] <= 1 and t["channels"] for t in result["core"] + result["related"])
    assert set(names) & set(TOPICS["足球"])
    json.dumps(result, ensure_ascii=False)
    metrics = evaluate(tagger, [d for d in docs if d.video_id in test_gold], test_gold)
    assert metrics["recall@10"] > 0.5
    assert metrics["channels"]["content_text"]["recall"] > 0.3
    assert metrics["channels"]["similar_videos"]["mean_candidates"] > 0


@pytest.mark.parametrize("name", ["late_fusion", "attention_fusion"])
def test_trained_rankers_fit_save_load(setup, name, tmp_path):
    tags, enc, docs, gold, test_gold = setup
    tagger = Tagger(tags, encoder=enc, ranker=RANKERS.create(name, epochs=3, hidden=16))
    tagger.use_tagged_videos(docs)
    tagger.fit(docs, gold)
    assert len(tagger.ranker.history_) == 3
    test_docs = [d for d in docs if d.video_id in test_gold]
    before = evaluate(tagger, test_docs, test_gold)
    tagger.ranker.save(tmp_path / "r")
    reloaded = Tagger(tags, encoder=enc, ranker=tmp_path / "r")
    reloaded.use_tagged_videos(docs)
    assert evaluate(reloaded, test_docs, test_gold)["precision@5"] == pytest.approx(before["precision@5"])
    # A video without its frames vector (missing modality) still gets scores.
    doc = VideoDoc(test_docs[0].video_id, test_docs[0].texts, {k: v for k, v in test_docs[0].vectors.items()
                                                               if k != "frames"})
    assert reloaded.tag(doc)["n_candidates"] > 0


def test_query_channel_and_click_feedback(setup, tmp_path):
    tags, enc, docs, gold, test_gold = setup
    log = tmp_path / "clicks.jsonl"
    lines = []
    for vid, ids in test_gold.items():
        for name in tags.names(ids).values():
            lines.append(json.dumps({"video_id": vid, "tag": name, "clicks": 2}, ensure_ascii=False))
    lines += [
        json.dumps({"query": "柯基", "video_id": "宠物-1"}, ensure_ascii=False),
        "{not json", json.dumps({"video_id": "x"}), json.dumps({"tag": "火锅"}, ensure_ascii=False),
        json.dumps({"video_id": "x", "tag": "火锅", "clicks": "many"}, ensure_ascii=False), "[1, 2]",
        json.dumps({"video_id": "x", "tag": "长" * 200}, ensure_ascii=False),
        json.dumps({"video_id": "x", "tag": "没见过的标签"}, ensure_ascii=False),
    ]
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ingest_clicks(tags, log)
    assert report.malformed == 6 and report.query_video == 1 and report.unknown_tags == 1
    assert {e[0] for e in report.errors} == set(range(len(lines) - 6, len(lines) + 1)) - {len(lines)}
    csv_log = tmp_path / "clicks.csv"
    csv_log.write_text("video_id,tag,clicks\n猫-1,猫咪,1\n,,\n猫-1,猫咪,1,extra\n", encoding="utf-8")
    assert ingest_clicks(tags, csv_log).malformed == 2
    tagger = Tagger(tags, encoder=enc, channels=["query"])
    doc = next(d for d in docs if d.video_id == "宠物-1")
    assert tagger.tag(VideoDoc("宠物-1", doc.texts, doc.vectors))["core"][0]["tag"] == "柯基"
    tagger = Tagger(tags, encoder=enc)
    tagger.use_tagged_videos(docs)
    result = retrain(tagger, docs, {k: set(v) for k, v in gold.items()},
                     ranker=RANKERS.create("late_fusion", epochs=2, hidden=16))
    assert result["n_eval"] > 0 and "precision@5" in result["before"] and "precision@5" in result["after"]


def test_rejected_tag_is_never_recalled(setup):
    tags = setup[0]
    tags.add("测试拒绝词", status="approved")
    doc = VideoDoc("v", {"title": "测试拒绝词和火锅"})
    tagger = Tagger(tags, encoder=None, channels=["content_text"])
    assert "测试拒绝词" in [t["tag"] for t in tagger.tag(doc)["core"] + tagger.tag(doc)["related"]]
    tags.reject("测试拒绝词")
    tags.propose([{"name": "测试拒绝词", "score": 1.0}], source="pattern")
    names = [t["tag"] for t in tagger.tag(doc)["core"] + tagger.tag(doc)["related"]]
    assert "测试拒绝词" not in names and "火锅" in names
    assert load_ranker  # imported for the public API
