"""End-to-end: the tag commands as a real subprocess (no encoder needed: text matching only)."""

from __future__ import annotations

import json

import pytest
from _cli import run_vidlens

run = run_vidlens


@pytest.mark.timeout(1800)  # nine CLI processes: minutes on a machine shared with other jobs
def test_tags_cli_end_to_end(tmp_path):
    lib = tmp_path / "lib"
    seed = tmp_path / "seed.txt"
    seed.write_text("复古穿搭\n通勤穿搭\n成都美食\n火锅\n", encoding="utf-8")
    corpus = tmp_path / "titles.jsonl"
    titles = ["秋冬穿搭 大衣", "学生党穿搭 卫衣", "复古穿搭 小个子", "通勤穿搭 衬衫", "成都美食 火锅"] * 3
    corpus.write_text("\n".join(json.dumps({"title": t}, ensure_ascii=False) for t in titles) + "\n",
                      encoding="utf-8")
    assert json.loads(run("-L", lib, "tags", "import", seed).stdout)["created"] == 4
    mined = json.loads(run("-L", lib, "tags", "mine", corpus, "--miner", "pattern", "--by", "bot").stdout)
    assert mined["proposed"]["pattern"]["created"] >= 1
    review = json.loads(run("-L", lib, "tags", "review", "--json").stdout)
    names = {r["name"] for r in review}
    assert "秋冬穿搭" in names and all(r["status"] == "candidate" for r in review)
    run("-L", lib, "tags", "approve", "秋冬穿搭", "--by", "alice")
    run("-L", lib, "tags", "reject", "学生党穿搭", "--by", "alice")
    again = json.loads(run("-L", lib, "tags", "mine", corpus, "--miner", "pattern").stdout)
    assert again["proposed"]["pattern"]["rejected_again"] >= 1
    records = tmp_path / "videos.jsonl"
    records.write_text(json.dumps({"id": "v1", "title": "秋冬穿搭分享：成都美食火锅 学生党穿搭"}, ensure_ascii=False)
                       + "\n", encoding="utf-8")
    tagged = json.loads(run("-L", lib, "tag", "--input", records, "--encoder", "none").stdout)
    got = {t["tag"]: t for t in tagged[0]["core"] + tagged[0]["related"]}
    assert {"秋冬穿搭", "成都美食", "火锅"} <= set(got) and "学生党穿搭" not in got
    assert got["火锅"]["channels"] == ["content_text"]
    assert json.loads(run("-L", lib, "tags", "rollback", "1").stdout)["restored"] >= 2  # version 1: the import
    clicks = tmp_path / "clicks.jsonl"
    clicks.write_text('{"video_id": "v1", "tag": "火锅"}\nnot json\n', encoding="utf-8")
    fb = json.loads(run("-L", lib, "tags", "feedback", clicks).stdout)
    assert fb["clicks"]["malformed"] == 1 and fb["clicks"]["video_tag_clicks"] == 1
