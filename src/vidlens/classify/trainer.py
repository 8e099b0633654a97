"""The training loop: seeded, early-stopped on a validation split, CPU-friendly.

Per epoch: shuffled mini-batches, AdamW, gradient clipping, a cosine learning-rate decay over the
configured epochs; then the validation metric, keeping the best weights and stopping after
``patience`` epochs without gain. A multi-label head gets its per-class thresholds tuned on the
validation split. Nothing is ever chosen on the test split.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vidlens.classify.batches import iter_batches
from vidlens.classify.config import TrainConfig, TrainingLoop
from vidlens.classify.dataset import ClassificationDataset, DatasetError
from vidlens.classify.metrics import classification_metrics
from vidlens.classify.predictions import DECODINGS, Predictions
from vidlens.classify.trained import TrainedClassifier
from vidlens.errors import ConfigError
from vidlens.models import ModalityConfig, MultimodalClassifier, MultimodalClassifierConfig
from vidlens.progress import progress_bar

if TYPE_CHECKING:
    from vidlens.classify.sources import TextEmbedder


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        classifier: the trained classifier with the best validation weights.
        history: per epoch ``{"epoch", "train_loss", "val_loss", "val_<metric>"...}``.
        best_epoch: the epoch whose weights were kept (1-based).
        seconds: wall time of the training loop.
    """

    classifier: TrainedClassifier
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


def build_model(config: TrainConfig, dataset: ClassificationDataset) -> MultimodalClassifier:
    """The network a config describes, sized from the dataset's modalities.

    Raises:
        ConfigError: a configured modality the dataset lacks, a kind the data cannot give (a text
            branch without texts), or any invalid component parameter (named).
    """
    modalities = []
    for i, spec in enumerate(config.model.modalities):
        data = dataset.modalities.get(spec.name)
        if data is None:
            raise ConfigError(
                f"model.modalities.{i}.name: the data has no modality {spec.name!r} "
                f"(it has {', '.join(dataset.modalities) or 'none'})"
            )
        kind = spec.kind or data.kind
        if kind == "text" and data.texts is None:
            raise ConfigError(f"model.modalities.{i}.kind: {spec.name!r} has no raw text for a text branch")
        if kind == "sequence" and data.kind != "sequence":
            raise ConfigError(f"model.modalities.{i}.kind: {spec.name!r} has no sequences")
        modalities.append(
            ModalityConfig(
                name=spec.name,
                dim=data.dim,
                kind=kind,
                aggregator=spec.aggregator,
                guide=spec.guide,
                text_branch=spec.text_branch,
                project_dim=spec.project_dim,
            )
        )
    tax = dataset.taxonomy
    model_config = MultimodalClassifierConfig.from_dict(
        {
            "modalities": [m.model_dump() for m in modalities],
            "fusion": config.model.fusion.model_dump(),
            "head": config.model.head.model_dump(),
            "l2_to_l1": [int(v) for v in tax.l2_to_l1],
            "num_l1": tax.num_l1,
            "modal_dropout": config.model.modal_dropout,
            "aux_loss_weight": config.model.aux_loss_weight,
        }
    )
    versions = {m.feature: dataset.encoder_versions[m.feature] for m in (dataset.modalities[s.name]
                for s in config.model.modalities) if m.feature in dataset.encoder_versions}
    return MultimodalClassifier(model_config, encoder_versions=versions, taxonomy=tax)


def make_optimizers(model: MultimodalClassifier, loop: TrainingLoop) -> list[tuple[torch.optim.Optimizer, float]]:
    """``(optimizer, base learning rate)`` pairs: AdamW over the network and, with ``loop.sparse_lr``,
    plain SGD over the text branches' n-gram embedding tables."""
    tables = [b.embedding.weight for b in model.text_branches.values()] if loop.sparse_lr else []
    held = {id(p) for p in tables}
    dense = [p for p in model.parameters() if id(p) not in held]
    out: list[tuple[torch.optim.Optimizer, float]] = [
        (torch.optim.AdamW(dense, lr=loop.lr, weight_decay=loop.weight_decay), loop.lr)
    ]
    if tables:
        sgd = torch.optim.SGD(tables, lr=loop.sparse_lr, weight_decay=loop.sparse_weight_decay)
        out.append((sgd, loop.sparse_lr))
    return out


