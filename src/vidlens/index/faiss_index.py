"""FAISS backend: the embedded default (no server).

- **Exact below a size threshold, HNSW above it.** Up to ``exact_threshold`` live items the vectors sit
  in an ``IndexFlatIP`` (exact; ~3 ms per query at 10k × 512 on 2 cores); past it the index is rebuilt
  once as ``IndexHNSWFlat`` and ``efSearch`` is tuned on a sample for ``target_recall`` at k = 10
  (unless ``ef_search`` is fixed). It goes back to exact below half the threshold (at a compaction).
- **Ids through an id map.** FAISS holds int64 labels, assigned in insertion order; this class maps
  string ids to labels and back. An upsert of a known id gives it a new label and marks the old one dead.
- **Deletes through an id selector.** HNSW cannot remove points, so deleted labels stay in the graph and
  every search passes an ``IDSelectorBitmap`` of live (and filter-matching) labels. When more than a
  third of the labels are dead the index is rebuilt from the live vectors.
- **Filters** on metadata are evaluated with numpy over columns kept in memory (categories through
  posting lists, duration and date as arrays) into the same bitmap; the last few bitmaps are cached
  until the next write. Then the cheaper of two plans runs, by a cost model in distance computations:
  exact search over the matching vectors only (a filter keeping ≤ ``brute_force_max`` items or less
  than 5 % of them always is), or HNSW with the bitmap as a search-time selector and ``efSearch`` raised to
  ``ef · (1/selectivity)^filter_exponent_``, because a graph search with a selector walks through
  non-matching nodes too and finds fewer matching ones in the same beam. :meth:`tune` measures both
  the distances per unit of efSearch and the exponent (on a random filter keeping 10 %), so the
  choice follows the data; :meth:`plan` tells what a filter will run as.
- **Persistence**: each save writes a new generation folder (``index.faiss`` + ``meta.npz``); the
  ``state.json`` that names it is replaced atomically last, then older generations are removed, so a
  crash mid-save leaves the previous copy intact.
- **Concurrency**: a readers–writer lock; searches run in parallel, upserts/deletes wait for them.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import threading
import time
import uuid
import zipfile
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidlens.errors import MissingDependencyError
from vidlens.index.base import (
    INDEX_BACKENDS,
    ReadWriteLock,
    SearchHit,
    VectorIndex,
    VectorIndexError,
    as_matrix,
    check_upsert,
)
from vidlens.index.filters import MISSING_DATE, SearchFilter, normalize_metadata

log = logging.getLogger(__name__)

PIP_LINE = "pip install faiss-cpu"
EF_CANDIDATES = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)
MAX_EF = 4096
# A distance computed in a graph search costs about this many of one computed over a list of matching
# labels (measured at 1M × 512, one thread: 0.41–0.46 µs against 0.26–0.32 µs; BENCHMARKS-retrieval.md).
GRAPH_DISTANCE_COST = 1.4
DEFAULT_DISTANCES_PER_EF = 20.0  # until tune() measures it (HNSW, M=16, 512-d: 17–24 at efSearch 64)
FILTER_TUNING_SELECTIVITY = 0.1
# Below this share of the items a filter is searched exactly whatever the cost model says: efSearch for
# it would be extrapolated too far from the 10 % that tune() measured, and recall is not known there.
MIN_GRAPH_SELECTIVITY = 0.05
FILTER_CACHE_SIZE = 16
# An evaluated filter keeps the labels it matches up to this many (2 MiB): exact search then reads only
# their vectors; above it, exact search scans the bitmap (rarely chosen there: HNSW is cheaper).
LABELS_MAX = 1 << 18


@dataclass(frozen=True)
class _FilterBits:
    """An evaluated filter: how many live items pass, a bitmap selector over labels (None: all live items
    pass) and, when few pass, their labels."""

    matched: int
    bits: np.ndarray | None   # kept alive for the selector, which points into it
    sel: Any
    labels: np.ndarray | None


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise MissingDependencyError("the FAISS index backend", PIP_LINE) from None
    return faiss


@INDEX_BACKENDS.register("faiss")
class FaissIndex(VectorIndex):
    """Embedded FAISS index (exact below ``exact_threshold`` items, HNSW above).

    Args:
        dim: vector size.
        folder: where :meth:`save` writes.
        exact_threshold: live items up to which search is exact.
        hnsw_m: HNSW graph degree (memory per item ≈ 4·dim + 8·hnsw_m bytes).
        ef_construction: HNSW build beam width.
        ef_search: HNSW query beam width; None tunes it for ``target_recall`` when HNSW is built.
        target_recall: recall@10 against exact search that tuning aims for.
        brute_force_max: a filter matching at most this many items is searched exactly.
    """

    backend_name = "faiss"

    def __init__(self, dim: int, folder: str | os.PathLike | None = None, exact_threshold: int = 20_000,
                 hnsw_m: int = 16, ef_construction: int = 40, ef_search: int | None = None,
                 target_recall: float = 0.95, brute_force_max: int = 2_000):
        super().__init__(dim, folder)
        self.exact_threshold = int(exact_threshold)
        self.hnsw_m = int(hnsw_m)
        self.ef_construction = int(ef_construction)
        self.ef_search = ef_search
        self.target_recall = float(target_recall)
        self.brute_force_max = int(brute_force_max)
        self._faiss = _faiss()
        self._lock = ReadWriteLock()
        self._filter_cache: OrderedDict[SearchFilter | None, _FilterBits] = OrderedDict()
        self._filter_cache_lock = threading.Lock()
        self.tuned_ef_: int | None = None
        self.tuning_: dict[str, Any] = {}
        self._reset(hnsw=False)

    # -- internal state -----------------------------------------------------------------------------
    def _reset(self, hnsw: bool) -> None:
        faiss = self._faiss
        if hnsw:
            index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
        else:
            index = faiss.IndexFlatIP(self.dim)
        self._index = index
        self._hnsw = hnsw
        self._ids: list[str | None] = []           # label -> id (None once dead)
        self._label_of: dict[str, int] = {}        # id -> live label
        self._alive = np.zeros(0, bool)
        self._duration = np.zeros(0, np.float32)
        self._date = np.zeros(0, np.int64)
        self._cat_vocab: dict[str, int] = {}
        self._postings: list[array] = []           # category code -> labels having it
        self._dead = 0
        self._filter_cache.clear()

    @property
    def _n(self) -> int:
        return len(self._ids)

    def _grow(self, n_new: int) -> None:
        need = self._n + n_new
        if need <= len(self._alive):
            return
        cap = max(need, int(len(self._alive) * 1.5) + 1024)
        for name, fill in (("_alive", False), ("_duration", np.nan), ("_date", MISSING_DATE)):
            old = getattr(self, name)
            new = np.full(cap, fill, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def _storage_view(self) -> np.ndarray:
        """The stored vectors, (n, dim), without copying (valid until the next add)."""
        faiss = self._faiss
        flat = faiss.downcast_index(self._index.storage) if self._hnsw else self._index
        n = flat.ntotal
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        return faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)

    def _flat(self) -> Any:
        return self._faiss.downcast_index(self._index.storage) if self._hnsw else self._index

    # -- writing ------------------------------------------------------------------------------------
    def upsert(self, ids: Sequence[str], vectors: Any,
               metadata: Sequence[Mapping[str, Any] | None] | None = None) -> int:
        ids, x = check_upsert(ids, vectors, metadata, self.dim)
        last = {item: pos for pos, item in enumerate(ids)}  # a later duplicate wins
        keep = sorted(last.values())
        if not keep:
            return 0
        ids = [ids[p] for p in keep]
        x = np.ascontiguousarray(x[keep])
        metas = [normalize_metadata(metadata[p] if metadata is not None else None) for p in keep]
        with self._lock.write():
            for item in ids:
                old = self._label_of.pop(item, None)
                if old is not None:
                    self._kill(old)
            self._grow(len(ids))
            start = self._n
            self._index.add(x)
            for offset, (item, meta) in enumerate(zip(ids, metas, strict=True)):
                label = start + offset
                self._ids.append(item)
                self._label_of[item] = label
                self._alive[label] = True
                self._duration[label] = meta["duration"]
                self._date[label] = meta["date"]
                for cat in meta["categories"]:
                    code = self._cat_vocab.setdefault(cat, len(self._cat_vocab))
                    if code == len(self._postings):
                        self._postings.append(array("q"))
                    self._postings[code].append(label)
            self._filter_cache.clear()
            self._maybe_rebuild()
        return len(ids)

    def _kill(self, label: int) -> None:
        self._alive[label] = False
        self._ids[label] = None
        self._dead += 1

    def delete(self, ids: Iterable[str]) -> int:
        removed = 0
        with self._lock.write():
            for item in ids:
                label = self._label_of.pop(str(item), None)
                if label is not None:
                    self._kill(label)
                    removed += 1
            if removed:
                self._filter_cache.clear()
                self._maybe_rebuild()
        return removed

    def _maybe_rebuild(self) -> None:
        live = len(self._label_of)
        if not self._hnsw and live > self.exact_threshold:
            self._rebuild(hnsw=True)
        elif self._hnsw and live < self.exact_threshold // 2:
            self._rebuild(hnsw=False)
        elif self._dead > max(1024, self._n // 3):
            self._rebuild(hnsw=self._hnsw)

    def _rebuild(self, hnsw: bool) -> None:
        """Re-add the live items into a fresh index (dropping dead labels); caller holds the write lock."""
        t0 = time.perf_counter()
        labels = np.flatnonzero(self._alive[: self._n])
        x = np.ascontiguousarray(self._storage_view()[labels]) if len(labels) else np.zeros((0, self.dim),
                                                                                             np.float32)
        ids = [self._ids[i] for i in labels]
        duration, date = self._duration[labels].copy(), self._date[labels].copy()
        new_label = np.full(self._n, -1, np.int64)
        new_label[labels] = np.arange(len(labels))
        postings = [_renumber(p, new_label) for p in self._postings]
        vocab = self._cat_vocab
        self._reset(hnsw=hnsw)
        self._grow(len(labels))
        if len(labels):
            self._index.add(x)
        self._ids = ids
        self._label_of = {item: i for i, item in enumerate(ids)}
        self._alive[: len(labels)] = True
        self._duration[: len(labels)] = duration
        self._date[: len(labels)] = date
        self._cat_vocab, self._postings = vocab, postings
        log.info("FAISS index rebuilt as %s with %d items in %.1f s", "HNSW" if hnsw else "exact",
                 len(labels), time.perf_counter() - t0)
        if hnsw and self.ef_search is None:
            self._tune()

    def compact(self) -> None:
        """Drop dead labels now (otherwise done automatically when a third of the labels are dead)."""
        with self._lock.write():
            if self._dead:
                self._rebuild(hnsw=self._hnsw)

    # -- efSearch tuning ----------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """``"exact"`` or ``"hnsw"``."""
        return "hnsw" if self._hnsw else "exact"

    @property
    def ef(self) -> int:
        """The efSearch in use (fixed, tuned, or FAISS's default 16 before tuning)."""
        return int(self.ef_search or self.tuned_ef_ or 16)

    def tune(self, queries: Any = None, k: int = 10, sample: int = 200, seed: int = 0,
             safety: float | None = None) -> dict[str, Any]:
        """Pick the smallest efSearch whose recall@k against exact search reaches ``target_recall``,
        then measure what filtered searches need (see the module docstring).

        Args:
            queries: query vectors to tune on. Default: ``sample`` stored vectors, each moved in a random
                direction by its distance to its k-th neighbour, so that queries are as far from the
                data as real ones tend to be (tuning on the stored vectors themselves is optimistic).
            k: result size the recall is measured at.
            sample: number of synthetic queries when ``queries`` is None.
            seed: random seed of the synthetic queries and of the tuning filter.
            safety: the efSearch kept is this multiple of the one that reached the target (default 2 on
                synthetic queries, whose distribution only approximates real ones; 1 on given queries).

        Returns:
            ``{"ef_search", "recall", "reached_at", "curve": {ef: recall}, "distances_per_ef",
            "filter_exponent", "filter_curve": {ef: recall}}``; also kept as ``tuning_``.
        """
        with self._lock.read():
            return self._tune(queries, k, sample, seed, safety)

    def _tune(self, queries: Any = None, k: int = 10, sample: int = 200, seed: int = 0,
              safety: float | None = None) -> dict[str, Any]:
        if not self._hnsw:
            return {"ef_search": None, "recall": 1.0, "curve": {}}
        faiss = self._faiss
        xb = self._storage_view()
        alive = self._alive[: self._n]
        live = np.flatnonzero(alive)
        rng = np.random.default_rng(seed)
        if queries is None:
            own = rng.choice(live, size=min(sample, len(live)), replace=False)
            base = np.ascontiguousarray(xb[own])
            near = _exact_topk(base, xb, live, k + 1)
            kth = xb[near[:, -1]]
            radius = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * np.sum(base * kth, axis=1)))[:, None]
            step = rng.normal(size=base.shape).astype(np.float32)
            step /= np.linalg.norm(step, axis=1, keepdims=True)
            q = as_matrix(base + radius * step, self.dim)
        else:
            q = as_matrix(queries, self.dim)

        def sweep(mask: np.ndarray | None, truth: np.ndarray, candidates: Sequence[int]) -> dict[int, float]:
            curve: dict[int, float] = {}
            bits = np.packbits(mask, bitorder="little") if mask is not None else None
            for ef in candidates:
                params = faiss.SearchParametersHNSW(efSearch=max(ef, k))
                if bits is not None:
                    params.sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
                _, got = self._index.search(q, k, params=params)
                curve[ef] = _recall(truth, got)
                if curve[ef] >= self.target_recall:
                    break
            return curve

        curve = sweep(alive if self._dead else None, _exact_topk(q, xb, live, k), EF_CANDIDATES)
        reached = next((ef for ef, r in curve.items() if r >= self.target_recall), EF_CANDIDATES[-1])
        factor = safety if safety is not None else (2.0 if queries is None else 1.0)
        chosen = next((ef for ef in EF_CANDIDATES if ef >= factor * reached), EF_CANDIDATES[-1])

        # distance computations per query and unit of efSearch, for the exact-or-graph choice of filters
        stats = faiss.cvar.hnsw_stats
        stats.reset()
        self._index.search(q, k, params=faiss.SearchParametersHNSW(efSearch=chosen))
        distances_per_ef = max(1.0, stats.ndis / max(1, len(q)) / chosen)

        # efSearch a filter keeping 10 % needs, as an exponent of 1/selectivity (1: proportional)
        keep = alive & (rng.random(len(alive)) < FILTER_TUNING_SELECTIVITY)
        selectivity = max(1, int(np.count_nonzero(keep))) / max(1, len(live))
        filter_curve = sweep(keep, _exact_topk(q, xb, np.flatnonzero(keep), k),
                             [ef for ef in EF_CANDIDATES if ef >= reached])
        got_to = next((ef for ef, r in filter_curve.items() if r >= self.target_recall), None)
        exponent = 1.0 if got_to is None else float(np.clip(math.log(got_to / reached) / -math.log(selectivity),
                                                            0.25, 1.0))
        self.tuned_ef_ = chosen
        self.tuning_ = {"ef_search": chosen, "recall": curve[reached] if reached in curve else max(curve.values()),
                        "reached_at": reached, "curve": curve, "distances_per_ef": round(distances_per_ef, 2),
                        "filter_exponent": round(exponent, 3), "filter_curve": filter_curve}
        log.info("HNSW efSearch tuned to %d (recall@%d %.3f at %d on %d queries); a 10%% filter needs efSearch "
                 "%s (exponent %.2f)", chosen, k, self.tuning_["recall"], reached, len(q), got_to, exponent)
        if self.tuning_["recall"] < self.target_recall:
            log.warning("HNSW recall@%d reaches only %.3f at efSearch %d (target %.2f): the graph, not the search, "
                        "is the limit; rebuild with a larger ef_construction or hnsw_m", k, self.tuning_["recall"],
                        reached, self.target_recall)
        return self.tuning_

    # -- reading ------------------------------------------------------------------------------------
    @property
    def filter_exponent_(self) -> float:
        """How efSearch grows with 1/selectivity under a filter (tuned; 1.0 until then)."""
        return float(self.tuning_.get("filter_exponent") or 1.0)

    @property
    def distances_per_ef_(self) -> float:
        """Distance computations of one HNSW query per unit of efSearch (tuned; a typical value until then)."""
        return float(self.tuning_.get("distances_per_ef") or DEFAULT_DISTANCES_PER_EF)

    def _filter_mask(self, flt: SearchFilter | None) -> np.ndarray | None:
        """Bool mask over labels of live items passing ``flt``; None when everything live passes."""
        n = self._n
        if (flt is None or flt.empty) and not self._dead:
            return None
        mask = self._alive[:n].copy()
        if flt is None or flt.empty:
            return mask
        if flt.categories:
            cat = np.zeros(n, bool)
            for name in flt.categories:
                code = self._cat_vocab.get(name)
                if code is not None and len(self._postings[code]):
                    cat[np.frombuffer(self._postings[code], np.int64)] = True
            mask &= cat
        dur = self._duration[:n]
        if flt.min_duration is not None:
            mask &= dur >= flt.min_duration
        if flt.max_duration is not None:
            mask &= dur <= flt.max_duration
        date = self._date[:n]
        if flt.date_from is not None:
            mask &= date >= flt.date_from
        if flt.date_to is not None:
            mask &= (date <= flt.date_to) & (date != MISSING_DATE)
        return mask

    def _filter_bits(self, flt: SearchFilter | None) -> _FilterBits:
        """The items ``flt`` keeps, as a bitmap selector (and labels when few); cached until the next write.
        Caller holds the read (or write) lock."""
        key = None if flt is None or flt.empty else flt
        with self._filter_cache_lock:
            hit = self._filter_cache.get(key)
            if hit is not None:
                self._filter_cache.move_to_end(key)
                return hit
        mask = self._filter_mask(key)
        if mask is None:
            entry = _FilterBits(len(self._label_of), None, None, None)
        else:
            matched = int(np.count_nonzero(mask))
            bits = np.packbits(mask, bitorder="little")
            sel = self._faiss.IDSelectorBitmap(len(mask), self._faiss.swig_ptr(bits))
            labels = np.flatnonzero(mask) if matched <= LABELS_MAX else None
            entry = _FilterBits(matched, bits, sel, labels)
        with self._filter_cache_lock:
            self._filter_cache[key] = entry
            while len(self._filter_cache) > FILTER_CACHE_SIZE:
                self._filter_cache.popitem(last=False)
        return entry

    def clear_filter_cache(self) -> None:
        """Forget the evaluated filters (they are also forgotten at every write)."""
        with self._filter_cache_lock:
            self._filter_cache.clear()

    def _choose(self, bits: _FilterBits, k: int) -> tuple[str, int | None]:
        """``("hnsw" | "hnsw+filter" | "exact", efSearch)`` for a filter matching ``bits.matched`` items."""
        if not self._hnsw:
            return "exact", None
        if bits.sel is None:
            return "hnsw", max(self.ef, k)
        selectivity = bits.matched / max(1, self._n)
        ef = min(MAX_EF, max(k, math.ceil(self.ef * selectivity ** -self.filter_exponent_)))
        graph_cost = GRAPH_DISTANCE_COST * self.distances_per_ef_ * ef
        if bits.matched <= max(self.brute_force_max, graph_cost) or selectivity < MIN_GRAPH_SELECTIVITY:
            return "exact", None
        return "hnsw+filter", ef

    def plan(self, filter: SearchFilter | None = None, k: int = 10) -> dict[str, Any]:
        """How a search with ``filter`` would run: items matched, strategy and efSearch.

        Returns:
            ``{"matched", "items", "strategy": "hnsw" | "hnsw+filter" | "exact", "ef_search"}``.
        """
        with self._lock.read():
            bits = self._filter_bits(filter)
            strategy, ef = self._choose(bits, k)
            return {"matched": bits.matched, "items": len(self._label_of), "strategy": strategy, "ef_search": ef}

    def search(self, queries: Any, k: int = 10, filter: SearchFilter | None = None) -> list[list[SearchHit]]:
        q = as_matrix(queries, self.dim, what="queries")
        if int(k) <= 0:
            raise VectorIndexError(f"k must be positive, got {k}")
        faiss = self._faiss
        with self._lock.read():
            if not self._label_of or len(q) == 0:
                return [[] for _ in range(len(q))]
            bits = self._filter_bits(filter)
            if bits.matched == 0:
                return [[] for _ in range(len(q))]
            kk = min(int(k), bits.matched)
            strategy, ef = self._choose(bits, kk)
            if strategy == "exact" and bits.labels is not None:
                scores, labels = _subset_topk(faiss, q, self._storage_view(), bits.labels, kk)
            elif strategy == "exact":
                params = faiss.SearchParameters(sel=bits.sel) if bits.sel is not None else None
                scores, labels = self._flat().search(q, kk, params=params)
            else:
                params = faiss.SearchParametersHNSW(efSearch=ef)
                if bits.sel is not None:
                    params.sel = bits.sel
                scores, labels = self._index.search(q, kk, params=params)
            out = []
            for row_s, row_l in zip(scores.tolist(), labels.tolist(), strict=True):
                hits = []
                for s, label in zip(row_s, row_l, strict=True):
                    if label < 0:
                        continue
                    item = self._ids[label]
                    if item is not None:
                        hits.append(SearchHit(item, s))
                out.append(hits)
            return out

    def ids(self) -> list[str]:
        with self._lock.read():
            return sorted(self._label_of)

    def __len__(self) -> int:
        return len(self._label_of)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._label_of

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        with self._lock.read():
            try:
                labels = [self._label_of[i] for i in ids]
            except KeyError as exc:
                raise VectorIndexError(f"no item {exc.args[0]!r} in the index") from None
            return np.array(self._storage_view()[labels], np.float32).reshape(len(labels), self.dim)

    def metadata(self, item_id: str) -> dict[str, Any]:
        """The stored metadata of one item (categories, duration, date as epoch seconds or None)."""
        with self._lock.read():
            label = self._label_of[item_id]
            cats = [c for c, code in self._cat_vocab.items()
                    if label in set(np.frombuffer(self._postings[code], np.int64).tolist())]
            date = int(self._date[label])
            return {"categories": cats, "duration": float(self._duration[label]),
                    "date": None if date == MISSING_DATE else date}

    def stats(self) -> dict[str, Any]:
        """Mode, counts, efSearch and approximate memory."""
        with self._lock.read():
            bytes_vectors = self._index.ntotal * self.dim * 4
            graph = self._index.ntotal * self.hnsw_m * 2 * 4 if self._hnsw else 0
            return {"backend": "faiss", "mode": self.mode, "items": len(self._label_of), "dead": self._dead,
                    "ef_search": self.ef if self._hnsw else None, "tuning": self.tuning_,
                    "approx_bytes": bytes_vectors + graph}

    # -- persistence --------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return {"exact_threshold": self.exact_threshold, "hnsw_m": self.hnsw_m,
                "ef_construction": self.ef_construction, "ef_search": self.ef_search,
                "target_recall": self.target_recall, "brute_force_max": self.brute_force_max}

    def _save_files(self, folder: Path) -> dict[str, Any]:
        faiss = self._faiss
        gen = f"gen-{time.time_ns():020d}-{uuid.uuid4().hex[:6]}"
        target = folder / gen
        target.mkdir(parents=True)
        with self._lock.read():
            n = self._n
            faiss.write_index(self._index, str(target / "index.faiss"))
            ids = np.array(["" if i is None else i for i in self._ids], dtype=str)
            indptr = np.zeros(len(self._postings) + 1, np.int64)
            indptr[1:] = np.cumsum([len(p) for p in self._postings])
            indices = (np.concatenate([np.frombuffer(p, np.int64) for p in self._postings])
                       if self._postings else np.zeros(0, np.int64))
            with open(target / "meta.npz", "wb") as fh:
                np.savez(fh, ids=ids, alive=self._alive[:n], duration=self._duration[:n], date=self._date[:n],
                         cat_names=np.array(list(self._cat_vocab), dtype=str), cat_indptr=indptr,
                         cat_indices=indices)
                fh.flush()
                os.fsync(fh.fileno())
            files = {"generation": gen, "mode": self.mode, "labels": n, "tuned_ef": self.tuned_ef_,
                     "tuning": {key: self.tuning_.get(key) for key in
                                ("ef_search", "recall", "distances_per_ef", "filter_exponent")},
                     "checksums": {name: _file_checksum(target / name) for name in ("index.faiss", "meta.npz")}}
        return files

    def _after_save(self, folder: Path, files: dict[str, Any]) -> None:
        for old in folder.glob("gen-*"):
            if old.name != files["generation"] and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def _load_files(cls, folder: Path, state: dict[str, Any]) -> FaissIndex:
        files = state.get("files") or {}
        gen = folder / str(files.get("generation", ""))
        index_file, meta_file = gen / "index.faiss", gen / "meta.npz"
        for path in (index_file, meta_file):
            if not path.is_file():
                raise VectorIndexError(f"index file {path} is missing")
            # Size and CRC-32 recorded at save time: a flipped byte inside the vectors reads without error.
            expected = (files.get("checksums") or {}).get(path.name)
            if expected is not None and _file_checksum(path) != expected:
                raise VectorIndexError(f"index file {path} is damaged (its size or checksum differs from when it "
                                       "was saved)")
        self = cls(int(state["dim"]), folder, **state.get("params", {}))
        faiss = self._faiss
        try:
            index = faiss.read_index(str(index_file))
            with np.load(meta_file, allow_pickle=False) as meta:
                ids = meta["ids"].tolist()
                alive = meta["alive"]
                duration, date = meta["duration"], meta["date"]
                names = meta["cat_names"].tolist()
                indptr, indices = meta["cat_indptr"], meta["cat_indices"]
        except (RuntimeError, OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise VectorIndexError(f"index files in {gen} are damaged ({exc})") from None
        if index.ntotal != len(ids) or index.d != self.dim:
            raise VectorIndexError(f"index files in {gen} disagree ({index.ntotal} vectors, {len(ids)} ids)")
        self._hnsw = files.get("mode") == "hnsw"
        self._index = index
        self._grow(len(ids))
        self._ids = [i if a else None for i, a in zip(ids, alive.tolist(), strict=True)]
        self._label_of = {i: label for label, i in enumerate(self._ids) if i is not None}
        self._alive[: len(ids)] = alive
        self._duration[: len(ids)] = duration
        self._date[: len(ids)] = date
        self._dead = int(len(ids) - alive.sum())
        self._cat_vocab = {name: code for code, name in enumerate(names)}
        self._postings = [array("q", indices[indptr[c]:indptr[c + 1]].tolist()) for c in range(len(names))]
        self.tuned_ef_ = files.get("tuned_ef")
        self.tuning_ = dict(files.get("tuning") or {})
        return self


def _file_checksum(path: Path) -> dict[str, int]:
    """Size and CRC-32 of a file (read in 16 MB pieces; about 0.6 s per GB here)."""
    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return {"bytes": path.stat().st_size, "crc32": crc}


def _renumber(postings: array, new_label: np.ndarray) -> array:
    """A category's posting list after a rebuild: old labels mapped to new ones, dead ones dropped."""
    out = array("q")
    if len(postings):
        mapped = new_label[np.frombuffer(postings, np.int64)]
        out.frombytes(mapped[mapped >= 0].astype(np.int64).tobytes())
    return out


def _recall(truth: np.ndarray, got: np.ndarray) -> float:
    """Share of the exact top-k labels found, over all queries."""
    hits = sum(len(set(t.tolist()) & set(g.tolist())) for t, g in zip(truth, got, strict=True))
    return hits / max(1, truth.size)


def _subset_topk(faiss: Any, q: np.ndarray, xb: np.ndarray, labels: np.ndarray, k: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k among ``labels`` (sorted), reading only their vectors: (scores, labels), best first.

    FAISS's SIMD loop over the subset, one thread per query: no copy of the vectors, and no BLAS call
    (a multi-threaded BLAS answering a single query is slower than one thread on a busy machine).
    """
    q = np.ascontiguousarray(q, np.float32)
    subset = np.ascontiguousarray(labels, np.int64)
    scores = np.empty((len(q), k), np.float32)
    found = np.empty((len(q), k), np.int64)
    faiss.knn_inner_products_by_idx(faiss.swig_ptr(q), faiss.swig_ptr(xb), faiss.swig_ptr(subset), q.shape[1],
                                    len(q), len(xb), len(subset), k, faiss.swig_ptr(scores), faiss.swig_ptr(found),
                                    0)  # leading dimension 0: every query reads the same subset
    return scores, found


def _exact_topk(q: np.ndarray, xb: np.ndarray, live: np.ndarray, k: int, chunk: int = 65_536) -> np.ndarray:
    """Exact top-k labels (among ``live``) for each query, by chunked matrix products."""
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_l = np.zeros((len(q), 0), np.int64)
    for start in range(0, len(live), chunk):
        labels = live[start:start + chunk]
        s = q @ xb[labels].T
        s = np.concatenate([best_s, s], axis=1)
        lab = np.concatenate([best_l, np.broadcast_to(labels, (len(q), len(labels)))], axis=1)
        top = np.argpartition(-s, min(k, s.shape[1] - 1), axis=1)[:, :k] if s.shape[1] > k else \
            np.argsort(-s, axis=1)
        best_s = np.take_along_axis(s, top, axis=1)
        best_l = np.take_along_axis(lab, top, axis=1)
    order = np.argsort(-best_s, axis=1)
    return np.take_along_axis(best_l, order, axis=1)
