"""A keyword index over the stored text of every video (title, summary, product text, OCR, ASR, concepts).

This is the service's search until the retrieval engine (``vidlens.retrieval``) is wired in; it also
serves as the keyword channel beside vector search. It lives in memory, is built from the metadata DB
at start-up and kept current incrementally, and answers a query with a handful of NumPy operations.

Tokens: lower-cased runs of Latin letters/digits, and for CJK text every character bigram (plus the
character itself for one-character runs), so "红烧肉" matches "做红烧肉" without a word segmenter.
Scoring: Σ over query tokens of idf(token) · Σ over fields of weight(field) · tf / (tf + 1.2).

Layout: an immutable *base* (postings in CSR arrays) plus a small *delta* for documents added since;
an updated video gets a new document number and its old one is masked out. Readers take one snapshot
reference, so updates never block or disturb a query in flight. The delta is folded into the base when
it grows past ``merge_at`` documents.
"""

from __future__ import annotations

import math
import re
import threading
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from typing import Any

import numpy as np
from sqlalchemy import func, select

from vidlens.features import video_texts
from vidlens.store.db import MetadataStore
from vidlens.store.models import Extraction, Video

FIELD_WEIGHTS: dict[str, float] = {
    "title": 3.0, "summary": 1.5, "product": 1.0, "ocr": 1.2, "asr": 1.0, "concepts": 0.5,
}
FIELDS = tuple(FIELD_WEIGHTS)
_TEXT_FEATURES = ("ocr", "asr", "frames")
_TOKEN_RE = re.compile(r"[0-9a-z]+|[\u3400-\u9fff\uf900-\ufaff]+")
_K1 = 1.2
STOPWORD_SHARE = 0.5


def tokenize(text: str, index: bool = False) -> list[str]:
    """Tokens of ``text`` (see the module docstring).

    Args:
        index: tokens for indexing: CJK characters are emitted as well as their bigrams, so that a
            one-character query finds them; a query of two or more CJK characters matches on bigrams.
    """
    out: list[str] = []
    for run in _TOKEN_RE.findall(text.lower()):
        if run[0].isascii() or len(run) == 1:
            out.append(run)
        else:
            out.extend(run[i:i + 2] for i in range(len(run) - 1))
            if index:
                out.extend(run)
    return out


@dataclass
class DocInfo:
    """Per-document values filters and results need (kept small: 100k documents must fit easily)."""

    video_id: str
    title: str
    duration: float
    language: str | None
    has_speech: bool
    has_thumbnail: bool


@dataclass
class SearchHit:
    """One result: the video, its score and which fields matched."""

    video_id: str
    score: float
    title: str
    duration: float
    has_thumbnail: bool
    matched: list[str]


