"""Quality-phrase mining in the spirit of AutoPhrase (Shang et al., 2018), tuned for Chinese.

1. Candidates: word n-grams over jieba tokens plus character n-grams where jieba fell back to single
   characters (see :mod:`~vidlens.tags.miners.candidates`), seen at least ``min_count`` times.
2. Features: frequency, document frequency, concordance (PMI at the weakest split), left/right neighbour
   entropy, completeness against longer and shorter phrases, length and character type.
3. Positive-only distant training: candidates that are approved tags are the positives; the unlabelled
   candidates are a noisy negative pool. A random forest with balanced bootstrap samples per tree is
   robust to that noise (AutoPhrase's ensemble argument); training rows are scored out-of-bag.
4. Phrase quality = the forest's probability; known tags and excluded names are never proposed.

Without any positive in the corpus (a new library) the miner falls back to an unsupervised score: the
mean percentile rank of concordance, neighbour entropy and completeness.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np

from vidlens.tags.miners.base import MINERS, MinedPhrase, PhraseMiner
from vidlens.tags.miners.candidates import FEATURE_NAMES, acceptable, collect, features, tokenize_corpus
from vidlens.tags.normalize import normalize_text


@MINERS.register("autophrase")
class QualityPhraseMiner(PhraseMiner):
    """AutoPhrase-style quality-phrase miner.

    Args:
        min_count: fewest occurrences of a candidate (2 finds phrases seen only a couple of times).
        max_words: longest candidate in jieba words.
        max_chars: longest candidate in characters.
        threshold: lowest phrase-quality score proposed.
        max_phrases: most phrases returned (best first); ``None`` for all above the threshold.
        n_estimators: trees of the forest.
        min_samples_leaf: leaf size of each tree (larger smooths the noisy negatives).
        negative_ratio: unlabelled candidates sampled per positive as the negative pool.
        n_examples: example documents kept as evidence per phrase.
        random_state: seed of the sampling and the forest.
    """

    def __init__(self, min_count: int = 2, max_words: int = 4, max_chars: int = 12, threshold: float = 0.5,
                 max_phrases: int | None = 500, n_estimators: int = 100, min_samples_leaf: int = 3,
                 negative_ratio: float = 5.0, n_examples: int = 2, random_state: int = 0):
        self.min_count = min_count
        self.max_words = max_words
        self.max_chars = max_chars
        self.threshold = threshold
        self.max_phrases = max_phrases
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.negative_ratio = negative_ratio
        self.n_examples = n_examples
        self.random_state = random_state

    def score_candidates(self, docs: Sequence[str], known: Iterable[str] = ()
                         ) -> tuple[list[tuple[str, ...]], np.ndarray, np.ndarray, object]:
        """Candidates, their features and quality scores (the fitting half of :meth:`mine`)."""
        tokenized = tokenize_corpus(docs)
        st = collect(tokenized, self.max_words, self.max_chars, self.min_count)
        self.stats_ = st
        cands = [c for c, n in st.counts.items() if n >= self.min_count and acceptable(c)]
        cands.sort(key=lambda c: (-st.counts[c], c))
        self.n_candidates_ = len(cands)
        if not cands:
            self.mode_ = "empty"
            return cands, np.zeros((0, len(FEATURE_NAMES)), np.float32), np.zeros(0), st
        x = features(st, cands)
        known_norm = {normalize_text(k) for k in known}
        y = np.array(["".join(c) in known_norm for c in cands])
        self.n_positives_ = int(y.sum())
        if self.n_positives_ < 5 or self.n_positives_ == len(cands):
            self.mode_ = "unsupervised"
            scores = _unsupervised(x)
        else:
            self.mode_ = "distant"
            scores = self._fit_forest(x, y)
        return cands, x, scores, st

    def _fit_forest(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        from sklearn.ensemble import RandomForestClassifier

        rng = np.random.default_rng(self.random_state)
        pos = np.flatnonzero(y)
        unl = np.flatnonzero(~y)
        n_neg = min(len(unl), max(int(len(pos) * self.negative_ratio), 50))
        neg = rng.choice(unl, size=n_neg, replace=False)
        rows = np.concatenate([pos, neg])
        forest = RandomForestClassifier(
            n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf,
            class_weight="balanced_subsample", oob_score=True, n_jobs=1, random_state=self.random_state)
        forest.fit(x[rows], y[rows].astype(int))
        self.classifier_ = forest
        scores = forest.predict_proba(x)[:, 1]
        oob = forest.oob_decision_function_[:, 1]
        ok = ~np.isnan(oob)
        scores[rows[ok]] = oob[ok]  # rows the forest trained on are scored by the trees that did not see them
        self.feature_importances_ = dict(zip(FEATURE_NAMES, forest.feature_importances_.round(4).tolist(),
                                             strict=True))
        return scores

    def mine(self, docs: Sequence[str], known: Iterable[str] = (), exclude: Iterable[str] = (),
             times: Sequence[datetime] | None = None) -> list[MinedPhrase]:
        """See :meth:`PhraseMiner.mine`."""
        known = list(known)
        cands, x, scores, st = self.score_candidates(docs, known)
        skip = {normalize_text(k) for k in known} | {normalize_text(e) for e in exclude}
        order = np.argsort(-scores, kind="stable")
        out: list[MinedPhrase] = []
        for r in order:
            if scores[r] < self.threshold:
                break
            name = "".join(cands[r])
            if name in skip:
                continue
            evidence = {
                "examples": [_doc_text(st.docs[d]) for d in st.examples.get(cands[r], [])[:self.n_examples]],
                "df": int(st.df[cands[r]]),
                "features": {k: round(float(v), 3) for k, v in zip(FEATURE_NAMES, x[r], strict=True)},
                "mode": self.mode_,
            }
            out.append(MinedPhrase(name, float(scores[r]), int(st.counts[cands[r]]), "autophrase", evidence))
            skip.add(name)
            if self.max_phrases is not None and len(out) >= self.max_phrases:
                break
        return out


def _doc_text(doc: list[list[str]]) -> str:
    return " ".join("".join(ws) for ws in doc)[:120]


def _unsupervised(x: np.ndarray) -> np.ndarray:
    """Mean percentile rank of concordance, min entropy and (1 − super ratio), scaled to [0, 1]."""
    cols = [FEATURE_NAMES.index("pmi_min"), FEATURE_NAMES.index("min_entropy")]
    ranks = [np.argsort(np.argsort(x[:, c])) / max(len(x) - 1, 1) for c in cols]
    ranks.append(np.argsort(np.argsort(-x[:, FEATURE_NAMES.index("super_ratio")])) / max(len(x) - 1, 1))
    return np.mean(ranks, axis=0)


__all__ = ["QualityPhraseMiner"]
