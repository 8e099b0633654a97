"""Adding a new level-2 category to a trained classifier from a few examples, without retraining it.

The network up to the head stays frozen. The head's output layers grow by one row (an L2 row, and
an L1 row if the parent is new too); every existing weight is copied unchanged, so the old classes
score exactly as before apart from the softmax sharing its mass with the newcomer. The new rows start
as the imprinted prototype of the examples (their mean head input, scaled like the existing rows),
then are fitted — only they — with the head's own loss on the examples against a background of
already-labelled videos. Seconds on a CPU.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from vidlens.classify.batches import iter_batches
from vidlens.classify.dataset import ClassificationDataset, DatasetError
from vidlens.classify.trained import TrainedClassifier
from vidlens.errors import ConfigError
from vidlens.models import MultimodalClassifier, MultimodalClassifierConfig
from vidlens.taxonomy import Taxonomy


def _copy_taxonomy(tax: Taxonomy) -> Taxonomy:
    return Taxonomy(tax.categories)


@torch.no_grad()
def _fused(classifier: TrainedClassifier, model: MultimodalClassifier, dataset: ClassificationDataset) -> torch.Tensor:
    model.eval()
    out = []
    for _, inputs, _ in iter_batches(dataset, np.arange(len(dataset)), model, 512, classifier.max_steps):
        out.append(model(inputs)["fused"])
    return torch.cat(out) if out else torch.zeros(0, model.fusion.out_dim)


def _grown_state(old: nn.Module, new: nn.Module) -> dict[str, torch.Tensor]:
    """New state dict: old tensors copied, grown tensors keep their old rows first."""
    old_state = old.state_dict()
    state = new.state_dict()
    for key, value in state.items():
        before = old_state[key]
        if before.shape == value.shape:
            state[key] = before.clone()
        elif before.dim() >= 1 and before.shape[1:] == value.shape[1:] and before.shape[0] < value.shape[0]:
            grown = value.clone()
            grown[: before.shape[0]] = before
            state[key] = grown
        else:
            raise ConfigError(
                f"cannot extend {key!r} from {tuple(before.shape)} to {tuple(value.shape)}; "
                "this head does not support adding a category (use flat_softmax, hmc or multilabel_sigmoid)"
            )
    return state


def add_category(
    classifier: TrainedClassifier,
    name: str,
    parent: str,
    examples: ClassificationDataset,
    background: ClassificationDataset | None = None,
    *,
    description: str = "",
    aliases: Sequence[str] = (),
    keywords: Sequence[str] = (),
    steps: int = 300,
    lr: float = 0.05,
    positive_share: float = 0.5,
    seed: int = 0,
) -> TrainedClassifier:
    """A copy of ``classifier`` that also knows the L2 category ``name`` under ``parent``.

    Args:
        classifier: the trained classifier (unchanged).
        name: the new L2 category.
        parent: its L1 (an existing one, or a new L1 that is added too).
        examples: a few videos of the new category (their own labels are ignored), read with the
            classifier's inputs (``classifier.dataset_from_library(lib, ids=...)``).
        background: labelled videos of the existing categories, as negatives (e.g. the training
            split); without it the new rows are only imprinted, not fitted.
        description, aliases, keywords: stored in the new taxonomy (zero-shot uses them).
        steps, lr, seed: fitting of the new rows (Adam, full batch).
        positive_share: weight of the examples in the fitting loss relative to the whole background
            (1: as much as all background videos together; lower keeps old classes safer).

    Raises:
        DatasetError: no examples.
        TaxonomyError: ``name`` already exists.
        ConfigError: the head cannot grow (mixture of experts).
    """
    if len(examples) == 0:
        raise DatasetError(f"adding {name!r}: no example videos given")
    old_tax = classifier.taxonomy
    tax = _copy_taxonomy(old_tax)
    new_l1 = parent not in tax
    if new_l1:
        tax.add(parent)
    elif tax.parent(parent) is not None:
        raise ConfigError(f"adding {name!r}: parent {parent!r} is a level-2 category; give a level-1 one")
    tax.add(name, parent=parent, description=description, aliases=aliases, keywords=keywords)
    old_model = classifier.model
    old_model.eval()
    config = MultimodalClassifierConfig.from_dict(
        {**old_model.config.model_dump(), "l2_to_l1": [int(v) for v in tax.l2_to_l1], "num_l1": tax.num_l1}
    )
    model = MultimodalClassifier(config, encoder_versions=old_model.encoder_versions, taxonomy=tax)
    model.load_state_dict(_grown_state(old_model, model))
    model.eval()

    # Head inputs (the fused vectors) of examples and background, through the frozen network.
    old_examples = _retaxonomise(examples, old_tax)
    pos = _fused(classifier, old_model, old_examples)
    new_index = tax.l2_index[name]
    feats = [pos]
    l2 = [torch.full((len(pos),), new_index, dtype=torch.long)]
    if background is not None and len(background):
        bg = background.subset(np.flatnonzero(background.labelled))
        feats.append(_fused(classifier, old_model, _retaxonomise(bg, old_tax)))
        l2.append(torch.from_numpy(bg.l2.copy()))
    x = torch.cat(feats)
    y2 = torch.cat(l2)
    y1 = torch.from_numpy(tax.l2_to_l1)[y2]

    # Which output layers grew: their new rows are the only trainable entries.
    grown: list[tuple[nn.Parameter, int]] = []
    for key, param in model.head.named_parameters():
        before = dict(old_model.head.named_parameters())[key]
        if param.shape != before.shape:
            grown.append((param, before.shape[0]))
    _imprint(model, pos, grown)
    if background is not None and len(x) > len(pos):
        torch.manual_seed(seed)
        params = [p for p, _ in grown]
        masks = []
        for p, old_rows in grown:
            m = torch.zeros_like(p)
            m[old_rows:] = 1.0
            masks.append(m)
        optimizer = torch.optim.Adam(params, lr=lr)
        # Weight the few positives by repetition (positive_share of the background's weight).
        repeat = max(1, int((len(x) - len(pos)) / max(len(pos), 1) * positive_share))
        xi = torch.cat([x[: len(pos)].repeat(repeat, 1), x[len(pos):]])
        t2 = torch.cat([y2[: len(pos)].repeat(repeat), y2[len(pos):]])
        t1 = torch.cat([y1[: len(pos)].repeat(repeat), y1[len(pos):]])
        model.head.train(False)
        for _ in range(steps):
            outputs = model.head(xi)
            loss = model.head.loss(outputs, {"l2": t2, "l1": t1})
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for p, m in zip(params, masks, strict=True):
                p.grad.mul_(m)
            optimizer.step()
    model.eval()
    metrics = copy.deepcopy(classifier.metrics)
    metrics.setdefault("extensions", []).append(
        {"category": name, "parent": parent, "examples": len(examples), "new_l1": new_l1,
         "background": 0 if background is None else int(background.labelled.sum())}
    )
    return TrainedClassifier(
        model,
        dict(classifier.sources),
        name=classifier.name,
        train_config=classifier.train_config,
        splits=dict(classifier.splits),
        metrics=metrics,
        max_steps=classifier.max_steps,
    )


def _retaxonomise(dataset: ClassificationDataset, tax: Taxonomy) -> ClassificationDataset:
    """The same rows under the old taxonomy (labels that do not exist there become -1)."""
    from dataclasses import replace

    if dataset.taxonomy.fingerprint() == tax.fingerprint():
        return dataset
    names = dataset.taxonomy.l2_names
    index = tax.l2_index
    l2 = np.array([index.get(names[v], -1) if v >= 0 else -1 for v in dataset.l2], dtype=np.int64)
    return replace(dataset, taxonomy=tax, l2=l2, extra_l2=[() for _ in dataset.ids], _token_cache=dataset._token_cache)


@torch.no_grad()
def _imprint(model: MultimodalClassifier, pos: torch.Tensor, grown: list[tuple[nn.Parameter, int]]) -> None:
    """Initialise the new rows of each grown output layer from the examples' mean input to that layer."""
    head = model.head
    captured: dict[int, torch.Tensor] = {}
    hooks = []
    for module in head.modules():
        if isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(
                lambda mod, inp, out: captured.__setitem__(id(mod), inp[0].detach())
            ))
    try:
        head(pos)
    finally:
        for h in hooks:
            h.remove()
    linears = {id(m.weight): m for m in head.modules() if isinstance(m, nn.Linear)}
    for param, old_rows in grown:
        layer = linears.get(id(param))
        if layer is not None and id(layer) in captured:
            mean = captured[id(layer)].mean(dim=0)
            scale = layer.weight[:old_rows].norm(dim=1).mean()
            layer.weight[old_rows:] = mean / mean.norm().clamp(min=1e-12) * scale
            if layer.bias is not None:
                layer.bias[old_rows:] = layer.bias[:old_rows].mean()


__all__ = ["add_category"]
