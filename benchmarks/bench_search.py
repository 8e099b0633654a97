"""Text → video search: R@1/5/20 and mean rank, zero-shot vs trained two towers vs char-n-gram BM25.

Usage:
    .venv/bin/python benchmarks/bench_search.py bilibili          # (b) real Bilibili metadata
    .venv/bin/python benchmarks/bench_search.py clips             # (a) generated clips, real encoders

(b) Bilibili (../shared/data/text/bilibili_videos.jsonl, 362 videos): the query is one of a video's tags
(drawn at random), the target is the video, and a video is known only by its title, desc and dynamic
text. Videos are split 60/40; the gallery and the queries are the test videos; the two towers train on
(tag → video) pairs of the training videos only, so they are judged on videos they never saw. Rows:
BM25 over characters (1–2-grams) of title+desc+dynamic; zero-shot multilingual-USE (title only, and the
presence-weighted fusion of the three fields that vidlens uses); the trained towers after round 1
(in-batch + triplet, random → hard negatives) and round 2 (offline global hard negatives), and with
GraphSAGE-style neighbour aggregation over the semantic top-10 graph.

(a) Generated clips: short clips whose *spoken* (espeak-ng) or *drawn* text is described by a caption
in other words (some across languages); nothing but the media is given (no title), so search must go
through ASR, OCR and visual concepts. The real encoders run (ASR, OCR, frames, text). Rows: vidlens
zero-shot search vs BM25 over the OCR + ASR text the library extracted. Too few clips to train on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from vidlens.retrieval.embedder import fuse_text, l2n
from vidlens.retrieval.lexical import CharBM25
from vidlens.retrieval.metrics import recall_at, target_ranks

OUT = Path(__file__).resolve().parent / "out"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIELDS = ("title", "desc", "dynamic")
FIELD_WEIGHTS = {"title": 1.0, "desc": 0.8, "dynamic": 0.6}


def clean(text: object) -> str:
    text = str(text or "").strip()
    return "" if text in ("-", "—") else text


def encode_cached(texts: list[str], name: str) -> np.ndarray:
    cache = OUT / f"muse_{name}.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            if z["texts"].tolist() == texts:
                return z["vectors"]
    from vidlens.encoders import create_encoder

    t = time.perf_counter()
    vecs = create_encoder("muse_v3").encode_batch(texts)
    print(f"encoded {len(texts)} texts in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(cache, texts=np.array(texts, dtype=str), vectors=vecs)
    return vecs


def table(rows: list[dict]) -> str:
    lines = ["| method | R@1 | R@5 | R@20 | mean rank | median rank |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['R@1']:.3f} | {r['R@5']:.3f} | {r['R@20']:.3f} | "
                     f"{r['mean_rank']:.1f} | {r['median_rank']:.0f} |")
    return "\n".join(lines)


def bilibili(args: argparse.Namespace) -> None:
    from vidlens.retrieval.two_tower import TwoTowerConfig, VideoInputs, fit_two_tower

    path = DATA / "text" / "bilibili_videos.jsonl"
    if not path.exists():
        sys.exit(f"needs {path} (../shared/data)")
    videos = [json.loads(line) for line in path.open(encoding="utf-8")]
    rng = np.random.default_rng(args.seed)
    for v in videos:
        v["tag_list"] = [t.strip() for t in (v.get("tags") or "").split(",") if t.strip()]
    videos = [v for v in videos if v["tag_list"]]
    order = rng.permutation(len(videos))
    n_train = int(0.6 * len(videos))
    train = [videos[i] for i in order[:n_train]]
    test = [videos[i] for i in order[n_train:]]
    query_of = [v["tag_list"][int(rng.integers(len(v["tag_list"])))] for v in test]

    field_texts = {f: [clean(v.get(f)) for v in videos] for f in FIELDS}
    tags = sorted({t for v in videos for t in v["tag_list"]})
    all_texts = list(dict.fromkeys([t for f in FIELDS for t in field_texts[f] if t] + tags))
    vecs = encode_cached(all_texts, f"bilibili_{len(all_texts)}")
    row_of = {t: i for i, t in enumerate(all_texts)}
    dim = vecs.shape[1]

    def field_block(vs: list[dict], f: str) -> tuple[np.ndarray, np.ndarray]:
        present = np.array([bool(clean(v.get(f))) for v in vs])
        mat = np.zeros((len(vs), dim), np.float32)
        for i, v in enumerate(vs):
            if present[i]:
                mat[i] = vecs[row_of[clean(v.get(f))]]
        return mat, present

    def inputs_of(vs: list[dict]) -> VideoInputs:
        blocks, present = {}, {}
        for f in FIELDS:
            blocks[f], present[f] = field_block(vs, f)
        return VideoInputs([str(v["aid"]) for v in vs], blocks, present)

    test_in = inputs_of(test)
    q_test = np.stack([vecs[row_of[q]] for q in query_of])
    targets = list(range(len(test)))
    rows = []

    docs = [" ".join(clean(v.get(f)) for f in FIELDS) for v in test]
    bm25 = CharBM25().fit(docs)
    rows.append({"method": "BM25, char 1–2-grams of title+desc+dynamic",
                 **recall_at(target_ranks(np.stack([bm25.scores(q) for q in query_of]), targets))})
    rows.append({"method": "zero-shot muse_v3, title only",
                 **recall_at(target_ranks(q_test @ l2n(test_in.blocks["title"]).T, targets))})
    fused, _ = fuse_text(test_in.blocks, test_in.present, FIELD_WEIGHTS)
    rows.append({"method": "zero-shot muse_v3, title+desc+dynamic (vidlens fusion)",
                 **recall_at(target_ranks(q_test @ fused.T, targets))})
    zs = q_test @ fused.T
    bm = np.stack([bm25.scores(q) for q in query_of])
    hybrid = zs / zs.std() + 0.5 * bm / max(bm.std(), 1e-9)
    rows.append({"method": "zero-shot + 0.5·BM25 (z-scored sum)", **recall_at(target_ranks(hybrid, targets))})

    train_in = inputs_of(train)
    q_texts = sorted({t for v in train for t in v["tag_list"]})
    q_row = {t: i for i, t in enumerate(q_texts)}
    q_train = np.stack([vecs[row_of[t]] for t in q_texts])
    pairs = [(q_row[t], i) for i, v in enumerate(train) for t in v["tag_list"]]
    print(f"{len(train)} training videos, {len(pairs)} (tag → video) pairs, {len(test)} test videos/queries",
          file=sys.stderr)
    for neighbours in (0, 10):
        cfg = TwoTowerConfig(blocks=dict.fromkeys(FIELDS, dim), text_blocks=list(FIELDS), block_priors=FIELD_WEIGHTS,
                             query_dim=dim, hidden=512, neighbours=neighbours, epochs_round1=args.epochs,
                             warmup_epochs=2, epochs_round2=max(1, args.epochs // 3), batch_size=128, lr=1e-3)
        t = time.perf_counter()
        model, history = fit_two_tower(cfg, train_in, q_train, pairs, log=lambda m: print(m, file=sys.stderr))
        test_in.neighbours = None
        if neighbours:
            from vidlens.retrieval.two_tower import semantic_neighbours

            test_in.neighbours = semantic_neighbours(fused, neighbours)
        from vidlens.retrieval.two_tower import evaluate

        tag = " + GraphSAGE kNN-10" if neighbours else ""
        rows.append({"method": f"trained two towers{tag} ({time.perf_counter() - t:.0f} s train)",
                     **evaluate(model, test_in, q_test, targets)})
        _ = history
    # round 1 only, for the ablation (same seed, no offline round)
    cfg = TwoTowerConfig(blocks=dict.fromkeys(FIELDS, dim), text_blocks=list(FIELDS), block_priors=FIELD_WEIGHTS,
                         query_dim=dim, hidden=512, epochs_round1=args.epochs, warmup_epochs=2, epochs_round2=0,
                         batch_size=128, lr=1e-3)
    model, _ = fit_two_tower(cfg, train_in, q_train, pairs)
    test_in.neighbours = None
    from vidlens.retrieval.two_tower import evaluate

    rows.insert(-2, {"method": "trained two towers, round 1 only (no offline hard negatives)",
                     **evaluate(model, test_in, q_test, targets)})
    result = {"videos": len(videos), "train_videos": len(train), "test_videos": len(test), "pairs": len(pairs),
              "rows": rows}
    (OUT / "bench_search_bilibili.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"\nBilibili: {len(test)} test videos (gallery) and queries; two towers trained on {len(pairs)} pairs "
          f"of {len(train)} other videos\n")
    print(table(rows))


CLIP_CASES = [
    # (kind, content, lang, query)
    ("speech", "今天我们来做一道红烧肉", "zh", "红烧肉的做法"),
    ("speech", "这只小猫正在喝牛奶", "zh", "小猫喝牛奶"),
    ("speech", "the weather will be sunny and warm tomorrow", "en", "天气预报 晴天"),
    ("text", "篮球比赛 精彩集锦", "zh", "篮球比赛"),
    ("text", "SALE 50% OFF", "en", "打折促销"),
    ("speech", "welcome to my guitar lesson", "en", "guitar tutorial"),
    ("text", "云南 旅行 VLOG", "zh", "云南旅游"),
    ("speech", "大家好 欢迎收看今天的新闻", "zh", "新闻播报"),
    ("text", "数学公开课 函数", "zh", "math class"),
    ("speech", "这款手机的电池非常耐用", "zh", "手机评测"),
    ("speech", "let us go fishing at the lake", "en", "湖边钓鱼"),
    ("text", "健身 腹肌训练", "zh", "workout abs"),
]


def clips(args: argparse.Namespace) -> None:
    import vidlens
    from vidlens.retrieval import search
    from vidlens.testing.clips import make_clip

    work = OUT / "search_clips"
    (work / "media").mkdir(parents=True, exist_ok=True)
    patterns = ["testsrc2", "smptebars", "rgbtestsrc", "pal75bars"]
    paths = []
    for i, (kind, content, lang, _) in enumerate(CLIP_CASES):
        p = work / "media" / f"clip{i:02d}.mp4"
        if not p.exists():
            kw = {"speech": content, "lang": lang} if kind == "speech" else {"text": content, "tone_hz": 300 + 40 * i}
            make_clip(p, duration=4.0, size=(480, 270), pattern=patterns[i % 4], **kw)
        paths.append(p)
    lib = vidlens.open(work / "lib")
    report = lib.ingest(paths)
    id_of = {r.item: r.video_id for r in report.results}
    t = time.perf_counter()
    ext = lib.extract()
    print(f"extracted {ext.videos} clips in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    ids = [id_of[str(p)] for p in paths]
    rows = []
    ranks = []
    for i, (_, _, _, query) in enumerate(CLIP_CASES):
        hits = search(lib, query, k=len(ids))
        order = [h["id"] for h in hits]
        ranks.append(order.index(ids[i]) + 1 if ids[i] in order else len(ids))
    rows.append({"method": "vidlens zero-shot (ASR+OCR+concepts through muse_v3)", **recall_at(np.array(ranks))})
    docs = []
    for vid in ids:
        fs = lib.features(vid)
        docs.append(" ".join([fs.texts.get("asr", ""), fs.texts.get("ocr", "")]))
    bm25 = CharBM25().fit(docs)
    scores = np.stack([bm25.scores(q) for _, _, _, q in CLIP_CASES])
    rows.append({"method": "BM25 over the extracted ASR+OCR text", **recall_at(target_ranks(scores, range(len(ids))))})
    detail = [{"query": q, "content": c, "asr_ocr": d[:80], "rank": r}
              for (_, c, _, q), d, r in zip(CLIP_CASES, docs, ranks, strict=True)]
    (OUT / "bench_search_clips.json").write_text(json.dumps({"rows": rows, "detail": detail}, indent=2,
                                                            ensure_ascii=False))
    print(f"\nGenerated clips: {len(ids)} clips, one caption query each (gallery = the {len(ids)} clips)\n")
    print(table(rows))
    for d in detail:
        print(f"- rank {d['rank']}: {d['query']!r} → {d['content']!r} (extracted: {d['asr_ocr']!r})")
    lib.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["bilibili", "clips"])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (more than 1 thrashes 2 shared cores)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    bilibili(args) if args.part == "bilibili" else clips(args)


if __name__ == "__main__":
    main()