@dataclass
class _Postings:
    """CSR postings: for token t, documents ``docs[start[t]:start[t+1]]`` with weights and field masks."""

    vocab: dict[str, int]
    start: np.ndarray
    docs: np.ndarray
    weights: np.ndarray
    fields: np.ndarray

    def lookup(self, token: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        t = self.vocab.get(token)
        if t is None:
            return None
        a, b = self.start[t], self.start[t + 1]
        return self.docs[a:b], self.weights[a:b], self.fields[a:b]


@dataclass
class _Snapshot:
    base: _Postings
    infos: list[DocInfo | None]        # by document number; None when superseded or deleted
    doc_of: dict[str, int]             # video id -> live document number
    duration: np.ndarray
    has_speech: np.ndarray
    alive: np.ndarray
    # Documents added since the base was built: token -> [(doc, weight, field mask)], and their
    # document frequencies. Superseded documents are not subtracted (idf is approximate until a merge).
    delta: dict[str, list[tuple[int, float, int]]] = field(default_factory=dict)
    delta_df: Counter = field(default_factory=Counter)
    delta_docs: int = 0

    @property
    def live(self) -> int:
        return len(self.doc_of)

    def df(self, token: str) -> int:
        t = self.base.vocab.get(token)
        base = 0 if t is None else int(self.base.start[t + 1] - self.base.start[t])
        return base + self.delta_df.get(token, 0)


def _doc_postings(texts: dict[str, str]) -> dict[str, tuple[float, int]]:
    """token → (weight, field bitmask) for one document (the same arithmetic as a whole build)."""
    p = _build_postings([(0, texts)])
    names = {t: tok for tok, t in p.vocab.items()}
    return {names[t]: (float(p.weights[p.start[t]]), int(p.fields[p.start[t]])) for t in range(len(names))}


def _build_postings(entries: Iterable[tuple[int, dict[str, str]]]) -> _Postings:
    """CSR postings of documents given as (document number, {field: text}), numbers ascending.

    Python only tokenises and maps tokens to ids; term frequencies, weights and field masks are computed
    with NumPy over all occurrences at once.
    """
    vocab: defaultdict[str, int] = defaultdict(count().__next__)
    tok_ids, doc_ids, field_ids = array("i"), array("i"), array("B")
    n_docs = 0
    for doc, texts in entries:
        n_docs = doc + 1
        for bit, name in enumerate(FIELDS):
            text = texts.get(name)
            if not text:
                continue
            toks = tokenize(text, index=True)
            if toks:
                tok_ids.extend([vocab[t] for t in toks])
                doc_ids.extend(array("i", [doc]) * len(toks))
                field_ids.extend(array("B", [bit]) * len(toks))
    vocab = dict(vocab)
    if not tok_ids:
        return _Postings(vocab, np.zeros(len(vocab) + 1, np.int64), np.zeros(0, np.int32),
                         np.zeros(0, np.float32), np.zeros(0, np.uint8))
    n_fields = len(FIELDS)
    key = (np.frombuffer(tok_ids, np.int32).astype(np.int64) * n_docs
           + np.frombuffer(doc_ids, np.int32)) * n_fields + np.frombuffer(field_ids, np.uint8)
    # (token, doc, field) → term frequency → weight of that field.
    tdf, tf = np.unique(key, return_counts=True)
    field = (tdf % n_fields).astype(np.int64)
    weight = np.asarray(list(FIELD_WEIGHTS.values()), np.float64)[field] * tf / (tf + _K1)
    # (token, doc) → summed weight and OR-ed field mask; ``tdf`` is sorted, so groups are contiguous.
    td = tdf // n_fields
    starts = np.flatnonzero(np.r_[True, td[1:] != td[:-1]])
    td = td[starts]
    weights = np.add.reduceat(weight, starts).astype(np.float32)
    masks = np.bitwise_or.reduceat((1 << field).astype(np.uint8), starts)
    tok = td // n_docs
    start = np.zeros(len(vocab) + 1, np.int64)
    np.cumsum(np.bincount(tok, minlength=len(vocab)), out=start[1:])
    return _Postings(vocab=vocab, start=start, docs=(td % n_docs).astype(np.int32), weights=weights, fields=masks)


class TextSearchIndex:
    """In-memory keyword index of a library's videos.

    Args:
        store: the metadata DB it reads from.
        merge_at: rebuild the base once this many documents were added or changed since the last build.
    """

    def __init__(self, store: MetadataStore, merge_at: int = 5000):
        self.store = store
        self.merge_at = merge_at
        self._snap = self._empty()
        self._write = threading.Lock()
        self._building = False
        self._changed_while_building: set[str] = set()
        self._seen_at: tuple[int, datetime | None, datetime | None] = (0, None, None)
        self.version = 0
        self.build_seconds = 0.0

    @staticmethod
    def _empty() -> _Snapshot:
        return _Snapshot(base=_build_postings([]), infos=[], doc_of={}, duration=np.zeros(0, np.float32),
                         has_speech=np.zeros(0, bool), alive=np.zeros(0, bool))

    # -- reading the DB ---------------------------------------------------------------------------
    def _load(self, ids: list[str] | None) -> Iterator[tuple[DocInfo, dict[str, str]]]:
        """(info, texts) of ``ids`` (None: every video), in pages so memory stays flat."""
        page = 2000
        if ids is None:
            last = ""
            while True:
                with self.store.session() as s:
                    videos = list(s.scalars(select(Video).where(Video.id > last).order_by(Video.id).limit(page)))
                if not videos:
                    return
                yield from self._rows(videos)
                last = videos[-1].id
        else:
            for i in range(0, len(ids), page):
                with self.store.session() as s:
                    videos = list(s.scalars(select(Video).where(Video.id.in_(ids[i:i + page]))))
                yield from self._rows(videos)

    def _rows(self, videos: list[Video]) -> Iterator[tuple[DocInfo, dict[str, str]]]:
        ids = [v.id for v in videos]
        results: dict[str, dict[str, dict[str, Any]]] = {i: {} for i in ids}
        thumbs: set[str] = set()
        with self.store.session() as s:
            rows = s.execute(select(Extraction.video_id, Extraction.feature, Extraction.result).where(
                Extraction.video_id.in_(ids), Extraction.status == "ok",
                Extraction.feature.in_([*_TEXT_FEATURES, "cover"])))
            for vid, feature, result in rows:
                if feature == "cover":
                    if (result or {}).get("thumbnail"):
                        thumbs.add(vid)
                else:
                    results[vid][feature] = result or {}
        for v in videos:
            record = {"title": v.title, "summary": v.summary, "product_titles": v.product_titles,
                      "product_categories": v.product_categories}
            r = results[v.id]
            texts = video_texts(record, r.get("ocr"), r.get("asr"), r.get("frames"))
            asr = r.get("asr") or {}
            info = DocInfo(video_id=v.id, title=v.title or "", duration=float(v.duration or 0.0),
                           language=asr.get("language"), has_speech=bool(asr.get("text")),
                           has_thumbnail=v.id in thumbs)
            yield info, texts

    def _fingerprint(self) -> tuple[int, datetime | None, datetime | None]:
        with self.store.session() as s:
            n, v_at = s.execute(select(func.count(Video.id), func.max(Video.updated_at))).one()
            x_at = s.scalar(select(func.max(Extraction.updated_at)))
        return int(n), v_at, x_at

    # -- building and updating ----------------------------------------------------------------------
    def rebuild(self) -> None:
        """Build the whole index from the DB (start-up, deletions, and when the delta grew large)."""
        t0 = time.perf_counter()
        with self._write:
            self._building = True
            self._changed_while_building = set()
        try:
            fingerprint = self._fingerprint()
            infos: list[DocInfo] = []

            def entries() -> Iterator[tuple[int, dict[str, str]]]:
                for info, texts in self._load(None):
                    infos.append(info)
                    yield len(infos) - 1, texts

            base = _build_postings(entries())
            snap = _Snapshot(
                base=base, infos=list(infos), doc_of={info.video_id: n for n, info in enumerate(infos)},
                duration=np.array([i.duration for i in infos], np.float32),
                has_speech=np.array([i.has_speech for i in infos], bool),
                alive=np.ones(len(infos), bool),
            )
            with self._write:
                self._snap = snap
                self._seen_at = fingerprint
                self.version += 1
                self._building = False
                again = self._changed_while_building
        finally:
            self._building = False
        self.build_seconds = time.perf_counter() - t0
        self.update(again)

    def update(self, ids: Iterable[str]) -> None:
        """Re-read ``ids`` from the DB (new, changed or deleted videos) and make them searchable."""
        ids = sorted(set(ids))
        if not ids:
            return
        loaded = {info.video_id: (info, texts) for info, texts in self._load(ids)}
        with self._write:
            if self._building:
                self._changed_while_building.update(ids)
            old = self._snap
            infos = list(old.infos)
            doc_of = dict(old.doc_of)
            alive = old.alive.copy()
            delta = dict(old.delta)
            delta_df = Counter(old.delta_df)
            for vid in ids:
                prev = doc_of.pop(vid, None)
                if prev is not None:
                    infos[prev] = None
                    alive[prev] = False
            added: list[DocInfo] = []
            for vid in ids:
                if vid not in loaded:
                    continue  # deleted
                info, texts = loaded[vid]
                n = len(infos)
                infos.append(info)
                added.append(info)
                doc_of[vid] = n
                postings = _doc_postings(texts)
                delta_df.update(postings.keys())
                for tok, (w, mask) in postings.items():
                    delta[tok] = [*delta.get(tok, ()), (n, w, mask)]
            self._snap = _Snapshot(
                base=old.base, infos=infos, doc_of=doc_of, delta=delta, delta_df=delta_df,
                duration=np.concatenate([old.duration, np.array([i.duration for i in added], np.float32)]),
                has_speech=np.concatenate([old.has_speech, np.array([i.has_speech for i in added], bool)]),
                alive=np.concatenate([alive, np.ones(len(added), bool)]),
                delta_docs=old.delta_docs + len(ids),
            )
            self.version += 1
            merge = self._snap.delta_docs >= self.merge_at and not self._building
        if merge:
            threading.Thread(target=self.rebuild, name="vidlens-textindex-merge", daemon=True).start()

    def refresh(self) -> int:
        """Pick up changes other processes made (cheap when there are none); returns videos re-read."""
        n, v_at, x_at = self._fingerprint()
        seen_n, seen_v, seen_x = self._seen_at
        if (n, v_at, x_at) == (seen_n, seen_v, seen_x):
            return 0
        if n < seen_n:
            self.rebuild()
            return n
        with self.store.session() as s:
            changed: set[str] = set()
            if seen_v is None or v_at != seen_v:
                q = select(Video.id) if seen_v is None else select(Video.id).where(Video.updated_at >= seen_v)
                changed.update(s.scalars(q))
            if x_at is not None and (seen_x is None or x_at != seen_x):
                q = select(Extraction.video_id).distinct()
                if seen_x is not None:
                    q = q.where(Extraction.updated_at >= seen_x)
                changed.update(s.scalars(q))
        self.update(changed)
        self._seen_at = (n, v_at, x_at)
        return len(changed)

    # -- querying -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._snap.live

    def search(self, query: str, limit: int = 20, offset: int = 0, min_duration: float | None = None,
               max_duration: float | None = None, has_speech: bool | None = None,
               language: str | None = None, allowed: set[str] | None = None) -> tuple[int, list[SearchHit]]:
        """Videos matching ``query``, best first.

        Args:
            query: free text (Chinese and/or English); every token may match, more matches rank higher.
            limit, offset: the page of results.
            min_duration, max_duration: seconds.
            has_speech: only videos with (True) or without (False) a transcript.
            language: only videos whose transcript is in this language (``en``, ``zh`` ...).
            allowed: only these video ids (a filter computed elsewhere, e.g. a category).

        Returns:
            (number of matching videos, the hits of the page).
        """
        snap = self._snap
        tokens = list(dict.fromkeys(tokenize(query)))[:64]
        n_docs = len(snap.infos)
        if not tokens or n_docs == 0:
            return 0, []
        live = max(snap.live, 1)
        dfs = {tok: snap.df(tok) for tok in tokens}
        # Tokens in more than half the library carry almost no idf but cost a pass over most documents:
        # they are dropped when the query has rarer tokens (the usual stop-word treatment).
        common = {tok for tok, df in dfs.items() if df > live * STOPWORD_SHARE}
        if len(common) < sum(df > 0 for df in dfs.values()):
            tokens = [tok for tok in tokens if tok not in common]
        parts_docs, parts_scores = [], []
        for tok in tokens:
            df = dfs[tok]
            if df <= 0:
                continue
            idf = np.float32(math.log(1.0 + max(live - df + 0.5, 0.5) / (df + 0.5)))
            found = snap.base.lookup(tok)
            if found is not None:
                parts_docs.append(found[0])
                parts_scores.append(found[1] * idf)
            extra = snap.delta.get(tok)
            if extra:
                parts_docs.append(np.fromiter((e[0] for e in extra), np.int32, len(extra)))
                parts_scores.append(np.fromiter((e[1] for e in extra), np.float32, len(extra)) * idf)
        if not parts_docs:
            return 0, []
        docs = np.concatenate(parts_docs)
        scores = np.concatenate(parts_scores)
        simple = language is None and allowed is None
        if len(docs) * 8 >= n_docs and simple:
            # Many postings: filter and rank on the dense score vector, without gathering candidates.
            dense = np.bincount(docs, weights=scores, minlength=n_docs)
            mask = snap.alive
            if min_duration is not None:
                mask = mask & (snap.duration >= min_duration)
            if max_duration is not None:
                mask = mask & (snap.duration <= max_duration)
            if has_speech is not None:
                mask = mask & (snap.has_speech == has_speech)
            np.multiply(dense, mask, out=dense)
            n_match = int(np.count_nonzero(dense))
            want = min(offset + limit, n_match)
            if limit <= 0 or n_match <= offset:
                return n_match, []
            cand = np.argpartition(-dense, want - 1)[:want].astype(np.int32)
            total = dense[cand].astype(np.float32)
            return n_match, self._page(snap, cand, total, offset, limit, tokens)
        if len(docs) * 8 < n_docs:
            cand, inverse = np.unique(docs, return_inverse=True)
            total = np.bincount(inverse, weights=scores).astype(np.float32)
        else:
            dense = np.bincount(docs, weights=scores, minlength=n_docs)
            cand = np.flatnonzero(dense).astype(np.int32)
            total = dense[cand].astype(np.float32)
        keep = snap.alive[cand]
        if min_duration is not None:
            keep &= snap.duration[cand] >= min_duration
        if max_duration is not None:
            keep &= snap.duration[cand] <= max_duration
        if has_speech is not None:
            keep &= snap.has_speech[cand] == has_speech
        if not simple:
            for i in np.flatnonzero(keep):
                info = snap.infos[cand[i]]
                if info is None or (language is not None and info.language != language) or (
                        allowed is not None and info.video_id not in allowed):
                    keep[i] = False
        cand, total = cand[keep], total[keep]
        n_match = len(cand)
        want = offset + limit
        if limit <= 0 or n_match <= offset:
            return n_match, []
        top = np.argpartition(-total, want - 1)[:want] if n_match > want else np.arange(n_match)
        return n_match, self._page(snap, cand[top], total[top], offset, limit, tokens)

    @staticmethod
    def _page(snap: _Snapshot, cand: np.ndarray, total: np.ndarray, offset: int, limit: int,
              tokens: list[str]) -> list[SearchHit]:
        """The hits ``offset:offset+limit`` of the best candidates ``cand`` (scores ``total``)."""
        # Ties break on document number so pages are stable.
        order = np.lexsort((cand, -total))[offset:offset + limit]
        docs = cand[order]
        matched = _matched(snap, docs, tokens)
        hits = []
        for doc, score, fields in zip(docs.tolist(), total[order].tolist(), matched, strict=True):
            info = snap.infos[doc]
            assert info is not None
            hits.append(SearchHit(video_id=info.video_id, score=round(score, 4), title=info.title,
                                  duration=info.duration, has_thumbnail=info.has_thumbnail, matched=fields))
        return hits


def _matched(snap: _Snapshot, docs: np.ndarray, tokens: list[str]) -> list[list[str]]:
    """For each document of ``docs``, the fields in which some query token occurs."""
    masks = np.zeros(len(docs), np.uint8)
    for tok in tokens:
        found = snap.base.lookup(tok)
        if found is not None and len(found[0]):
            posting_docs, _w, fields = found
            i = np.minimum(np.searchsorted(posting_docs, docs), len(posting_docs) - 1)
            hit = posting_docs[i] == docs
            masks[hit] |= fields[i[hit]]
        for d, _w, m in snap.delta.get(tok, ()):
            masks[docs == d] |= m
    return [[name for bit, name in enumerate(FIELDS) if int(m) & (1 << bit)] for m in masks]
