"""`Tagger`: recall → rank → select, the whole tagging of one video, plus its training and evaluation.

Example:
    >>> from vidlens.tags import TagLibrary, Tagger, VideoDoc
    >>> tagger = Tagger(TagLibrary(lib), encoder=create_encoder("muse_v3"))  # doctest: +SKIP
    >>> tagger.tag(VideoDoc.from_features(lib.features(vid)))  # doctest: +SKIP
    {'video_id': ..., 'core': [{'tag': '白月光穿搭', 'score': 0.91, 'channels': ['content_text']}], 'related': [...]}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from vidlens.tags.library import TagLibrary
from vidlens.tags.ranker import RANKERS, TagRanker, load_ranker
from vidlens.tags.recall import RECALL_CHANNELS, Candidate, RecallChannel, TaggingContext, VideoDoc, recall_all

DEFAULT_CHANNELS = ("content_text", "product_text", "query", "cross_modal", "similar_videos")


class TagSelector(BaseEstimator):
    """Splits ranked tags into core tags (what the video is about) and related tags (what is in it).

    Core tags are the best ``n_core`` scoring at least ``core_min_score``; phrase tags get
    ``phrase_core_bonus`` added for that choice (a phrase tag usually names the video's point). An atomic tag
    that is a component of a chosen core phrase goes to the related tags. Related tags are the next
    ``n_related`` scoring at least ``related_min_score``.

    Args:
        n_core: most core tags.
        core_min_score: lowest score of a core tag.
        n_related: most related tags.
        related_min_score: lowest score of a related tag.
        phrase_core_bonus: added to phrase tags' scores when choosing core tags.
    """

    def __init__(self, n_core: int = 3, core_min_score: float = 0.5, n_related: int = 7,
                 related_min_score: float = 0.2, phrase_core_bonus: float = 0.05):
        self.n_core = n_core
        self.core_min_score = core_min_score
        self.n_related = n_related
        self.related_min_score = related_min_score
        self.phrase_core_bonus = phrase_core_bonus

    def select(self, ranked: list[dict[str, Any]], components: dict[int, set[int]] | None = None
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``ranked``: dicts with ``tag_id``, ``score``, ``kind``; returns ``(core, related)``."""
        components = components or {}
        by_core = sorted(ranked, key=lambda r: -(r["score"] + (self.phrase_core_bonus if r.get("kind") == "phrase"
                                                               else 0.0)))
        core, inside = [], set()
        for r in by_core:
            if len(core) >= self.n_core or r["score"] < self.core_min_score:
                break
            if r["tag_id"] in inside:
                continue
            core.append(r)
            inside |= components.get(r["tag_id"], set())
        chosen = {r["tag_id"] for r in core}
        related = [r for r in sorted(ranked, key=lambda r: -r["score"])
                   if r["tag_id"] not in chosen and r["score"] >= self.related_min_score][:self.n_related]
        return core, related


class Tagger:
    """Recall channels → relevance ranker → core/related selection.

    Args:
        tags: the tag library.
        encoder: text encoder (tags, queries, loose records); ``None`` disables ``cross_modal`` and the
            cosine part of the rankers.
        channels: channel names (default: all five) or ``{name: RecallChannel}``.
        ranker: a ranker name (``zero_shot``, ``late_fusion``, ``attention_fusion``), instance, or saved folder.
        selector: a :class:`TagSelector`.
        max_candidates: most candidates passed to the ranker (best channel evidence first).
    """

    def __init__(self, tags: TagLibrary, encoder: Any = None,
                 channels: Sequence[str] | dict[str, RecallChannel] | None = None,
                 ranker: str | TagRanker | Path | None = None, selector: TagSelector | None = None,
                 max_candidates: int = 100):
        self.ctx = TaggingContext(tags, encoder)
        if channels is None:
            channels = [c for c in DEFAULT_CHANNELS if encoder is not None or c != "cross_modal"]
        self.channels = (dict(channels) if isinstance(channels, dict)
                         else {name: RECALL_CHANNELS.create(name) for name in channels})
        if ranker is None:
            ranker = "zero_shot"
        if isinstance(ranker, Path) or (isinstance(ranker, str) and ranker not in RANKERS):
            ranker = load_ranker(ranker)
        self.ranker = RANKERS.create(ranker) if isinstance(ranker, str) else ranker
        self.selector = selector or TagSelector()
        self.max_candidates = max_candidates

    @property
    def tags(self) -> TagLibrary:
        """The tag library."""
        return self.ctx.tags

    def use_tagged_videos(self, docs: Iterable[VideoDoc], sources: Iterable[str] = ("gold", "manual")) -> int:
        """Make the tagged videos among ``docs`` the pool of ``similar_videos``; returns the pool size."""
        tagged = self.tags.video_tags(sources=list(sources))
        ids, vecs = [], []
        for doc in docs:
            v = doc.text_vector()
            if doc.video_id in tagged and v is not None:
                ids.append(doc.video_id)
                vecs.append(v)
        if ids:
            self.ctx.set_video_pool(ids, np.stack(vecs), {i: tagged[i] for i in ids})
        return len(ids)

    def candidates(self, doc: VideoDoc) -> dict[int, Candidate]:
        """Every channel's candidates, merged by tag, capped at ``max_candidates``."""
        cands = recall_all(doc, self.ctx, self.channels)
        if len(cands) > self.max_candidates:
            keep = sorted(cands.values(), key=lambda c: -sum(c.scores.values()))[:self.max_candidates]
            cands = {c.tag_id: c for c in keep}
        return cands

    def rank(self, doc: VideoDoc, cands: dict[int, Candidate] | None = None) -> list[dict[str, Any]]:
        """Candidates with ranker scores, best first."""
        cands = self.candidates(doc) if cands is None else cands
        items = list(cands.values())
        scores = self.ranker.score(doc, items, self.ctx) if items else np.zeros(0)
        info = self.ctx.tag_info()
        ranked = [{"tag_id": c.tag_id, "tag": info[c.tag_id]["name"], "kind": info[c.tag_id]["kind"],
                   "score": round(float(s), 4), "channels": sorted(c.scores),
                   "channel_scores": {k: round(v, 4) for k, v in c.scores.items()}}
                  for c, s in zip(items, scores, strict=True)]
        ranked.sort(key=lambda r: (-r["score"], r["tag_id"]))
        return ranked

    def tag(self, doc: VideoDoc) -> dict[str, Any]:
        """Tag one video: ``{video_id, core: [...], related: [...], n_candidates}``, each tag with its
        ``score`` and the ``channels`` that recalled it."""
        ranked = self.rank(doc)
        phrase_ids = [r["tag_id"] for r in ranked if r["kind"] == "phrase"]
        components = self._components(phrase_ids)
        core, related = self.selector.select(ranked, components)

        def show(r):
            return {"tag": r["tag"], "score": r["score"], "kind": r["kind"], "channels": r["channels"]}

        return {"video_id": doc.video_id, "core": [show(r) for r in core], "related": [show(r) for r in related],
                "n_candidates": len(ranked)}

    def _components(self, phrase_ids: list[int]) -> dict[int, set[int]]:
        if not phrase_ids:
            return {}
        from sqlalchemy import select

        from vidlens.tags.models import TagLink

        out: dict[int, set[int]] = {}
        with self.tags.session() as s:
            for src, dst in s.execute(select(TagLink.src_id, TagLink.dst_id)
                                      .where(TagLink.src_id.in_(phrase_ids), TagLink.relation == "component")):
                out.setdefault(src, set()).add(dst)
        return out

    def fit(self, docs: Sequence[VideoDoc], gold: dict[str, Iterable[int]]) -> Tagger:
        """Train the ranker on tagged videos: ``gold`` maps video ids to their relevant tag ids."""
        samples = [(d, self.candidates(d), set(gold.get(d.video_id, ()))) for d in docs if d.video_id in gold]
        self.ranker.fit(samples, self.ctx)
        return self


def evaluate(tagger: Tagger, docs: Sequence[VideoDoc], gold: dict[str, Iterable[int]],
             ks: Sequence[int] = (5, 10)) -> dict[str, Any]:
    """Precision/recall@k of the ranked tags against ``gold`` tag ids, and recall per channel.

    Returns:
        ``{"n_videos", "precision@k", "recall@k" …, "candidate_recall", "channels": {name: {recall,
        mean_candidates}}}``; recall counts every gold tag, also those no channel can reach.
    """
    out: dict[str, Any] = {"n_videos": 0}
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("precision", "recall")}
    chan = {name: [0, 0] for name in tagger.channels}
    cand_hits = gold_total = 0
    for doc in docs:
        g = set(gold.get(doc.video_id, ()))
        if not g:
            continue
        out["n_videos"] += 1
        cands = tagger.candidates(doc)
        ranked = [r["tag_id"] for r in tagger.rank(doc, cands)]
        for k in ks:
            hits = len(set(ranked[:k]) & g)
            sums[f"precision@{k}"] += hits / k
            sums[f"recall@{k}"] += hits / len(g)
        cand_hits += len(set(cands) & g)
        gold_total += len(g)
        for name in chan:
            got = {t for t, c in cands.items() if name in c.scores}
            chan[name][0] += len(got & g)
            chan[name][1] += len(got)
    n = max(out["n_videos"], 1)
    out.update({k: round(v / n, 4) for k, v in sums.items()})
    out["candidate_recall"] = round(cand_hits / max(gold_total, 1), 4)
    out["channels"] = {name: {"recall": round(h / max(gold_total, 1), 4), "mean_candidates": round(c / n, 2)}
                       for name, (h, c) in chan.items()}
    return out


__all__ = ["DEFAULT_CHANNELS", "TagSelector", "Tagger", "evaluate"]
