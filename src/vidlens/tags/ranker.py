"""Relevance rankers: score (video, candidate tag) pairs; registered in :data:`RANKERS`.

``zero_shot``
    Works before any training: the cosine between the tag's text vector and the video's text-space
    vector, blended with the channels' evidence (noisy-or of their scores).
``late_fusion``
    Each present modality vector (``text.*``, ``frames``, ``cover``, ``audio`` …) is projected to
    ``hidden``; the video is their masked mean; an MLP scores ``[video, tag, video ⊙ tag, side]``.
``attention_fusion``
    The tag attends over the projected modality vectors (scaled dot product, masked), so each tag reads
    the modalities that speak about it; the same MLP scores the attended video vector.

``side`` holds the recall channels' scores, how many channels recalled the tag, the tag's popularity
(log video and click counts), its kind, and the zero-shot cosine. The trained variants use a triplet loss
``max(0, margin − s(v, t⁺) + s(v, t⁻))`` over each video's positives against its hardest recalled
negatives (plus random library tags), then Platt-calibrate scores to [0, 1] on the training pairs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from vidlens.errors import NotFoundError
from vidlens.models.registry import Registry
from vidlens.tags.recall import RECALL_CHANNELS, Candidate, TaggingContext, VideoDoc

RANKERS: Registry = Registry("tag ranker")
CONFIG_FILE = "ranker.json"
WEIGHTS_FILE = "weights.safetensors"

Sample = tuple[VideoDoc, dict[int, Candidate], set[int]]


def _noisy_or(scores: dict[str, float]) -> float:
    p = 1.0
    for s in scores.values():
        p *= 1.0 - min(max(s, 0.0), 1.0)
    return 1.0 - p


def _cosines(doc: VideoDoc, cands: Sequence[Candidate], ctx: TaggingContext) -> np.ndarray:
    vec = doc.text_vector()
    if vec is None or ctx.encoder is None or not cands:
        return np.zeros(len(cands), np.float32)
    return ctx.vectors_for([c.tag_id for c in cands]) @ vec


class TagRanker(BaseEstimator):
    """Base of the rankers: ``fit(samples, ctx)`` and ``score(doc, candidates, ctx) -> [0, 1]``."""

    registry_name: str = ""

    def fit(self, samples: Sequence[Sample], ctx: TaggingContext) -> TagRanker:
        """Learn from ``(doc, candidates, positive tag ids)`` samples (the zero-shot ranker learns nothing)."""
        return self

    def score(self, doc: VideoDoc, cands: Sequence[Candidate], ctx: TaggingContext) -> np.ndarray:
        """Relevance in [0, 1] of each candidate."""
        raise NotImplementedError

    def save(self, folder: str | Path) -> None:
        """Write ``ranker.json`` (name, parameters, learned scalars) and weights when there are any."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        spec = {"name": self.registry_name, "params": self.get_params(), "state": self._state()}
        (folder / CONFIG_FILE).write_text(json.dumps(spec, ensure_ascii=False, indent=2), encoding="utf-8")

    def _state(self) -> dict[str, Any]:
        return {}


@RANKERS.register("zero_shot")
class ZeroShotRanker(TagRanker):
    """Untrained ranker.

    Args:
        similarity_weight: share of the score from the tag–video cosine (the rest: channel evidence).
        sim_floor: cosine that maps to 0.
        sim_scale: cosine span that maps to 1 above the floor.
    """

    def __init__(self, similarity_weight: float = 0.4, sim_floor: float = 0.1, sim_scale: float = 0.5):
        self.similarity_weight = similarity_weight
        self.sim_floor = sim_floor
        self.sim_scale = sim_scale

    def score(self, doc: VideoDoc, cands: Sequence[Candidate], ctx: TaggingContext) -> np.ndarray:
        evidence = np.array([_noisy_or(c.scores) for c in cands], np.float32)
        if ctx.encoder is None or doc.text_vector() is None:
            return evidence
        sim = np.clip((_cosines(doc, cands, ctx) - self.sim_floor) / self.sim_scale, 0.0, 1.0)
        return self.similarity_weight * sim + (1 - self.similarity_weight) * evidence


