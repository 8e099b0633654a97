"""Phrase candidates and their statistics, shared by the miners.

A corpus is normalised and cut into punctuation-free segments of jieba words. Candidates are

- word n-grams (1 … ``max_words`` words, at most ``max_chars`` characters) inside a segment, and
- character n-grams inside runs of single-character words (2 … ``max_chars`` characters): where jieba
  fell back to single characters it did not know the word, which is where new names hide.

Candidates that start or end with a function word, or hold no letter/CJK character, are dropped. For the
rest the statistics AutoPhrase uses are computed: frequency, document frequency, concordance (PMI at the
weakest split point), left/right neighbour entropy, and completeness against longer and shorter phrases.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from vidlens.tags.normalize import normalize_text
from vidlens.tags.tokenize import FUNCTION_WORDS, is_cjk, segments, words

FEATURE_NAMES = (
    "log_count", "log_df", "idf", "n_words", "n_chars", "pmi_min", "pmi_mean", "left_entropy", "right_entropy",
    "min_entropy", "super_ratio", "sub_ratio", "single_char_share", "cjk", "latin", "digit",
)
_EDGE = "\x00"


@dataclass
class CandidateStats:
    """Counts over a tokenised corpus.

    Attributes:
        n_docs: documents read.
        docs: the tokenised documents (segments of words) when kept for a second pass.
        counts: candidate (tuple of words) → occurrences.
        df: candidate → documents it occurs in.
        unigrams: word → occurrences; ``n_words_total`` their sum.
        left, right: candidate → Counter of neighbouring words (``\\x00`` for a segment edge).
        examples: candidate → up to 3 document indices.
    """

    n_docs: int = 0
    docs: list[list[list[str]]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    df: Counter = field(default_factory=Counter)
    unigrams: Counter = field(default_factory=Counter)
    n_words_total: int = 0
    left: dict[tuple[str, ...], Counter] = field(default_factory=lambda: defaultdict(Counter))
    right: dict[tuple[str, ...], Counter] = field(default_factory=lambda: defaultdict(Counter))
    examples: dict[tuple[str, ...], list[int]] = field(default_factory=lambda: defaultdict(list))


def _spans(ws: list[str], max_words: int, max_chars: int) -> Iterable[tuple[int, int]]:
    """(start, end) word spans of candidates in one segment."""
    n = len(ws)
    lengths = [len(w) for w in ws]
    for i in range(n):
        chars = 0
        for j in range(i, min(n, i + max_words)):
            chars += lengths[j]
            if chars > max_chars:
                break
            yield i, j + 1
    # Runs of single-character words: character n-grams longer than max_words words.
    i = 0
    while i < n:
        if lengths[i] != 1 or ws[i] in FUNCTION_WORDS:
            i += 1
            continue
        j = i
        while j < n and lengths[j] == 1 and ws[j] not in FUNCTION_WORDS:
            j += 1
        for a in range(i, j):
            for b in range(a + max_words + 1, min(j, a + max_chars) + 1):
                yield a, b
        i = j


def acceptable(cand: tuple[str, ...]) -> bool:
    """Whether a candidate may be a tag: no function word at either edge, some letter or CJK, and not one
    lone CJK character or a pure number."""
    if cand[0] in FUNCTION_WORDS or cand[-1] in FUNCTION_WORDS:
        return False
    text = "".join(cand)
    if text.isdigit() or not any(c.isalpha() for c in text):
        return False
    if len(text) == 1:
        return False
    return not (len(cand) == 1 and len(text) < 2)


def tokenize_corpus(docs: Iterable[str]) -> list[list[list[str]]]:
    """Normalise and tokenise each document into segments of jieba words."""
    out = []
    for doc in docs:
        text = normalize_text(doc or "")
        out.append([ws for seg in segments(text) if (ws := words(seg))])
    return out


def collect(tokenized: list[list[list[str]]], max_words: int = 4, max_chars: int = 12, min_count: int = 2,
            neighbours: bool = True) -> CandidateStats:
    """Count candidates over a tokenised corpus; neighbours and examples only for those seen
    ``min_count`` times or more (a second pass)."""
    st = CandidateStats(n_docs=len(tokenized), docs=tokenized)
    counts, df, unigrams = st.counts, st.df, st.unigrams
    for doc in tokenized:
        seen = set()
        for ws in doc:
            unigrams.update(ws)
            st.n_words_total += len(ws)
            for i, j in _spans(ws, max_words, max_chars):
                cand = tuple(ws[i:j])
                counts[cand] += 1
                seen.add(cand)
        df.update(seen)
    if not neighbours:
        return st
    frequent = {c for c, n in counts.items() if n >= min_count and acceptable(c)}
    # Super-phrase counts need the one-word extensions of frequent candidates, kept in ``counts`` anyway.
    for d, doc in enumerate(tokenized):
        for ws in doc:
            for i, j in _spans(ws, max_words, max_chars):
                cand = tuple(ws[i:j])
                if cand not in frequent:
                    continue
                st.left[cand][ws[i - 1] if i > 0 else _EDGE] += 1
                st.right[cand][ws[j] if j < len(ws) else _EDGE] += 1
                ex = st.examples[cand]
                if len(ex) < 3 and (not ex or ex[-1] != d):
                    ex.append(d)
    return st


def _entropy(counter: Counter) -> float:
    total = sum(counter.values())
    if total == 0:
        return 0.0
    h = 0.0
    for word, n in counter.items():
        p = n / total
        # Each segment edge counts as a distinct neighbour: a phrase that stands alone is complete.
        h -= (n * (1 / total) * math.log(1 / total)) if word == _EDGE else p * math.log(p)
    return h


def features(st: CandidateStats, cands: list[tuple[str, ...]]) -> np.ndarray:
    """The feature matrix (rows ``cands``, columns :data:`FEATURE_NAMES`)."""
    total = max(sum(st.counts.values()), 1)
    out = np.zeros((len(cands), len(FEATURE_NAMES)), np.float32)
    n_docs = max(st.n_docs, 1)
    for r, cand in enumerate(cands):
        n = st.counts.get(cand, 0)
        text = "".join(cand)
        pmis = []
        if len(cand) > 1:
            for k in range(1, len(cand)):
                a, b = st.counts.get(cand[:k], 0), st.counts.get(cand[k:], 0)
                if a and b and n:
                    pmis.append(math.log(n * total / (a * b)))
        le, re_ = _entropy(st.left.get(cand, Counter())), _entropy(st.right.get(cand, Counter()))
        # Completeness: how often this phrase is only part of a longer one (super), and how often its
        # longest sub-phrase grows into it (sub).
        supers = [st.right[cand].most_common(1), st.left[cand].most_common(1)] if cand in st.right else []
        super_best = 0
        for best in supers:
            if best and best[0][0] != _EDGE:
                super_best = max(super_best, best[0][1])
        sub = min(st.counts.get(cand[:-1], n), st.counts.get(cand[1:], n)) if len(cand) > 1 else n
        out[r] = (
            math.log1p(n), math.log1p(st.df.get(cand, 0)), math.log(n_docs / max(1, st.df.get(cand, 1))),
            len(cand), len(text), min(pmis) if pmis else 0.0, sum(pmis) / len(pmis) if pmis else 0.0,
            le, re_, min(le, re_), super_best / max(n, 1), n / max(sub, 1),
            sum(1 for w in cand if len(w) == 1) / len(cand), float(is_cjk(text)),
            float(any("a" <= c <= "z" for c in text)), float(any(c.isdigit() for c in text)),
        )
    return out


__all__ = ["FEATURE_NAMES", "CandidateStats", "acceptable", "collect", "features", "tokenize_corpus"]