def _val_score(metrics: dict[str, float], loss: float, metric: str) -> float:
    return -loss if metric == "loss" else metrics.get(metric, 0.0)


def fit(
    config: TrainConfig,
    dataset: ClassificationDataset,
    splits: dict[str, np.ndarray],
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    embedder: TextEmbedder | None = None,
) -> TrainResult:
    """Train a classifier on ``splits["train"]``, early-stopping on ``splits["val"]``.

    Args:
        config: the training config.
        dataset: labelled data.
        splits: row indices of ``train`` and ``val`` (``test`` is not touched).
        progress: draw a progress bar on stderr.
        log: optional callable receiving one line per epoch.
        embedder: the text encoder that made the dataset's text vectors; with ``train.zero_shot_blend``
            it embeds the category names (default: ``muse_v3``).

    Returns:
        The result; its classifier records the split by ids.

    Raises:
        DatasetError: no training rows, or unlabelled training rows.
    """
    loop = config.train
    torch.set_num_threads(loop.threads)
    torch.manual_seed(loop.seed)
    rng = np.random.default_rng(loop.seed)
    train_idx = np.asarray(splits["train"], dtype=np.int64)
    val_idx = np.asarray(splits.get("val", []), dtype=np.int64)
    if len(train_idx) == 0:
        raise DatasetError("training split is empty")
    if (dataset.l2[train_idx] < 0).any():
        raise DatasetError("training split holds unlabelled rows")
    model = build_model(config, dataset)
    for name, branch in model.text_branches.items():
        # Statistics such as IDF weights come from the training texts only (saved with the weights).
        # A modality with no training text at all keeps the branch's defaults.
        token_lists = dataset.token_ids(name, branch.hasher)
        present = dataset.modalities[name].present
        texts = [token_lists[i] for i in train_idx if present[i]]
        if texts:
            branch.fit_statistics(texts)
    sources = {
        s.name: {"feature": dataset.modalities[s.name].feature, "kind": model_spec.kind}
        for s, model_spec in zip(config.model.modalities, model.config.modalities, strict=True)
    }
    classifier = TrainedClassifier(
        model,
        sources,
        name=config.name,
        train_config=config.to_dict(),
        splits={k: [dataset.ids[i] for i in v] for k, v in splits.items()},
        max_steps=config.data.max_steps,
        decoding="joint" if loop.decoding == "auto" else loop.decoding,  # early stopping reads by this rule
    )
    optimizers = make_optimizers(model, loop)
    steps_per_epoch = math.ceil(len(train_idx) / loop.batch_size)
    total_steps = steps_per_epoch * loop.epochs

    def lr_at(step: int) -> float:
        if loop.schedule == "constant":
            return loop.lr
        warmup = min(steps_per_epoch, 100)
        if step < warmup:
            return loop.lr * (step + 1) / warmup
        return 0.5 * loop.lr * (1 + math.cos(math.pi * min(step / total_steps, 1.0)))

    history: list[dict[str, float]] = []
    best_score, best_state, best_epoch, stale = -math.inf, None, 0, 0
    t0 = time.perf_counter()
    step = 0
    with progress_bar(total_steps, f"train {config.name}", enabled=progress) as advance:
        for epoch in range(1, loop.epochs + 1):
            model.train()
            losses = []
            for _, inputs, targets in iter_batches(
                dataset, train_idx, model, loop.batch_size, config.data.max_steps, shuffle=True, rng=rng
            ):
                for optimizer, base_lr in optimizers:
                    for group in optimizer.param_groups:
                        group["lr"] = lr_at(step) * base_lr / loop.lr
                outputs = model(inputs)
                loss = model.loss(outputs, targets)["total"]
                for optimizer, _ in optimizers:
                    optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), loop.grad_clip)
                for optimizer, _ in optimizers:
                    optimizer.step()
                losses.append(loss.item())
                step += 1
                advance(1, f"epoch {epoch} loss {np.mean(losses):.3f}")
            entry: dict[str, float] = {"epoch": epoch, "train_loss": float(np.mean(losses))}
            if len(val_idx):
                val_metrics, val_loss = evaluate_split(classifier, dataset, val_idx, loop.eval_batch_size)
                entry["val_loss"] = val_loss
                entry.update({f"val_{k}": v for k, v in val_metrics.items() if k != "n"})
                score = _val_score(val_metrics, val_loss, loop.metric)
            else:
                score = -entry["train_loss"]
            history.append(entry)
            if log is not None:
                shown = ", ".join(f"{k} {v:.4f}" for k, v in entry.items() if k != "epoch")
                log(f"epoch {epoch}: {shown}")
            if score > best_score + 1e-6:
                best_score, best_epoch, stale = score, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
                if stale >= loop.patience:
                    advance(steps_per_epoch * (loop.epochs - epoch), f"early stop at epoch {epoch}")
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    if hasattr(model.head, "fit_thresholds") and len(val_idx):
        pred = classifier.predict(dataset.subset(val_idx), loop.eval_batch_size)
        model.head.fit_thresholds(pred.l2_probs, dataset.multi_hot(val_idx))
    blend = (_fit_zero_shot_blend(classifier, dataset, train_idx, val_idx, loop, embedder, log)
             if loop.zero_shot_blend else None)
    decoding = (_choose_decoding(classifier, dataset, val_idx, loop, log)
                if loop.decoding == "auto" and not loop.zero_shot_blend else None)
    seconds = time.perf_counter() - t0
    classifier.metrics = {
        "training": {
            "epochs_run": len(history),
            "best_epoch": best_epoch,
            "seconds": round(seconds, 2),
            "train_items": len(train_idx),
            "val_items": len(val_idx),
            "selection_metric": loop.metric,
            **({"zero_shot_blend": blend} if blend else {}),
            **({"decoding": decoding} if decoding else {}),
        },
        "history": history,
    }
    return TrainResult(classifier, history, best_epoch, seconds)


