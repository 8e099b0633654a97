"""The bulk import path: thousands of tags in one revision, with history, diff and rollback intact."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, create_engine, insert, select

from vidlens.tags import TagLibrary
from vidlens.tags._bulk import driver_insert

N_BULK = 3000


def test_bulk_import_is_one_revision_that_diffs_and_rolls_back(database_url, monkeypatch):
    # Small chunks, so a few thousand tags take every batched path a million do (several insert chunks,
    # a full read of the library's names instead of IN queries, many IN chunks in rollback).
    monkeypatch.setattr("vidlens.tags.library.CHUNK_ROWS", 1000)
    monkeypatch.setattr("vidlens.tags.library._IN_CHUNK", 100)
    tags = TagLibrary(database_url, user="alice")
    tags.add("連衣裙", kind="atomic", status="approved", decompose=False)  # no jieba: keeps the test fast
    tags.add("无聊词", kind="atomic", decompose=False)
    tags.reject("无聊词")
    v0 = tags.version
    names = [f"批量标签{i}" for i in range(N_BULK - 1)] + ['引号"与\\斜杠', "连衣裙", "無聊詞", "ＶＬＯＧ", "vlog"]
    report = tags.import_records(({"name": n, "count": 1} for n in names), source="bulk", who="bot")

    # New: the 3000 plus ＶＬＯＧ; merged: 连衣裙 (a script variant), 無聊詞 (rejected), vlog (a width variant).
    assert (report.created, report.merged, report.rejected_again) == (N_BULK + 1, 3, 1)
    assert report.version == tags.version == v0 + 1
    assert tags.history(limit=1)[0]["changes"] == N_BULK + 3  # one change per created or merged tag
    assert tags.get("无聊词")["status"] == "rejected" and tags.get("无聊词")["count"] == 1
    assert tags.get("連衣裙")["count"] == 1
    vlog = tags.get("vlog")
    assert vlog["name"] == "ＶＬＯＧ" and vlog["count"] == 2 and vlog["created_by"] == "bot"
    assert len(tags.ids()) == N_BULK + 2  # approved: the new ones and 連衣裙, never the rejected one
    assert [h["action"] for h in tags.history("批量标签7")] == ["create"]

    diff = tags.diff(v0)
    added = {d["name"] for d in diff if d["change"] == "added"}
    modified = {d["name"]: d["fields"] for d in diff if d["change"] == "modified"}
    assert len(added) == N_BULK + 1 and "批量标签2998" in added
    quoted = next(d for d in diff if d["name"] == '引号"与\\斜杠')  # compact JSON written by hand: escaping
    assert quoted["fields"] == {"id": [None, quoted["tag_id"]], "name": [None, '引号"与\\斜杠'],
                                "norm": [None, '引号"与\\斜杠'], "kind": [None, "atomic"],
                                "status": [None, "approved"], "source": [None, "bulk"]}
    assert modified == {"連衣裙": {"count": [0, 1]}, "无聊词": {"count": [0, 1]}}

    undo = tags.rollback(v0)
    assert undo["restored"] == N_BULK + 3
    assert tags.stats()["tags"] == 2 and tags.find("批量标签7") is None
    assert tags.get("无聊词")["count"] == 0 and tags.get("无聊词")["status"] == "rejected"
    assert tags.diff(v0) == []  # back to exactly version v0
    tags.rollback(undo["version"] - 1)  # the rollback is itself undoable: the import comes back
    assert tags.stats()["tags"] == N_BULK + 3 and tags.get("批量标签7")["status"] == "approved"


def test_bulk_import_merges_into_tags_named_by_alias(database_url):
    tags = TagLibrary(database_url, user="alice")
    tags.add("番茄", kind="atomic", status="approved", aliases=["西红柿"], decompose=False)
    report = tags.import_records([{"name": "西紅柿", "count": 2, "evidence": {"miners": ["pattern"]}},
                                  {"name": "番茄", "count": 1, "score": 0.5},
                                  {"name": "土豆", "aliases": ["马铃薯"], "parents": ["蔬菜"]}])
    assert (report.created, report.merged) == (1, 2)
    tomato = tags.get("番茄")
    assert tomato["count"] == 3 and tomato["score"] == 0.5 and tomato["evidence"] == {"miners": ["pattern"]}
    potato = tags.get("马铃薯")
    assert potato["name"] == "土豆" and potato["parents"] == ["蔬菜"]
    assert tags.get("蔬菜")["status"] == "candidate"  # a missing parent comes in as a candidate
    history = tags.history("土豆")
    assert history[0]["action"] == "create" and history[0]["fields"]["aliases"][1] == [["马铃薯", "马铃薯"]]


@pytest.mark.parametrize("paramstyle", ["qmark", "named", "numeric"])
def test_driver_insert_matches_a_sqlalchemy_insert(paramstyle):
    engine = create_engine("sqlite://", paramstyle=paramstyle)
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("name", String(20)),
                  Column("data", JSON), Column("at", DateTime(timezone=True)))
    table.metadata.create_all(engine)
    at = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    rows = [(f"名{i}", {"i": i, "名": [i]} if i % 2 else {}) for i in range(7)]
    with engine.begin() as conn:
        n = driver_insert(conn, table, ("name", "data"), rows, constants={"at": at}, chunk_rows=3)
        conn.execute(insert(table), [{"name": r[0], "data": r[1], "at": at} for r in rows])
        got = conn.execute(select(table.c.name, table.c.data, table.c.at).order_by(table.c.id)).all()
        raw = conn.exec_driver_sql("SELECT data, at FROM t ORDER BY id").all()
    assert n == 7
    assert got[:7] == got[7:] and got[1] == ("名1", {"i": 1, "名": [1]}, at.replace(tzinfo=None))
    assert raw[:7] == raw[7:] and json.loads(raw[1][0]) == {"i": 1, "名": [1]}


def test_new_ids_fall_back_to_names_when_other_rows_sit_above(tmp_path):
    tags = TagLibrary(f"sqlite:///{tmp_path / 'tags.db'}", user="alice")
    tags.import_records([{"name": n} for n in ("甲", "乙", "丙")])
    with tags.session() as s:
        assert tags._new_ids(s, ["甲", "乙", "丙"], 0) == ({"甲": 1, "乙": 2, "丙": 3}, 3)  # the fast path
        assert tags._new_ids(s, ["乙"], 0) == ({"乙": 2}, 3)  # rows not ours above: read by name
