"""Text-only classification benchmarks on ../shared/data: NLPCC 2017 headlines, TNEWS, Bilibili.

For each dataset, on one fixed seeded split (train / val / test; Bilibili: stratified 5-fold CV, each
fold's training part giving up a validation split), side by side:

- vidlens trained: the configured model (benchmarks/configs/*.toml: n-gram text branch + frozen
  multilingual USE vector, HMC head), early-stopped on validation;
- vidlens zero-shot: category names/aliases/descriptions vs the text vectors, no training;
- baseline TF-IDF: char 1–3-gram TF-IDF + logistic regression (liblinear; C chosen on validation);
- baseline USE: multilingual-USE vector + logistic regression (C chosen on validation);
- baseline TF-IDF + USE SVM: char 1–3-gram and jieba word 1–2-gram TF-IDF next to the USE vector,
  linear SVM (C chosen on validation);
  the baselines' L1 is the parent of their predicted L2.

Baselines see the same text as the model (its text fields joined). Test data is never used for any
choice. Per-class numbers go to an HTML report per dataset (benchmarks/out/reports/). Optionally
(--extend) the NLPCC run also measures adding a held-out category from a few examples.

Usage:
    .venv/bin/python benchmarks/bench_classify_text.py [--datasets nlpcc tnews bilibili] [--extend]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vidlens.classify import (
    TextEmbedder,
    TrainConfig,
    classification_metrics,
    dataset_from_rows,
    fit,
    kfold_splits,
    make_splits,
    read_rows,
)
from vidlens.classify.dataset import in_order_of_appearance
from vidlens.classify.evaluation import evaluate
from vidlens.classify.extend import add_category
from vidlens.classify.report import write_report
from vidlens.classify.runs import load_taxonomy
from vidlens.classify.sources import taxonomy_from_rows
from vidlens.classify.zeroshot import ZeroShotClassifier

HERE = Path(__file__).resolve().parent
CONFIGS = HERE / "configs"
OUT = HERE / "out"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load(name: str, embedder: TextEmbedder, taxonomy: str | None = None):
    """The config and its dataset; ``taxonomy`` ("from-data" or a file) replaces the config's taxonomy."""
    config = TrainConfig.load(CONFIGS / f"{name}.toml")
    if taxonomy is not None:
        taxonomy = taxonomy if taxonomy == "from-data" else str(Path(taxonomy).resolve())
        config = config.model_copy(update={"data": config.data.model_copy(update={"taxonomy": taxonomy})})
    rows = read_rows(config.data.path)
    if name.startswith("bilibili"):
        # Three scraped rows carry a URL instead of a category: leave them out (reported).
        dropped = [r for r in rows if str(r.get("pid_name_v2", "")).startswith("http")]
        rows = [r for r in rows if r not in dropped]
        log(f"bilibili: left out {len(dropped)} rows whose category is a URL")
    tax = taxonomy_from_rows(rows, config.data.labels) if config.data.taxonomy == "from-data" else load_taxonomy(
        config.data.taxonomy)
    t0 = time.perf_counter()
    ds = dataset_from_rows(rows, tax, fields=config.data.fields, labels=config.data.labels, embedder=embedder,
                           id_field=config.data.id_field, name=name)
    log(f"{name}: {len(ds)} rows, {tax.num_l1} L1 / {tax.num_l2} L2, embedded in {time.perf_counter() - t0:.1f} s")
    return config, ds


def bilibili_halves(embedder: TextEmbedder):
    """The Bilibili dataset (the config's curated taxonomy) and its fixed *dev* half for the zero-shot probes,
    which have no training split: a row is dev when the sha1 of its id is even; they choose on dev and read
    the other half."""
    _config, ds = load("bilibili", embedder)
    return ds, np.array([int(hashlib.sha1(i.encode()).hexdigest(), 16) % 2 == 0 for i in ds.ids])


def joined_text(ds) -> list[str]:
    texts = [m.texts for m in ds.modalities.values()]
    return [" ".join(t[i] for t in texts if t[i]) for i in range(len(ds))]


def joined_vectors(ds) -> np.ndarray:
    return np.concatenate([m.vectors for m in ds.modalities.values()], axis=1)


