"""Recall channels: each proposes candidate tags for a video, with a score in [0, 1] and its evidence.

=================  ==========================================================================================
``content_text``   title / summary / OCR / ASR text matched against the library (Aho-Corasick, word bounds)
``product_text``   the attached product titles and categories, matched the same way
``query``          search queries that led to clicks on the video: whole queries that are tags, and tags inside
``cross_modal``    the video's vector (its text and visual-concept vectors, one 512-d space) → nearest tags
``similar_videos`` nearest tagged videos by the same vector; their tags, weighted by similarity
=================  ==========================================================================================

Channels are scikit-learn-style estimators (explicit ``__init__`` parameters, ``get_params`` /
``set_params``) registered in :data:`RECALL_CHANNELS`; they read shared resources (the matcher, tag
vectors, the tagged-video pool) from a :class:`TaggingContext`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from vidlens.models.registry import Registry
from vidlens.tags.library import TagLibrary
from vidlens.tags.normalize import normalize_text

RECALL_CHANNELS: Registry = Registry("recall channel")

TEXT_VECTOR_FIELDS = ("text.title", "text.summary", "text.ocr", "text.asr", "text.product", "text.concepts")
DEFAULT_VECTOR_WEIGHTS = {"text.title": 1.0, "text.summary": 0.6, "text.ocr": 0.4, "text.asr": 0.4,
                          "text.product": 0.4, "text.concepts": 0.3}


@dataclass
class VideoDoc:
    """What the tagger reads about one video.

    Attributes:
        video_id: the video's key (``None`` for a loose record).
        texts: text fields: ``title``, ``summary``, ``ocr``, ``asr``, ``product``, ``concepts``.
        vectors: pooled feature vectors by feature name (``text.title``, ``frames``, ``audio`` …); only
            present features are here (the presence mask is the key set).
        queries: ``(query, clicks)`` pairs of searches that led to the video.
    """

    video_id: str | None = None
    texts: dict[str, str] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    queries: list[tuple[str, int]] = field(default_factory=list)

    @classmethod
    def from_features(cls, fs: Any, queries: Sequence[tuple[str, int]] = ()) -> VideoDoc:
        """From a :class:`~vidlens.features.FeatureSet` (present pooled vectors and text fields)."""
        vectors = {k: np.asarray(v, np.float32) for k, v in fs.pooled.items() if fs.present.get(k, True)}
        return cls(fs.video_id, dict(fs.texts), vectors, list(queries))

    @classmethod
    def from_record(cls, record: dict[str, Any], encoder: Any = None) -> VideoDoc:
        """From a manifest-like record (``title``, ``summary``/``desc``, ``ocr``, ``asr``, ``product`` or
        ``product_titles``, ``queries``); text vectors are computed with ``encoder`` when given."""
        product = record.get("product") or " ".join(record.get("product_titles") or [])
        texts = {"title": record.get("title") or "", "summary": record.get("summary") or record.get("desc") or "",
                 "ocr": record.get("ocr") or "", "asr": record.get("asr") or "", "product": product}
        texts = {k: str(v) for k, v in texts.items() if v}
        doc = cls(record.get("id") or record.get("video_id"), texts, {},
                  [(q, 1) if isinstance(q, str) else (q[0], int(q[1])) for q in record.get("queries") or []])
        if encoder is not None:
            doc.encode(encoder)
        return doc

    def encode(self, encoder: Any) -> VideoDoc:
        """Fill ``text.<field>`` vectors for text fields that have no vector yet."""
        todo = [k for k, v in self.texts.items() if v.strip() and f"text.{k}" not in self.vectors]
        if todo:
            mat = encoder.encode_batch([self.texts[k] for k in todo])
            for k, vec in zip(todo, mat, strict=True):
                self.vectors[f"text.{k}"] = np.asarray(vec, np.float32)
        return self

    def text_vector(self, weights: dict[str, float] | None = None) -> np.ndarray | None:
        """Weighted mean of the present text-space vectors, unit length (``None`` when none is present)."""
        weights = weights or DEFAULT_VECTOR_WEIGHTS
        acc, total = None, 0.0
        for key, w in weights.items():
            v = self.vectors.get(key)
            if v is None or w <= 0 or not np.any(v):
                continue
            acc = v * w if acc is None else acc + v * w
            total += w
        if acc is None:
            return None
        norm = float(np.linalg.norm(acc))
        return (acc / norm).astype(np.float32) if norm > 0 else None


@dataclass
class Candidate:
    """A tag some channels recalled for a video: per-channel scores and evidence."""

    tag_id: int
    scores: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)

    def add(self, channel: str, score: float, evidence: Any = None) -> None:
        """Record (the best) score of ``channel``."""
        if score > self.scores.get(channel, -1.0):
            self.scores[channel] = float(score)
            if evidence is not None:
                self.evidence[channel] = evidence


class VectorSearch:
    """Inner-product search over unit vectors: FAISS through :mod:`vidlens.index` above ``exact_max``
    rows when it is installed, else exact numpy (the default for small sets)."""

    def __init__(self, ids: Sequence[Any], matrix: np.ndarray, exact_max: int = 50_000):
        self.ids = list(ids)
        self.matrix = np.ascontiguousarray(matrix, np.float32)
        self.index = None
        if len(self.ids) > exact_max:
            try:
                from vidlens.index import create_index

                self.index = create_index("faiss", self.matrix.shape[1])
                self.index.upsert([str(i) for i in range(len(self.ids))], self.matrix)
            except Exception:  # no FAISS here: exact search is slower but right
                self.index = None

    def search(self, query: np.ndarray, k: int) -> list[tuple[Any, float]]:
        """Top ``k`` ``(id, score)``."""
        if not self.ids:
            return []
        if self.index is not None:
            return [(self.ids[int(h.id)], float(h.score)) for h in self.index.search_one(query, k)]
        scores = self.matrix @ np.asarray(query, np.float32)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(self.ids[i], float(scores[i])) for i in top]


class TaggingContext:
    """Shared resources of the channels and the ranker: the library's matcher, tag vectors (encoded once
    per version and cached), tag facts, the tagged-video pool and query clicks.

    Args:
        tags: the tag library.
        encoder: a text encoder with ``encode_batch(list[str]) -> (N, 512)`` (tags and queries); needed by
            ``cross_modal`` and the rankers.
        statuses: tag statuses that may be recalled (``approved`` only by default).
    """

    def __init__(self, tags: TagLibrary, encoder: Any = None, statuses: tuple[str, ...] = ("approved",)):
        self.tags = tags
        self.encoder = encoder
        self.statuses = statuses
        self._tag_vectors: tuple[int, list[int], np.ndarray, VectorSearch] | None = None
        self._info: tuple[int, dict[int, dict[str, Any]]] | None = None
        self.pool: VectorSearch | None = None
        self.pool_tags: dict[str, list[int]] = {}

    def matcher(self):
        """The library matcher of the current version."""
        return self.tags.matcher(self.statuses)

    def tag_info(self) -> dict[int, dict[str, Any]]:
        """``{tag id: {name, kind, video_count, click_count}}`` for recallable tags."""
        version = self.tags.version
        if self._info is None or self._info[0] != version:
            from sqlalchemy import select

            from vidlens.tags.models import Tag

            with self.tags.session() as s:
                rows = s.execute(select(Tag.id, Tag.name, Tag.kind, Tag.video_count, Tag.click_count)
                                 .where(Tag.status.in_(self.statuses)))
                info = {r[0]: {"name": r[1], "kind": r[2], "video_count": r[3] or 0, "click_count": r[4] or 0}
                        for r in rows}
            self._info = (version, info)
        return self._info[1]

    def tag_vectors(self) -> tuple[list[int], np.ndarray, VectorSearch]:
        """Ids, unit vectors and a search over recallable tags' names (encoded once per version)."""
        if self.encoder is None:
            raise ValueError("tag vectors need a text encoder; pass encoder= to the TaggingContext")
        version = self.tags.version
        if self._tag_vectors is None or self._tag_vectors[0] != version:
            info = self.tag_info()
            ids = sorted(info)
            mat = self._encode_cached(ids, [info[i]["name"] for i in ids])
            self._tag_vectors = (version, ids, mat, VectorSearch(ids, mat))
        return self._tag_vectors[1], self._tag_vectors[2], self._tag_vectors[3]

    def _encode_cached(self, ids: list[int], names: list[str]) -> np.ndarray:
        """Encode names, reusing vectors cached (by encoder and name) in the library's index folder."""
        cache = None
        known: dict[str, np.ndarray] = {}
        name = getattr(self.encoder, "name", type(self.encoder).__name__)
        version = str(getattr(self.encoder, "version", ""))
        if self.tags.cache_dir is not None:
            safe = "".join(c if c.isalnum() else "_" for c in f"{name}-{version}")[:80]
            cache = self.tags.cache_dir / f"tag-vectors-{safe}.npz"
            if cache.is_file():
                data = np.load(cache, allow_pickle=False)
                known = dict(zip(data["names"].tolist(), data["vectors"], strict=True))
        todo = sorted({n for n in names if n not in known})
        if todo:
            for start in range(0, len(todo), 4096):
                chunk = todo[start:start + 4096]
                known.update(zip(chunk, np.asarray(self.encoder.encode_batch(chunk), np.float32), strict=True))
            if cache is not None:
                keys = sorted(known)
                np.savez(cache, names=np.array(keys), vectors=np.stack([known[k] for k in keys]))
        dim = next(iter(known.values())).shape[0] if known else 512
        return np.stack([known[n] for n in names]) if names else np.zeros((0, dim), np.float32)

    def vectors_for(self, tag_ids: Sequence[int]) -> np.ndarray:
        """Unit vectors of the given tags (rows in order)."""
        ids, mat, _ = self.tag_vectors()
        pos = {t: i for i, t in enumerate(ids)}
        return mat[[pos[t] for t in tag_ids]] if tag_ids else np.zeros((0, mat.shape[1]), np.float32)

    def set_video_pool(self, ids: Sequence[str], vectors: np.ndarray, tags: dict[str, list[int]]) -> None:
        """The tagged videos ``similar_videos`` searches: ids, their unit vectors, their tag ids."""
        self.pool = VectorSearch(list(ids), np.asarray(vectors, np.float32))
        self.pool_tags = {k: list(v) for k, v in tags.items()}

    def queries_for(self, video_id: str | None) -> list[tuple[str, int]]:
        """``(query, clicks)`` of query → video clicks stored for a video."""
        if video_id is None:
            return []
        from sqlalchemy import func, select

        from vidlens.tags.models import TagClick

        with self.tags.session() as s:
            rows = s.execute(select(TagClick.text, func.sum(TagClick.clicks))
                             .where(TagClick.video_id == video_id, TagClick.kind == "query_video")
                             .group_by(TagClick.text))
            return [(q, int(n)) for q, n in rows]