class _NeuralRanker(TagRanker):
    fusion = "late"

    def __init__(self, hidden: int = 128, dropout: float = 0.1, margin: float = 0.3, n_negatives: int = 16,
                 n_random_negatives: int = 4, epochs: int = 30, lr: float = 2e-3, weight_decay: float = 1e-4,
                 modal_dropout: float = 0.1, random_state: int = 0):
        self.hidden = hidden
        self.dropout = dropout
        self.margin = margin
        self.n_negatives = n_negatives
        self.n_random_negatives = n_random_negatives
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.modal_dropout = modal_dropout
        self.random_state = random_state

    # -- features ----------------------------------------------------------------------------------
    def _side(self, doc: VideoDoc, cands: Sequence[Candidate], ctx: TaggingContext) -> np.ndarray:
        info = ctx.tag_info()
        cos = _cosines(doc, cands, ctx)
        rows = []
        for c, cs in zip(cands, cos, strict=True):
            t = info.get(c.tag_id, {})
            rows.append([c.scores.get(ch, 0.0) for ch in self.channels_] + [
                len(c.scores) / 3.0, math.log1p(t.get("video_count", 0)) / 5.0,
                math.log1p(t.get("click_count", 0)) / 5.0, float(t.get("kind") == "phrase"), float(cs)])
        return np.asarray(rows, np.float32).reshape(len(cands), len(self.channels_) + 5)

    def _tokens(self, doc: VideoDoc) -> tuple[list[np.ndarray], np.ndarray]:
        toks, mask = [], np.zeros(len(self.modalities_), bool)
        for i, (name, dim) in enumerate(self.modalities_):
            v = doc.vectors.get(name)
            if v is not None and v.shape == (dim,) and np.any(v):
                toks.append(np.asarray(v, np.float32))
                mask[i] = True
            else:
                toks.append(np.zeros(dim, np.float32))
        return toks, mask

    def _build(self, tag_dim: int):
        import torch

        from vidlens.tags._ranker_net import PairScorer

        torch.manual_seed(self.random_state)
        self.model_ = PairScorer([d for _, d in self.modalities_], tag_dim, len(self.channels_) + 5, self.hidden,
                                 self.fusion, self.dropout)
        return self.model_

    def _forward(self, docs_tokens, masks, tag_vecs, side, train: bool = False):
        import torch

        toks = [torch.from_numpy(np.stack([d[m] for d in docs_tokens])) for m in range(len(self.modalities_))]
        mask = torch.from_numpy(np.stack(masks))
        if train and self.modal_dropout > 0:
            drop = torch.rand(mask.shape) < self.modal_dropout
            keep = mask & ~drop
            # never drop every modality of a row
            keep = torch.where(keep.any(dim=1, keepdim=True), keep, mask)
            mask = keep
        return self.model_(toks, mask, torch.from_numpy(tag_vecs), torch.from_numpy(side))

    # -- training ----------------------------------------------------------------------------------
    def fit(self, samples: Sequence[Sample], ctx: TaggingContext) -> _NeuralRanker:
        import torch

        rng = np.random.default_rng(self.random_state)
        self.channels_ = RECALL_CHANNELS.list()
        dims: dict[str, int] = {}
        for doc, _, _ in samples:
            for k, v in doc.vectors.items():
                dims.setdefault(k, int(v.shape[0]))
        self.modalities_ = sorted(dims.items())
        if not self.modalities_:
            raise ValueError("the trained rankers need feature vectors; none of the training videos has any")
        all_ids, _, _ = ctx.tag_vectors()
        prepared = []
        for doc, cands, positives in samples:
            pos = [c for t, c in cands.items() if t in positives]
            neg = [c for t, c in cands.items() if t not in positives]
            if not pos or (not neg and self.n_random_negatives == 0):
                continue
            rand_ids = [int(t) for t in rng.choice(all_ids, size=min(self.n_random_negatives, len(all_ids)),
                                                   replace=False) if t not in positives and t not in cands]
            neg = neg + [Candidate(t) for t in rand_ids]
            if not neg:
                continue
            items = pos + neg
            toks, mask = self._tokens(doc)
            prepared.append((toks, mask, ctx.vectors_for([c.tag_id for c in items]), self._side(doc, items, ctx),
                             len(pos)))
        if not prepared:
            raise ValueError("no training video has a recalled positive and a negative; nothing to learn")
        model = self._build(prepared[0][2].shape[1])
        opt = torch.optim.AdamW(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self.history_ = []
        for _epoch in range(self.epochs):
            model.train()
            order = rng.permutation(len(prepared))
            total = 0.0
            for start in range(0, len(order), 16):
                batch = [prepared[i] for i in order[start:start + 16]]
                # One forward pass over every pair of the batch's videos, then a triplet loss per video.
                lengths = [len(b[2]) for b in batch]
                toks = [b[0] for b, n in zip(batch, lengths, strict=True) for _ in range(n)]
                masks = [b[1] for b, n in zip(batch, lengths, strict=True) for _ in range(n)]
                scores = self._forward(toks, masks, np.concatenate([b[2] for b in batch]),
                                       np.concatenate([b[3] for b in batch]), train=True)
                losses = []
                for s, (_, _, _, _, n_pos) in zip(torch.split(scores, lengths), batch, strict=True):
                    sp, sn = s[:n_pos], s[n_pos:]
                    # Hard negatives: the highest-scoring negatives under the current model.
                    hard = torch.topk(sn, min(self.n_negatives, len(sn))).values
                    losses.append(torch.relu(self.margin - sp[:, None] + hard[None, :]).mean()
                                  + torch.relu(self.margin - sp[:, None] + hard.max()).mean())
                loss = torch.stack(losses).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
            self.history_.append(round(total / max(1, math.ceil(len(order) / 16)), 5))
        self._calibrate(prepared)
        return self

    def _calibrate(self, prepared) -> None:
        import torch
        from sklearn.linear_model import LogisticRegression

        self.model_.eval()
        xs, ys = [], []
        with torch.no_grad():
            for toks, mask, tvec, side, n_pos in prepared:
                n = len(tvec)
                s = self._forward([toks] * n, [mask] * n, tvec, side).numpy()
                xs.append(s)
                ys.append(np.r_[np.ones(n_pos), np.zeros(n - n_pos)])
        x, y = np.concatenate(xs)[:, None], np.concatenate(ys)
        lr = LogisticRegression().fit(x, y)
        self.calibration_ = [float(lr.coef_[0, 0]), float(lr.intercept_[0])]

    def score(self, doc: VideoDoc, cands: Sequence[Candidate], ctx: TaggingContext) -> np.ndarray:
        import torch

        if not cands:
            return np.zeros(0, np.float32)
        if not hasattr(self, "model_"):
            raise NotFoundError(f"ranker {self.registry_name!r} is not trained; fit it or use zero_shot")
        self.model_.eval()
        toks, mask = self._tokens(doc)
        n = len(cands)
        with torch.no_grad():
            s = self._forward([toks] * n, [mask] * n, ctx.vectors_for([c.tag_id for c in cands]),
                              self._side(doc, cands, ctx)).numpy()
        a, b = self.calibration_
        return (1 / (1 + np.exp(-(a * s + b)))).astype(np.float32)

    # -- persistence -------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        if not hasattr(self, "model_"):
            return {}
        return {"channels": self.channels_, "modalities": [list(m) for m in self.modalities_],
                "calibration": self.calibration_, "history": self.history_,
                "tag_dim": int(self.model_.tag_proj.in_features)}

    def save(self, folder: str | Path) -> None:
        super().save(folder)
        if hasattr(self, "model_"):
            from vidlens.models.component import save_weights

            save_weights(self.model_, Path(folder) / WEIGHTS_FILE)

    def _restore(self, state: dict[str, Any], folder: Path) -> None:
        if not state:
            return
        from vidlens.models.component import load_weights

        self.channels_ = list(state["channels"])
        self.modalities_ = [(m, int(d)) for m, d in state["modalities"]]
        self.calibration_ = list(state["calibration"])
        self.history_ = list(state.get("history", []))
        self._build(int(state["tag_dim"]))
        load_weights(self.model_, folder / WEIGHTS_FILE)


@RANKERS.register("late_fusion")
class LateFusionRanker(_NeuralRanker):
    """Late fusion: masked mean of projected modality vectors, then an MLP with the tag vector.

    Args:
        hidden: projection and MLP width.
        dropout: MLP dropout.
        margin: triplet-loss margin.
        n_negatives: hardest negatives per positive.
        n_random_negatives: random library tags added to each video's negatives.
        epochs, lr, weight_decay: optimisation.
        modal_dropout: chance of hiding each modality in training (robustness to missing ones).
        random_state: seed.
    """

    fusion = "late"


@RANKERS.register("attention_fusion")
class AttentionFusionRanker(_NeuralRanker):
    """Attention fusion: the tag vector attends over the projected modality vectors. Parameters as
    :class:`LateFusionRanker`."""

    fusion = "attention"


def load_ranker(folder: str | Path) -> TagRanker:
    """Rebuild a ranker saved with ``save``.

    Raises:
        NotFoundError: no ``ranker.json`` in the folder.
    """
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise NotFoundError(f"{folder}: no {CONFIG_FILE}; not a saved tag ranker")
    spec = json.loads(path.read_text(encoding="utf-8"))
    ranker = RANKERS.create(spec["name"], **spec["params"])
    if isinstance(ranker, _NeuralRanker):
        ranker._restore(spec.get("state") or {}, folder)
    return ranker


__all__ = ["RANKERS", "AttentionFusionRanker", "LateFusionRanker", "TagRanker", "ZeroShotRanker", "load_ranker"]
