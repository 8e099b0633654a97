"""The trainable two-tower retrieval model: a video tower over the FeatureSet, a text tower over queries.

**Video tower.** Inputs are named blocks, each a pooled vector with a presence bit: ``visual`` (frames +
cover), ``audio``, and one block per text field (``text.title``, ``text.summary``, …, all in the
sentence encoder's space). Each block is projected to ``dim``; a learned weight per block, softmaxed over
the blocks a video *has* (a missing modality takes no weight rather than adding a zero vector), mixes
them; a residual MLP refines the mix. Text-field projections start as the identity and the block
weights as the zero-shot field weights, so before training the tower reproduces the zero-shot text-side
vector and training can only move away from a working starting point.

Optional **neighbour aggregation** (GraphSAGE-style, homogeneous — the variant the Taobao write-up found
best): each video also max-pools ``ReLU(W h_u)`` over its neighbours ``u`` in a video graph (co-click
edges when there are click logs, semantic top-k edges from the zero-shot vectors otherwise) and adds the
result through a learned gate.

**Text tower.** The frozen multilingual sentence vector plus a small trainable residual MLP (zero-
initialised, so it starts as the identity).

**Training** (:func:`fit_two_tower`), following the write-up: round 1 uses the in-batch contrastive
loss plus a triplet loss whose negatives are *random* during the warm-up epochs and the *hardest
in-batch* ones after; round 2 mines each training query's *offline global hard negative* over the whole
gallery with the round-1 model and trains with the quintuplet loss (online + offline negatives).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidlens.errors import NotFoundError, VidlensError
from vidlens.models.registry import LOSSES
from vidlens.retrieval import losses as _losses  # noqa: F401  (registers the retrieval losses)
from vidlens.retrieval.embedder import TEXT_FIELD_WEIGHTS, VideoEmbedder, aligned_rows, l2n
from vidlens.retrieval.metrics import recall_at, target_ranks

CONFIG_FILE = "two_tower.json"
WEIGHTS_FILE = "weights.safetensors"


@dataclass
class TwoTowerConfig:
    """Architecture and training settings (every key explicit; saved with the model).

    Attributes:
        blocks: video-side block name → input size.
        text_blocks: blocks that live in the query encoder's space (identity-initialised).
        block_priors: starting weight of each block (zero-shot field weights; others small).
        query_dim: size of the frozen query vectors (= output size).
        hidden: width of the residual MLPs.
        neighbours: neighbours per video for GraphSAGE-style aggregation (0: off).
        temperature: InfoNCE temperature.
        margin: triplet / online quintuplet margin; margin_offline: offline quintuplet margin.
        warmup_epochs, epochs_round1, epochs_round2: training schedule (round 2: offline hard negatives).
        batch_size, lr, weight_decay, seed: optimiser settings.
        offline_pool: offline hard negatives are drawn from each query's top this many non-positives.
    """

    blocks: dict[str, int]
    text_blocks: list[str]
    block_priors: dict[str, float] = field(default_factory=dict)
    query_dim: int = 512
    hidden: int = 512
    neighbours: int = 0
    temperature: float = 0.05
    margin: float = 0.2
    margin_offline: float = 0.1
    warmup_epochs: int = 2
    epochs_round1: int = 10
    epochs_round2: int = 4
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    offline_pool: int = 10

    def validate(self) -> None:
        """Raise :class:`VidlensError` naming the bad key."""
        for b in self.text_blocks:
            if self.blocks.get(b) != self.query_dim:
                raise VidlensError(f"two_tower.text_blocks: block {b!r} must have size query_dim={self.query_dim}")
        if not self.blocks:
            raise VidlensError("two_tower.blocks: no input blocks")


class VideoTower(nn.Module):
    """Named pooled blocks (with presence) → one unit vector of size ``query_dim``."""

    def __init__(self, config: TwoTowerConfig):
        super().__init__()
        dim = config.query_dim
        self.names = list(config.blocks)
        self.proj = nn.ModuleDict()
        for name, d in config.blocks.items():
            lin = nn.Linear(d, dim, bias=False)
            if name in config.text_blocks:
                with torch.no_grad():
                    lin.weight.copy_(torch.eye(dim))
            else:
                nn.init.normal_(lin.weight, std=1.0 / math.sqrt(d))
            self.proj[_key(name)] = lin
        priors = [max(config.block_priors.get(n, 0.02), 1e-4) for n in self.names]
        self.logits = nn.Parameter(torch.log(torch.tensor(priors, dtype=torch.float32)))
        self.mlp = _residual_mlp(dim, config.hidden)
        self.use_neighbours = config.neighbours > 0
        if self.use_neighbours:
            self.neigh = nn.Linear(dim, dim)
            self.neigh_gate = nn.Parameter(torch.zeros(1))

    def base(self, x: Mapping[str, torch.Tensor], present: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Block mix + residual MLP, before neighbour aggregation (not normalised)."""
        zs, masks = [], []
        for name in self.names:
            zs.append(self.proj[_key(name)](x[name]))
            masks.append(present[name])
        z = torch.stack(zs, dim=1)                       # (B, blocks, dim)
        m = torch.stack(masks, dim=1).bool()             # (B, blocks)
        logits = self.logits.expand(len(z), -1).masked_fill(~m, float("-inf"))
        w = torch.softmax(logits, dim=1).nan_to_num(0.0)  # rows with no block at all stay zero
        h = (w.unsqueeze(-1) * z).sum(dim=1)
        h = F.normalize(h, dim=-1, eps=1e-8)
        return h + self.mlp(h)

    def forward(self, x: Mapping[str, torch.Tensor], present: Mapping[str, torch.Tensor],
                neighbour_h: torch.Tensor | None = None) -> torch.Tensor:
        """Unit video vectors; ``neighbour_h`` ``(B, K, dim)``: neighbours' :meth:`base` outputs."""
        h = self.base(x, present)
        if self.use_neighbours and neighbour_h is not None:
            pooled = F.relu(self.neigh(neighbour_h)).max(dim=1).values
            h = h + torch.tanh(self.neigh_gate) * pooled
        return F.normalize(h, dim=-1, eps=1e-8)