class RecallChannel(BaseEstimator):
    """Base of the recall channels."""

    registry_name: str = ""

    def recall(self, doc: VideoDoc, ctx: TaggingContext) -> dict[int, tuple[float, Any]]:
        """``{tag id: (score in [0, 1], evidence)}`` for one video."""
        raise NotImplementedError


def _match_fields(doc: VideoDoc, ctx: TaggingContext, weights: dict[str, float], max_candidates: int
                  ) -> dict[int, tuple[float, Any]]:
    matcher = ctx.matcher()
    found: dict[int, list] = {}
    for fld, w in weights.items():
        text = doc.texts.get(fld)
        if not text or w <= 0:
            continue
        for m in matcher.match(text):
            entry = found.setdefault(m.tag_id, [0.0, 0, []])
            entry[0] = max(entry[0], w)
            entry[1] += 1
            if fld not in entry[2]:
                entry[2].append(fld)
    out = {t: (min(1.0, w * (1 + 0.1 * math.log(n))), {"fields": flds}) for t, (w, n, flds) in found.items()}
    if len(out) > max_candidates:
        out = dict(sorted(out.items(), key=lambda kv: -kv[1][0])[:max_candidates])
    return out


@RECALL_CHANNELS.register("content_text")
class ContentTextChannel(RecallChannel):
    """Tags named in the video's own text (title, summary, OCR, ASR).

    Args:
        field_weights: text field → score of a tag found there (a tag in the title counts most).
        max_candidates: most tags kept (best first).
    """

    def __init__(self, field_weights: dict[str, float] | None = None, max_candidates: int = 50):
        self.field_weights = field_weights
        self.max_candidates = max_candidates

    def recall(self, doc: VideoDoc, ctx: TaggingContext) -> dict[int, tuple[float, Any]]:
        weights = self.field_weights or {"title": 1.0, "summary": 0.7, "ocr": 0.5, "asr": 0.5}
        return _match_fields(doc, ctx, weights, self.max_candidates)


