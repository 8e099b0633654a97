"""Training pairs (query text, video id) for the two-tower model, from what a library already knows.

The retrieval write-up trains on pairs from several sources; here each is one name:

- ``titles``: a video's title stands for a query that should find it;
- ``captions``: its summary / description;
- ``tags``: each gold or manual tag put on it (``vidlens tag-video``, imports);
- ``clicks``: query → video clicks ingested by ``vidlens tags feedback``;

plus any ``(query, video)`` rows given in a file (JSONL / JSON / CSV with ``query`` and ``video`` columns;
``video`` is an id or unique prefix).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select

from vidlens.errors import NotFoundError, VidlensError

PAIR_SOURCES = ("titles", "captions", "tags", "clicks")


def library_pairs(lib: Any, sources: Iterable[str] = PAIR_SOURCES, pairs_file: str | os.PathLike | None = None
                  ) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Positive (query text, video id) pairs of ``lib``, without repeats, and a count per source.

    Raises:
        VidlensError: an unknown source name, or a pairs-file row without query/video.
        NotFoundError: a pairs-file row names a video the library does not have.
    """
    sources = list(sources)
    unknown = sorted(set(sources) - set(PAIR_SOURCES))
    if unknown:
        raise VidlensError(f"unknown pair source(s) {', '.join(unknown)}; choose from {', '.join(PAIR_SOURCES)}")
    found: dict[str, list[tuple[str, str]]] = {}
    if "titles" in sources or "captions" in sources:
        for v in lib.videos():
            if "titles" in sources and (v.get("title") or "").strip():
                found.setdefault("titles", []).append((v["title"], v["id"]))
            if "captions" in sources and (v.get("summary") or "").strip():
                found.setdefault("captions", []).append((v["summary"], v["id"]))
    if "tags" in sources or "clicks" in sources:
        from vidlens.tags import TagLibrary
        from vidlens.tags.models import Tag, TagClick

        tags = TagLibrary(lib)
        if "tags" in sources:
            per_video = tags.video_tags(sources=["gold", "manual"])
            wanted = {t for ids in per_video.values() for t in ids}
            with tags.session() as s:
                rows = s.execute(select(Tag.id, Tag.name).where(Tag.id.in_(wanted))) if wanted else []
                names = {tag_id: name for tag_id, name in rows}
            found["tags"] = [(names[t], vid) for vid, ids in per_video.items() for t in ids if t in names]
        if "clicks" in sources:
            with tags.session() as s:
                rows = s.execute(select(TagClick.text, TagClick.video_id).where(TagClick.kind == "query_video"))
                found["clicks"] = [(text, vid) for text, vid in rows if text and text.strip()]
    if pairs_file is not None:
        found["file"] = _file_pairs(lib, pairs_file)
    seen: set[tuple[str, str]] = set()
    pairs: list[tuple[str, str]] = []
    counts: dict[str, int] = {}
    for source, rows in found.items():
        counts[source] = len(rows)
        for q, vid in rows:
            key = (q.strip(), vid)
            if key not in seen:
                seen.add(key)
                pairs.append(key)
    return pairs, counts


def _file_pairs(lib: Any, path: str | os.PathLike) -> list[tuple[str, str]]:
    from vidlens.classify.sources import read_rows

    out = []
    for n, row in enumerate(read_rows(path), 1):
        query, ref = str(row.get("query") or "").strip(), str(row.get("video") or row.get("video_id") or "")
        if not query or not ref:
            raise VidlensError(f"{os.fspath(path)} row {n}: needs 'query' and 'video' (got {sorted(row)})")
        try:
            out.append((query, lib.get(ref)["id"]))
        except NotFoundError as exc:
            raise NotFoundError(f"{os.fspath(path)} row {n}: {exc}") from None
    return out


def split_pairs(pairs: Sequence[tuple[str, str]], holdout: float, seed: int = 0
                ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Pairs split by video (a held-out video's pairs are all held out), for an honest R@K check."""
    import numpy as np

    videos = sorted({v for _q, v in pairs})
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(videos)[: round(holdout * len(videos))].tolist()) if holdout > 0 else set()
    return [p for p in pairs if p[1] not in held], [p for p in pairs if p[1] in held]


__all__ = ["PAIR_SOURCES", "library_pairs", "split_pairs"]