class TextTower(nn.Module):
    """Frozen sentence vector → unit vector, through a zero-initialised residual MLP."""

    def __init__(self, config: TwoTowerConfig):
        super().__init__()
        self.mlp = _residual_mlp(config.query_dim, config.hidden)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        q = F.normalize(q, dim=-1, eps=1e-8)
        return F.normalize(q + self.mlp(q), dim=-1, eps=1e-8)


def _residual_mlp(dim: int, hidden: int) -> nn.Sequential:
    mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
    nn.init.zeros_(mlp[2].weight)
    nn.init.zeros_(mlp[2].bias)
    return mlp


def _key(name: str) -> str:
    return name.replace(".", "__")


@dataclass
class VideoInputs:
    """The video side of a gallery: block arrays ``(N, d)``, presence ``(N,)`` and optional neighbours."""

    ids: list[str]
    blocks: dict[str, np.ndarray]
    present: dict[str, np.ndarray]
    neighbours: np.ndarray | None = None   # (N, K) row numbers

    def tensors(self, rows: Any = slice(None)) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        x = {b: torch.from_numpy(np.ascontiguousarray(a[rows], np.float32)) for b, a in self.blocks.items()}
        p = {b: torch.from_numpy(np.asarray(a[rows], bool)) for b, a in self.present.items()}
        return x, p


