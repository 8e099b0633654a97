"""Vector index: build time, top-10 latency with and without a filter, recall@10 against exact, memory.

Usage:
    .venv/bin/python benchmarks/bench_index.py --n 1000000 --real 10000 \
        [--index-cache benchmarks/out/index-1m] [--build-only] [--milvus-n 100000]

Data: ``--n`` random unit 512-d vectors (Gaussian, the hard case for graph indexes: every point is
about equally far from every other) plus ``--real`` "real-shaped" ones: multilingual-USE vectors of
real Chinese headlines (NLPCC 2017, ../shared/data), cached under benchmarks/out. Queries: held-out
headlines (real-shaped; a separate set tunes efSearch) and fresh random vectors. Every item gets
metadata (one category of 10, a duration of 1–300 s, a date over one year); the filtered runs use
``category=c3`` (≈ 10 % of the items) and ``duration=60..150`` (≈ 30 %).

Side by side on the same queries, one query per call (batch 1):

- exact search: numpy (one matrix-vector product over all vectors, the mask applied to the scores)
  and FAISS flat (the HNSW index's own vector storage, filters through a bitmap selector);
- an efSearch sweep of the raw HNSW graph, unfiltered and with each filter as a bitmap selector, with
  recall@10 against exact (filtered) search and the distance computations per query;
- the vidlens FAISS backend as a library user gets it (efSearch tuned on the tuning queries, the
  backend choosing per filter between HNSW with a selector and exact search over the matches).

Latency: single queries on one thread (HNSW does not split one query across threads); the exact
baselines may use both cores. The HNSW build uses ``--threads`` OpenMP threads. The built index can
be kept in ``--index-cache`` and is loaded from there by later runs (the data are regenerated from
fixed seeds and checked against what the index was built from).

``--milvus-n N`` instead runs the Milvus Lite backend on the last N items (all real-shaped ones
first), with the same queries, and the FAISS backend on the same items for the ratio.

``--library N`` instead times ``vidlens.retrieval.search`` on a library of N synthetic videos (titles
embedded by the lexical ``hashed_ngrams`` encoder, written straight into the library): reopening the
index for every query (what ``search`` did before it kept the index open with the library) against
the index kept open, plus what building the default ``muse_v3`` query encoder costs.

Results go to benchmarks/out/bench_index-<n>.json (or bench_index-milvus-<N>.json) and a markdown
table on stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from vidlens.index import FaissIndex, create_index, load_index, parse_filter

OUT = Path(__file__).resolve().parent / "out"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DIM = 512
N_CAT = 10
T0 = 1_717_200_000  # 2024-06-01
FILTERS = {"none": None, "category=c3": "category=c3", "duration=60..150": "duration=60..150"}
SWEEP = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 4096)


def rss_gib() -> float:
    return psutil.Process().memory_info().rss / 2**30


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def real_vectors(n: int, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """USE vectors of ``n`` headlines and of ``n_queries`` other headlines (cached)."""
    cache = OUT / f"muse_nlpcc_{n}_{n_queries}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return z["docs"], z["queries"]
    from vidlens.encoders import create_encoder

    path = DATA / "text" / "nlpcc2017_headlines.jsonl"
    if not path.exists():
        sys.exit(f"needs {path} (../shared/data)")
    titles = [json.loads(line)["title"] for line in path.open(encoding="utf-8")]
    if len(titles) < n + n_queries:
        sys.exit(f"only {len(titles)} headlines; ask for fewer")
    enc = create_encoder("muse_v3")
    t0 = time.perf_counter()
    docs = enc.encode_batch(titles[:n])
    queries = enc.encode_batch(titles[n:n + n_queries])
    print(f"encoded {n + n_queries} headlines in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(cache, docs=docs, queries=queries)
    return docs, queries


@dataclass
class Dataset:
    """Base vectors (random first, real-shaped last), their metadata columns, and the query sets."""

    xb: np.ndarray
    n_random: int
    cats: np.ndarray
    duration: np.ndarray
    date: np.ndarray
    real_q: np.ndarray
    tune_q: np.ndarray
    rand_q: np.ndarray

    @property
    def n(self) -> int:
        return len(self.xb)

    def ids(self, rows: np.ndarray) -> list[str]:
        return [f"r{i}" if i < self.n_random else f"t{i - self.n_random}" for i in rows.tolist()]

    def row(self, item_id: str) -> int:
        return int(item_id[1:]) + (self.n_random if item_id[0] == "t" else 0)

    def meta(self, rows: np.ndarray) -> list[dict[str, Any]]:
        return [{"categories": [f"c{c}"], "duration": float(d), "date": int(t)} for c, d, t in
                zip(self.cats[rows], self.duration[rows], self.date[rows], strict=True)]

    def insertion_order(self, order: str) -> np.ndarray:
        """Rows in the order they are added: ``shuffled`` (items arrive in no particular order) or
        ``random-first`` (all random vectors, then the real-shaped ones: the worst case, see the notes)."""
        if order == "random-first":
            return np.arange(self.n)
        return np.random.default_rng(3).permutation(self.n)

    def mask(self, name: str) -> np.ndarray | None:
        """The rows a named filter keeps, computed here from the raw columns (the reference)."""
        flt = parse_filter(FILTERS[name]) if FILTERS[name] else None
        if flt is None:
            return None
        keep = np.ones(self.n, bool)
        if flt.categories:
            keep &= np.isin(self.cats, [int(c[1:]) for c in flt.categories])
        if flt.min_duration is not None:
            keep &= self.duration >= flt.min_duration
        if flt.max_duration is not None:
            keep &= self.duration <= flt.max_duration
        return keep

    def fingerprint(self) -> dict[str, Any]:
        return {"n_random": self.n_random, "n": self.n, "checksum": float(self.xb[:: max(1, self.n // 997)].sum()),
                "seeds": [0, 1, 2]}


def make_dataset(n_random: int, n_real: int, queries: int, tune_queries: int) -> Dataset:
    """Fixed seeds: base vectors (0), metadata (1), random queries (2), so a cached index matches."""
    real, real_q_all = real_vectors(n_real, queries + tune_queries)
    xb = np.empty((n_random + n_real, DIM), np.float32)
    rng = np.random.default_rng(0)
    for start in range(0, n_random, 100_000):
        m = min(100_000, n_random - start)
        xb[start:start + m] = unit(rng.standard_normal((m, DIM), dtype=np.float32))
    xb[n_random:] = real
    n = len(xb)
    rng = np.random.default_rng(1)
    cats = rng.integers(0, N_CAT, n)
    duration = rng.uniform(1, 300, n).round(1)
    date = T0 + rng.integers(0, 365 * 86_400, n)
    rand_q = unit(np.random.default_rng(2).standard_normal((queries, DIM), dtype=np.float32))
    return Dataset(xb, n_random, cats, duration, date, real_q=real_q_all[tune_queries:],
                   tune_q=real_q_all[:tune_queries], rand_q=rand_q)


def exact_topk(xb: np.ndarray, q: np.ndarray, k: int, mask: np.ndarray | None = None,
               chunk: int = 100_000) -> np.ndarray:
    """Exact top-k row numbers by chunked matrix products (the ground truth)."""
    best_s = np.full((len(q), k), -np.inf, np.float32)
    best_i = np.full((len(q), k), -1, np.int64)
    for start in range(0, len(xb), chunk):
        s = q @ xb[start:start + chunk].T
        if mask is not None:
            s[:, ~mask[start:start + chunk]] = -np.inf
        idx = np.argpartition(-s, k, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, idx, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, idx + start], axis=1)
        top = np.argpartition(-cand_s, k, axis=1)[:, :k]
        best_s = np.take_along_axis(cand_s, top, axis=1)
        best_i = np.take_along_axis(cand_i, top, axis=1)
    order = np.argsort(-best_s, axis=1)
    return np.take_along_axis(best_i, order, axis=1)


def numpy_single(xb: np.ndarray, q: np.ndarray, mask: np.ndarray | None, k: int = 10) -> np.ndarray:
    """The numpy baseline for one query: one matrix-vector product, the mask on the scores, top-k."""
    s = xb @ q
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    top = np.argpartition(-s, k)[:k]
    return top[np.argsort(-s[top])]


def recall(truth: np.ndarray, got: list[list[int]], k: int = 10) -> float:
    return float(np.mean([len(set(t[:k].tolist()) & set(g[:k])) / k for t, g in zip(truth, got, strict=True)]))


def timed(fn: Callable[[np.ndarray], Any], queries: np.ndarray) -> tuple[list[float], list[Any]]:
    fn(queries[0])  # warm-up (first-touch of pages, caches)
    times, outs = [], []
    for q in queries:
        t = time.perf_counter()
        outs.append(fn(q))
        times.append((time.perf_counter() - t) * 1000)
    return times, outs


def latency(times: list[float]) -> dict[str, float]:
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
            "mean_ms": float(np.mean(times))}


def build_or_load(ds: Dataset, args: argparse.Namespace) -> tuple[FaissIndex, dict[str, Any]]:
    """The FAISS backend over the dataset: loaded from ``--index-cache`` when it matches, else built."""
    cache = Path(args.index_cache) if args.index_cache else None
    params = {"hnsw_m": args.hnsw_m, "ef_construction": args.ef_construction, "order": args.order}
    if cache is not None and (cache / "state.json").exists():
        t = time.perf_counter()
        rss0 = rss_gib()
        index = load_index(cache)
        if index.info.get("data") == ds.fingerprint() and index.info.get("params") == params:
            facts = dict(index.info["build"], load_s=time.perf_counter() - t, rss_gib_added_by_load=rss_gib() - rss0)
            print(f"loaded the index from {cache} in {facts['load_s']:.0f} s", file=sys.stderr)
            return index, facts
        print(f"{cache} holds an index of other data or parameters; building again", file=sys.stderr)
        index.close()
        del index
        gc.collect()
    rss0 = rss_gib()
    t = time.perf_counter()
    # efSearch fixed while building (tuning at every step would cost); tuned on held-out queries later
    index = FaissIndex(DIM, exact_threshold=20_000, ef_search=64, hnsw_m=args.hnsw_m,
                       ef_construction=args.ef_construction)
    order = ds.insertion_order(args.order)
    step = 50_000
    for start in range(0, ds.n, step):
        rows = order[start:start + step]
        index.upsert(ds.ids(rows), ds.xb[rows], ds.meta(rows))
        print(f"  built {start + len(rows)}/{ds.n} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    facts = {"build_s": time.perf_counter() - t, "rss_gib_added_by_build": rss_gib() - rss0,
             "threads": args.threads, "load_avg_at_build": os.getloadavg()}
    if cache is not None:
        index.info = {"data": ds.fingerprint(), "params": params, "build": facts}
        t = time.perf_counter()
        index.save(cache)
        facts["save_s"] = time.perf_counter() - t
    return index, facts


def label_rows(ds: Dataset, index: FaissIndex) -> np.ndarray:
    """The dataset row of each FAISS label (labels follow the insertion order)."""
    return np.array([ds.row(item) for item in index._ids], np.int64)


def exact_baselines(ds: Dataset, index: FaissIndex, label_row: np.ndarray, masks: dict[str, np.ndarray | None],
                    n_single: int) -> list[dict[str, Any]]:
    """Exact search over all items: numpy and FAISS flat (the HNSW's own storage), batch 1 and batched."""
    import faiss

    flat = faiss.downcast_index(index._index.storage) if index.mode == "hnsw" else index._index
    rows = []
    q = ds.real_q[:n_single]
    for fname, mask in masks.items():
        times, _ = timed(lambda v, mask=mask: numpy_single(ds.xb, v, mask), q)
        t = time.perf_counter()
        exact_topk(ds.xb, ds.real_q, 10, mask)
        rows.append({"engine": "numpy exact", "filter": fname, **latency(times), "recall@10": 1.0,
                     "batched_ms_per_query": (time.perf_counter() - t) * 1000 / len(ds.real_q)})
        params = None
        if mask is not None:
            bits = np.packbits(mask[label_row], bitorder="little")  # the graph's labels are in insertion order
            params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits)))
        times, _ = timed(lambda v, p=params: flat.search(v[None], 10, params=p), q)
        t = time.perf_counter()
        flat.search(ds.real_q, 10, params=params)
        rows.append({"engine": "faiss flat exact", "filter": fname, **latency(times), "recall@10": 1.0,
                     "batched_ms_per_query": (time.perf_counter() - t) * 1000 / len(ds.real_q)})
        for r in rows[-2:]:
            print(r, file=sys.stderr)
    return rows


