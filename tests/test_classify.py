"""Classification without media: splits, labels, training on synthetic features, save/load, versions,
text-only rows, zero-shot, adding a category, metrics and the report. Tiny sizes, seconds in all."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidlens.classify import (
    ClassificationDataset,
    DatasetError,
    LabelError,
    TextEmbedder,
    TrainConfig,
    TrainedClassifier,
    classification_metrics,
    dataset_from_rows,
    fit,
    kfold_splits,
    make_splits,
    read_rows,
    resolve_labels,
    taxonomy_from_rows,
)
from vidlens.classify.evaluation import evaluate
from vidlens.classify.extend import add_category
from vidlens.classify.metrics import global_average_precision
from vidlens.classify.report import write_report
from vidlens.classify.synthetic import make_synthetic_dataset
from vidlens.classify.zeroshot import ZeroShotClassifier
from vidlens.errors import ConfigError
from vidlens.models import ModelVersionError
from vidlens.taxonomy import Taxonomy
from vidlens.testing.encoders import CharBagEncoder


def _config(fusion="modal_attention", head="hmc", epochs=8, **model):
    return TrainConfig.from_dict({
        "name": "t",
        "model": {
            "modalities": [
                {"name": "frames", "aggregator": {"name": "netvlad", "params": {"num_clusters": 2, "proj_dim": 16}}},
                {"name": "audio"},
                {"name": "title"},
            ],
            "fusion": {"name": fusion, **({"params": {"hidden_dim": 16}} if fusion == "modal_attention" else {})},
            "head": {"name": head},
            **model,
        },
        "train": {"epochs": epochs, "patience": 3, "batch_size": 32, "lr": 5e-3},
    })


@pytest.fixture(scope="module")
def synthetic():
    torch.set_num_threads(1)
    return make_synthetic_dataset(n=450, num_l1=3, l2_per_l1=2, seed=1)


@pytest.fixture(scope="module")
def trained(synthetic):
    splits = make_splits(synthetic.l2, val=0.2, test=0.2, seed=0)
    return fit(_config(epochs=6), synthetic, splits), splits


def test_splits_are_seeded_disjoint_and_stratified():
    labels = np.repeat(np.arange(5), [40, 30, 20, 3, 1])
    a = make_splits(labels, val=0.1, test=0.2, seed=3)
    b = make_splits(labels, val=0.1, test=0.2, seed=3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    together = np.concatenate(list(a.values()))
    assert len(together) == len(set(together)) == len(labels)
    assert abs(np.isin(np.flatnonzero(labels == 0), a["test"]).sum() - 8) <= 1
    assert 4 in labels[a["train"]]  # a class with one item stays in train
    folds = kfold_splits(labels, folds=4, seed=0)
    assert sorted(np.concatenate([f["test"] for f in folds]).tolist()) == list(range(len(labels)))
    assert all(not set(f["test"]) & set(f["train"]) | set(f["val"]) & set(f["test"]) for f in folds)


def test_resolve_labels_accepts_names_aliases_and_pairs():
    tax = Taxonomy.default()
    i = tax.l2_index["少女穿搭"]
    assert resolve_labels(tax, ["少女穿搭"], "v") == (i, ())
    assert resolve_labels(tax, ["服饰", "少女穿搭"], "v") == (i, ())
    assert resolve_labels(tax, ["Young Women's Fashion"], "v") == (i, ())
    first, rest = resolve_labels(tax, ["少女穿搭", "家常菜"], "v")
    assert first == i and rest == (tax.l2_index["家常菜"],)
    with pytest.raises(LabelError, match=r"video 42.*'no-such-thing' is not a category"):
        resolve_labels(tax, ["no-such-thing"], "video 42")
    with pytest.raises(LabelError, match="only the level-1 category '服饰'"):
        resolve_labels(tax, ["服饰"], "v")
    with pytest.raises(LabelError, match="belongs to '服饰', not to the level-1 label '美食'"):
        resolve_labels(tax, ["美食", "少女穿搭"], "v")


def test_training_learns_and_folder_round_trips(trained, synthetic, tmp_path):
    result, splits = trained
    clf = result.classifier
    test = synthetic.subset(splits["test"])
    pred = clf.predict(test)
    m = classification_metrics(pred, test.l2)
    assert m["l2_accuracy"] > 0.5  # chance is 1/6
    assert m["mismatch_rate"] == 0.0  # consistent decoding
    assert (pred.l1_pred == test.taxonomy.l2_to_l1[pred.l2_pred]).all()
    assert 1 <= result.best_epoch <= len(result.history)
    assert pred.modality_weights is not None and set(pred.modality_weights) == {"frames", "audio", "title"}
    folder = clf.save(tmp_path / "model")
    for name in ("model.json", "weights.safetensors", "taxonomy.json", "classifier.json", "splits.json",
                 "metrics.json", "card.md"):
        assert (folder / name).is_file(), name
    splits_saved = json.loads((folder / "splits.json").read_text())
    assert splits_saved["test"] == [synthetic.ids[i] for i in splits["test"]]
    again = TrainedClassifier.load(folder)
    np.testing.assert_allclose(again.predict(test).l2_probs, pred.l2_probs, atol=1e-5)
    records = again.predict(test.subset([0, 1])).records(top_k=3, titles=["a", "b"])
    assert set(records[0]) >= {"id", "l1", "l2", "confidence", "top_k", "modalities", "method"}
    assert len(records[0]["top_k"]) == 3 and records[0]["top_k"][0]["l2"] == records[0]["l2"]


def test_model_refuses_other_encoder_versions(trained, synthetic, tmp_path):
    clf = trained[0].classifier
    other = ClassificationDataset(**{**synthetic.__dict__, "encoder_versions": {
        **synthetic.encoder_versions, "frames": "other-cnn@2"}, "_token_cache": {}})
    with pytest.raises(ModelVersionError, match="frames: model trained on 'synthetic@1', features from 'other-cnn@2'"):
        clf.predict(other)
    folder = clf.save(tmp_path / "m")
    with pytest.raises(ModelVersionError):
        TrainedClassifier.load(folder, encoder_versions={"frames": "other-cnn@2"})
    with pytest.raises(DatasetError, match="another taxonomy"):
        clf.predict(make_synthetic_dataset(n=10, num_l1=2, l2_per_l1=2))


@pytest.mark.parametrize("fusion", ["concat", "context_gating", "tfn", "lmf"])
@pytest.mark.parametrize("head", ["hmc", "flat_softmax", "multilabel_sigmoid", "moe"])
def test_every_fusion_and_head_trains(synthetic, fusion, head):
    small = synthetic.subset(np.arange(120))
    splits = make_splits(small.l2, val=0.25, test=0.0, seed=0)
    config = _config(fusion, head, epochs=1)
    pred = fit(config, small, splits).classifier.predict(small)
    assert pred.l2_probs.shape == (120, 6) and np.isfinite(pred.l2_probs).all()


def test_all_modalities_missing_is_handled_and_modal_dropout_trains(synthetic):
    small = synthetic.subset(np.arange(150))
    splits = make_splits(small.l2, val=0.2, test=0.0, seed=0)
    clf = fit(_config(epochs=2, modal_dropout=0.3, aux_loss_weight=0.2), small, splits).classifier
    nothing = small
    for m in small.modalities:
        nothing = nothing.with_presence(m, np.zeros(len(small), dtype=bool))
    pred = clf.predict(nothing)
    assert np.isfinite(pred.l2_probs).all() and not any(r["modalities"] for r in pred.records()[:3])


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.modalities\.0\.name"):
        TrainConfig.from_dict({"model": {"modalities": [{"name": "not an id"}]}})
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        TrainConfig.from_dict({"model": {"modalities": [{"name": "title"}]}, "train": {"epochs": 0}})
    with pytest.raises(ConfigError, match="needs a path"):
        TrainConfig.from_dict({"data": {"source": "rows"}, "model": {"modalities": [{"name": "title"}]}})
    path = tmp_path / "c.toml"
    path.write_text('name = "x"\n[data]\nsource = "rows"\npath = "rows.jsonl"\n[[model.modalities]]\nname = "title"\n'
                    '[model.head]\nname = "nope"\n')
    config = TrainConfig.load(path)
    assert config.data.path == str(tmp_path / "rows.jsonl")
    with pytest.raises(ConfigError, match="head: unknown head 'nope'"):
        from vidlens.classify.trainer import build_model

        build_model(config, _rows_dataset(tmp_path)[0])


def _rows_dataset(tmp_path, extra_rows=()):
    rows = []
    words = {"体育": ["足球", "篮球"], "美食": ["红烧肉", "面条"]}
    l2_of = {"足球": "球类", "篮球": "球类", "红烧肉": "家常菜", "面条": "面食"}
    l1_of = {"球类": "体育", "家常菜": "美食", "面食": "美食"}
    rng = np.random.default_rng(0)
    for i in range(90):
        l1 = ["体育", "美食"][i % 2]
        word = words[l1][rng.integers(0, 2)]
        rows.append({"id": f"r{i}", "title": f"今天的{word}真不错 {i}", "desc": "" if i % 3 else f"关于{word}",
                     "l1": l1_of[l2_of[word]], "l2": l2_of[word]})
    rows.extend(extra_rows)
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    rows = read_rows(path)
    tax = taxonomy_from_rows(rows, ["l1", "l2"])
    ds = dataset_from_rows(rows, tax, fields={"title": ["title"], "summary": ["desc"]}, labels=["l1", "l2"],
                           embedder=TextEmbedder(CharBagEncoder()), name="rows")
    return ds, rows, tax


def test_text_only_rows_train_the_same_model(tmp_path):
    ds, rows, tax = _rows_dataset(tmp_path)
    assert tax.l1_names == ["体育", "美食"] and ds.modalities["title"].kind == "text"
    assert ds.encoder_versions == {"text.title": "tiny-text@1", "text.summary": "tiny-text@1"}
    assert ds.modalities["summary"].present.mean() < 0.5
    config = TrainConfig.from_dict({
        "name": "rows", "model": {"modalities": [
            {"name": "title", "text_branch": {"out_dim": 16, "embed_dim": 16, "num_buckets": 2000,
                                               "word_ngrams": []}},
            {"name": "summary", "kind": "vector"}]},
        "train": {"epochs": 40, "patience": 10, "lr": 1e-2, "batch_size": 16}})
    splits = make_splits(ds.l2, val=0.2, test=0.2, seed=0)
    clf = fit(config, ds, splits).classifier
    test = ds.subset(splits["test"])
    assert classification_metrics(clf.predict(test), test.l2)["l2_accuracy"] >= 0.8
    bad = [*rows, {"id": "bad", "title": "x", "l1": "体育", "l2": "火星", "_line": 91}]
    with pytest.raises(LabelError, match=r"row bad \(line 91\): label '火星' is not a category"):
        dataset_from_rows(bad, tax, fields={"title": ["title"]}, labels=["l1", "l2"],
                          embedder=TextEmbedder(CharBagEncoder()))
    kept = dataset_from_rows(bad, tax, fields={"title": ["title"]}, labels=["l1", "l2"],
                             embedder=TextEmbedder(CharBagEncoder()), skip_bad_labels=True)
    assert len(kept) == 90 and kept.source["skipped_bad_labels"] == 1
    assert kept.source["skipped_examples"] == ["row bad (line 91): label '火星' is not a category of the taxonomy"
                                               f" ({tax.num_l1} level-1 / {tax.num_l2} level-2 categories; add it"
                                               " with `vidlens taxonomy add` or fix the label)"]


def test_tfidf_text_branch_trains_from_a_config_and_keeps_its_idf(tmp_path):
    from vidlens.classify.runs import train_from_config

    ds, rows, _ = _rows_dataset(tmp_path)
    path = tmp_path / "tfidf.toml"
    path.write_text(
        'name = "tfidf"\n[data]\nsource = "rows"\npath = "rows.jsonl"\nlabels = ["l1", "l2"]\n'
        'taxonomy = "from-data"\nfields = { title = ["title"] }\nsplit = { val = 0.2, test = 0.2, seed = 0 }\n'
        '[[model.modalities]]\nname = "title"\n'
        'text_branch = { name = "tfidf_bag", embed_dim = 16, deep_dim = 8, num_buckets = 4000, '
        'word_ngrams = [], token_dropout = 0.1 }\n'
        '[train]\nepochs = 30\npatience = 10\nbatch_size = 16\nlr = 0.01\nsparse_lr = 20.0\n')
    config = TrainConfig.load(path)
    clf, folder = train_from_config(config, None, tmp_path / "out", embedder=TextEmbedder(CharBagEncoder()))
    branch = clf.model.text_branches["title"]
    train_ids = set(clf.splits["train"])
    train_texts = [r["title"] for r in rows if r["id"] in train_ids]
    df = sum(("今" in t) for t in train_texts)  # in every title: the smallest idf, ln((1+n)/(1+n)) + 1 = 1
    assert df == len(train_texts) and branch.idf[branch.hasher.ids("今")[0]].item() == pytest.approx(1.0)
    card = json.loads((folder / "metrics.json").read_text())
    assert card["test"]["l2_accuracy"] >= 0.8 and card["test"]["mismatch_rate"] == 0
    again = TrainedClassifier.load(folder)
    assert torch.equal(again.model.text_branches["title"].idf, branch.idf)
    test = ds.select_ids(clf.splits["test"])
    np.testing.assert_array_equal(again.predict(test).l2_probs, clf.predict(test).l2_probs)


def test_embedder_cache(tmp_path):
    calls = []

    class Counting(CharBagEncoder):
        def encode_batch(self, texts):
            calls.append(len(texts))
            return super().encode_batch(texts)

    emb = TextEmbedder(Counting(), cache_dir=tmp_path / "cache")
    a = emb.encode(["一", "二", ""])
    b = emb.encode(["一", "二", ""])
    assert calls == [3] and np.array_equal(a, b) and not a[2].any()


def test_zero_shot_is_hierarchy_consistent_and_checks_versions():
    tax = Taxonomy.from_records([
        {"name": "sports", "children": [{"name": "football", "keywords": ["goal", "penalty"]},
                                        {"name": "basketball", "keywords": ["dunk"]}]},
        {"name": "food", "children": [{"name": "noodles"}, {"name": "pork stew"}]},
    ])
    emb = TextEmbedder(CharBagEncoder())
    zs = ZeroShotClassifier(tax, emb)
    texts = ["football goal", "noodles", "basketball dunk", "pork stew"]
    from vidlens.classify.dataset import ModalityData

    vec = emb.encode(texts)
    ds = ClassificationDataset(
        ids=list("abcd"), taxonomy=tax, l2=np.array([0, 2, 1, 3]),
        modalities={"title": ModalityData("title", "vector", "text.title", 32, np.ones(4, bool), vec)},
        encoder_versions={"text.title": "tiny-text@1"})
    pred = zs.predict(ds)
    assert list(pred.l2_pred) == [0, 2, 1, 3]
    assert (pred.l1_pred == tax.l2_to_l1[pred.l2_pred]).all()
    np.testing.assert_allclose(pred.l2_probs.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(pred.l1_probs.sum(1), 1.0, rtol=1e-5)
    ev = evaluate(zs.predict, ds, name="zs", method="zero-shot", split="all", ablation=False)
    assert ev.metrics["l2_accuracy"] == 1.0
    ds.encoder_versions = {"text.title": "muse_v3@x"}
    with pytest.raises(ModelVersionError, match=r"text\.title"):
        zs.predict(ds)


def test_category_texts_keep_each_keyword_on_its_own():
    from vidlens.classify.zeroshot import category_texts
    from vidlens.taxonomy import Category

    c = Category(name="沙盒类", aliases=["Sandbox"], description="开放世界的建造与生存", keywords=["我的世界", "MC"])
    assert category_texts(c) == ["沙盒类", "Sandbox", "开放世界的建造与生存", "我的世界", "MC"]
    assert category_texts(Category(name="游戏", keywords=[" "])) == ["游戏"]


def test_add_category_from_few_examples(synthetic, tmp_path):
    new = synthetic.taxonomy.l2_index["d2.s1"]
    old_rows = np.flatnonzero(synthetic.l2 != new)
    # Train on a taxonomy without d2.s1 (indices of the others are unchanged: it is the last L2).
    tax = Taxonomy([c for c in synthetic.taxonomy.categories if c.name != "d2.s1"])
    base = synthetic.subset(old_rows)
    base = ClassificationDataset(**{**base.__dict__, "taxonomy": tax, "_token_cache": {}})
    splits = make_splits(base.l2, val=0.2, test=0.2, seed=0)
    clf = fit(_config(epochs=6), base, splits).classifier
    new_rows = np.flatnonzero(synthetic.l2 == new)
    shots, held = new_rows[:10], new_rows[10:]
    examples = ClassificationDataset(**{**synthetic.subset(shots).__dict__, "taxonomy": tax,
                                        "l2": np.full(len(shots), -1), "_token_cache": {}})
    extended = add_category(clf, "d2.s1", "d2", examples, base.subset(splits["train"]))
    assert extended.taxonomy.l2_names[-1] == "d2.s1" and extended.taxonomy.num_l2 == 6
    assert clf.taxonomy.num_l2 == 5  # the original is untouched
    test = synthetic.subset(np.concatenate([held, old_rows[splits["test"]]]))
    test = ClassificationDataset(**{**test.__dict__, "taxonomy": extended.taxonomy, "_token_cache": {}})
    pred = extended.predict(test)
    on_new = (pred.l2_pred[: len(held)] == 5).mean()
    on_old = (pred.l2_pred[len(held):] == test.l2[len(held):]).mean()
    before = (clf.predict(base.subset(splits["test"])).l2_pred == base.l2[splits["test"]]).mean()
    assert on_new > 0.25 and on_old >= before - 0.05  # chance is 1/6; old classes kept
    assert extended.metrics["extensions"][0]["examples"] == 10

    # under a level-1 category that is not the last one: the saved folder keeps the new index
    under_first = add_category(clf, "d0.new", "d0", examples, base.subset(splits["train"]))
    assert under_first.taxonomy.l2_names[-1] == "d0.new"
    again = TrainedClassifier.load(under_first.save(tmp_path / "extended"))
    assert again.taxonomy.l2_names == under_first.taxonomy.l2_names
    rows = base.subset(splits["test"][:20])
    rows = ClassificationDataset(**{**rows.__dict__, "taxonomy": under_first.taxonomy, "_token_cache": {}})
    np.testing.assert_allclose(again.predict(rows).l2_probs, under_first.predict(rows).l2_probs, atol=1e-6)
    # a folder written the old way (level 2 nested under parents, so reordered) is refused, with the reason
    (tmp_path / "extended" / "taxonomy.json").write_text(
        json.dumps({"categories": under_first.taxonomy.to_records(nested=True)}), encoding="utf-8")
    with pytest.raises(ConfigError, match="not in the order of the model's outputs"):
        TrainedClassifier.load(tmp_path / "extended")


def test_metrics_and_report(trained, synthetic, tmp_path):
    result, splits = trained
    clf = result.classifier
    test = synthetic.subset(splits["test"])
    ev = evaluate(clf.predict, test, name=clf.name, history=result.history)
    assert set(ev.ablation) == {"frames", "audio", "title"}
    for v in ev.ablation.values():
        assert 0 <= v["without"] <= 1 and v["drop"] == pytest.approx(v["accuracy"] - v["without"], abs=1e-3)
    assert ev.attention and abs(sum(ev.attention.values()) - 1) < 0.5
    assert ev.confusion_l1.sum() == len(test)
    assert ev.confusion_l2.trace() == round(ev.metrics["l2_accuracy"] * len(test))
    assert sum(r["support"] for r in ev.per_class_l2) == len(test)
    path = write_report(ev, tmp_path / "r.html")
    html = path.read_text()
    assert html.count("data:image/png;base64,") >= 3 and "Per class (level 2)" in html
    assert json.loads(path.with_suffix(".json").read_text())["metrics"]["n"] == len(test)
    scores = np.array([[0.9, 0.1], [0.8, 0.3]])
    assert global_average_precision(scores, np.array([[1, 0], [0, 1]])) == pytest.approx((1 + 2 / 3) / 2)


TITLE_BRANCH = ('[[model.modalities]]\nname = "title"\n'
                'text_branch = { out_dim = 8, embed_dim = 8, num_buckets = 500, word_ngrams = [] }\n')


def _rows_config(tmp_path, data: str, model_and_train: str) -> TrainConfig:
    """A training config over ``tmp_path/rows.jsonl`` (labels l1, l2): ``data`` adds lines to its [data]
    section, ``model_and_train`` is the rest of the TOML."""
    path = tmp_path / "rows.toml"
    path.write_text('name = "rows-model"\n[data]\nsource = "rows"\npath = "rows.jsonl"\nlabels = ["l1", "l2"]\n'
                    + data + model_and_train, encoding="utf-8")
    return TrainConfig.load(path)


def test_train_from_config_on_rows_then_evaluate(tmp_path):
    from vidlens.classify.runs import evaluate_model, model_dataset, train_from_config

    _rows_dataset(tmp_path)  # writes rows.jsonl
    config = _rows_config(
        tmp_path, 'taxonomy = "from-data"\nfields = { title = ["title"] }\n'
        'split = { val = 0.2, test = 0.2, seed = 1 }\n', f'{TITLE_BRANCH}[train]\nepochs = 3\nbatch_size = 16\n')
    embedder = TextEmbedder(CharBagEncoder())
    clf, folder = train_from_config(config, None, tmp_path / "out", embedder=embedder)
    card = json.loads((folder / "metrics.json").read_text())
    assert card["test"]["n"] == len(clf.splits["test"]) > 0 and card["data"]["source"]["kind"] == "rows"
    again = TrainedClassifier.load(folder)
    ev, report = evaluate_model(again, model_dataset(again, None, embedder), split="test",
                                report=tmp_path / "r.html")
    assert ev.metrics["n"] == card["test"]["n"]
    assert ev.metrics["l2_accuracy"] == pytest.approx(card["test"]["l2_accuracy"])
    assert report.is_file()


def test_classify_rows_with_a_rows_model_and_zero_shot(tmp_path):
    from vidlens.classify.runs import classify_rows, model_dataset, train_from_config

    _rows_dataset(tmp_path)  # writes rows.jsonl
    config = _rows_config(
        tmp_path, 'taxonomy = "from-data"\nfields = { title = ["title"], summary = ["desc"] }\n',
        f'{TITLE_BRANCH}[[model.modalities]]\nname = "summary"\nkind = "vector"\n'
        '[train]\nepochs = 20\nlr = 0.01\nbatch_size = 16\n')
    embedder = TextEmbedder(CharBagEncoder())
    clf, folder = train_from_config(config, None, tmp_path / "out", embedder=embedder)
    new = tmp_path / "new.jsonl"
    new.write_text('{"id": "a", "title": "今天的红烧肉真不错"}\n'
                   '{"id": "b", "title": "今天的足球真不错", "desc": "关于足球"}\n'
                   '{"id": "c", "title": "", "desc": ""}\n', encoding="utf-8")
    again = TrainedClassifier.load(folder)
    records = classify_rows(new, again, embedder=embedder, top_k=2)
    assert [r["id"] for r in records] == ["a", "b", "c"] and len(records[0]["top_k"]) == 2
    assert records[0]["modalities"] == ["title"] and records[1]["modalities"] == ["title", "summary"]
    assert records[2] == {"id": "c", "error": "row has no text in title (title), summary (desc)"}
    # the training rows, read the way training read them, get the model's own predictions
    trained_rows = model_dataset(again, None, embedder)
    expected = again.predict(trained_rows)
    got = classify_rows(tmp_path / "rows.jsonl", again, embedder=embedder)
    assert [r["l2"] for r in got] == [again.taxonomy.l2_names[i] for i in expected.l2_pred]

    zero = classify_rows(new, None, taxonomy=clf.taxonomy, fields={"title": ["title"]}, embedder=embedder)
    assert zero[0]["method"] == "zero-shot" and clf.taxonomy.parent(zero[0]["l2"]) == zero[0]["l1"]
    # without a taxonomy, zero-shot reads the library's own tree (3 L2s here, not the shipped ~150);
    # --id-field names the id column (a row without one is named by its line)
    import vidlens
    from vidlens.taxonomy import save_library_taxonomy

    lib = vidlens.open(tmp_path / "lib")
    save_library_taxonomy(lib.root, clf.taxonomy)
    own = classify_rows(new, None, lib=lib, fields={"title": ["title"]}, id_field="title", top_k=5,
                        embedder=embedder)
    assert [r["id"] for r in own] == ["今天的红烧肉真不错", "今天的足球真不错", "new-3"]
    assert len(own[0]["top_k"]) == 3 and own[0]["l2"] in clf.taxonomy.l2_names
    assert len(classify_rows(new, None, fields={"title": ["title"]}, embedder=embedder)[0]["top_k"]) == 5
    library_model = TrainedClassifier.load(folder)
    library_model.train_config = {**library_model.train_config, "data": {"source": "library"}}
    with pytest.raises(ConfigError, match="trained on library videos"):
        classify_rows(new, library_model, embedder=embedder)


def test_train_from_config_names_the_rows_it_leaves_out(tmp_path):
    from vidlens.classify.runs import train_from_config

    _ds, rows, tax = _rows_dataset(tmp_path)
    tax.save(tmp_path / "tax.yaml")
    bad = {"id": "bad", "title": "x", "l1": "https://b23.tv/x", "l2": "火星"}
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [*rows, bad]) + "\n",
                                         encoding="utf-8")
    config = _rows_config(tmp_path, 'taxonomy = "tax.yaml"\nskip_bad_labels = true\nfields = { title = ["title"] }\n',
                          '[[model.modalities]]\nname = "title"\nkind = "vector"\n[train]\nepochs = 1\n')
    lines: list[str] = []
    train_from_config(config, None, tmp_path / "out", embedder=TextEmbedder(CharBagEncoder()),
                      log=lines.append)
    assert any(line.startswith("left out 1 row(s)") and "row bad" in line and "https://b23.tv/x" in line
               for line in lines)


def test_zero_shot_blend_is_chosen_on_validation_and_saved(tmp_path):
    from vidlens.classify.trainer import BLEND_WEIGHTS

    ds, _rows, tax = _rows_dataset(tmp_path)
    embedder = TextEmbedder(CharBagEncoder())
    config = TrainConfig.from_dict({
        "name": "blend", "model": {"modalities": [{"name": "title", "kind": "vector"},
                                                  {"name": "summary", "kind": "vector"}]},
        "train": {"epochs": 3, "lr": 1e-3, "batch_size": 16, "zero_shot_blend": True}})
    splits = make_splits(ds.l2, val=0.3, test=0.2, seed=0)
    clf = fit(config, ds, splits, embedder=embedder).classifier
    blend = clf.metrics["training"]["zero_shot_blend"]
    assert blend["weight"] in BLEND_WEIGHTS and set(blend["validation"]) == {str(w) for w in BLEND_WEIGHTS}
    assert clf.zero_shot_weight == blend["weight"] and clf.zero_shot is not None

    test = ds.subset(splits["test"])
    clf.zero_shot_weight = 0.4  # the mixture is (1 - a) * model + a * zero-shot, and stays consistent
    mixed = clf.predict(test)
    clf.zero_shot_weight = 0.0
    alone = clf.predict(test)
    zero = ZeroShotClassifier(tax, embedder).predict(test)
    np.testing.assert_allclose(mixed.l2_probs, 0.6 * alone.l2_probs + 0.4 * zero.l2_probs, atol=1e-6)
    assert (tax.l2_to_l1[mixed.l2_pred] == mixed.l1_pred).all()
    np.testing.assert_allclose(mixed.l1_probs.sum(1), 1.0, atol=1e-5)

    clf.zero_shot_weight = 0.4
    folder = clf.save(tmp_path / "model")
    again = TrainedClassifier.load(folder)  # no text encoder needed: the category vectors are stored
    assert again.zero_shot_weight == 0.4
    np.testing.assert_allclose(again.predict(test).l2_probs, mixed.l2_probs, atol=1e-6)

    (folder / "zero_shot.npz").unlink()
    with pytest.raises(ConfigError, match=r"zero_shot\.npz is missing"):
        TrainedClassifier.load(folder)
    no_val = make_splits(ds.l2, val=0.0, test=0.2, seed=0)
    with pytest.raises(ConfigError, match="validation split"):
        fit(config, ds, no_val, embedder=embedder)

    class Other(CharBagEncoder):
        version = "2"

    with pytest.raises(ModelVersionError):
        fit(config, ds, splits, embedder=TextEmbedder(Other()))


def test_prototypes_take_in_the_training_examples(tmp_path):
    ds, _rows, tax = _rows_dataset(tmp_path)
    embedder = TextEmbedder(CharBagEncoder())
    splits = make_splits(ds.l2, val=0.3, test=0.2, seed=0)
    zero = ZeroShotClassifier(tax, embedder)
    protos = zero.with_examples(ds, splits["train"], name_weight=2.0, l1_weight=1.0)
    _, l2v = zero.category_vectors()
    assert protos.l1_weight == 1.0 and np.allclose(np.linalg.norm(protos.l2_vectors_, axis=1), 1.0, atol=1e-5)
    # a category with examples moves towards them; the description still counts
    text = zero.text_vectors(ds.subset(splits["train"]))
    y = np.asarray(ds.l2)[splits["train"]]
    c = int(y[0])
    assert float(protos.l2_vectors_[c] @ text[y == c].mean(0)) > float(l2v[c] @ text[y == c].mean(0))
    test = ds.subset(splits["test"])
    assert classification_metrics(protos.predict(test), test.l2)["l2_accuracy"] >= \
        classification_metrics(zero.predict(test), test.l2)["l2_accuracy"]
    none = zero.with_examples(ds, np.array([], dtype=np.int64))  # no examples: the zero-shot vectors
    np.testing.assert_allclose(none.l2_vectors_, l2v, atol=1e-6)

    config = TrainConfig.from_dict({
        "name": "protos", "model": {"modalities": [{"name": "title", "kind": "vector"}]},
        "train": {"epochs": 2, "lr": 1e-3, "batch_size": 16, "zero_shot_blend": True, "prototypes": True}})
    clf = fit(config, ds, splits, embedder=embedder).classifier
    blend = clf.metrics["training"]["zero_shot_blend"]
    assert blend["name_weight"] in (1.0, 2.0, 3.0) and blend["l1_weight"] in (0.5, 1.0, 2.0)
    assert 0.0 <= blend["weight"] <= 1.0 and clf.zero_shot_weight == blend["weight"]
    again = TrainedClassifier.load(clf.save(tmp_path / "protos"))
    np.testing.assert_allclose(again.predict(test).l2_probs, clf.predict(test).l2_probs, atol=1e-6)


def test_top_down_decoding_reads_the_level_1_marginal_first():
    from vidlens.classify.predictions import Predictions

    tax = Taxonomy.from_records([{"name": "A", "children": [{"name": "a1"}]},
                                 {"name": "B", "children": [{"name": "b1"}, {"name": "b2"}, {"name": "b3"}]}])
    # a1 is the single most confident pair, but B's children hold more confidence together
    l2 = np.array([[0.4, 0.25, 0.2, 0.15], [0.7, 0.1, 0.1, 0.1]], np.float32)
    l1 = np.array([[0.4, 0.6], [0.7, 0.3]], np.float32)
    pred = Predictions(ids=["x", "y"], taxonomy=tax, l2_probs=l2, l1_probs=l1)
    names = lambda idx, level: [getattr(tax, f"{level}_names")[i] for i in idx]  # noqa: E731
    assert names(pred.l2_pred, "l2") == ["a1", "a1"] and names(pred.l1_pred, "l1") == ["A", "A"]
    top = pred.decoded("top_down")
    assert names(top.l2_pred, "l2") == ["b1", "a1"] and names(top.l1_pred, "l1") == ["B", "A"]
    assert pred.decoding == "joint" and top.records()[0]["l1"] == "B" and top.records()[0]["l2"] == "b1"
    with pytest.raises(ValueError, match="decoding"):
        pred.decoded("greedy")


def test_decoding_auto_is_chosen_on_validation_and_saved(tmp_path):
    ds, _rows, _tax = _rows_dataset(tmp_path)
    embedder = TextEmbedder(CharBagEncoder())
    splits = make_splits(ds.l2, val=0.3, test=0.2, seed=0)
    base = {"name": "dec", "model": {"modalities": [{"name": "title", "kind": "vector"}]},
            "train": {"epochs": 2, "lr": 1e-3, "batch_size": 16, "metric": "l1_accuracy", "decoding": "auto"}}
    clf = fit(TrainConfig.from_dict(base), ds, splits, embedder=embedder).classifier
    chosen = clf.metrics["training"]["decoding"]
    assert chosen["decoding"] == clf.decoding and set(chosen["validation"]) == {"joint", "top_down"}
    best = max(chosen["validation"].values())
    assert chosen["validation"][clf.decoding] == best
    assert chosen["decoding"] == "joint" or chosen["validation"]["joint"] < best  # ties go to joint
    clf.decoding = "top_down"
    again = TrainedClassifier.load(clf.save(tmp_path / "dec"))
    test = ds.subset(splits["test"])
    assert again.decoding == "top_down" and (again.predict(test).l2_pred == clf.predict(test).l2_pred).all()
    assert "top-down" in (tmp_path / "dec" / "card.md").read_text()

    blended = {**base, "train": {**base["train"], "zero_shot_blend": True}}  # chosen with the blend's share
    clf = fit(TrainConfig.from_dict(blended), ds, splits, embedder=embedder).classifier
    assert clf.metrics["training"]["zero_shot_blend"]["decoding"] == clf.decoding
    no_val = make_splits(ds.l2, val=0.0, test=0.2, seed=0)
    with pytest.raises(ConfigError, match="validation split"):
        fit(TrainConfig.from_dict(base), ds, no_val, embedder=embedder)
