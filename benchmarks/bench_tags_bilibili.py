"""Bilibili tagging benchmark: precision/recall@5/@10 of vidlens tags against the real tags, from title,
desc and dynamic, beside a jieba TF-IDF keyword baseline; per-channel recall; click feedback before/after.

Split (seed 0): 60 % train (their tags form the approved library, the gold of the trained rankers and the
similar-video pool), 20 % feedback (their real tags become simulated video–tag clicks), 20 % test.
Nothing is tuned on the test part.

    flock /tmp/vidlens-bench.lock .venv/bin/python benchmarks/bench_tags_bilibili.py [--encoder muse_v3]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "text" / "bilibili_videos.jsonl"


def clean(text: str | None) -> str:
    text = str(text if text is not None else "").strip()
    return "" if text in ("-", "") else text


def pr_at(ranked: list[str], gold: set[str], k: int) -> tuple[float, float]:
    hits = len(set(ranked[:k]) & gold)
    return hits / k, hits / max(len(gold), 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder", default="muse_v3")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--library", choices=["train", "train+keywords"], default="train",
                    help="train: the train part's real tags; train+keywords: plus the top-20 jieba TF-IDF "
                         "keywords of every video's text (no labels used), approved, as a larger library")
    args = ap.parse_args()

    import jieba.analyse

    from vidlens.encoders import create_encoder
    from vidlens.tags import RANKERS, Tagger, TagLibrary, VideoDoc, evaluate, normalize_tag

    rows = [json.loads(x) for x in Path(args.data).read_text(encoding="utf-8").splitlines() if x.strip()]
    rows = [r for r in rows if r.get("tags")]
    random.Random(0).shuffle(rows)
    n = len(rows)
    train, feedback, test = rows[:int(0.6 * n)], rows[int(0.6 * n):int(0.8 * n)], rows[int(0.8 * n):]
    gold_names = {str(r["aid"]): [t for t in r["tags"].split(",") if t.strip()] for r in rows}

    tmp = Path(tempfile.mkdtemp())
    tags = TagLibrary(f"sqlite:///{tmp / 'tags.db'}", user="bench")
    t0 = time.perf_counter()
    for r in train:
        tags.assign(str(r["aid"]), gold_names[str(r["aid"])], source="gold")
    library_s = time.perf_counter() - t0
    if args.library == "train+keywords":
        extra = set()
        for r in rows:
            text = " ".join(x for x in (str(r["title"]), clean(r.get("desc")), clean(r.get("dynamic"))) if x)
            extra.update(jieba.analyse.extract_tags(text, topK=20))
        tags.import_records([{"name": k} for k in sorted(extra)], source="keywords", status="approved")
    enc = create_encoder(args.encoder)
    docs = {}
    t0 = time.perf_counter()
    for r in rows:
        summary = " ".join(x for x in (clean(r.get("desc")), clean(r.get("dynamic"))) if x)
        docs[str(r["aid"])] = VideoDoc.from_record({"id": str(r["aid"]), "title": r["title"], "summary": summary},
                                                   encoder=enc)
    encode_s = time.perf_counter() - t0

    def gold_ids(split):
        out = {}
        for r in split:
            ids = set()
            for name in gold_names[str(r["aid"])]:
                found = tags.find(name)
                ids.add(found["id"] if found else -hash(normalize_tag(name)))  # unreachable gold still counts
            out[str(r["aid"])] = ids
        return out

    test_gold = gold_ids(test)
    test_docs = [docs[str(r["aid"])] for r in test]
    library_names = {normalize_tag(x["name"]) for x in tags.iter_records()}
    coverage = sum(normalize_tag(t) in library_names for r in test for t in gold_names[str(r["aid"])]) / max(
        1, sum(len(gold_names[str(r["aid"])]) for r in test))

    # Baseline: jieba TF-IDF keywords of title + desc + dynamic.
    base = {5: [0.0, 0.0], 10: [0.0, 0.0]}
    for r in test:
        text = " ".join(x for x in (str(r["title"]), clean(r.get("desc")), clean(r.get("dynamic"))) if x)
        ranked = [normalize_tag(k) for k in jieba.analyse.extract_tags(text, topK=10)]
        g = {normalize_tag(t) for t in gold_names[str(r["aid"])]}
        for k in base:
            p, rc = pr_at(ranked, g, k)
            base[k][0] += p / len(test)
            base[k][1] += rc / len(test)

    results = {"library": args.library, "videos": {"train": len(train), "feedback": len(feedback), "test": len(test)},
               "library_tags": len(library_names), "test_gold_in_library": round(coverage, 4),
               "seconds": {"library": round(library_s, 2), "encode_texts": round(encode_s, 2)},
               "jieba_tfidf": {f"{m}@{k}": round(base[k][i], 4) for k in base for i, m in
                               enumerate(("precision", "recall"))}}
    tagger = Tagger(tags, encoder=enc)
    tagger.use_tagged_videos([docs[str(r["aid"])] for r in train])
    t0 = time.perf_counter()
    results["zero_shot"] = evaluate(tagger, test_docs, test_gold)
    print(json.dumps({"partial": results}, ensure_ascii=False), flush=True)
    results["seconds"]["zero_shot_eval_per_video_ms"] = round((time.perf_counter() - t0) / len(test) * 1000, 1)
    train_gold = gold_ids(train)
    train_docs = [docs[str(r["aid"])] for r in train]
    for name in ("late_fusion", "attention_fusion"):
        tagger.ranker = RANKERS.create(name, epochs=args.epochs, random_state=0)
        t0 = time.perf_counter()
        tagger.fit(train_docs, train_gold)
        fit_s = time.perf_counter() - t0
        results[name] = evaluate(tagger, test_docs, test_gold)
        results["seconds"][f"{name}_fit"] = round(fit_s, 1)
        print(json.dumps({"partial": {name: results[name]}}, ensure_ascii=False), flush=True)
    # Feedback: the feedback part's real tags as video–tag clicks; retrain late fusion with them.
    log = tmp / "clicks.jsonl"
    with open(log, "w", encoding="utf-8") as fh:
        for r in feedback:
            for t in gold_names[str(r["aid"])]:
                fh.write(json.dumps({"video_id": str(r["aid"]), "tag": t, "clicks": 1}, ensure_ascii=False) + "\n")
        fh.write("{malformed line\n")
    from vidlens.tags import clicked_tags, ingest_clicks

    report = ingest_clicks(tags, log)
    clicks = clicked_tags(tags)
    tagger.ranker = RANKERS.create("late_fusion", epochs=args.epochs, random_state=0)
    tagger.fit(train_docs, train_gold)
    before = evaluate(tagger, test_docs, test_gold)
    fb_gold = {**train_gold, **{v: set(t) for v, t in clicks.items()}}
    tagger.ranker = RANKERS.create("late_fusion", epochs=args.epochs, random_state=0)
    tagger.fit(train_docs + [docs[v] for v in clicks], fb_gold)
    after = evaluate(tagger, test_docs, test_gold)
    results["feedback"] = {"clicks": report.to_dict(), "videos_with_clicks": len(clicks),
                           "before": {k: before[k] for k in ("precision@5", "recall@5", "precision@10", "recall@10")},
                           "after": {k: after[k] for k in ("precision@5", "recall@5", "precision@10", "recall@10")}}
    print(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