BLEND_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(10))
PROTOTYPE_NAME_WEIGHTS = (1.0, 2.0, 3.0)
PROTOTYPE_L1_WEIGHTS = (0.5, 1.0, 2.0)


def _fit_zero_shot_blend(classifier: TrainedClassifier, dataset: ClassificationDataset, train_idx: np.ndarray,
                         val_idx: np.ndarray, loop: TrainingLoop, embedder: TextEmbedder | None,
                         log: Callable[[str], None] | None) -> dict[str, Any]:
    """Attach a zero-shot (with ``loop.prototypes``: prototype) classifier to ``classifier`` and choose
    its settings and share on the validation rows.

    Raises:
        ConfigError: no validation rows to choose on.
        DatasetError: the dataset has no text features (zero-shot reads those).
        ModelVersionError: the text vectors come from another encoder than ``embedder``.
    """
    from vidlens.classify.sources import TextEmbedder
    from vidlens.classify.zeroshot import ZeroShotClassifier

    _need_validation(val_idx, "train.zero_shot_blend")
    base = ZeroShotClassifier(dataset.taxonomy, embedder or TextEmbedder())
    base.check(dataset)
    base.category_vectors()
    if loop.prototypes:
        candidates = {(nw, lw): base.with_examples(dataset, train_idx, nw, lw)
                      for nw in PROTOTYPE_NAME_WEIGHTS for lw in PROTOTYPE_L1_WEIGHTS}
        weights = (*BLEND_WEIGHTS, 1.0)
    else:
        candidates, weights = {(None, None): base}, BLEND_WEIGHTS
    metric = _choice_metric(loop)
    val = dataset.subset(val_idx)
    classifier.zero_shot = None
    network = classifier.predict(val, loop.eval_batch_size)
    decodings = DECODINGS if loop.decoding == "auto" else (classifier.decoding,)
    scores: dict[tuple, float] = {}
    for key, zero_shot in candidates.items():
        zp = zero_shot.predict(val)
        for weight in weights:
            mixed = network.mixed(zp, weight)
            for d in decodings:
                scores[(*key, weight, d)] = _choice_score(mixed.decoded(d), val, metric)
    # the best score; ties go to the smaller share, then to joint decoding, then to the first settings tried
    best = max(scores, key=lambda k: (scores[k], -k[2], k[3] == "joint"))
    classifier.zero_shot = candidates[best[:2]]
    classifier.zero_shot_weight = best[2]
    classifier.decoding = best[3]
    chosen = {"weight": best[2], "metric": metric, "validation_score": round(scores[best], 4)}
    if loop.decoding == "auto":
        chosen["decoding"] = best[3]
    if loop.prototypes:
        chosen |= {"name_weight": best[0], "l1_weight": best[1]}
    else:
        chosen["validation"] = {str(k[2]): round(v, 4) for k, v in scores.items() if k[3] == best[3]}
    if log is not None:
        log(f"zero-shot blend: {chosen}")
    return chosen