class TwoTowerModel(nn.Module):
    """Both towers and their config; :meth:`encode_videos` / :meth:`encode_queries` give unit vectors."""

    def __init__(self, config: TwoTowerConfig, meta: dict[str, Any] | None = None):
        super().__init__()
        config.validate()
        self.config = config
        self.meta = dict(meta or {})
        self.video = VideoTower(config)
        self.text = TextTower(config)

    def _video_all(self, inputs: VideoInputs) -> torch.Tensor:
        x, p = inputs.tensors()
        if self.video.use_neighbours and inputs.neighbours is not None:
            base = self.video.base(x, p)
            nb = base[torch.from_numpy(inputs.neighbours.astype(np.int64))]
            return self.video(x, p, nb)
        return self.video(x, p)

    @torch.no_grad()
    def encode_videos(self, inputs: VideoInputs) -> np.ndarray:
        """``(N, query_dim)`` unit video vectors."""
        self.eval()
        return self._video_all(inputs).numpy()

    @torch.no_grad()
    def encode_queries(self, q: np.ndarray) -> np.ndarray:
        """``(M, query_dim)`` unit query vectors from frozen sentence vectors."""
        self.eval()
        return self.text(torch.from_numpy(np.asarray(q, np.float32))).numpy()

    def save(self, folder: str | Path) -> Path:
        """Write ``two_tower.json`` and ``weights.safetensors`` into ``folder``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(folder / WEIGHTS_FILE))
        (folder / CONFIG_FILE).write_text(json.dumps({"config": asdict(self.config), "meta": self.meta},
                                                     ensure_ascii=False, indent=2), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> TwoTowerModel:
        """Rebuild a model saved by :meth:`save`."""
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / CONFIG_FILE).exists():
            raise NotFoundError(f"{folder}: no two-tower model here (no {CONFIG_FILE})")
        spec = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        model = cls(TwoTowerConfig(**spec["config"]), spec.get("meta"))
        model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        return model


# -- training ---------------------------------------------------------------------------------------------

def semantic_neighbours(vectors: np.ndarray, k: int) -> np.ndarray:
    """Top-``k`` neighbours of each row by cosine (itself excluded): the semantic kNN graph."""
    v = l2n(vectors)
    s = v @ v.T
    np.fill_diagonal(s, -np.inf)
    k = min(k, max(1, len(v) - 1))
    return np.argsort(-s, axis=1)[:, :k]


def evaluate(model: TwoTowerModel, inputs: VideoInputs, queries: np.ndarray, targets: Sequence[int]
             ) -> dict[str, float]:
    """R@1/5/20 and mean rank of each query's target video over the whole gallery."""
    v = model.encode_videos(inputs)
    q = model.encode_queries(queries)
    return recall_at(target_ranks(q @ v.T, targets))


