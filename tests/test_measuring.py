"""Measuring models honestly: comparing two classifiers (the statistics on hand-made predictions, then
compare_models on trained rows models and zero-shot) and cross-validating a config (tiny text encoder)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidlens.classify import DatasetError, TextEmbedder, compare_predictions
from vidlens.classify.comparison import format_p, mcnemar_p_value
from vidlens.classify.predictions import Predictions
from vidlens.errors import ConfigError
from vidlens.taxonomy import Taxonomy
from vidlens.testing.encoders import CharBagEncoder

TAX = Taxonomy.from_records([{"name": "A", "children": [{"name": "a1"}, {"name": "a2"}]},
                             {"name": "B", "children": [{"name": "b1"}]}])


def _predictions(l2_names: list[str], tax: Taxonomy = TAX, model: str = "") -> Predictions:
    """Predictions whose argmax is the given L2 names (confidence 0.9 on it)."""
    n = len(l2_names)
    l2 = np.full((n, tax.num_l2), 0.1 / (tax.num_l2 - 1), np.float32)
    l2[np.arange(n), [tax.l2_names.index(x) for x in l2_names]] = 0.9
    l1 = np.zeros((n, tax.num_l1), np.float32)
    np.add.at(l1.T, tax.l2_to_l1, l2.T)
    return Predictions(ids=[f"v{i}" for i in range(n)], taxonomy=tax, l2_probs=l2, l1_probs=l1, model=model)


def test_mcnemar_exact_p_values():
    assert mcnemar_p_value(0, 0) == 1.0 and mcnemar_p_value(5, 5) == pytest.approx(1.0)
    assert mcnemar_p_value(0, 10) == pytest.approx(2 * 0.5**10)
    assert mcnemar_p_value(3, 12) == pytest.approx(mcnemar_p_value(12, 3)) == pytest.approx(0.03515625)
    assert format_p(0.0) == "<1e-16" and format_p(0.095912) == "0.0959"


def test_a_clearly_better_model_is_called_better_and_an_equal_one_is_not():
    rng = np.random.default_rng(0)
    truth = list(rng.choice(TAX.l2_names, 200))
    wrong = {"a1": "a2", "a2": "b1", "b1": "a1"}
    a = [wrong[t] if i % 4 == 0 else t for i, t in enumerate(truth)]  # 75 % right
    b = [wrong[t] if i % 20 == 0 else t for i, t in enumerate(truth)]  # 95 %: right wherever A is, and more
    parents = [TAX.parent(t) for t in truth]
    c = compare_predictions(_predictions(a, model="old"), _predictions(b, model="new"), truth, parents,
                            resamples=500)
    d = c.metrics["l2_accuracy"]
    assert c.models == ("old", "new") and c.n == 200
    assert c.metrics["l2_accuracy"]["a"]["value"] == 0.75 and c.metrics["l2_accuracy"]["b"]["value"] == 0.95
    assert d["difference"]["value"] == pytest.approx(0.2) and 0 < d["difference"]["low"] < 0.2 < d["difference"]["high"]
    assert c.mcnemar["l2"] == {"a_only": 0, "b_only": 40, "p_value": pytest.approx(2 * 0.5**40, rel=1e-3)}
    assert "new is better than old" in c.verdict() and c.agreement == 0.8
    assert c.per_class[0]["delta"] > 0 and {r["name"] for r in c.per_class} == set(TAX.l2_names)
    assert len(c.resampled_difference) == 500
    json.dumps(c.to_dict())  # JSON-ready

    same = compare_predictions(_predictions(a), _predictions(a), truth, parents, resamples=200)
    assert same.metrics["l2_accuracy"]["difference"] == {"value": 0.0, "low": 0.0, "high": 0.0}
    assert same.mcnemar["l2"]["p_value"] == 1.0 and "no different from" in same.verdict()
    # the same seed gives the same intervals
    again = compare_predictions(_predictions(a), _predictions(b), truth, parents, resamples=500)
    assert again.metrics == compare_predictions(_predictions(a), _predictions(b), truth, parents,
                                                resamples=500).metrics


def test_classes_are_matched_by_name_across_taxonomies():
    wider = Taxonomy.from_records([{"name": "B", "children": [{"name": "b1"}, {"name": "b2"}]},
                                   {"name": "A", "children": [{"name": "a1"}, {"name": "a2"}]}])
    truth = ["a1", "a2", "b1", "b1"]
    c = compare_predictions(_predictions(["a1", "a1", "a1", "b1"]), _predictions(["a1", "a2", "b2", "b1"], wider),
                            truth, [TAX.parent(t) for t in truth], resamples=100)
    assert c.metrics["l2_accuracy"]["a"]["value"] == 0.5 and c.metrics["l2_accuracy"]["b"]["value"] == 0.75
    assert c.metrics["l1_accuracy"]["a"]["value"] == 0.75 and c.metrics["l1_accuracy"]["b"]["value"] == 1.0
    assert {r["name"]: r["support"] for r in c.per_class}["b2"] == 0  # only predicted, by B


def test_bad_comparisons_are_refused():
    a = _predictions(["a1", "a2"])
    with pytest.raises(DatasetError, match="same items"):
        compare_predictions(a, _predictions(["a1", "a2", "b1"]), ["a1", "a2"], ["A", "A"])
    with pytest.raises(DatasetError, match="resamples"):
        compare_predictions(a, a, ["a1", "a2"], ["A", "A"], resamples=10)


def test_compare_models_on_rows_and_zero_shot(tmp_path):
    from test_classify import TITLE_BRANCH, _rows_config, _rows_dataset

    from vidlens.classify.runs import compare_models, train_from_config

    _rows_dataset(tmp_path)  # writes rows.jsonl
    embedder = TextEmbedder(CharBagEncoder())
    folders, models = {}, {}
    for name, epochs, seed in (("short", 1, 1), ("long", 20, 1), ("other-split", 20, 2)):
        config = _rows_config(tmp_path, f'taxonomy = "from-data"\nsplit = {{ val = 0.2, test = 0.3, seed = {seed} }}\n',
                              f'{TITLE_BRANCH}[train]\nepochs = {epochs}\nlr = 0.01\nbatch_size = 16\n')
        config = config.model_copy(update={"name": name})
        models[name], folders[name] = train_from_config(config, None, tmp_path / name, embedder=embedder)
    n_test = len(models["long"].splits["test"])
    assert n_test == len(models["short"].splits["test"]) > 20

    c, report = compare_models([str(folders["short"]), str(folders["long"])], None, resamples=200,
                               report=tmp_path / "cmp.html", embedder=embedder)
    assert c.models == ("short", "long") and c.n == n_test  # both were trained with split seed 1
    html = report.read_text(encoding="utf-8")
    assert html.count("<img") == 2 and "McNemar" in html
    assert json.loads(report.with_suffix(".json").read_text())["n"] == n_test

    # another split seed: only the test items the two have in common
    c2, _ = compare_models([str(folders["long"]), str(folders["other-split"])], None, resamples=200,
                           embedder=embedder)
    assert 0 < c2.n < n_test
    # zero-shot reads the rows model's data and tree
    zs, _ = compare_models([str(folders["long"]), "zero-shot"], None, resamples=200, embedder=embedder)
    assert zs.models == ("long", "zero-shot") and zs.n == n_test
    assert zs.metrics["l2_accuracy"]["a"] == c.metrics["l2_accuracy"]["b"]  # "long" scored the same both times

    with pytest.raises(ConfigError, match="zero-shot needs labelled data"):
        compare_models(["zero-shot", "zero-shot"], None)
    with pytest.raises(ConfigError, match="two classifiers"):
        compare_models([str(folders["long"])], None)


def test_compare_two_zero_shot_trees_on_labelled_rows(tmp_path):
    from test_classify import _rows_dataset

    from vidlens.classify.runs import compare_models

    _ds, _rows, tax = _rows_dataset(tmp_path)  # writes rows.jsonl (labels l1, l2; title, desc)
    described = Taxonomy.from_records([{"name": c.name, "parent": c.parent, "keywords": {
        "球类": ["足球", "篮球"], "家常菜": ["红烧肉"], "面食": ["面条"]}.get(c.name, [])} for c in tax.categories])
    described.save(tmp_path / "described.yaml")
    embedder = TextEmbedder(CharBagEncoder())
    c, _ = compare_models(["zero-shot:from-data", f"zero-shot:{tmp_path / 'described.yaml'}"], None,
                          rows=tmp_path / "rows.jsonl", fields={"title": ["title"]}, resamples=200,
                          embedder=embedder)
    assert c.n == 90 and c.split == "all" and c.models[0] == "zero-shot:from-data"
    # the keywords name what the titles say: the described tree is the better zero-shot classifier
    assert c.metrics["l2_accuracy"]["b"]["value"] > c.metrics["l2_accuracy"]["a"]["value"]
    with pytest.raises(ConfigError, match="compares zero-shot trees"):
        compare_models(["zero-shot", str(tmp_path)], None, rows=tmp_path / "rows.jsonl", embedder=embedder)
    with pytest.raises(ConfigError, match="only with --rows"):
        compare_models(["zero-shot:from-data", "zero-shot"], None)


def test_predictions_join_in_order_and_refuse_mixed_decodings():
    a, b = _predictions(["a1", "b1"]), _predictions(["a2"])
    b.ids = ["w0"]
    joined = Predictions.concat([a, b])
    assert joined.ids == ["v0", "v1", "w0"] and [TAX.l2_names[i] for i in joined.l2_pred] == ["a1", "b1", "a2"]
    assert joined.modality_weights is None and joined.l1_probs.shape == (3, TAX.num_l1)
    with pytest.raises(ValueError, match="decodings"):
        Predictions.concat([a, b.decoded("top_down")])


def test_folds_do_not_depend_on_the_class_numbering():
    from vidlens.classify import kfold_splits
    from vidlens.classify.dataset import in_order_of_appearance

    labels = np.array([3, -1, 1, 3, 0, 1, 0, 3, 1, 0, 3, 1])
    assert in_order_of_appearance(labels).tolist() == [0, -1, 1, 0, 2, 1, 2, 0, 1, 2, 0, 1]
    renamed = np.array([{3: 7, 1: 2, 0: 5, -1: -1}[x] for x in labels])  # another taxonomy's class order
    a, b = (kfold_splits(in_order_of_appearance(x), folds=3) for x in (labels, renamed))
    assert all((fa["test"] == fb["test"]).all() for fa, fb in zip(a, b, strict=True))


def test_cross_validation_of_a_rows_config(tmp_path):
    from test_classify import TITLE_BRANCH, _rows_config, _rows_dataset

    from vidlens.classify.runs import cross_validate_config

    ds, _rows, _tax = _rows_dataset(tmp_path)  # writes rows.jsonl
    config = _rows_config(tmp_path, 'taxonomy = "from-data"\n',
                          f'{TITLE_BRANCH}[train]\nepochs = 5\nlr = 0.01\nbatch_size = 16\n')
    lines = []
    cv, report = cross_validate_config(config, None, 3, report=tmp_path / "cv.html",
                                       embedder=TextEmbedder(CharBagEncoder()), log=lines.append)
    assert [f["fold"] for f in cv.folds] == [1, 2, 3] and sum(f["test"] for f in cv.folds) == len(ds) == 90
    assert sum("fold 2/3" in line for line in lines) == 1
    # every labelled row is predicted once, by the fold model that did not train on it
    assert cv.pooled is not None and cv.pooled.metrics["n"] == 90
    assert sorted(cv.pooled.predictions.ids) == sorted(ds.ids)
    accs = [f["metrics"]["l2_accuracy"] for f in cv.folds]
    assert min(accs) <= cv.mean["l2_accuracy"] <= max(accs) and cv.std["l2_accuracy"] >= 0
    html = report.read_text(encoding="utf-8")
    assert "<h2>Folds</h2>" in html and html.count("<img") >= 2 and "3-fold out-of-fold" in html
    assert json.loads(json.dumps(cv.to_dict()))["mean"] == cv.mean
    # a different seed deals other folds
    other, _ = cross_validate_config(config, None, 3, seed=5, embedder=TextEmbedder(CharBagEncoder()))
    assert [f["test"] for f in other.folds] == [f["test"] for f in cv.folds]  # same stratified sizes
    assert other.seed == 5 and other.pooled.predictions.ids != cv.pooled.predictions.ids  # fold by fold
