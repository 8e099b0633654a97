"""Retrieval: text → video search, similar videos, near-duplicates, and the two-tower model.

- ``embedder.py``: :class:`VideoEmbedder`, the zero-shot text-side and fused video vectors (and how
  text reaches visual content without a CLIP model);
- ``library_index.py``: a library's indexes per space (``text``, ``video``), rebuilt or updated from
  stored features when missing or stale, and kept open with the library between searches;
- ``search.py``: :func:`search` and :func:`similar`;
- ``copy_descriptors.py``: copy-detection frame descriptors (borders cut, two views), cached per library;
- ``dedup.py``: their whitening, temporal alignment, duplicate groups; ``report.py``: their HTML page;
- ``metrics.py``: R@K / mean rank and the char-n-gram BM25 baseline;
- ``two_tower.py``: the trainable video/text towers and their losses.

Example::

    import vidlens
    from vidlens.retrieval import search, similar, dedup
    lib = vidlens.open("mylib/")
    search(lib, "做红烧肉", filters=["duration<=60"], k=10)
    similar(lib, "3f2a9c", k=5)
    dedup(lib)
"""

from __future__ import annotations

from typing import Any

from vidlens.retrieval import lexical as _lexical  # noqa: F401  (registers hashed_ngrams)
from vidlens.retrieval.dedup import DEFAULT_THRESHOLD, FrameWhitening, align, find_duplicates
from vidlens.retrieval.embedder import VideoEmbedder
from vidlens.retrieval.library_index import (
    LibraryIndex,
    cached_library_index,
    close_library_indexes,
    open_library_index,
)
from vidlens.retrieval.report import write_dedup_report
from vidlens.retrieval.search import search, similar


def dedup(lib: Any, threshold: float = DEFAULT_THRESHOLD, candidates: int = 10, encoders: Any = None,
          progress: bool = False) -> list[dict[str, Any]]:
    """Groups of near-duplicate videos in ``lib`` (see :func:`vidlens.retrieval.dedup.find_duplicates`;
    ``encoders`` replaces the real frame encoder, as in ``lib.extract``; ``progress`` draws a bar while
    videos are described for the first time).

    Returns:
        ``[{"videos": [ids], "score": best, "pairs": [{a, b, score, segment_a, segment_b, matched_frames}]}]``,
        largest groups first.
    """
    return find_duplicates(lib, threshold=threshold, candidates=candidates, encoders=encoders, progress=progress)


__all__ = [
    "DEFAULT_THRESHOLD",
    "FrameWhitening",
    "LibraryIndex",
    "VideoEmbedder",
    "align",
    "cached_library_index",
    "close_library_indexes",
    "dedup",
    "find_duplicates",
    "open_library_index",
    "search",
    "similar",
    "write_dedup_report",
]
