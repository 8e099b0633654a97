"""Probe (validation only): does mixing the linear SVM into the trained NLPCC network close the gap to 0.80?

On the NLPCC config's fixed split (the test part is never read), the network is trained as configured
and the strongest linear baseline (char 1–3-gram + jieba word 1–2-gram TF-IDF next to the USE vector,
linear SVM, C = 0.3) is fitted on the same training part. The validation part is halved at random
(seed 0): the mixing weight ``a`` of ``(1 - a) · network + a · softmax(svm / T)`` and the temperature ``T``
are chosen on half A, and half B reports the network, the SVM and the mixture.

Usage:
    flock /tmp/vidlens-bench.lock .venv/bin/python benchmarks/probe_nlpcc_svm_blend.py    # about 2 min
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_classify_text as bench

from vidlens.classify import TextEmbedder, fit, make_splits


def softmax(d: np.ndarray, t: float) -> np.ndarray:
    q = np.exp((d - d.max(1, keepdims=True)) / t)
    return q / q.sum(1, keepdims=True)


def main() -> None:
    torch.set_num_threads(1)
    config, ds = bench.load("nlpcc_hmc", TextEmbedder("muse_v3", cache_dir=bench.OUT / "cache"))
    s = config.data.split
    split = make_splits(ds.l2, val=s.val, test=s.test, seed=s.seed)
    tr, va = split["train"], split["val"]
    order = np.random.default_rng(0).permutation(len(va))
    half_a, half_b = order[: len(va) // 2], order[len(va) // 2 :]
    text, vec = np.array(bench.joined_text(ds), dtype=object), bench.joined_vectors(ds)
    chars = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    words = TfidfVectorizer(tokenizer=bench._jieba_words, token_pattern=None, lowercase=False, ngram_range=(1, 2),
                            sublinear_tf=True)
    x_tr = sp.hstack([chars.fit_transform(text[tr]), words.fit_transform(text[tr]), sp.csr_matrix(vec[tr])]).tocsr()
    x_va = sp.hstack([chars.transform(text[va]), words.transform(text[va]), sp.csr_matrix(vec[va])]).tocsr()
    svm = LinearSVC(C=0.3).fit(x_tr, ds.l2[tr]).decision_function(x_va)
    torch.manual_seed(0)
    net = fit(config, ds, split).classifier.predict(ds.subset(va)).l2_probs
    y = ds.l2[va]
    grid = [(t, a) for t in (0.1, 0.2, 0.5, 1.0) for a in np.round(np.arange(0, 1.01, 0.1), 1)]
    score = {(t, a): ((1 - a) * net[half_a] + a * softmax(svm[half_a], t)).argmax(1) == y[half_a] for t, a in grid}
    t, a = max(grid, key=lambda k: score[k].mean())
    mixed = (1 - a) * net + a * softmax(svm, t)
    acc = {name: float((p[half_b].argmax(1) == y[half_b]).mean()) for name, p in
           (("network", net), ("svm", svm), ("mixture", mixed))}
    print(f"chosen on half A ({len(half_a)}): T {t}, a {a}; half B ({len(half_b)}) L2 accuracy:",
          {k: round(v, 4) for k, v in acc.items()})


if __name__ == "__main__":
    main()
