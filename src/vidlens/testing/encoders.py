"""Tiny stand-in encoders for tests and examples: no weights, deterministic, instant."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class CharBagEncoder:
    """Text → L2-normalised bag of characters hashed into ``dim`` buckets; the text-encoder interface
    (``name``, ``version``, ``dim``, ``encode_batch``) without a model. Texts sharing characters are close."""

    name = "tiny-text"
    version = "1"

    def __init__(self, dim: int = 32):
        self.dim = dim

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        """(N, dim) float32 vectors."""
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            for ch in text.lower():
                out[i, (ord(ch) * 7) % self.dim] += 1
            out[i] /= max(float(np.linalg.norm(out[i])), 1e-6)
        return out
