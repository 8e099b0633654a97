"""The interface every fusion method follows, and the learned stand-in for a missing modality."""

from __future__ import annotations

import torch
from torch import nn

from vidlens.errors import ConfigError
from vidlens.models.component import Component


class Fusion(Component):
    """Combines one vector per modality into one vector per video.

    Contract: ``forward(feats: dict[str, (B, D_m)], present: dict[str, (B,) bool]) -> (B, out_dim)``.
    A modality that is absent for a sample is replaced by a learned per-modality "missing" embedding
    (``fill_missing``), so the network can tell "no audio" from "quiet audio"; fusions that attend over
    modalities also mask the absent ones out.

    Args:
        in_dims: modality name -> vector size, in a fixed order.
    """

    def __init__(self, in_dims: dict[str, int]):
        super().__init__()
        for name in in_dims:
            if not name.isidentifier():
                raise ConfigError(f"fusion: modality name {name!r} must be a Python identifier")
        self.in_dims = dict(in_dims)
        self.modalities = list(in_dims)
        self.missing = nn.ParameterDict({m: nn.Parameter(torch.randn(d) * 0.02) for m, d in in_dims.items()})
        self.out_dim = 0

    def fill_missing(
        self, feats: dict[str, torch.Tensor], present: dict[str, torch.Tensor]
    ) -> list[torch.Tensor]:
        """Per-modality vectors in ``self.modalities`` order, absent rows replaced by the missing embedding.

        Raises:
            ConfigError: a configured modality is not in ``feats``.
        """
        out = []
        for m in self.modalities:
            if m not in feats:
                raise ConfigError(f"fusion: modality {m!r} missing from input (got {sorted(feats)})")
            x = feats[m]
            keep = present[m].reshape(-1, 1)
            out.append(torch.where(keep, x, self.missing[m].to(x.dtype).expand_as(x)))
        return out


__all__ = ["Fusion"]