def ef_sweep(ds: Dataset, index: FaissIndex, label_row: np.ndarray, masks: dict[str, np.ndarray | None],
             truth: dict[tuple[str, str], np.ndarray], efs: tuple[int, ...], max_ms: float) -> list[dict[str, Any]]:
    """Recall@10, latency and distance computations of the raw HNSW graph per efSearch and filter."""
    import faiss

    rows = []
    for kind, queries in (("real", ds.real_q), ("random", ds.rand_q)):
        for fname, mask in masks.items():
            bits = sel = None
            if mask is not None:
                bits = np.packbits(mask[label_row], bitorder="little")  # over labels (insertion order)
                sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
            for ef in efs:
                params = faiss.SearchParametersHNSW(efSearch=ef)
                if sel is not None:
                    params.sel = sel
                faiss.cvar.hnsw_stats.reset()
                times, outs = timed(lambda v, p=params: label_row[index._index.search(v[None], 10, params=p)[1][0]],
                                    queries)
                ndis = faiss.cvar.hnsw_stats.ndis / (len(queries) + 1)
                row = {"queries": kind, "filter": fname, "ef_search": ef, **latency(times),
                       "recall@10": recall(truth[(kind, fname)], [o.tolist() for o in outs]), "ndis": ndis}
                rows.append(row)
                print(row, file=sys.stderr)
                if row["recall@10"] >= 0.995 or row["p50_ms"] > max_ms:
                    break
            del bits
    return rows