@RECALL_CHANNELS.register("product_text")
class ProductTextChannel(RecallChannel):
    """Tags named in the attached product text.

    Args:
        field_weights: text field → score (``product`` holds product titles and categories).
        max_candidates: most tags kept.
    """

    def __init__(self, field_weights: dict[str, float] | None = None, max_candidates: int = 30):
        self.field_weights = field_weights
        self.max_candidates = max_candidates

    def recall(self, doc: VideoDoc, ctx: TaggingContext) -> dict[int, tuple[float, Any]]:
        return _match_fields(doc, ctx, self.field_weights or {"product": 0.8}, self.max_candidates)


@RECALL_CHANNELS.register("query")
class QueryChannel(RecallChannel):
    """Tags from the search queries that led to clicks on the video.

    Args:
        min_clicks: fewest clicks for a query to count.
        whole_query_score: score when the whole query is a tag (scaled by its click share).
        inside_query_score: score of a tag found inside a query.
        max_queries: most queries read (most clicked first).
        max_candidates: most tags kept.
    """

    def __init__(self, min_clicks: int = 1, whole_query_score: float = 1.0, inside_query_score: float = 0.6,
                 max_queries: int = 50, max_candidates: int = 30):
        self.min_clicks = min_clicks
        self.whole_query_score = whole_query_score
        self.inside_query_score = inside_query_score
        self.max_queries = max_queries
        self.max_candidates = max_candidates

    def recall(self, doc: VideoDoc, ctx: TaggingContext) -> dict[int, tuple[float, Any]]:
        queries = doc.queries or ctx.queries_for(doc.video_id)
        queries = sorted((q for q in queries if q[1] >= self.min_clicks), key=lambda q: -q[1])[:self.max_queries]
        if not queries:
            return {}
        top = max(n for _, n in queries)
        matcher = ctx.matcher()
        out: dict[int, tuple[float, Any]] = {}
        for query, n in queries:
            share = 0.5 + 0.5 * math.log1p(n) / math.log1p(top)
            norm = normalize_text(query)
            for m in matcher.match(norm, normalized=True):
                whole = m.start == 0 and m.end == len(norm)
                score = share * (self.whole_query_score if whole else self.inside_query_score)
                if score > out.get(m.tag_id, (0.0, None))[0]:
                    out[m.tag_id] = (min(1.0, score), {"query": query, "clicks": n})
        return dict(sorted(out.items(), key=lambda kv: -kv[1][0])[:self.max_candidates])


