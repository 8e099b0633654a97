"""Modal dropout: hide whole modalities at random during training (Taobao).

Taobao reports that without it a test set with 10% of modalities missing lost ~3.5 points of
accuracy, with it < 0.5, and that it also helped slightly when nothing was missing.
"""

from __future__ import annotations

import torch

from vidlens.errors import ConfigError


def modal_dropout(
    present: dict[str, torch.Tensor], p: float, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """Flip each present modality of each sample to absent with probability ``p``.

    A sample never loses all of its present modalities: if every one was drawn for dropping, one of
    them, chosen at random, is kept. Samples with no modality present stay as they are.

    Args:
        present: modality -> (B,) bool presence mask.
        p: drop probability in [0, 1).
        generator: optional random generator.

    Returns:
        A new presence dict (the input is not modified).
    """
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"modal_dropout must be in [0, 1), not {p}")
    if p == 0.0 or not present:
        return dict(present)
    names = list(present)
    mask = torch.stack([present[m] for m in names], dim=1)  # (B, M)
    device = mask.device
    drop = torch.rand(mask.shape, generator=generator, device=device) < p
    keep = mask & ~drop
    lost_all = mask.any(dim=1) & ~keep.any(dim=1)
    # Restore one present modality, chosen uniformly, in rows that would otherwise have none.
    scores = torch.rand(mask.shape, generator=generator, device=device).masked_fill(~mask, -1.0)
    rescue = torch.zeros_like(mask).scatter(1, scores.argmax(dim=1, keepdim=True), True)
    keep = keep | (rescue & lost_all.unsqueeze(1))
    return {m: keep[:, i] for i, m in enumerate(names)}


__all__ = ["modal_dropout"]
