"""The keyword index of one library: start-up from a snapshot, incremental updates, queries.

Layout: an immutable *base* (CSR postings and a document table, mapped from a snapshot on disk when
there is one) plus a small *delta* for documents added since; an updated video gets a new document
number and its old one is masked out. Readers take one view reference, so updates never block or
disturb a query in flight. Once the delta holds ``merge_at`` documents it is folded into a new base (in
NumPy, without reading the DB) and the snapshot is rewritten.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

from vidlens.features import video_texts
from vidlens.service.textsearch import snapshot
from vidlens.service.textsearch.documents import DocInfo, DocTable
from vidlens.service.textsearch.postings import (
    FIELDS,
    DeltaPostings,
    Postings,
    build_postings,
    doc_postings,
    fold_postings,
)
from vidlens.service.textsearch.snapshot import Fingerprint, NoSnapshot, SnapshotError
from vidlens.service.textsearch.tokens import tokenize
from vidlens.store.db import MetadataStore
from vidlens.store.models import Extraction, Video

log = logging.getLogger(__name__)

_TEXT_FEATURES = ("ocr", "asr", "frames")
STOPWORD_SHARE = 0.5
# The names of the fields set in each field bitmask.
_FIELD_NAMES = [[name for bit, name in enumerate(FIELDS) if m & (1 << bit)] for m in range(1 << len(FIELDS))]
_NOTHING_SEEN = Fingerprint(0, None, 0, None)


@dataclass
class SearchHit:
    """One result: the video, its score and which fields matched."""

    video_id: str
    score: float
    title: str
    duration: float
    has_thumbnail: bool
    matched: list[str]


@dataclass(frozen=True)
class _View:
    """What a query reads; replaced as a whole, never changed.

    Documents ``0 … len(table)-1`` are the base's; the ones after are ``added`` since. The per-document
    columns a query filters on (``alive``, ``duration`` …) span both.
    """

    base: Postings
    table: DocTable
    added: tuple[DocInfo, ...]
    added_of: dict[str, int]          # video id -> document, for live added documents
    alive: np.ndarray
    duration: np.ndarray
    has_speech: np.ndarray
    language: np.ndarray              # index into ``languages``, -1 unknown
    languages: tuple[str, ...]
    live: int
    generation: str | None = None     # the snapshot the base is mapped from
    # Postings of the added documents by token, and their document frequencies. Superseded documents
    # are not subtracted (idf is approximate until the next fold).
    delta: dict[str, DeltaPostings] = field(default_factory=dict)
    delta_df: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of_base(cls, base: Postings, table: DocTable, generation: str | None = None) -> _View:
        return cls(base=base, table=table, added=(), added_of={}, alive=np.ones(len(table), bool),
                   duration=table.duration, has_speech=table.has_speech, language=table.language,
                   languages=table.languages, live=len(table), generation=generation)

    def df(self, token: str) -> int:
        return self.base.df(token) + self.delta_df.get(token, 0)

    def doc_of(self, video_id: str) -> int | None:
        """The live document of a video, or None."""
        doc = self.added_of.get(video_id)
        if doc is None:
            doc = self.table.find(video_id)
        return doc if doc is not None and self.alive[doc] else None

    def info(self, doc: int) -> DocInfo:
        n = len(self.table)
        return self.table.info(doc) if doc < n else self.added[doc - n]

    def rows(self, docs: np.ndarray) -> list[tuple[str, str, float, bool]]:
        """(video id, title, duration, has thumbnail) of each of ``docs``."""
        n = len(self.table)
        if not len(docs) or int(docs.max()) < n:
            return self.table.rows(docs)
        return [(i.video_id, i.title, i.duration, i.has_thumbnail) for i in map(self.info, docs.tolist())]

    @cached_property
    def alive_bits(self) -> np.ndarray:
        """``alive`` of the base documents as a little-endian bitset (like the postings' bitsets)."""
        return np.packbits(self.alive[:len(self.table)], bitorder="little")

    def video_ids(self) -> set[str]:
        """The videos with a live document."""
        n = len(self.table)
        base = self.table.ids[self.alive[:n]]
        return {raw.decode() for raw in base.tolist()} | set(self.added_of)

    def with_documents(self, ids: list[str], loaded: dict[str, tuple[DocInfo, dict[str, str]]]) -> _View:
        """This view with ``ids`` re-read: each one's old document masked, a new one added when it is in
        ``loaded`` (absent: deleted)."""
        alive = self.alive.copy()
        added_of = dict(self.added_of)
        live = self.live
        for vid in ids:
            prev = self.doc_of(vid)
            if prev is not None:
                alive[prev] = False
                added_of.pop(vid, None)
                live -= 1
        new = [loaded[vid][0] for vid in ids if vid in loaded]
        first = len(self.alive)
        languages = list(self.languages)
        codes = []
        per_token: dict[str, list[tuple[int, float, int]]] = {}
        for n, info in enumerate(new, start=first):
            added_of[info.video_id] = n
            if info.language is not None and info.language not in languages:
                languages.append(info.language)
            codes.append(-1 if info.language is None else languages.index(info.language))
            for tok, (w, mask) in doc_postings(loaded[info.video_id][1]).items():
                per_token.setdefault(tok, []).append((n, w, mask))
        delta = dict(self.delta)
        delta_df = dict(self.delta_df)
        for tok, entries in per_token.items():
            docs = np.fromiter((e[0] for e in entries), np.int32, len(entries))
            weights = np.fromiter((e[1] for e in entries), np.float32, len(entries))
            masks = np.fromiter((e[2] for e in entries), np.uint8, len(entries))
            old = delta.get(tok)
            if old is not None:
                docs, weights, masks = (np.concatenate([a, b]) for a, b in zip(old, (docs, weights, masks),
                                                                                strict=True))
            delta[tok] = (docs, weights, masks)
            delta_df[tok] = delta_df.get(tok, 0) + len(entries)
        return replace(
            self, added=self.added + tuple(new), added_of=added_of,
            alive=np.concatenate([alive, np.ones(len(new), bool)]),
            duration=np.concatenate([self.duration, np.array([i.duration for i in new], np.float64)]),
            has_speech=np.concatenate([self.has_speech, np.array([i.has_speech for i in new], bool)]),
            language=np.concatenate([self.language, np.array(codes, np.int16)]), languages=tuple(languages),
            live=live + len(new), delta=delta, delta_df=delta_df,
        )

    def folded(self) -> tuple[Postings, DocTable]:
        """The base and table of one CSR holding every live document of this view (see :func:`fold_postings`)."""
        n = len(self.table)
        postings = fold_postings(self.base, self.delta, self.alive)
        added = [self.added[i] for i in np.flatnonzero(self.alive[n:]).tolist()]
        return postings, self.table.select(self.alive[:n]).extend(added)


def _covers(newer: Fingerprint, older: Fingerprint) -> bool:
    """Whether a base at ``newer`` reflects at least every change a base at ``older`` does."""
    def at_least(a: datetime | None, b: datetime | None) -> bool:
        return b is None or (a is not None and a >= b)

    return at_least(newer.videos_at, older.videos_at) and at_least(newer.extractions_at, older.extractions_at)


class TextSearchIndex:
    """In-memory keyword index of a library's videos (see the module docstring).

    Args:
        store: the metadata DB it reads from.
        merge_at: fold the delta into the base once this many documents were added or changed.
        folder: where its snapshot lives (``LIBRARY/index/textsearch``); None keeps nothing on disk.
    """

    def __init__(self, store: MetadataStore, merge_at: int = 5000, folder: Path | None = None):
        self.store = store
        self.merge_at = merge_at
        self.folder = folder
        self._view = _View.of_base(Postings.empty(), DocTable.from_infos([]))
        self._write = threading.Lock()       # installing a new view
        self._rebase = threading.Lock()      # one rebuild or fold at a time
        self._rebasing = False
        self._changed_while_rebasing: set[str] = set()
        self._seen_at = _NOTHING_SEEN
        self.version = 0
        self.build_seconds = 0.0
        self.started_from = "empty"

    # -- reading the DB ---------------------------------------------------------------------------
    def _load(self, ids: list[str] | None) -> Iterator[tuple[DocInfo, dict[str, str]]]:
        """(info, texts) of ``ids`` (None: every video, in id order), in pages so memory stays flat."""
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

    def _fingerprint(self) -> Fingerprint:
        with self.store.session() as s:
            n, v_at = s.execute(select(func.count(Video.id), func.max(Video.updated_at))).one()
            x_n, x_at = s.execute(select(func.count(), func.max(Extraction.updated_at))
                                  .select_from(Extraction)).one()
        return Fingerprint(int(n), v_at, int(x_n), x_at)

    def _changed_since(self, seen: Fingerprint, now: Fingerprint) -> set[str]:
        """Videos whose row or extractions changed after ``seen`` (``now`` is the DB's state)."""
        changed: set[str] = set()
        with self.store.session() as s:
            if now.videos_at != seen.videos_at or now.videos != seen.videos:
                q = select(Video.id)
                if seen.videos_at is not None:
                    q = q.where(Video.updated_at >= seen.videos_at)
                changed.update(s.scalars(q))
            if now.extractions_at != seen.extractions_at or now.extractions != seen.extractions:
                q = select(Extraction.video_id).distinct()
                if seen.extractions_at is not None:
                    q = q.where(Extraction.updated_at >= seen.extractions_at)
                changed.update(s.scalars(q))
        return changed

    def _reconcile(self, videos_in_db: int) -> int:
        """When the live documents do not match the DB's video count (a deletion), re-read the difference."""
        if self._view.live == videos_in_db:
            return 0
        with self.store.session() as s:
            in_db = set(s.scalars(select(Video.id)))
        differ = sorted(in_db ^ self._view.video_ids())
        self._apply(differ)
        return len(differ)

    # -- start-up, rebuilding, folding --------------------------------------------------------------
    def load_or_build(self) -> None:
        """Make the index ready at start-up: map the snapshot and catch up with what changed since it
        was written, or build from the DB (and write a snapshot) when there is none, it is unreadable,
        or too much changed. Several processes may call this at once: one builds, the others wait for
        it and map what it wrote."""
        if self.folder is None:
            self.rebuild()
            return
        t0 = time.perf_counter()
        with self._rebase, snapshot.locked(self.folder):
            try:
                snap = snapshot.read(self.folder)
            except NoSnapshot:
                log.info("keyword index: no snapshot in %s yet; building from the DB", self.folder)
            except SnapshotError as exc:
                log.warning("keyword index: snapshot in %s not used (%s); rebuilding from the DB", self.folder, exc)
            else:
                view = _View.of_base(snap.postings, snap.table, snap.generation)
                self._install(view, snap.fingerprint)
                caught_up = self._catch_up(snap.fingerprint, limit=self.merge_at)
                if caught_up is not None:
                    self.build_seconds = time.perf_counter() - t0
                    self.started_from = "snapshot"
                    log.info("keyword index: %d videos from snapshot %s (%d changed since) in %.2f s",
                             len(self), snap.generation, caught_up, self.build_seconds)
                    return
                log.warning("keyword index: snapshot %s is stale (more than %d videos changed); rebuilding "
                            "from the DB", snap.generation, self.merge_at)
            self._build_locked()
        self.started_from = "rebuild"

    def rebuild(self) -> None:
        """Build the whole index from the DB (and rewrite the snapshot)."""
        with self._rebase:
            if self.folder is None:
                self._build_locked()
            else:
                with snapshot.locked(self.folder):
                    self._build_locked()

    def _build_locked(self) -> None:
        t0 = time.perf_counter()
        with self._write:
            self._rebasing = True
            self._changed_while_rebasing = set()
        try:
            fingerprint = self._fingerprint()
            infos: list[DocInfo] = []

            def entries() -> Iterator[tuple[int, dict[str, str]]]:
                for info, texts in self._load(None):
                    infos.append(info)
                    yield len(infos) - 1, texts

            base = build_postings(entries())
            view = self._persisted(base, DocTable.from_infos(infos), fingerprint)
            again = self._install(view, fingerprint, end_rebase=True)
        finally:
            self._rebasing = False
        self.build_seconds = time.perf_counter() - t0
        log.info("keyword index: built %d videos from the DB in %.1f s", len(view.table), self.build_seconds)
        self.update(again)

    def merge(self) -> None:
        """Fold the delta into a new base and rewrite the snapshot; when another process already wrote a
        newer snapshot, map that one instead (so workers keep sharing one copy)."""
        if not self._rebase.acquire(blocking=False):
            return  # a rebuild or fold is under way and will pick up the delta
        try:
            t0 = time.perf_counter()
            # Catch up first, so the snapshot is keyed by the DB's current state: changes that reached the
            # delta through update() would otherwise be re-read at the next start.
            self._catch_up(self._seen_at)
            with self._write:
                self._rebasing = True
                self._changed_while_rebasing = set()
                view, seen = self._view, self._seen_at
            try:
                if self.folder is None:
                    view, seen = _View.of_base(*view.folded()), seen
                else:
                    with snapshot.locked(self.folder):
                        view, seen = self._fold_or_adopt(view, seen)
                again = self._install(view, seen, end_rebase=True)
            finally:
                self._rebasing = False
            log.info("keyword index: delta folded, %d videos, in %.1f s", view.live, time.perf_counter() - t0)
        finally:
            self._rebase.release()
        self.update(again)

    def _fold_or_adopt(self, view: _View, seen: Fingerprint) -> tuple[_View, Fingerprint]:
        assert self.folder is not None
        on_disk = snapshot.current(self.folder)
        if on_disk is not None and on_disk[0] != view.generation and _covers(on_disk[1], seen):
            try:
                snap = snapshot.read(self.folder)
            except SnapshotError as exc:
                log.warning("keyword index: snapshot in %s not used (%s)", self.folder, exc)
            else:
                adopted = _View.of_base(snap.postings, snap.table, snap.generation)
                now = self._fingerprint()
                ids = sorted(self._changed_since(snap.fingerprint, now))
                loaded = {info.video_id: (info, texts) for info, texts in self._load(ids)}
                return adopted.with_documents(ids, loaded), now
        postings, table = view.folded()
        return self._persisted(postings, table, seen), seen

    def _persisted(self, postings: Postings, table: DocTable, fingerprint: Fingerprint) -> _View:
        """A view of a new base, written as the current snapshot and mapped back from it (so worker
        processes share its pages); kept in memory alone when it cannot be written."""
        if self.folder is not None:
            try:
                snapshot.write(self.folder, postings, table, fingerprint)
                snap = snapshot.read(self.folder)
                return _View.of_base(snap.postings, snap.table, snap.generation)
            except (OSError, SnapshotError) as exc:
                log.warning("keyword index: could not write its snapshot to %s (%s); next start rebuilds",
                            self.folder, exc)
        return _View.of_base(postings, table)

    def _install(self, view: _View, seen: Fingerprint, end_rebase: bool = False) -> set[str]:
        """Make ``view`` (reflecting the DB at ``seen``) the one queries read; returns the videos that
        changed while it was being made (when ``end_rebase``), to be re-read."""
        with self._write:
            self._view = view
            self._seen_at = seen
            self.version += 1
            again: set[str] = set()
            if end_rebase:
                self._rebasing = False
                again, self._changed_while_rebasing = self._changed_while_rebasing, set()
            return again

    # -- keeping current -----------------------------------------------------------------------------
    def update(self, ids: Iterable[str]) -> None:
        """Re-read ``ids`` from the DB (new, changed or deleted videos) and make them searchable."""
        self._apply(ids)
        self._merge_when_due()

    def _apply(self, ids: Iterable[str]) -> None:
        ids = sorted(set(ids))
        if not ids:
            return
        loaded = {info.video_id: (info, texts) for info, texts in self._load(ids)}
        with self._write:
            if self._rebasing:
                self._changed_while_rebasing.update(ids)
            self._view = self._view.with_documents(ids, loaded)
            self.version += 1

    def _merge_when_due(self) -> None:
        if len(self._view.added) >= self.merge_at and not self._rebasing:
            threading.Thread(target=self.merge, name="vidlens-textindex-merge", daemon=True).start()

    def _catch_up(self, seen: Fingerprint, limit: int | None = None) -> int | None:
        """Re-read what changed in the DB since ``seen``; returns how many videos, or None (nothing
        done) when more than ``limit`` did or something was deleted that calls for a rebuild."""
        now = self._fingerprint()
        if now == seen:
            return 0
        if now.extractions < seen.extractions and now.videos >= seen.videos:
            return None  # extraction rows removed from videos still there: only a rebuild sees it
        changed = self._changed_since(seen, now)
        if limit is not None and len(changed) > limit:
            return None
        self._apply(changed)
        n = len(changed) + self._reconcile(now.videos)
        with self._write:
            self._seen_at = now
        self._merge_when_due()  # after recording what was seen, so the fold does not re-read it
        return n

    def refresh(self) -> int:
        """Pick up changes other processes made (cheap when there are none); returns videos re-read."""
        n = self._catch_up(self._seen_at)
        if n is None:
            self.rebuild()
            return len(self)
        return n

    # -- querying -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._view.live

    def search(self, query: str, limit: int = 20, offset: int = 0, min_duration: float | None = None,
               max_duration: float | None = None, has_speech: bool | None = None,
               language: str | None = None, allowed: set[str] | None = None) -> tuple[int, list[SearchHit]]:
        """Videos matching ``query``, best first (equal scores: the lower document number first).

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
        view = self._view
        tokens = list(dict.fromkeys(tokenize(query)))[:64]
        if not tokens or not len(view.alive):
            return 0, []
        terms = _terms(view, tokens)
        if not terms:
            return 0, []
        mask = _filter_mask(view, min_duration, max_duration, has_speech)
        want = offset + max(limit, 0)
        best = None
        if language is None and allowed is None and want > 0:
            best = _best_by_impact(view, terms, mask, want)
        if best is not None:
            n_match = _count_matches(view, terms, mask)
            cand, total = best
        else:
            n_match, cand, total = _best_of_all(view, terms, mask, language, allowed, want)
        if limit <= 0 or n_match <= offset:
            return n_match, []
        return n_match, _page(view, cand, total, offset, limit, [t.token for t in terms])


@dataclass(frozen=True)
class _Term:
    """One query token: its idf, base postings (with their impact order and bitset) and delta postings."""

    token: str
    idf: np.float32
    docs: np.ndarray
    weights: np.ndarray
    impact: np.ndarray
    bitset: np.ndarray | None
    delta: DeltaPostings | None

    def parts(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(documents, weights) of the base and of the delta."""
        yield self.docs, self.weights
        if self.delta is not None:
            yield self.delta[0], self.delta[1]


_NO_POSTINGS = (np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, np.int32), None)
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def _terms(view: _View, tokens: list[str]) -> list[_Term]:
    """The query's tokens that occur, with their idf. Tokens in more than half the library carry almost
    no idf but cost a pass over most documents: they are dropped when the query has rarer tokens (the
    usual stop-word treatment)."""
    live = max(view.live, 1)
    dfs = {tok: view.df(tok) for tok in tokens}
    common = {tok for tok, df in dfs.items() if df > live * STOPWORD_SHARE}
    if len(common) < sum(df > 0 for df in dfs.values()):
        tokens = [tok for tok in tokens if tok not in common]
    terms = []
    for tok in tokens:
        df = dfs[tok]
        if df <= 0:
            continue
        idf = np.float32(math.log(1.0 + max(live - df + 0.5, 0.5) / (df + 0.5)))
        docs, weights, impact, bitset = view.base.ranked(tok) or _NO_POSTINGS
        terms.append(_Term(tok, idf, docs, weights, impact, bitset, view.delta.get(tok)))
    return terms