@RECALL_CHANNELS.register("cross_modal")
class CrossModalChannel(RecallChannel):
    """Nearest tags to the video's vector in the shared text space (zero-shot: text fields and the
    ImageNet concepts the frame model sees are all encoded by the same multilingual encoder).

    Args:
        vector_weights: feature → weight in the video vector (see :meth:`VideoDoc.text_vector`).
        top_k: tags returned.
        min_similarity: lowest cosine kept.
    """

    def __init__(self, vector_weights: dict[str, float] | None = None, top_k: int = 20,
                 min_similarity: float = 0.3):
        self.vector_weights = vector_weights
        self.top_k = top_k
        self.min_similarity = min_similarity

    def recall(self, doc: VideoDoc, ctx: TaggingContext) -> dict[int, tuple[float, Any]]:
        vec = doc.text_vector(self.vector_weights)
        if vec is None:
            return {}
        _, _, search = ctx.tag_vectors()
        return {t: (max(0.0, min(1.0, s)), {"cosine": round(s, 4)}) for t, s in search.search(vec, self.top_k)
                if s >= self.min_similarity}


@RECALL_CHANNELS.register("similar_videos")
class SimilarVideosChannel(RecallChannel):
    """Tags of the most similar tagged videos (the pool set with :meth:`TaggingContext.set_video_pool`).

    Args:
        vector_weights: feature → weight of the video vector (the pool must use the same).
        n_neighbors: similar videos read.
        min_similarity: lowest cosine of a neighbour that counts.
        max_candidates: most tags kept.
    """

    def __init__(self, vector_weights: dict[str, float] | None = None, n_neighbors: int = 10,
                 min_similarity: float = 0.4, max_candidates: int = 30):
        self.vector_weights = vector_weights
        self.n_neighbors = n_neighbors
        self.min_similarity = min_similarity
        self.max_candidates = max_candidates

    def recall(self, doc: VideoDoc, ctx: TaggingContext) -> dict[int, tuple[float, Any]]:
        vec = doc.text_vector(self.vector_weights)
        if vec is None or ctx.pool is None:
            return {}
        hits = [(v, s) for v, s in ctx.pool.search(vec, self.n_neighbors + 1)
                if v != doc.video_id and s >= self.min_similarity][:self.n_neighbors]
        if not hits:
            return {}
        total = sum(s for _, s in hits)
        votes: dict[int, list] = {}
        for v, s in hits:
            for t in ctx.pool_tags.get(v, ()):
                entry = votes.setdefault(t, [0.0, []])
                entry[0] += s
                if len(entry[1]) < 3:
                    entry[1].append(v)
        out = {t: (min(1.0, w / total), {"videos": vids}) for t, (w, vids) in votes.items()}
        return dict(sorted(out.items(), key=lambda kv: -kv[1][0])[:self.max_candidates])


def recall_all(doc: VideoDoc, ctx: TaggingContext, channels: dict[str, RecallChannel]) -> dict[int, Candidate]:
    """Run every channel on one video and merge their candidates by tag."""
    out: dict[int, Candidate] = {}
    info = ctx.tag_info()
    for name, channel in channels.items():
        for tag_id, (score, evidence) in channel.recall(doc, ctx).items():
            if tag_id in info:
                out.setdefault(tag_id, Candidate(tag_id)).add(name, score, evidence)
    return out


__all__ = [
    "RECALL_CHANNELS",
    "Candidate",
    "ContentTextChannel",
    "CrossModalChannel",
    "ProductTextChannel",
    "QueryChannel",
    "RecallChannel",
    "SimilarVideosChannel",
    "TaggingContext",
    "VectorSearch",
    "VideoDoc",
    "recall_all",
]
