"""The public face: ``lib.classify / search / similar / dedup / tag`` on a small generated library."""

from __future__ import annotations

import pytest
from test_retrieval import built, lib  # noqa: F401  (fixtures: a library of five clips, tiny encoders)

from vidlens.errors import VidlensError
from vidlens.retrieval.pairs import library_pairs
from vidlens.tags import TagLibrary


def test_library_methods_reach_every_subsystem(lib):  # noqa: F811
    lib, ids = lib
    assert lib.search("红烧肉 做法", k=2)[0]["id"] == ids["cook.mp4"]
    near = lib.similar(ids["cook.mp4"], k=1)
    assert near[0]["id"] == ids["cook_copy.mp4"]
    groups = lib.dedup()
    assert any({ids["cook.mp4"], ids["cook_copy.mp4"]} <= set(g["videos"]) for g in groups)

    records = lib.classify(top_k=2)
    assert {r["id"] for r in records} == set(ids.values())
    assert all(r["l1"] and r["l2"] and "modalities" in r for r in records), records

    TagLibrary(lib).import_records([{"name": "红烧肉"}, {"name": "王者荣耀"}, {"name": "钢琴"}])
    tagged = {r["video_id"]: r for r in lib.tag(encoder="none")}
    cook = tagged[ids["cook.mp4"]]
    assert "红烧肉" in [t["tag"] for t in cook["core"] + cook["related"]]
    assert lib.tag([ids["game.mp4"][:8]], encoder="none")[0]["video_id"] == ids["game.mp4"]


def test_unknown_ids_are_named(lib):  # noqa: F811
    lib, _ids = lib
    from vidlens.errors import NotFoundError

    with pytest.raises(NotFoundError):
        lib.similar("ffffffffffff", k=1)


def test_train_search_cli_from_titles_tags_and_a_pairs_file(lib, tmp_path):  # noqa: F811
    import json
    import subprocess
    import sys

    lib, ids = lib
    TagLibrary(lib).assign(ids["cook.mp4"], ["红烧肉", "家常菜"], source="gold")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"query": "钢琴曲", "video": ids["music.mp4"][:8]}, ensure_ascii=False) + "\n",
                     encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "vidlens", "-L", str(lib.root), "train-search", "--pairs",
                           str(pairs), "--holdout", "0.4", "--epochs", "2"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["pairs"]["titles"] == 5 and result["pairs"]["tags"] == 2 and result["pairs"]["file"] == 1
    assert 0 < result["trained_on"] < 8 and result["held_out"]["pairs"] > 0
    assert 1 <= result["held_out"]["mean_rank"] <= 5
    assert (lib.root / "models" / "two_tower").is_dir()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "x"}\n', encoding="utf-8")
    with pytest.raises(VidlensError, match="row 1: needs 'query' and 'video'"):
        library_pairs(lib, ["titles"], bad)
    with pytest.raises(VidlensError, match="unknown pair source"):
        library_pairs(lib, ["comments"])