def vidlens_rows(ds: Dataset, index: FaissIndex, truth: dict[tuple[str, str], np.ndarray]) -> list[dict[str, Any]]:
    """The backend as a library user calls it: ``index.search(q, 10, filter)`` one query at a time."""
    import faiss

    rows = []
    for kind, queries in (("real", ds.real_q), ("random", ds.rand_q)):
        for fname, spec in FILTERS.items():
            flt = parse_filter(spec) if spec else None
            plan = index.plan(flt)
            index.clear_filter_cache()
            t = time.perf_counter()
            index.plan(flt)
            cold_ms = (time.perf_counter() - t) * 1000  # evaluating the filter into a bitmap, once per filter
            times, outs = timed(lambda v, flt=flt: index.search(v[None], 10, flt)[0], queries)
            got = [[ds.row(h.id) for h in hits] for hits in outs]
            faiss.omp_set_num_threads(2)
            t = time.perf_counter()
            index.search(queries, 10, flt)
            batched = (time.perf_counter() - t) * 1000 / len(queries)
            faiss.omp_set_num_threads(1)
            rows.append({"engine": f"vidlens faiss ({plan['strategy']}, ef={plan.get('ef_search')})", "queries": kind,
                         "filter": fname, **latency(times), "batched_ms_per_query": batched,
                         "recall@10": recall(truth[(kind, fname)], got), "plan": plan, "filter_eval_ms": cold_ms})
            print(rows[-1], file=sys.stderr)
            if flt is not None and kind == "real":
                # the other plan, forced: exact search over the matching vectors only
                from vidlens.index.faiss_index import _subset_topk

                labels = index._filter_bits(flt).labels
                if labels is None:  # more matches than an evaluated filter keeps labels for
                    labels = np.flatnonzero(index._filter_mask(flt))
                xb = index._storage_view()
                times, _ = timed(lambda v, labels=labels, xb=xb: _subset_topk(faiss, v[None], xb, labels, 10), queries)
                rows.append({"engine": "vidlens faiss (exact over the matches, forced)", "queries": kind,
                             "filter": fname, **latency(times), "recall@10": 1.0,
                             "us_per_distance": 1000 * float(np.median(times)) / len(labels)})
                print(rows[-1], file=sys.stderr)
    return rows