def fit_two_tower(config: TwoTowerConfig, inputs: VideoInputs, queries: np.ndarray,
                  pairs: Sequence[tuple[int, int]], val: tuple[np.ndarray, Sequence[int]] | None = None,
                  log: Any = None) -> tuple[TwoTowerModel, list[dict]]:
    """Train both towers.

    Args:
        config: settings.
        inputs: the gallery's video inputs (all videos that can be retrieved).
        queries: ``(M, query_dim)`` frozen sentence vectors of the training query texts.
        pairs: (query row, video row) positives.
        val: optional (query vectors, target video rows) evaluated after each stage.
        log: optional callable receiving one line per epoch.

    Returns:
        The model and the history: one dict per stage (``zero-shot``, ``round 1``, ``round 2``) with
        its validation metrics, loss and seconds.
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = TwoTowerModel(config)
    if config.neighbours and inputs.neighbours is None:
        start = np.concatenate([a * p[:, None] for a, p in
                                ((inputs.blocks[b], inputs.present[b]) for b in config.text_blocks)], axis=1) \
            if config.text_blocks else next(iter(inputs.blocks.values()))
        inputs.neighbours = semantic_neighbours(start, config.neighbours)
    pairs = np.asarray(pairs, np.int64)
    positives: dict[int, set[int]] = {}
    for qi, vi in pairs:
        positives.setdefault(int(qi), set()).add(int(vi))
    q_all = torch.from_numpy(np.asarray(queries, np.float32))
    history: list[dict] = []

    def record(stage: str, loss: float, seconds: float) -> None:
        row = {"stage": stage, "loss": round(loss, 4), "seconds": round(seconds, 1)}
        if val is not None:
            row.update({k: round(v, 4) for k, v in evaluate(model, inputs, *val).items()})
        history.append(row)
        if log:
            log(json.dumps(row, ensure_ascii=False))

    record("zero-shot (untrained towers)", float("nan"), 0.0)
    info_nce = LOSSES.create("info_nce", temperature=config.temperature)
    triplet = LOSSES.create("triplet", margin=config.margin)
    quint = LOSSES.create("quintuplet", margin_online=config.margin, margin_offline=config.margin_offline)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    x_all, p_all = inputs.tensors()
    nb_all = torch.from_numpy(inputs.neighbours.astype(np.int64)) if inputs.neighbours is not None else None

    def batches() -> Any:
        order = rng.permutation(len(pairs))
        for start in range(0, len(order), config.batch_size):
            yield pairs[order[start:start + config.batch_size]]

    def step(batch: np.ndarray, epoch_kind: str, offline: np.ndarray | None) -> float:
        model.train()
        # all videos of the batch (positives, and offline negatives in round 2) are encoded once
        cols = list(dict.fromkeys(batch[:, 1].tolist() + ([] if offline is None else offline[batch[:, 0]].tolist())))
        col_of = {v: i for i, v in enumerate(cols)}
        rows = torch.tensor(cols)
        x = {b: t[rows] for b, t in x_all.items()}
        p = {b: t[rows] for b, t in p_all.items()}
        if nb_all is not None and model.video.use_neighbours:
            base_all = model.video.base(x_all, p_all)
            v = model.video(x, p, base_all[nb_all[rows]])
        else:
            v = model.video(x, p)
        q = model.text(q_all[torch.from_numpy(batch[:, 0])])
        s = q @ v.T
        pos = torch.tensor([col_of[int(vi)] for vi in batch[:, 1]])
        same = torch.tensor([[c in positives[int(qi)] for c in cols] for qi in batch[:, 0]])
        loss = info_nce(s, pos, same)
        if epoch_kind == "warmup":
            loss = loss + triplet(s, pos, same, hard=False)
        elif epoch_kind == "hard":
            loss = loss + triplet(s, pos, same, hard=True)
        else:
            off_cols = torch.tensor([col_of[int(offline[int(qi)])] for qi in batch[:, 0]])
            s_off = s.gather(1, off_cols[:, None]).squeeze(1)
            loss = loss + quint(s, pos, s_off, same)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    t0 = time.perf_counter()
    losses: list[float] = []
    for epoch in range(config.epochs_round1):
        kind = "warmup" if epoch < config.warmup_epochs else "hard"
        for g in opt.param_groups:  # linear learning-rate warm-up over the warm-up epochs
            g["lr"] = config.lr * min(1.0, (epoch + 1) / max(1, config.warmup_epochs))
        losses = [step(b, kind, None) for b in batches()]
        if log:
            log(f"round 1 epoch {epoch + 1} ({kind} negatives): loss {np.mean(losses):.4f}")
    record("round 1: in-batch + triplet (random → hard negatives)", float(np.mean(losses or [np.nan])),
           time.perf_counter() - t0)
    if config.epochs_round2 > 0:
        t0 = time.perf_counter()
        offline = mine_offline_negatives(model, inputs, np.asarray(queries, np.float32), positives,
                                         config.offline_pool, rng)
        for epoch in range(config.epochs_round2):
            losses = [step(b, "quintuplet", offline) for b in batches()]
            if log:
                log(f"round 2 epoch {epoch + 1} (offline hard negatives): loss {np.mean(losses):.4f}")
        record("round 2: + offline global hard negatives (quintuplet)", float(np.mean(losses or [np.nan])),
               time.perf_counter() - t0)
    model.eval()
    return model, history


def mine_offline_negatives(model: TwoTowerModel, inputs: VideoInputs, queries: np.ndarray,
                           positives: Mapping[int, set[int]], pool: int, rng: np.random.Generator) -> np.ndarray:
    """For every training query, one video from its top-``pool`` non-positive videos over the gallery."""
    v = model.encode_videos(inputs)
    q = model.encode_queries(queries)
    s = q @ v.T
    out = np.zeros(len(queries), np.int64)
    for qi in range(len(queries)):
        order = np.argsort(-s[qi])
        cands = [int(j) for j in order[: pool + len(positives.get(qi, ()))] if int(j) not in positives.get(qi, ())]
        out[qi] = cands[int(rng.integers(len(cands)))] if cands else int(order[-1])
    return out


# -- a library's two-tower model ---------------------------------------------------------------------------

LIBRARY_TEXT_BLOCKS = tuple(f"text.{f}" for f in TEXT_FIELD_WEIGHTS)


def library_inputs(lib: Any, embedder: VideoEmbedder | None = None) -> tuple[VideoInputs, VideoEmbedder, Any]:
    """The video inputs of every video of ``lib`` with any feature: ``visual``, ``audio`` and text blocks."""
    from vidlens.retrieval.library_index import SPACE_FEATURES, LibraryFeatures

    lf = LibraryFeatures.load(lib, SPACE_FEATURES["video"])
    embedder = embedder or VideoEmbedder().fit(lf.pooled)
    ids = sorted(lf.item_hashes(SPACE_FEATURES["video"]))
    blocks, present = {}, {}
    dims = embedder.block_dims
    if "visual" in dims or "audio" in dims:
        fused_parts = {}
        for feature in ("frames", "cover", "audio"):
            if feature in lf.pooled:
                mat, has = aligned_rows(ids, lf.pooled[feature], embedder.dims_.get(feature, 1))
                fused_parts[feature] = (mat, has)
        if "visual" in dims:
            acc = np.zeros((len(ids), dims["visual"]), np.float32)
            has_v = np.zeros(len(ids), bool)
            for f in ("frames", "cover"):
                if f in fused_parts:
                    mat, has = fused_parts[f]
                    acc[has] += embedder._centred(f, mat[has])
                    has_v |= has
            blocks["visual"], present["visual"] = l2n(acc), has_v
        if "audio" in dims and "audio" in fused_parts:
            mat, has = fused_parts["audio"]
            out = np.zeros_like(mat)
            out[has] = embedder._centred("audio", mat[has])
            blocks["audio"], present["audio"] = out, has
    for name in LIBRARY_TEXT_BLOCKS:
        if name in lf.pooled and embedder.text_dim:
            blocks[name], present[name] = aligned_rows(ids, lf.pooled[name], embedder.text_dim)
    return VideoInputs(ids, blocks, present), embedder, lf


def search_with_model(lib: Any, model_dir: Path, text: str, flt: Any, k: int, *, text_encoder: Any = None,
                      messages: list[str] | None = None) -> list[dict[str, Any]]:
    """Text → video search with a trained two-tower model (vectors computed for the library on the fly)."""
    from vidlens.index import FaissIndex
    from vidlens.retrieval.library_index import video_metadata
    from vidlens.retrieval.search import _results

    model = TwoTowerModel.load(model_dir)
    embedder = VideoEmbedder.from_state(model.meta["embedder"]) if "embedder" in model.meta else None
    inputs, embedder, lf = library_inputs(lib, embedder)
    missing = [b for b in model.config.blocks if b not in inputs.blocks]
    for b in missing:  # a block this library lacks: absent for every video
        inputs.blocks[b] = np.zeros((len(inputs.ids), model.config.blocks[b]), np.float32)
        inputs.present[b] = np.zeros(len(inputs.ids), bool)
    inputs.blocks = {b: inputs.blocks[b] for b in model.config.blocks}
    inputs.present = {b: inputs.present[b] for b in model.config.blocks}
    if model.config.neighbours:
        start = np.concatenate([inputs.blocks[b] * inputs.present[b][:, None] for b in model.config.text_blocks], 1)
        inputs.neighbours = semantic_neighbours(start, model.config.neighbours)
    want = model.meta.get("text_encoder")
    if text_encoder is None:
        from vidlens.encoders import create_encoder

        text_encoder = create_encoder((want or "muse_v3@").split("@")[0])
    if want and f"{text_encoder.name}@{text_encoder.version}" != want:
        raise VidlensError(f"the two-tower model was trained on {want} query vectors, not "
                           f"{text_encoder.name}@{text_encoder.version}")
    videos = model.encode_videos(inputs)
    index = FaissIndex(videos.shape[1])
    index.upsert(inputs.ids, videos, [video_metadata(lf.videos[v]) for v in inputs.ids])
    q = model.encode_queries(np.asarray(text_encoder.encode_batch([text]), np.float32))
    if messages is not None:
        messages.append(f"ranked by the two-tower model in {model_dir}")
    return _results(lib, index.search(q, k, flt)[0])


def train_library_model(lib: Any, pairs: Sequence[tuple[str, str]], text_encoder: Any = None,
                        config: dict[str, Any] | None = None, out: str | Path | None = None,
                        log: Any = None, held_out: Sequence[tuple[str, str]] = ()) -> tuple[Path, list[dict]]:
    """Train a two-tower model on (query text, video id) pairs of a library and save it.

    Args:
        lib: the library (its stored features are the video side).
        pairs: positives: a video's tags, captions, or the queries users clicked it for.
        text_encoder: the query encoder (default: the one the library's text came from).
        config: overrides of :class:`TwoTowerConfig` training keys.
        out: model folder (default ``LIBRARY/models/two_tower``; ``search(..., model="auto")`` uses it).
        held_out: pairs kept out of training; the trained model's R@1/5/20 and mean rank on those whose
            video has features are stored in the model's ``meta["held_out"]``.

    Returns:
        The folder and the training history.
    """
    inputs, embedder, lf = library_inputs(lib)
    row = {v: i for i, v in enumerate(inputs.ids)}
    known = [(q, v) for q, v in pairs if v in row and q.strip()]
    if not known:
        raise VidlensError("no training pair names a video of this library that has features")
    text_key = lf.encoder_of("text.")
    if text_encoder is None:
        from vidlens.encoders import create_encoder

        text_encoder = create_encoder((text_key or "muse_v3@").split("@")[0])
    texts = list(dict.fromkeys(q for q, _ in known))
    qrow = {t: i for i, t in enumerate(texts)}
    qvecs = np.asarray(text_encoder.encode_batch(texts), np.float32)
    dim = qvecs.shape[1]
    blocks = {b: a.shape[1] for b, a in inputs.blocks.items()}
    text_blocks = [b for b in blocks if b.startswith("text.") and blocks[b] == dim]
    priors = {f"text.{f}": w for f, w in TEXT_FIELD_WEIGHTS.items()}
    cfg = TwoTowerConfig(blocks=blocks, text_blocks=text_blocks, block_priors=priors, query_dim=dim,
                         **(config or {}))
    model, history = fit_two_tower(cfg, inputs, qvecs, [(qrow[q], row[v]) for q, v in known], log=log)
    model.meta = {"embedder": embedder.state(), "text_encoder": f"{text_encoder.name}@{text_encoder.version}",
                  "pairs": len(known), "history": history}
    held = [(q, v) for q, v in held_out if v in row and q.strip()]
    if held:
        queries = np.asarray(text_encoder.encode_batch([q for q, _ in held]), np.float32)
        model.meta["held_out"] = {"pairs": len(held), **evaluate(model, inputs, queries, [row[v] for _, v in held])}
    folder = Path(out) if out is not None else lib.folder("models") / "two_tower"
    model.save(folder)
    return folder, history
