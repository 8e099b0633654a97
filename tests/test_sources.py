"""Manifests and folders → ingest items (no media decoding involved)."""

import json

from vidlens.ingest.sources import decode_text, iter_items, iter_manifest, normalise_row

EXTS = [".mp4", ".mkv"]


def test_folder_walk_is_recursive_sorted_and_filtered(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ("b/2.mp4", "a.mkv", "notes.txt", "b/1.MP4"):
        (tmp_path / name).write_bytes(b"x")
    items = list(iter_items([tmp_path], EXTS))
    names = [i.path.replace(str(tmp_path) + "/", "") for i in items]
    assert names == ["a.mkv", "b/1.MP4", "b/2.mp4"]


def test_jsonl_manifest_fields_and_extra(tmp_path):
    (tmp_path / "m.jsonl").write_text(
        json.dumps({"path": "v.mp4", "title": " 标题 ", "desc": "摘要", "product_titles": "a|b",
                    "label": "美食,家常菜", "likes": 3}, ensure_ascii=False) + "\n\n"
    )
    (item,) = list(iter_manifest(tmp_path / "m.jsonl"))
    assert item.path == str(tmp_path / "v.mp4")
    assert item.metadata["title"] == "标题"
    assert item.metadata["summary"] == "摘要"
    assert item.metadata["product_titles"] == ["a", "b"]
    assert item.metadata["labels"] == ["美食", "家常菜"]
    assert item.metadata["extra"] == {"likes": 3}


def test_csv_manifest(tmp_path):
    (tmp_path / "m.csv").write_text("path,title,labels\nsub/v.mp4,Hello,x|y\n", encoding="utf-8")
    (item,) = list(iter_manifest(tmp_path / "m.csv"))
    assert item.path == str(tmp_path / "sub" / "v.mp4")
    assert item.metadata["labels"] == ["x", "y"]


def test_manifest_line_without_path_and_bad_json_are_error_items(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"title": "no path"}\n{not json\n{"path": "ok.mp4"}\n')
    items = list(iter_manifest(tmp_path / "m.jsonl"))
    assert [i.error is not None for i in items] == [True, True, False]
    assert "no 'path'" in items[0].error
    assert items[0].label.endswith("m.jsonl:1")
    assert "JSON" in items[1].error


def test_non_utf8_title_is_decoded_with_warning(tmp_path):
    line = '{"path": "v.mp4", "title": "红烧肉"}'.encode("gb18030")
    (tmp_path / "m.jsonl").write_bytes(line + b"\n")
    (item,) = list(iter_manifest(tmp_path / "m.jsonl"))
    assert item.metadata["title"] == "红烧肉"
    assert item.warnings and "GB18030" in item.warnings[0]


def test_decode_text_falls_back_to_replacement():
    text, warning = decode_text(b"\x81\x30\xff\xfe")
    assert warning is not None
    assert isinstance(text, str)


def test_normalise_row_keeps_unknown_columns():
    meta = normalise_row({"path": "x", "Author": "me"})
    assert meta["extra"] == {"Author": "me"}


def test_missing_explicit_path_becomes_item(tmp_path):
    (item,) = list(iter_items([tmp_path / "nope.mp4"], EXTS))
    assert item.path.endswith("nope.mp4")
