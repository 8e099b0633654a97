"""Tag library: normalisation, duplicates, statuses, versions, import/export, decomposition, mining."""

from __future__ import annotations

import json

import pytest

from vidlens.errors import ConfigError, NotFoundError
from vidlens.tags import TagError, TagLibrary, normalize_tag
from vidlens.tags.miners import PatternMiner, QualityPhraseMiner, TrendingPhraseMiner


@pytest.fixture
def tags(database_url):
    return TagLibrary(database_url, user="alice")


def test_normal_form_folds_width_case_script_and_space():
    assert normalize_tag("ＡＢＣ") == normalize_tag("abc") == "abc"
    assert normalize_tag("連衣裙") == normalize_tag("连衣裙")
    assert normalize_tag("  iPhone\u3000 15 ") == "iphone 15"


def test_variants_are_one_tag(tags):
    first = tags.add("連衣裙", status="approved")
    for variant in ("连衣裙", " 連衣裙 "):
        again = tags.add(variant, count=2)
        assert again["existing"] and again["id"] == first["id"]
    tags.add("ＶＬＯＧ", status="approved")
    assert tags.add("vlog")["existing"]
    assert tags.stats()["tags"] == 2
    assert tags.get("VLOG")["name"] == "ＶＬＯＧ"


def test_long_empty_and_symbol_names_are_rejected(tags):
    with pytest.raises(TagError, match="200 characters long; the limit is 50"):
        tags.add("长" * 200)
    with pytest.raises(TagError, match="empty"):
        tags.add("   ")
    with pytest.raises(TagError, match="no letter"):
        tags.add("!!!")
    report = tags.import_records([{"name": "好" * 200}, {"name": "好的"}, {"nope": 1}])
    assert report.created == 1 and len(report.errors) == 2


def test_rejected_tag_stays_rejected_when_mined_again(tags):
    tags.add("无聊词")
    tags.reject("无聊词", note="not a topic")
    report = tags.propose([{"name": "無聊詞", "score": 0.99, "count": 5}], source="autophrase")
    assert report.rejected_again == 1 and report.created == 0
    tag = tags.get("无聊词")
    assert tag["status"] == "rejected" and tag["count"] == 5
    tags.add("无聊词", status="approved")  # add never changes an existing tag's status
    assert tags.get("无聊词")["status"] == "rejected"
    assert 1 not in tags.ids()  # rejected tags are not matched
    assert tags.matcher().match("无聊词") == []


def test_review_fields_taxonomy_and_dimensions(tags):
    tags.add("成都", atomic_class="place/city", status="approved")
    assert tags.get("成都")["reviewed_by"] == "alice"
    tags.add("成都美食攻略", dimensions={"lifetime": "long_term", "target": "content"})
    tag = tags.get("成都美食攻略")
    assert tag["kind"] == "phrase" and tag["dimensions"]["target"] == "content"
    assert tag["components"][0] == "成都"
    with pytest.raises(ConfigError, match="unknown atomic tag class"):
        tags.add("x1", atomic_class="planet")
    with pytest.raises(ConfigError, match="takes content or product"):
        tags.add("x2", dimensions={"target": "movie"})
    assert tags.decompose("白色连衣裙") == ["白色", "连衣裙"]


def test_aliases_links_merge(tags):
    tags.add("番茄", status="approved")
    tags.add_alias("番茄", "西红柿")
    assert tags.get("西紅柿")["name"] == "番茄"
    tags.add("土豆", status="approved")
    with pytest.raises(TagError, match="is itself a tag"):
        tags.add_alias("番茄", "土豆")
    tags.add("蔬菜", status="approved")
    tags.link("番茄", "蔬菜", "parent")
    with pytest.raises(TagError, match="cycle"):
        tags.link("蔬菜", "番茄", "parent")
    assert tags.get("蔬菜")["children"] == ["番茄"]
    tags.add("tomato", status="approved")
    merged = tags.merge("tomato", "番茄")
    assert "tomato" in merged["aliases"] and tags.get("TOMATO")["name"] == "番茄"


