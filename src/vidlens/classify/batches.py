"""Turning rows of a `ClassificationDataset` into the flat tensor batches `MultimodalClassifier` reads."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from vidlens.classify.dataset import ClassificationDataset
from vidlens.models import MultimodalClassifier


def _steps(seq: np.ndarray, max_steps: int) -> np.ndarray:
    """At most ``max_steps`` evenly spaced steps of a (T, D) sequence (all of them if shorter)."""
    if len(seq) <= max_steps:
        return np.asarray(seq, dtype=np.float32)
    pick = np.linspace(0, len(seq) - 1, max_steps).round().astype(np.int64)
    return np.asarray(seq[pick], dtype=np.float32)


def make_batch(
    dataset: ClassificationDataset,
    index: np.ndarray,
    model: MultimodalClassifier,
    max_steps: int = 32,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Inputs and targets of rows ``index`` for ``model``.

    Sequences are padded to the longest (at most ``max_steps`` evenly spaced steps) with a mask; text
    modalities get their hashed n-gram ids from the model's text branch. Every modality carries its
    presence mask, so an absent one is never read as a zero vector.

    Returns:
        ``(inputs, targets)``; targets hold ``l2``, ``l1`` and, when any row has several labels,
        ``labels`` (multi-hot). Unlabelled rows have target -1.
    """
    index = np.asarray(index, dtype=np.int64)
    inputs: dict[str, torch.Tensor] = {}
    for spec in model.config.modalities:
        m = dataset.modalities.get(spec.name)
        if m is None:
            continue  # absent everywhere: the model treats a missing key as absent
        present = m.present[index]
        inputs[f"{spec.name}.present"] = torch.from_numpy(present.copy())
        if spec.kind == "sequence":
            if m.sequences is None:
                # Only pooled vectors available: a one-step sequence.
                inputs[spec.name] = torch.from_numpy(m.vectors[index][:, None, :].copy())
                inputs[f"{spec.name}.mask"] = torch.from_numpy(present[:, None].copy())
                continue
            seqs = [_steps(m.sequences[i], max_steps) if p and m.sequences[i] is not None else None
                    for i, p in zip(index, present, strict=True)]
            width = max([1, *(len(s) for s in seqs if s is not None)])
            x = np.zeros((len(index), width, m.dim), np.float32)
            mask = np.zeros((len(index), width), bool)
            for r, s in enumerate(seqs):
                if s is not None and len(s):
                    x[r, : len(s)] = s
                    mask[r, : len(s)] = True
            inputs[spec.name] = torch.from_numpy(x)
            inputs[f"{spec.name}.mask"] = torch.from_numpy(mask)
        else:
            inputs[spec.name] = torch.from_numpy(m.vectors[index].copy())
            if spec.kind == "text" and spec.name in model.text_branches:
                token_lists = dataset.token_ids(spec.name, model.text_branches[spec.name].hasher)
                rows = [token_lists[i] for i in index]
                width = max([1, *map(len, rows)])
                tokens = np.zeros((len(index), width), np.int64)
                for r, ids in enumerate(rows):
                    tokens[r, : len(ids)] = ids
                inputs[f"{spec.name}.tokens"] = torch.from_numpy(tokens)
    l2 = dataset.l2[index]
    targets = {
        "l2": torch.from_numpy(l2.copy()),
        "l1": torch.from_numpy(dataset.l1[index].copy()),
    }
    if any(dataset.extra_l2[i] for i in index):
        targets["labels"] = torch.from_numpy(dataset.multi_hot(index))
    return inputs, targets


def iter_batches(
    dataset: ClassificationDataset,
    index: np.ndarray,
    model: MultimodalClassifier,
    batch_size: int,
    max_steps: int = 32,
    shuffle: bool = False,
    rng: np.random.Generator | None = None,
) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
    """``(rows, inputs, targets)`` for consecutive (optionally shuffled) batches of ``index``."""
    index = np.asarray(index, dtype=np.int64)
    if shuffle:
        index = index[(rng or np.random.default_rng()).permutation(len(index))]
    for start in range(0, len(index), batch_size):
        rows = index[start : start + batch_size]
        inputs, targets = make_batch(dataset, rows, model, max_steps)
        yield rows, inputs, targets


__all__ = ["iter_batches", "make_batch"]
