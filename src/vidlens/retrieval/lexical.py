"""Lexical matching: a hashed character n-gram text encoder and a character n-gram BM25 ranker.

- ``hashed_ngrams`` (registered as a text encoder): character 1–3-grams hashed into a fixed number of
  buckets, log term frequency, L2-normalised. No weights, no package, instant: a lexical stand-in for
  ``muse_v3`` where a sentence encoder is not wanted (tests, tiny libraries) — it matches shared
  characters only, so it has none of the multilingual or semantic reach of the real encoder.
- :class:`CharBM25`: Okapi BM25 over character n-grams, the baseline text → video search is compared
  with (Chinese needs no word segmentation for it).
"""

from __future__ import annotations

import math
import unicodedata
import zlib
from collections import Counter
from collections.abc import Sequence

import numpy as np

from vidlens.encoders.base import Encoder, register_encoder


def char_ngrams(text: str, n_min: int = 1, n_max: int = 3) -> list[str]:
    """Character n-grams of the NFKC-lowercased text, whitespace runs kept as one space."""
    t = " ".join(unicodedata.normalize("NFKC", text).lower().split())
    out = []
    for n in range(n_min, n_max + 1):
        out.extend(t[i:i + n] for i in range(len(t) - n + 1) if t[i:i + n].strip())
    return out


class HashedNgramEncoder(Encoder):
    """Strings → ``float32 (N, dim)`` hashed character n-gram vectors (zero rows for empty strings).

    Args:
        dim: number of hash buckets.
        n_max: longest n-gram.
    """

    default_name = "hashed_ngrams"
    modality = "text"
    weights_id = "hashed-char-ngrams.r1"
    output_params = ("dim", "n_max")
    all_params = ("dim", "n_max")

    def __init__(self, *, dim: int = 512, n_max: int = 3):
        super().__init__()
        self.dim = int(dim)
        self.n_max = int(n_max)

    def _load(self) -> None:
        """Nothing to load."""

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        """Embed strings (any script)."""
        out = np.zeros((len(items), self.dim), np.float32)
        for row, text in enumerate(items):
            if not isinstance(text, str):
                raise TypeError(f"text encoder takes strings, got {type(text).__name__}")
            counts = Counter(zlib.crc32(g.encode("utf-8")) % self.dim for g in char_ngrams(text, 1, self.n_max))
            for bucket, c in counts.items():
                out[row, bucket] = 1.0 + math.log(c)
            norm = np.linalg.norm(out[row])
            if norm > 0:
                out[row] /= norm
        return out


@register_encoder("hashed_ngrams", modality="text")
def hashed_ngrams(*, dim: int = 512, n_max: int = 3) -> HashedNgramEncoder:
    """Hashed character n-gram text encoder (lexical, no model)."""
    return HashedNgramEncoder(dim=dim, n_max=n_max)


class CharBM25:
    """Okapi BM25 over character n-grams.

    Args:
        n_min, n_max: n-gram lengths (1–2 suits Chinese).
        k1, b: the usual BM25 parameters.
    """

    def __init__(self, n_min: int = 1, n_max: int = 2, k1: float = 1.2, b: float = 0.75):
        self.n_min, self.n_max, self.k1, self.b = n_min, n_max, k1, b

    def fit(self, docs: Sequence[str]) -> CharBM25:
        """Index the documents."""
        self.tfs_ = [Counter(char_ngrams(d, self.n_min, self.n_max)) for d in docs]
        self.lengths_ = np.array([sum(tf.values()) for tf in self.tfs_], np.float32)
        self.avg_len_ = float(self.lengths_.mean()) if len(docs) else 0.0
        df: Counter[str] = Counter()
        for tf in self.tfs_:
            df.update(tf.keys())
        n = len(docs)
        self.idf_ = {g: math.log(1 + (n - c + 0.5) / (c + 0.5)) for g, c in df.items()}
        self.postings_: dict[str, list[tuple[int, int]]] = {}
        for i, tf in enumerate(self.tfs_):
            for g, c in tf.items():
                self.postings_.setdefault(g, []).append((i, c))
        return self

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query``."""
        out = np.zeros(len(self.tfs_), np.float32)
        norm = self.k1 * (1 - self.b + self.b * self.lengths_ / max(self.avg_len_, 1e-9))
        for g, qc in Counter(char_ngrams(query, self.n_min, self.n_max)).items():
            idf = self.idf_.get(g)
            if idf is None:
                continue
            for i, c in self.postings_[g]:
                out[i] += qc * idf * c * (self.k1 + 1) / (c + norm[i])
        return out