def test_history_diff_and_rollback(tags):
    tags.add("a1", status="approved")
    v1 = tags.version
    tags.add("b2")
    tags.approve("b2")
    tags.add_alias("a1", "aa1")
    tags.delete("a1")
    diff = {d["name"]: d for d in tags.diff(v1)}
    assert diff["a1"]["change"] == "removed" and diff["b2"]["change"] == "added"
    assert [h["action"] for h in tags.history("b2")] == ["approve", "create"]
    result = tags.rollback(v1)
    assert result["restored"] == 2
    assert tags.find("b2") is None and tags.get("a1")["status"] == "approved"
    assert tags.get("a1")["aliases"] == []
    tags.rollback(result["version"] - 1)  # a rollback is itself undoable
    assert tags.get("b2")["status"] == "approved" and tags.find("a1") is None
    with pytest.raises(TagError, match="does not exist"):
        tags.rollback(999)


def test_import_export_round_trip(tags, tmp_path):
    src = tmp_path / "in.jsonl"
    lines = [json.dumps({"name": "篮球", "atomic_class": "event/activity/sport", "aliases": ["basketball"]},
                        ensure_ascii=False),
             "{broken json",
             json.dumps({"name": "NBA篮球", "parents": ["篮球"], "kind": "phrase"}, ensure_ascii=False),
             json.dumps({"name": "籃球", "count": 3}, ensure_ascii=False)]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = tags.import_file(src)
    assert report.created == 2 and report.merged == 1 and report.errors[0][0] == 2
    assert tags.get("篮球")["count"] == 3
    for fmt in ("csv", "jsonl"):
        out = tmp_path / f"out.{fmt}"
        assert tags.export(out) == 2
        other = TagLibrary(f"sqlite:///{tmp_path / f'copy-{fmt}.db'}")
        rep = other.import_file(out)
        assert rep.created == 2 and not rep.errors
        got = other.get("nba篮球")
        assert got["parents"] == ["篮球"] and other.get("basketball")["name"] == "篮球"


def test_unknown_refs_raise_not_found(tags):
    with pytest.raises(NotFoundError):
        tags.get("nothing")
    with pytest.raises(NotFoundError):
        tags.approve(["nothing"])


def test_matcher_respects_word_boundaries(tags):
    tags.import_records([{"name": n} for n in ("上海", "海", "白色连衣裙", "连衣裙", "ai", "春天")])
    found = {m.text for m in tags.matcher().match("上海的白色連衣裙 AI绘画 said 春天")}
    assert found == {"上海", "白色连衣裙", "连衣裙", "ai", "春天"}  # not 海 inside 上海, not "ai" in "said"


CORPUS = [
    "复古穿搭分享 白色连衣裙搭配", "秋冬穿搭教程 温柔风", "通勤穿搭 简约风格", "学生党穿搭 平价好物",
    "成都美食探店 火锅", "重庆美食探店 小面", "西安美食探店 肉夹馍", "长沙美食探店 臭豆腐",
    "复古穿搭 小个子", "秋冬穿搭 大衣", "通勤穿搭 衬衫", "学生党穿搭 卫衣",
] * 3


def test_miners_find_phrases_and_handle_empty_corpus():
    known = ["复古穿搭", "成都美食探店", "重庆美食探店", "火锅", "白色连衣裙", "小面", "通勤穿搭"]
    phrases = PatternMiner(min_count=2).mine(CORPUS, known=known)
    names = {p.name for p in phrases}
    assert {"秋冬穿搭", "学生党穿搭"} <= names and "复古穿搭" not in names
    assert phrases[0].evidence["pattern"]
    miner = QualityPhraseMiner(min_count=2, threshold=0.0, n_estimators=10)
    mined = miner.mine(CORPUS, known=known)
    assert mined and all(p.name not in known for p in mined)
    for m in (QualityPhraseMiner(), PatternMiner(), TrendingPhraseMiner()):
        assert m.mine([], known=known) == []
    assert QualityPhraseMiner().mine(["", "  "]) == []
    assert QualityPhraseMiner().get_params()["min_count"] == 2


def test_trending_miner_reports_weekly_deltas():
    from datetime import datetime, timedelta

    end = datetime(2025, 6, 1)
    docs, times = [], []
    for week in range(5):
        for i in range(6):
            docs.append(f"日常分享第{i}天 普通生活")
            times.append(end - timedelta(days=7 * week + 1))
    for i in range(6):
        docs.append(f"欧冠决赛 巴黎夺冠 {i}")
        times.append(end - timedelta(days=1))
    trending = TrendingPhraseMiner(min_count=3).mine(docs, times=times)
    top = {p.name: p for p in trending}
    assert "欧冠决赛" in top and top["欧冠决赛"].evidence["weekly_counts"][-1] == 6
    assert "普通生活" not in top