def run_faiss(args: argparse.Namespace) -> None:
    import faiss

    faiss.omp_set_num_threads(args.threads)
    ds = make_dataset(args.n, args.real, args.queries, args.tune_queries)
    print(f"{ds.n} vectors ({args.n} random + {args.real} real-shaped), {DIM}-d", file=sys.stderr)
    results: dict[str, Any] = {"n": ds.n, "n_random": args.n, "n_real": args.real, "dim": DIM,
                               "cpu_count": os.cpu_count(), "load_avg_start": os.getloadavg(),
                               "hnsw_m": args.hnsw_m, "ef_construction": args.ef_construction,
                               "order": args.order}
    index, build = build_or_load(ds, args)
    results["build"] = build
    print(build, file=sys.stderr)
    if args.build_only:
        return
    masks = {name: ds.mask(name) for name in FILTERS}
    results["selectivity"] = {name: (1.0 if m is None else float(m.mean())) for name, m in masks.items()}
    t = time.perf_counter()
    truth = {(kind, f): exact_topk(ds.xb, q, 10, masks[f])
             for kind, q in (("real", ds.real_q), ("random", ds.rand_q)) for f in FILTERS}
    results["ground_truth_s"] = time.perf_counter() - t
    label_row = label_rows(ds, index)
    results["exact"] = exact_baselines(ds, index, label_row, masks, args.exact_queries)

    faiss.omp_set_num_threads(1)
    results["sweep"] = ef_sweep(ds, index, label_row, masks, truth, SWEEP, args.sweep_max_ms)

    index.ef_search = None
    t = time.perf_counter()
    results["tuning"] = index.tune(queries=ds.tune_q, k=10)
    results["tune_s"] = time.perf_counter() - t
    gc.collect()
    results["memory"] = {"rss_gib": rss_gib(), "dataset_gib": ds.xb.nbytes / 2**30,
                         "index_approx_gib": index.stats()["approx_bytes"] / 2**30}
    results["vidlens"] = vidlens_rows(ds, index, truth)
    results["load_avg_end"] = os.getloadavg()
    write(results, OUT / f"bench_index-{ds.n}-{args.order}.json")
    print_tables(results)