def _choice_metric(loop: TrainingLoop) -> str:
    """What post-training choices are made by: the network's loss does not see them, so accuracy stands in
    for a ``loss`` selection metric."""
    return "l2_accuracy" if loop.metric == "loss" else loop.metric


def _choice_score(pred: Predictions, val: ClassificationDataset, metric: str) -> float:
    """The validation score of one post-training choice (predictions already made its way)."""
    return _val_score(classification_metrics(pred, val.l2), 0.0, metric)


def _need_validation(val_idx: np.ndarray, option: str) -> None:
    """Raise ConfigError when a post-training choice has no validation rows to be made on."""
    if not len(val_idx):
        raise ConfigError(f"{option} chooses on the validation split; give data.split.val > 0")


def _choose_decoding(classifier: TrainedClassifier, dataset: ClassificationDataset, val_idx: np.ndarray,
                     loop: TrainingLoop, log: Callable[[str], None] | None) -> dict[str, Any]:
    """Set ``classifier.decoding`` to the better rule on the validation rows (ties: ``joint``).

    Raises:
        ConfigError: no validation rows to choose on.
    """
    _need_validation(val_idx, "train.decoding = 'auto'")
    metric = _choice_metric(loop)
    val = dataset.subset(val_idx)
    pred = classifier.predict(val, loop.eval_batch_size)
    scores = {d: _choice_score(pred.decoded(d), val, metric) for d in DECODINGS}
    classifier.decoding = max(DECODINGS, key=lambda d: (scores[d], d == "joint"))
    chosen = {"decoding": classifier.decoding, "metric": metric,
              "validation": {d: round(v, 4) for d, v in scores.items()}}
    if log is not None:
        log(f"decoding: {chosen}")
    return chosen


def evaluate_split(
    classifier: TrainedClassifier, dataset: ClassificationDataset, index: np.ndarray, batch_size: int = 512
) -> tuple[dict[str, float], float]:
    """Summary metrics and mean loss of the model on rows ``index`` (eval mode)."""
    sub = dataset.subset(index)
    pred, loss = classifier.predict_with_loss(sub, batch_size)
    metrics = classification_metrics(pred, sub.l2, sub.multi_hot() if any(sub.extra_l2) else None)
    return metrics, loss


__all__ = ["TrainResult", "build_model", "evaluate_split", "fit", "make_optimizers"]

