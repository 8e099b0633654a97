"""Vector index: build time, top-10 latency with and without a filter, recall@10 against exact, memory.

Usage:
    .venv/bin/python benchmarks/bench_index.py --n-random 1000000 [--n-real 10000] [--milvus-n 20000]

Data: ``n_random`` random unit 512-d vectors (Gaussian, the hard case for graph indexes) plus ``n_real``
"real-shaped" ones: multilingual-USE vectors of real Chinese headlines (NLPCC 2017, ../shared/data),
cached under benchmarks/out. Queries: held-out headlines (real-shaped) and fresh random vectors. Every
item gets metadata (a category of 10, a duration of 1–300 s, a date over one year); the filtered runs
use ``category=c3`` (≈10 % of items) and ``duration<=30`` (≈10 %).

Compared side by side on the same queries: the FAISS backend (exact → HNSW, efSearch tuned on separate
real-shaped queries), exact numpy search (one matrix product per query, and batched), and optionally
Milvus Lite on a subset. Latency is per single query (p50/p99 over the eval queries, one thread).
Results go to benchmarks/out/bench_index-<n>.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from vidlens.index import FaissIndex, create_index, parse_filter

OUT = Path(__file__).resolve().parent / "out"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DIM = 512
N_CAT = 10
T0 = 1_717_200_000  # 2024-06-01


def rss_gib() -> float:
    return psutil.Process().memory_info().rss / 2**30


def real_vectors(n: int, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """USE vectors of ``n`` headlines and ``n_queries`` other headlines (cached)."""
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


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def metadata(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cats = rng.integers(0, N_CAT, n)
    duration = rng.uniform(1, 300, n).round(1)
    date = T0 + rng.integers(0, 365 * 86_400, n)
    return cats, duration, date


def exact_topk(xb: np.ndarray, q: np.ndarray, k: int, mask: np.ndarray | None = None,
               chunk: int = 200_000) -> np.ndarray:
    """Exact top-k row numbers by chunked matrix products (the ground truth and the numpy baseline)."""
    best_s = np.full((len(q), k), -np.inf, np.float32)
    best_i = np.full((len(q), k), -1, np.int64)
    for start in range(0, len(xb), chunk):
        s = q @ xb[start:start + chunk].T
        if mask is not None:
            s[:, ~mask[start:start + chunk]] = -np.inf
        idx = np.argpartition(-s, k, axis=1)[:, :k] + start
        cand_s = np.concatenate([best_s, np.take_along_axis(s, idx - start, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, idx], axis=1)
        top = np.argpartition(-cand_s, k, axis=1)[:, :k]
        best_s = np.take_along_axis(cand_s, top, axis=1)
        best_i = np.take_along_axis(cand_i, top, axis=1)
    order = np.argsort(-best_s, axis=1)
    return np.take_along_axis(best_i, order, axis=1)


def recall(truth: np.ndarray, got: list[list[int]], k: int = 10) -> float:
    return float(np.mean([len(set(t[:k].tolist()) & set(g[:k])) / k for t, g in zip(truth, got, strict=True)]))


def timed_single(fn, queries: np.ndarray) -> tuple[list[float], list]:
    times, outs = [], []
    for q in queries:
        t = time.perf_counter()
        outs.append(fn(q))
        times.append((time.perf_counter() - t) * 1000)
    return times, outs


def pct(times: list[float], p: float) -> float:
    return float(np.percentile(times, p))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-random", type=int, default=1_000_000)
    ap.add_argument("--n-real", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=300, help="eval queries of each kind")
    ap.add_argument("--tune-queries", type=int, default=200)
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=100)
    ap.add_argument("--milvus-n", type=int, default=0, help="also run Milvus Lite on this many items")
    ap.add_argument("--threads", type=int, default=2, help="FAISS OpenMP threads for the build")
    ap.add_argument("--index-cache", default=None,
                    help="folder to save the built index in, and to load it from when it is there (skips the build)")
    args = ap.parse_args()

    import faiss

    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    real, real_q_all = real_vectors(args.n_real, args.queries + args.tune_queries)
    tune_q, real_q = real_q_all[: args.tune_queries], real_q_all[args.tune_queries:]
    rand_q = unit(rng.normal(size=(args.queries, DIM)))
    n = args.n_random + args.n_real
    print(f"{n} vectors ({args.n_random} random + {args.n_real} real-shaped), {DIM}-d", file=sys.stderr)
    xb = np.empty((n, DIM), np.float32)
    for start in range(0, args.n_random, 100_000):
        m = min(100_000, args.n_random - start)
        xb[start:start + m] = unit(rng.normal(size=(m, DIM)))
    xb[args.n_random:] = real
    ids = [f"r{i}" for i in range(args.n_random)] + [f"t{i}" for i in range(args.n_real)]
    cats, duration, date = metadata(n, rng)
    meta = [{"categories": [f"c{c}"], "duration": float(d), "date": int(t)}
            for c, d, t in zip(cats, duration, date, strict=True)]
    filters = {"none": None, "category=c3": parse_filter("category=c3"),
               "duration<=30": parse_filter("duration<=30")}
    masks = {"none": None, "category=c3": cats == 3, "duration<=30": duration <= 30}

    rows: list[dict] = []
    results: dict = {"n": n, "n_random": args.n_random, "n_real": args.n_real, "dim": DIM,
                     "cpu_count": os.cpu_count(), "load_avg": os.getloadavg(), "rows": rows}

    # ground truth (exact) for every query kind x filter
    t = time.perf_counter()
    truth = {(kind, f): exact_topk(xb, q, 10, masks[f])
             for kind, q in (("real", real_q), ("random", rand_q)) for f in filters}
    print(f"ground truth in {time.perf_counter() - t:.0f} s", file=sys.stderr)

    # exact numpy, single queries and batched
    for kind, q in (("real", real_q), ("random", rand_q)):
        sub = q[: min(50, len(q))]
        times, _ = timed_single(lambda v: exact_topk(xb, v[None], 10), sub)
        t = time.perf_counter()
        exact_topk(xb, q, 10)
        batched = (time.perf_counter() - t) * 1000 / len(q)
        rows.append({"engine": "numpy exact", "queries": kind, "filter": "none", "p50_ms": pct(times, 50),
                     "p99_ms": pct(times, 99), "batched_ms_per_query": batched, "recall@10": 1.0})
        print(rows[-1], file=sys.stderr)

    # FAISS backend
    from vidlens.index import load_index

    rss0 = rss_gib()
    cache = Path(args.index_cache) if args.index_cache else None
    t = time.perf_counter()
    if cache is not None and (cache / "state.json").exists():
        index = load_index(cache)
        build_s = float(index.info.get("build_s", float("nan")))
        print(f"  loaded the index built before from {cache} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    else:
        index = FaissIndex(DIM, exact_threshold=20_000, hnsw_m=args.hnsw_m, ef_construction=args.ef_construction,
                           ef_search=64)  # fixed while building; tuned below on held-out real queries
        step = 50_000
        for start in range(0, n, step):
            index.upsert(ids[start:start + step], xb[start:start + step], meta[start:start + step])
            print(f"  built {min(n, start + step)}/{n} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        build_s = time.perf_counter() - t
        if cache is not None:
            index.info = {"build_s": build_s}
            index.save(cache)
    index.ef_search = None
    t = time.perf_counter()
    tuning = index.tune(queries=tune_q, k=10)
    tune_s = time.perf_counter() - t
    gc.collect()
    results["faiss"] = {"build_s": build_s, "tune_s": tune_s, "tuning": tuning, "mode": index.mode,
                        "ef_search": index.ef, "rss_gib_added": rss_gib() - rss0, "rss_gib": rss_gib(),
                        "approx_index_gib": index.stats()["approx_bytes"] / 2**30,
                        "hnsw_m": args.hnsw_m, "ef_construction": args.ef_construction}
    print(results["faiss"], file=sys.stderr)
    faiss.omp_set_num_threads(1)  # single-query latency on one thread
    for kind, q in (("real", real_q), ("random", rand_q)):
        for fname, flt in filters.items():
            times, outs = timed_single(lambda v, flt=flt, ix=index: ix.search(v[None], 10, flt)[0], q)
            got = [[int(h.id[1:]) + (args.n_random if h.id[0] == "t" else 0) for h in hits] for hits in outs]
            rows.append({"engine": f"faiss {index.mode} ef={index.ef}", "queries": kind, "filter": fname,
                         "p50_ms": pct(times, 50), "p99_ms": pct(times, 99),
                         "recall@10": recall(truth[(kind, fname)], got)})
            print(rows[-1], file=sys.stderr)
        t = time.perf_counter()
        index.search(q, 10)
        rows[-3]["batched_ms_per_query"] = (time.perf_counter() - t) * 1000 / len(q)
    faiss.omp_set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        index.save(tmp)
        results["faiss"]["save_s"] = time.perf_counter() - t
        del index
        gc.collect()
        t = time.perf_counter()
        load_index(tmp).close()
        results["faiss"]["load_s"] = time.perf_counter() - t

    if args.milvus_n:
        m = min(args.milvus_n, n)
        sub_ids, sub_x, sub_meta = ids[-m:], xb[-m:], meta[-m:]  # the real-shaped part first
        sub_truth = exact_topk(sub_x, real_q, 10)
        with tempfile.TemporaryDirectory() as tmp:
            rss0 = rss_gib()
            t = time.perf_counter()
            mil = create_index("milvus", DIM, tmp)
            mil.upsert(sub_ids, sub_x, sub_meta)
            mil.save()
            build = time.perf_counter() - t
            times, outs = timed_single(lambda v: mil.search(v[None], 10)[0], real_q[:50])
            pos = {item: i for i, item in enumerate(sub_ids)}
            got = [[pos[h.id] for h in hits] for hits in outs]
            t = time.perf_counter()
            mil.search(real_q, 10)
            batched = (time.perf_counter() - t) * 1000 / len(real_q)
            rows.append({"engine": f"milvus lite ({m} items)", "queries": "real", "filter": "none",
                         "p50_ms": pct(times, 50), "p99_ms": pct(times, 99), "batched_ms_per_query": batched,
                         "recall@10": recall(sub_truth[:50], got), "build_s": build,
                         "rss_gib_added": rss_gib() - rss0})
            print(rows[-1], file=sys.stderr)
            mil.close()

    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"bench_index-{n}.json"
    out.write_text(json.dumps(results, indent=2, default=float))
    print(f"\n{n:,} vectors; FAISS build {build_s:.0f} s (M={args.hnsw_m}, efConstruction={args.ef_construction}),"
          f" efSearch tuned to {results['faiss']['ef_search']}, RSS {results['faiss']['rss_gib']:.1f} GiB\n")
    print("| engine | queries | filter | p50 ms | p99 ms | batched ms/query | recall@10 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        b = r.get("batched_ms_per_query")
        print(f"| {r['engine']} | {r['queries']} | {r['filter']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{'' if b is None else f'{b:.2f}'} | {r['recall@10']:.3f} |")
    print(f"\nwritten {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