def _filter_mask(view: _View, min_duration: float | None, max_duration: float | None,
                 has_speech: bool | None) -> np.ndarray | None:
    """Which documents may be returned (live and passing the filters); None when all may."""
    mask = None if view.live == len(view.alive) else view.alive
    for keep in (None if min_duration is None else view.duration >= min_duration,
                 None if max_duration is None else view.duration <= max_duration,
                 None if has_speech is None else view.has_speech == has_speech):
        if keep is not None:
            mask = keep if mask is None else mask & keep
    return mask


def _score(terms: list[_Term], cand: np.ndarray) -> np.ndarray:
    """Exact scores of the documents ``cand`` (ascending), summed in the same order as a dense pass."""
    acc = np.zeros(len(cand), np.float64)
    for term in terms:
        for docs, weights in term.parts():
            if len(docs):
                i = np.minimum(np.searchsorted(docs, cand), len(docs) - 1)
                hit = docs[i] == cand
                acc[hit] += weights[i[hit]] * term.idf
    return acc.astype(np.float32)


def _best_by_impact(view: _View, terms: list[_Term], mask: np.ndarray | None, want: int
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    """Candidates that surely hold the ``want`` best documents, and their scores, found from the head of
    each token's impact order (a batched threshold algorithm); None when that would cost more than a
    pass over all postings.

    Candidates are every token's ``m`` best base documents and all its delta documents. A document
    outside them scores at most ``bound`` (each token's m-th weight times its idf); once the want-th best
    candidate beats that, no outsider can enter the page. For one token without delta the head of its
    impact order is already the exact order (weight, then document), ties included.
    """
    longest = max(len(t.docs) for t in terms)
    postings = sum(len(t.docs) for t in terms)
    single = len(terms) == 1 and terms[0].delta is None
    m = max(4 * want, 64)
    while True:
        parts = [t.docs[t.impact[:m]] for t in terms] + [t.delta[0] for t in terms if t.delta is not None]
        cand = np.unique(np.concatenate(parts))
        if mask is not None:
            cand = cand[mask[cand]]
        if m >= longest:
            return cand, _score(terms, cand)  # every posting is a candidate
        if len(cand) >= want:
            total = _score(terms, cand)
            if single:
                return cand, total
            theta = float(np.partition(total, len(total) - want)[len(total) - want])
            bound = sum(float(t.weights[t.impact[m - 1]] * t.idf) for t in terms if len(t.docs) > m)
            if theta > bound * (1 + 1e-6):  # strictly above, with room for float32 rounding
                return cand, total
        m *= 4
        # Scoring a candidate costs a look-up per token: beyond this, one pass over everything is cheaper.
        if m * len(terms) > min(len(view.alive) // 4, postings // 2):
            return None


def _count_matches(view: _View, terms: list[_Term], mask: np.ndarray | None) -> int:
    """How many documents (passing ``mask``) hold some query token: the bitsets of common tokens ORed,
    plus the documents of the others not already in them."""
    if mask is None and len(terms) == 1 and terms[0].delta is None:
        return len(terms[0].docs)
    packed: np.ndarray | None = None
    loose = []
    for term in terms:
        if term.bitset is not None:
            packed = term.bitset.copy() if packed is None else np.bitwise_or(packed, term.bitset, out=packed)
        else:
            loose.append(term.docs)
        if term.delta is not None:
            loose.append(term.delta[0])
    rest = np.unique(np.concatenate(loose)) if loose else np.zeros(0, np.int32)
    count = 0
    if packed is not None:
        n_base = len(view.table)
        base, added = rest[rest < n_base], rest[rest >= n_base]
        covered = (packed[base >> 3] >> (base & 7).astype(np.uint8)) & 1
        rest = np.concatenate([base[covered == 0], added])
        if mask is not None:
            bits = view.alive_bits if mask is view.alive else np.packbits(mask[:n_base], bitorder="little")
            packed &= bits
        count += int(_POPCOUNT[packed].sum())
    return count + (len(rest) if mask is None else int(np.count_nonzero(mask[rest])))


def _top(total: np.ndarray, want: int) -> np.ndarray:
    """Indices of the ``want`` largest of ``total``, equal values taken by lowest index (unordered)."""
    if want <= 0:
        return np.zeros(0, np.int64)
    if len(total) <= want:
        return np.arange(len(total))
    threshold = np.partition(total, len(total) - want)[len(total) - want]
    above = np.flatnonzero(total > threshold)
    return np.concatenate([above, np.flatnonzero(total == threshold)[:want - len(above)]])


def _best_of_all(view: _View, terms: list[_Term], mask: np.ndarray | None, language: str | None,
                 allowed: set[str] | None, want: int) -> tuple[int, np.ndarray, np.ndarray]:
    """(matches, candidates, their scores) from a pass over all postings of the query's tokens."""
    n_docs = len(view.alive)
    docs = np.concatenate([d for t in terms for d, _w in t.parts()])
    scores = np.concatenate([w * t.idf for t in terms for _d, w in t.parts()])
    simple = language is None and allowed is None
    if len(docs) * 8 >= n_docs and simple:
        # Many postings: filter and rank on the dense score vector, without gathering candidates.
        dense = np.bincount(docs, weights=scores, minlength=n_docs)
        if mask is not None:
            np.multiply(dense, mask, out=dense)
        n_match = int(np.count_nonzero(dense))
        total = dense.astype(np.float32)
        cand = _top(total, min(want, n_match)).astype(np.int32)
        return n_match, cand, total[cand]
    if len(docs) * 8 < n_docs:
        cand, inverse = np.unique(docs, return_inverse=True)
        total = np.bincount(inverse, weights=scores).astype(np.float32)
    else:
        dense = np.bincount(docs, weights=scores, minlength=n_docs)
        cand = np.flatnonzero(dense).astype(np.int32)
        total = dense[cand].astype(np.float32)
    keep = np.ones(len(cand), bool) if mask is None else mask[cand]
    if language is not None:
        code = view.languages.index(language) if language in view.languages else -2
        keep &= view.language[cand] == code
    if allowed is not None:
        keep &= _allowed(view, cand, allowed)
    cand, total = cand[keep], total[keep]
    top = _top(total, want)
    return len(cand), cand[top], total[top]


def _allowed(view: _View, cand: np.ndarray, allowed: set[str]) -> np.ndarray:
    """For each candidate document, whether its video is in ``allowed``."""
    n = len(view.table)
    out = np.zeros(len(cand), bool)
    in_base = cand < n
    out[in_base] = view.table.contains_ids(cand[in_base], allowed)
    for i in np.flatnonzero(~in_base).tolist():
        out[i] = view.added[int(cand[i]) - n].video_id in allowed
    return out


def _page(view: _View, cand: np.ndarray, total: np.ndarray, offset: int, limit: int,
          tokens: list[str]) -> list[SearchHit]:
    """The hits ``offset:offset+limit`` of the best candidates ``cand`` (scores ``total``)."""
    order = np.lexsort((cand, -total))[offset:offset + limit]
    docs = cand[order]
    masks = _matched(view, docs, tokens).tolist()
    return [SearchHit(video_id=vid, score=round(score, 4), title=title, duration=duration, has_thumbnail=thumb,
                      matched=list(_FIELD_NAMES[mask]))
            for (vid, title, duration, thumb), score, mask in zip(view.rows(docs), total[order].tolist(), masks,
                                                                   strict=True)]


def _matched(view: _View, docs: np.ndarray, tokens: list[str]) -> np.ndarray:
    """For each document of ``docs``, the bitmask of fields in which some query token occurs."""
    masks = np.zeros(len(docs), np.uint8)
    for tok in tokens:
        for found in (view.base.lookup(tok), view.delta.get(tok)):
            if found is not None and len(found[0]):
                posting_docs, _w, fields = found
                i = np.minimum(np.searchsorted(posting_docs, docs), len(posting_docs) - 1)
                hit = posting_docs[i] == docs
                masks[hit] |= fields[i[hit]]
    return masks