def logreg(x_train, y_train, x_val, y_val, x_test, sparse: bool = False):
    """Logistic regression with C chosen on the validation split; returns test predictions.

    Sparse TF-IDF input uses liblinear (one-vs-rest), which is many times faster there than lbfgs."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    best = None
    for c in (1.0, 10.0):
        if sparse:
            model = OneVsRestClassifier(LogisticRegression(C=c, max_iter=2000, solver="liblinear"))
        else:
            model = LogisticRegression(C=c, max_iter=2000)
        model.fit(x_train, y_train)
        acc = (model.predict(x_val) == y_val).mean() if len(y_val) else 0.0
        if best is None or acc > best[0]:
            best = (acc, model)
    return best[1].predict(x_test)


def linear_svm(x_train, y_train, x_val, y_val, x_test):
    """Linear SVM (one-vs-rest) with C chosen on the validation split; returns test predictions."""
    from sklearn.svm import LinearSVC

    best = None
    for c in (0.3, 1.0):
        model = LinearSVC(C=c).fit(x_train, y_train)
        acc = (model.predict(x_val) == y_val).mean() if len(y_val) else 0.0
        if best is None or acc > best[0]:
            best = (acc, model)
    return best[1].predict(x_test)


def _jieba_words(text: str) -> list[str]:
    import jieba

    jieba.setLogLevel(60)
    return [w for w in jieba.lcut(text.lower()) if w.strip()]


def baselines(ds, split) -> dict[str, dict[str, float]]:
    """Linear baselines over L2 (their L1 is the parent of the predicted L2):

    - ``tfidf+LR``: char 1–3-gram TF-IDF + logistic regression;
    - ``USE+LR``: the sentence vectors + logistic regression;
    - ``tfidf+USE SVM``: char 1–3-gram and jieba word 1–2-gram TF-IDF (each block L2-normalised) and
      the sentence vectors side by side, linear SVM — the strongest linear model we found.
    """
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer

    text = np.array(joined_text(ds), dtype=object)
    vec = joined_vectors(ds)
    tr, va, te = split["train"], split["val"], split["test"]
    out = {}
    tfidf = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=1)
    x_tr = tfidf.fit_transform(text[tr])
    x_va, x_te = tfidf.transform(text[va]), tfidf.transform(text[te])
    words = TfidfVectorizer(tokenizer=_jieba_words, token_pattern=None, lowercase=False, ngram_range=(1, 2),
                            sublinear_tf=True)
    w_tr = words.fit_transform(text[tr])
    w_va, w_te = words.transform(text[va]), words.transform(text[te])
    joint = [sp.hstack([c, w, sp.csr_matrix(v)]).tocsr()
             for c, w, v in ((x_tr, w_tr, vec[tr]), (x_va, w_va, vec[va]), (x_te, w_te, vec[te]))]
    runs = {
        "tfidf+LR": lambda: logreg(x_tr, ds.l2[tr], x_va, ds.l2[va], x_te, sparse=True),
        "USE+LR": lambda: logreg(vec[tr], ds.l2[tr], vec[va], ds.l2[va], vec[te]),
        "tfidf+USE SVM": lambda: linear_svm(joint[0], ds.l2[tr], joint[1], ds.l2[va], joint[2]),
    }
    for name, run in runs.items():
        p2 = run()
        p1 = ds.taxonomy.l2_to_l1[p2]
        out[name] = {"l2_accuracy": float((p2 == ds.l2[te]).mean()), "l1_accuracy": float((p1 == ds.l1[te]).mean()),
                     "l2_macro_f1": _macro_f1(ds.l2[te], p2)}
    return out


def _macro_f1(y_true, y_pred) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true)))


def run_split(config, ds, split, zs):
    torch.manual_seed(0)
    t0 = time.perf_counter()
    result = fit(config, ds, split, log=None, embedder=zs.embedder)
    seconds = time.perf_counter() - t0
    test = ds.subset(split["test"])
    pred = result.classifier.predict(test)
    trained = classification_metrics(pred, test.l2)
    trained["train_seconds"] = round(seconds, 1)
    trained["best_epoch"] = result.best_epoch
    trained["val_l2_accuracy"] = round(result.history[result.best_epoch - 1].get("val_l2_accuracy", 0.0), 4)
    zero = classification_metrics(zs.predict(test), test.l2)
    log(f"trained {trained}; zero-shot {zero}")  # before the baselines, which take long
    return result, trained, zero, baselines(ds, split)


def bench(name: str, embedder: TextEmbedder, extend: bool, taxonomy: str | None = None) -> dict:
    config, ds = load(name, embedder, taxonomy)
    if taxonomy is not None:  # reports of another taxonomy do not overwrite the config's own
        name = f"{name}-{'names' if taxonomy == 'from-data' else Path(taxonomy).stem}"
    zs = ZeroShotClassifier(ds.taxonomy, embedder, name=f"{name}-zero-shot")
    if name.startswith("bilibili"):
        folds = kfold_splits(in_order_of_appearance(ds.l2), folds=5, val=config.data.split.val,
                             seed=config.data.split.seed)
    else:
        s = config.data.split
        folds = [make_splits(ds.l2, val=s.val, test=s.test, seed=s.seed)]
    rows: dict[str, list[dict]] = {"vidlens trained": [], "vidlens zero-shot": [], "tfidf+LR": [], "USE+LR": [],
                                   "tfidf+USE SVM": []}
    last = None
    for k, split in enumerate(folds):
        result, trained, zero, base = run_split(config, ds, split, zs)
        log(f"{name} fold {k}: trained {trained}, zero-shot l2 {zero['l2_accuracy']:.3f}, baselines {base}")
        rows["vidlens trained"].append(trained)
        rows["vidlens zero-shot"].append(zero)
        for b, m in base.items():
            rows[b].append(m)
        last = (result, split)
    table = {
        method: {key: round(float(np.mean([r[key] for r in runs])), 4)
                 for key in runs[0] if isinstance(runs[0][key], int | float)}
        for method, runs in rows.items()
    }
    result, split = last
    test = ds.subset(split["test"])
    ev = evaluate(result.classifier.predict, test, name=config.name, split="test", history=result.history,
                  ablation=len(ds.modalities) > 1)
    report = write_report(ev, OUT / "reports" / f"{name}-trained.html",
                          extra={"dataset": ds.describe(), "folds": len(folds), "table": table})
    ev0 = evaluate(zs.predict, test, name=zs.name, method="zero-shot", split="test", ablation=False)
    write_report(ev0, OUT / "reports" / f"{name}-zero-shot.html")
    out = {"dataset": name, "items": len(ds), "folds": len(folds), "l1": ds.taxonomy.num_l1,
           "l2": ds.taxonomy.num_l2, "table": table, "report": str(report.relative_to(HERE.parent)),
           "per_class_l1": ev.per_class_l1, "per_class_l2": ev.per_class_l2}
    if extend:
        out["extend"] = extension(config, ds, split)
    return out


def extension(config, ds, split, held: str = "car", shots=(5, 20)) -> list[dict]:
    """Train without one L2 class, then add it from a few of its training examples (network frozen)."""
    from vidlens.taxonomy import Taxonomy

    tax = ds.taxonomy
    new = tax.l2_index[held]
    if new != tax.num_l2 - 1:
        # Move the held class to the end so the other classes keep their indices.
        cats = tax.categories
        cats = [c for c in cats if c.name != held] + [c for c in cats if c.name == held]
        tax = Taxonomy(cats)
    from dataclasses import replace

    old_index = {n: i for i, n in enumerate(ds.taxonomy.l2_names)}
    remap = np.array([tax.l2_index[n] for n in sorted(old_index, key=old_index.get)])
    full = replace(ds, taxonomy=tax, l2=remap[ds.l2], _token_cache={})
    base_tax = Taxonomy([c for c in tax.categories if c.name != held])
    is_held = full.l2 == tax.l2_index[held]
    base = replace(full, taxonomy=base_tax, l2=np.where(is_held, -1, full.l2), _token_cache={})
    train = split["train"][~is_held[split["train"]]]
    val = split["val"][~is_held[split["val"]]]
    clf = fit(config, base, {"train": train, "val": val}).classifier
    test = full.subset(split["test"])
    before = classification_metrics(clf.predict(replace(test, taxonomy=base_tax, l2=np.where(
        test.l2 == tax.l2_index[held], -1, test.l2), _token_cache={})), np.where(
        test.l2 == tax.l2_index[held], -1, test.l2))
    out = [{"shots": 0, "old_l2_accuracy": round(before["l2_accuracy"], 4)}]
    pool = split["train"][is_held[split["train"]]]
    rng = np.random.default_rng(0)
    for k in shots:
        examples = base.subset(rng.choice(pool, size=k, replace=False))
        extended = add_category(clf, held, tax.parent(held), examples, base.subset(train[:4000]))
        pred = extended.predict(test)
        new_rows = test.l2 == tax.l2_index[held]
        out.append({
            "shots": k,
            "new_class_recall": round(float((pred.l2_pred[new_rows] == test.l2[new_rows]).mean()), 4),
            "new_class_precision": round(float((test.l2[pred.l2_pred == tax.l2_index[held]] == tax.l2_index[held])
                                               .mean()), 4),
            "old_l2_accuracy": round(float((pred.l2_pred[~new_rows] == test.l2[~new_rows]).mean()), 4),
            "all_l2_accuracy": round(float((pred.l2_pred == test.l2).mean()), 4),
        })
        log(f"extension: {out[-1]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["nlpcc", "tnews", "bilibili"])
    parser.add_argument("--extend", action="store_true", help="also measure adding a held-out NLPCC class")
    parser.add_argument("--extend-only", action="store_true", help="only the NLPCC category-extension run")
    parser.add_argument("--nlpcc-config", default="nlpcc_hmc", help="config name for NLPCC (in configs/)")
    parser.add_argument("--bilibili-taxonomy", default=None,
                        help="replace bilibili.toml's taxonomy: 'from-data' (names only) or a taxonomy file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    embedder = TextEmbedder("muse_v3", cache_dir=OUT / "cache")
    if args.extend_only:
        config, ds = load("nlpcc_hmc", embedder)
        s = config.data.split
        res = extension(config, ds, make_splits(ds.l2, val=s.val, test=s.test, seed=s.seed))
        (OUT / "bench_classify_extend.json").write_text(json.dumps(res, indent=2))
        print(json.dumps(res, indent=2))
        return
    results = []
    for name in args.datasets:
        config_name = args.nlpcc_config if name == "nlpcc" else name
        res = bench(config_name, embedder, args.extend and name == "nlpcc",
                    args.bilibili_taxonomy if name == "bilibili" else None)
        res["config"], res["dataset"] = res["dataset"], name
        results.append(res)
        log(json.dumps(res, ensure_ascii=False))
    OUT.mkdir(exist_ok=True)
    name = "bench_classify_text-" + "-".join(r["config"] for r in results) + ".json"
    (OUT / name).write_text(json.dumps(results, ensure_ascii=False, indent=2))
    print(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
