"""End-to-end: the text-only path through the command line, with the real multilingual text encoder:
train on rows, evaluate the saved model, classify new rows (trained and zero-shot), compare the model with
zero-shot and cross-validate the config."""

from __future__ import annotations

import json

import pytest
from _cli import run_vidlens as run

# Level-2 categories first seen with their parents interleaved (体育 / 美食 / 体育), as real data comes.
WORDS = {"球类": ["足球比赛", "篮球比赛"], "家常菜": ["红烧肉做法", "番茄炒蛋"], "田径": ["马拉松", "百米短跑"]}
PARENT = {"球类": "体育", "家常菜": "美食", "田径": "体育"}


@pytest.mark.timeout(900)
def test_rows_train_evaluate_classify_from_the_cli(tmp_path):
    rows = [{"id": f"r{i}", "title": f"{WORDS[l2][i % 2]} 第{i}期", "l1": PARENT[l2], "l2": l2}
            for i in range(60) for l2 in [list(WORDS)[i % 3]]]
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n",
                                         encoding="utf-8")
    (tmp_path / "rows.toml").write_text(
        'name = "rows"\n[data]\nsource = "rows"\npath = "rows.jsonl"\nlabels = ["l1", "l2"]\n'
        'taxonomy = "from-data"\nfields = { title = ["title"] }\ncache_dir = "cache"\n'
        'split = { val = 0.2, test = 0.2, seed = 0 }\n'
        '[[model.modalities]]\nname = "title"\n'
        'text_branch = { out_dim = 16, embed_dim = 16, num_buckets = 2000 }\n'
        '[train]\nepochs = 15\nlr = 0.01\nbatch_size = 8\n', encoding="utf-8")
    lib = tmp_path / "lib"
    card = json.loads(run("-L", lib, "train", "--config", tmp_path / "rows.toml", "--json").stdout)
    assert card["test"]["n"] == 12 and card["test"]["mismatch_rate"] == 0.0
    # the saved folder loads again (its taxonomy keeps the interleaved order) and measures the same
    evaluated = json.loads(run("-L", lib, "evaluate", "--json", "--no-ablation").stdout)
    assert evaluated["metrics"]["l2_accuracy"] == pytest.approx(card["test"]["l2_accuracy"])

    new = tmp_path / "new.jsonl"
    new.write_text('{"id": "n1", "title": "马拉松 第99期"}\n{"id": "n2", "title": ""}\n', encoding="utf-8")
    done = run("-L", lib, "classify", "--rows", new, "--top-k", "2", check=False)
    assert done.returncode == 1  # one row had no text: named, the others classified
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert first["id"] == "n1" and first["method"] == "trained" and PARENT[first["l2"]] == first["l1"]
    assert second == {"id": "n2", "error": "row has no text in title (title)"}
    zero = run("-L", lib, "classify", "--rows", new, "--zero-shot", "--field", "title=title", "--id-field", "title",
               check=False)
    zero_first = json.loads(zero.stdout.splitlines()[0])
    assert zero_first["method"] == "zero-shot" and zero_first["id"] == "马拉松 第99期"
    # the trained model against zero-shot over its tree, on its test rows
    compared = json.loads(run("-L", lib, "compare", "rows", "zero-shot", "--resamples", "200", "--json").stdout)
    assert compared["models"] == ["rows", "zero-shot"] and compared["n"] == 12
    assert set(compared["metrics"]) == {"l1_accuracy", "l2_accuracy", "l2_macro_f1"}
    assert (tmp_path / "lib" / "reports").is_dir() and compared["report"].endswith(".html")
    # a taxonomy owner's check: the rows' own label names against a tree with keywords, zero-shot on all rows
    (tmp_path / "tree.yaml").write_text(
        "categories:\n- {name: 体育, children: [{name: 球类, keywords: [足球, 篮球]},\n"
        "                         {name: 田径, keywords: [马拉松, 短跑]}]}\n"
        "- {name: 美食, children: [{name: 家常菜, keywords: [红烧肉, 番茄炒蛋]}]}\n", encoding="utf-8")
    trees = json.loads(run("-L", lib, "compare", "zero-shot:from-data", f"zero-shot:{tmp_path / 'tree.yaml'}",
                           "--rows", tmp_path / "rows.jsonl", "--field", "title=title", "--json").stdout)
    assert trees["n"] == 60 and trees["split"] == "all" and trees["models"][0] == "zero-shot:from-data"
    # the config cross-validated: 3 folds cover the 60 rows once, a report with the folds; no model saved
    done = run("-L", lib, "crossval", "--config", tmp_path / "rows.toml", "--folds", "3", "-q")
    printed = " ".join(done.stdout.split())
    assert "mean ± std over the folds: L1 acc" in printed and "pooled out-of-fold (60 items)" in printed
    assert list((tmp_path / "lib" / "reports").glob("crossval-rows-3fold-*.html"))
    assert sorted(p.name for p in (tmp_path / "lib" / "models").iterdir()) == ["rows"]
    bad = run("-L", lib, "classify", "--rows", new, "--field", "title", check=False)
    assert bad.returncode == 2 and "NAME=COLUMN" in bad.stderr
