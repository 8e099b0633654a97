"""TNEWS keyword mining benchmark: mining precision (share of mined phrases that are real keywords) and
keyword recall, for the AutoPhrase-style and pattern miners beside jieba TF-IDF and TextRank; mining time
for 100k lines.

Split (seed 0): half of the headlines give the "approved library" (their keywords: the positives of distant
training); mining runs over the other half, and the target is that half's keywords that are *new* (not in
the library) and occur in its text. The baselines extract top-3 keywords per line; their phrases are pooled
over the corpus and ranked by summed weight, then cut to the same number of phrases as the miner proposes.

Timing: the 4,928 TNEWS headlines are replicated to 100,000 lines (TNEWS has no more), so the 100k figure
is of repeated text.

    flock /tmp/vidlens-bench.lock .venv/bin/python benchmarks/bench_tags_tnews.py [--skip-100k]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "text" / "tnews.jsonl"


def score(names: list[str], target: set[str]) -> dict[str, float]:
    hits = {n for n in names if n in target}
    return {"phrases": len(names), "precision": round(len(hits) / max(len(names), 1), 4),
            "recall": round(len(hits) / max(len(target), 1), 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--skip-100k", action="store_true")
    args = ap.parse_args()

    import jieba.analyse

    from vidlens.tags import PatternMiner, QualityPhraseMiner, normalize_text

    rows = [json.loads(x) for x in Path(args.data).read_text(encoding="utf-8").splitlines() if x.strip()]
    random.Random(0).shuffle(rows)
    half = len(rows) // 2
    lib_rows, corpus_rows = rows[:half], rows[half:]

    def keywords(rs):
        return {normalize_text(k) for r in rs for k in (r.get("keywords") or "").split(",") if k.strip()}

    known = keywords(lib_rows)
    docs = [r["sentence"] for r in corpus_rows]
    text = "\n".join(normalize_text(d) for d in docs)
    target = {k for k in keywords(corpus_rows) - known if k in text}
    out = {"corpus_lines": len(docs), "library_keywords": len(known), "target_new_keywords": len(target)}

    t0 = time.perf_counter()
    mined = QualityPhraseMiner(max_phrases=None).mine(docs, known=known)
    out["autophrase"] = {**score([p.name for p in mined], target), "seconds": round(time.perf_counter() - t0, 1)}
    n = len(mined)
    t0 = time.perf_counter()
    patterns = PatternMiner(max_phrases=None).mine(docs, known=known)
    out["pattern"] = {**score([p.name for p in patterns], target), "seconds": round(time.perf_counter() - t0, 1)}
    union = list(dict.fromkeys([p.name for p in mined] + [p.name for p in patterns]))
    out["autophrase+pattern"] = score(union, target)
    for name, extract in (("jieba_tfidf", jieba.analyse.extract_tags), ("jieba_textrank", jieba.analyse.textrank)):
        t0 = time.perf_counter()
        pooled: Counter = Counter()
        for d in docs:
            for k, w in extract(d, topK=3, withWeight=True):
                k = normalize_text(k)
                if k not in known:
                    pooled[k] += w
        ranked = [k for k, _ in pooled.most_common()]
        out[name] = {"same_n": score(ranked[:n], target), "all": score(ranked, target),
                     "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(out, ensure_ascii=False, indent=2), flush=True)
    if not args.skip_100k:
        big = [r["sentence"] for r in rows] * (100_000 // len(rows) + 1)
        big = big[:100_000]
        t0 = time.perf_counter()
        QualityPhraseMiner(max_phrases=None).mine(big, known=known)
        print(json.dumps({"autophrase_100k_lines_seconds": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