def run_milvus(args: argparse.Namespace) -> None:
    ds = make_dataset(args.n, args.real, args.queries, args.tune_queries)
    m = min(args.milvus_n, ds.n)
    lo = ds.n - m
    sub = ds.xb[lo:]
    q = ds.real_q[: args.exact_queries]
    results: dict[str, Any] = {"n": m, "load_avg_start": os.getloadavg(), "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        rss0 = rss_gib()
        t = time.perf_counter()
        index = create_index("milvus", DIM, tmp)
        for start in range(lo, ds.n, 10_000):
            rows = np.arange(start, min(ds.n, start + 10_000))
            index.upsert(ds.ids(rows), ds.xb[rows], ds.meta(rows))
            stop = rows[-1] + 1
            print(f"  milvus: {stop - lo}/{m} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        index.save()
        results["build_s"] = time.perf_counter() - t
        results["rss_gib_added"] = rss_gib() - rss0
        for fname, spec in FILTERS.items():
            flt = parse_filter(spec) if spec else None
            mask = ds.mask(fname)
            truth = exact_topk(sub, q, 10, None if mask is None else mask[lo:])
            times, outs = timed(lambda v, flt=flt: index.search(v[None], 10, flt)[0], q)
            got = [[ds.row(h.id) - lo for h in hits] for hits in outs]
            t = time.perf_counter()
            index.search(q, 10, flt)
            batched = (time.perf_counter() - t) * 1000 / len(q)
            results["rows"].append({"engine": f"milvus lite ({m:,} items)", "queries": "real", "filter": fname,
                                    **latency(times), "batched_ms_per_query": batched,
                                    "recall@10": recall(truth, got)})
            print(results["rows"][-1], file=sys.stderr)
        # the same subset through the FAISS backend, for the ratio at equal size
        faiss_ix = FaissIndex(DIM, exact_threshold=20_000, hnsw_m=args.hnsw_m, ef_construction=args.ef_construction)
        t = time.perf_counter()
        for start in range(lo, ds.n, 50_000):
            rows = np.arange(start, min(ds.n, start + 50_000))
            faiss_ix.upsert(ds.ids(rows), ds.xb[rows], ds.meta(rows))
        results["faiss_build_s"] = time.perf_counter() - t
        faiss_ix.tune(queries=ds.tune_q)
        import faiss

        faiss.omp_set_num_threads(1)
        for fname, spec in FILTERS.items():
            flt = parse_filter(spec) if spec else None
            mask = ds.mask(fname)
            truth = exact_topk(sub, q, 10, None if mask is None else mask[lo:])
            times, outs = timed(lambda v, flt=flt: faiss_ix.search(v[None], 10, flt)[0], q)
            got = [[ds.row(h.id) - lo for h in hits] for hits in outs]
            results["rows"].append({"engine": f"vidlens faiss ({m:,} items, {faiss_ix.plan(flt)['strategy']})",
                                    "queries": "real", "filter": fname, **latency(times),
                                    "recall@10": recall(truth, got)})
            print(results["rows"][-1], file=sys.stderr)
        index.close()
    results["load_avg_end"] = os.getloadavg()
    write(results, OUT / f"bench_index-milvus-{m}.json")
    print_rows(results["rows"])


def build_synthetic_library(folder: Path, n: int, encoder: Any, seed: int = 5) -> list[str]:
    """A library of ``n`` videos known by a title only (pooled ``text.title`` vectors); returns the titles."""
    import vidlens
    from vidlens.store.models import Video, utcnow

    rng = np.random.default_rng(seed)
    words = ["".join(chr(0x4E00 + int(c)) for c in rng.integers(0, 3000, rng.integers(2, 4))) for _ in range(5000)]
    zipf = 1.0 / np.arange(1, len(words) + 1)
    titles = ["".join(words[i] for i in rng.choice(len(words), rng.integers(3, 9), p=zipf / zipf.sum()))
              for _ in range(n)]
    lib = vidlens.open(folder)
    now = utcnow()
    ids = [f"{i:012x}{rng.integers(0, 2**48):012x}" for i in range(n)]
    rows = [{"id": vid, "title": title, "summary": "", "product_titles": [], "product_categories": [],
             "labels": [f"c{rng.integers(0, N_CAT)}"], "extra": {}, "size_bytes": 1_000_000, "container": "mp4",
             "duration": float(rng.uniform(5, 300)), "has_video": True, "has_audio": True, "width": 720,
             "height": 1280, "fps": 30.0, "rotation": 0, "variable_frame_rate": False, "created_at": now,
             "updated_at": now} for vid, title in zip(ids, titles, strict=True)]
    with lib.store.session() as session:
        session.execute(Video.__table__.insert(), rows)
        session.commit()
    key = f"{encoder.name}@{encoder.version}"
    vectors = encoder.encode_batch(titles)
    lib.vectors.write_pooled("text.title", [(vid, key, v) for vid, v in zip(ids, vectors, strict=True)])
    lib.close()
    return titles


def run_library(args: argparse.Namespace) -> None:
    import vidlens
    from vidlens.retrieval import cached_library_index, open_library_index, search
    from vidlens.retrieval.embedder import l2n
    from vidlens.retrieval.lexical import HashedNgramEncoder
    from vidlens.retrieval.search import _result

    n = args.library
    enc = HashedNgramEncoder()
    enc.name = "hashed_ngrams"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "lib"
        t = time.perf_counter()
        titles = build_synthetic_library(folder, n, enc)
        results: dict[str, Any] = {"videos": n, "load_avg_start": os.getloadavg(),
                                   "make_library_s": time.perf_counter() - t}
        rng = np.random.default_rng(9)
        queries = [titles[i][: max(2, len(titles[i]) // 2)] for i in rng.choice(n, 40, replace=False)]
        lib = vidlens.open(folder)
        t = time.perf_counter()
        open_library_index(lib, "text").close()
        results["first_build_s"] = time.perf_counter() - t

        def reopen_per_call(query: str) -> list[dict[str, Any]]:
            # what search() did before: open (load features, check, load the index), search, close
            space = open_library_index(lib, "text")
            try:
                hits = space.search(l2n(np.asarray(enc.encode_batch([query]), np.float32)), 10)[0]
                return [_result(lib, h.id, h.score) for h in hits]
            finally:
                space.close()

        times, before = timed(reopen_per_call, np.array(queries[:6], dtype=object))
        results["reopen_per_call"] = latency(times)
        t = time.perf_counter()
        first = search(lib, queries[0], k=10, text_encoder=enc)
        results["kept_open_first_call_ms"] = (time.perf_counter() - t) * 1000
        times, after = timed(lambda q: search(lib, q, k=10, text_encoder=enc), np.array(queries[:20], dtype=object))
        results["kept_open"] = latency(times)
        times, _ = timed(lambda q: cached_library_index(lib, "text"), np.array(queries[:20], dtype=object))
        results["fingerprint_check"] = latency(times)
        results["same_results"] = [[h["id"] for h in r] for r in before] == [[h["id"] for h in r] for r in after[:6]]
        assert first, "no results"
        lib.close()
    if args.muse:
        from vidlens.encoders import create_encoder

        t = time.perf_counter()
        create_encoder("muse_v3").encode_batch(["做红烧肉"])
        results["muse_v3_build_and_first_query_s"] = time.perf_counter() - t
    results["load_avg_end"] = os.getloadavg()
    print(json.dumps(results, indent=2, default=float))
    write(results, OUT / f"bench_index-library-{n}.json")


def write(results: dict[str, Any], path: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=float))
    print(f"written {path}", file=sys.stderr)


def print_rows(rows: list[dict[str, Any]]) -> None:
    print("| engine | queries | filter | p50 ms | p99 ms | batched ms/query | recall@10 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        b = r.get("batched_ms_per_query")
        print(f"| {r['engine']} | {r.get('queries', 'real')} | {r['filter']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{'' if b is None else f'{b:.2f}'} | {r['recall@10']:.3f} |")


def print_tables(results: dict[str, Any]) -> None:
    b = results["build"]
    print(f"\n{results['n']:,} vectors; HNSW M={results['hnsw_m']}, efConstruction={results['ef_construction']}: "
          f"build {b['build_s']:.0f} s; efSearch tuned to {results['tuning']['ef_search']}; "
          f"RSS {results['memory']['rss_gib']:.1f} GiB (vectors {results['memory']['dataset_gib']:.1f} GiB held "
          f"twice: benchmark + index; index ≈ {results['memory']['index_approx_gib']:.2f} GiB)\n")
    print_rows(results["exact"] + results["vidlens"])
    print("\nefSearch sweep (raw HNSW, one thread):\n")
    print("| queries | filter | efSearch | p50 ms | p99 ms | recall@10 | distances/query |")
    print("|---|---|---|---|---|---|---|")
    for r in results["sweep"]:
        print(f"| {r['queries']} | {r['filter']} | {r['ef_search']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['recall@10']:.3f} | {r['ndis']:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", "--n-random", dest="n", type=int, default=1_000_000, help="random vectors")
    ap.add_argument("--real", "--n-real", dest="real", type=int, default=10_000, help="real-shaped vectors")
    ap.add_argument("--queries", type=int, default=200, help="eval queries of each kind")
    ap.add_argument("--tune-queries", type=int, default=200, help="real-shaped queries efSearch is tuned on")
    ap.add_argument("--exact-queries", type=int, default=50, help="single queries timed for the exact baselines")
    ap.add_argument("--hnsw-m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=40)
    ap.add_argument("--order", choices=["shuffled", "random-first"], default="shuffled",
                    help="insertion order of the items (see Dataset.insertion_order)")
    ap.add_argument("--threads", type=int, default=2, help="OpenMP threads for the build and batched search")
    ap.add_argument("--sweep-max-ms", type=float, default=60.0, help="stop a sweep once p50 exceeds this")
    ap.add_argument("--index-cache", default=None,
                    help="folder to save the built index in, and to load it from when it matches the data")
    ap.add_argument("--build-only", action="store_true", help="build (and cache) the index, then stop")
    ap.add_argument("--milvus-n", type=int, default=0, help="run Milvus Lite on this many items instead")
    ap.add_argument("--library", type=int, default=0,
                    help="time search() on a synthetic library of this many videos instead")
    ap.add_argument("--muse", action="store_true", help="with --library: also time building muse_v3")
    args = ap.parse_args()
    if args.library:
        run_library(args)
    elif args.milvus_n:
        run_milvus(args)
    else:
        run_faiss(args)


if __name__ == "__main__":
    main()
