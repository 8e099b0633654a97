"""Scale benchmark: a 1,000,000-tag library. Build (bulk import into SQLite + Aho-Corasick matcher), load
(matcher from its cache file, and rebuilt from the DB), match one video's text fields against it, recall
candidates (content-text channel + zero-shot ranker, no encoder), memory; with ``--history``, also the
diff and the rollback of the import (one revision of a million tags).

Tags are synthetic but real words: every word of length ≥ 2 in jieba's dictionary, then two-word
combinations of them (seeded) up to the count asked. Texts are the 362 Bilibili title + desc + dynamic.

    flock /tmp/vidlens-bench.lock .venv/bin/python benchmarks/bench_tags_scale.py [--tags 1000000] [--history]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "text" / "bilibili_videos.jsonl"


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def make_tags(n: int, seed: int = 0) -> list[str]:
    import jieba

    words = []
    with open(Path(jieba.__file__).parent / "dict.txt", encoding="utf-8") as fh:
        for line in fh:
            w = line.split(" ", 1)[0]
            if 2 <= len(w) <= 8:
                words.append(w)
    rng = random.Random(seed)
    names = list(dict.fromkeys(words))[:n]
    seen = set(names)
    while len(names) < n:
        w = rng.choice(words) + rng.choice(words)
        if len(w) <= 12 and w not in seen:
            seen.add(w)
            names.append(w)
    return names


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tags", type=int, default=1_000_000)
    ap.add_argument("--history", action="store_true", help="also time diff and rollback of the import")
    args = ap.parse_args()

    from vidlens.tags import Tagger, TagLibrary, TagMatcher, VideoDoc

    out: dict = {"tags": args.tags}
    names = make_tags(args.tags)
    base = rss_mb()
    tmp = Path(tempfile.mkdtemp())
    lib = TagLibrary(f"sqlite:///{tmp / 'tags.db'}", user="bench")
    v0 = lib.version
    t0 = time.perf_counter()
    report = lib.import_records(({"name": n} for n in names), source="bench")
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    matcher = TagMatcher.build(lib.match_entries())
    t_matcher = time.perf_counter() - t0
    out["build_seconds"] = {"import_db": round(t_import, 1), "matcher": round(t_matcher, 1),
                            "total": round(t_import + t_matcher, 1)}
    out["created"] = report.created
    out["rss_mb_after_build"] = round(rss_mb() - base, 1)
    out["peak_rss_mb_build"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps({"partial": out}), flush=True)
    t0 = time.perf_counter()
    matcher.save(tmp / "matcher.pkl")
    out["matcher_save_seconds"] = round(time.perf_counter() - t0, 1)
    out["matcher_file_mb"] = round((tmp / "matcher.pkl").stat().st_size / 2**20, 1)
    del matcher
    t0 = time.perf_counter()
    matcher = TagMatcher.load(tmp / "matcher.pkl")
    out["load_seconds"] = {"matcher_from_cache": round(time.perf_counter() - t0, 2)}
    t0 = time.perf_counter()
    rebuilt = TagMatcher.build(lib.match_entries())
    out["load_seconds"]["matcher_from_db"] = round(time.perf_counter() - t0, 1)
    del rebuilt
    rows = [json.loads(x) for x in DATA.read_text(encoding="utf-8").splitlines() if x.strip()]
    texts = [{"title": str(r["title"]), "summary": " ".join(str(x) for x in (r.get("desc"), r.get("dynamic")) if x)}
             for r in rows]
    matcher.match("预热")
    per_video, hits = [], []
    for t in texts:
        t0 = time.perf_counter()
        n = len(matcher.match(t["title"])) + len(matcher.match(t["summary"]))
        per_video.append((time.perf_counter() - t0) * 1000)
        hits.append(n)
    per_video.sort()
    out["match_ms_per_video"] = {"median": round(statistics.median(per_video), 2),
                                 "p95": round(per_video[int(0.95 * len(per_video))], 2),
                                 "mean_chars": round(statistics.mean(len(t["title"]) + len(t["summary"])
                                                                     for t in texts), 1),
                                 "mean_hits": round(statistics.mean(hits), 1)}
    tagger = Tagger(lib, encoder=None, channels=["content_text"])
    lib._matchers[(("approved",), "token", lib.version)] = matcher
    tagger.ctx.tag_info()  # loads the 1M tag facts once
    times = []
    for t in texts:
        t0 = time.perf_counter()
        tagger.tag(VideoDoc(None, t))
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    out["recall_rank_select_ms_per_video"] = {"median": round(statistics.median(times), 2),
                                              "p95": round(times[int(0.95 * len(times))], 2)}
    out["rss_mb_total"] = round(rss_mb(), 1)
    out["db_file_mb"] = round((tmp / "tags.db").stat().st_size / 2**20, 1)
    if args.history:
        del tagger, matcher
        t0 = time.perf_counter()
        n_diff = len(lib.diff(v0, report.version))
        out["history_seconds"] = {"diff": round(time.perf_counter() - t0, 1), "diff_entries": n_diff}
        t0 = time.perf_counter()
        undo = lib.rollback(v0)
        out["history_seconds"]["rollback"] = round(time.perf_counter() - t0, 1)
        out["history_seconds"]["rolled_back"] = undo["restored"]
        out["history_seconds"]["tags_left"] = lib.stats()["tags"]
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
