"""The interface every sequence aggregator follows."""

from __future__ import annotations

import torch

from vidlens.models.component import Component


class Aggregator(Component):
    """Turns a masked sequence of per-step features into one vector per video.

    Contract: ``forward(x: (B, T, D) float, mask: (B, T) bool) -> (B, out_dim)``; rows whose mask is all
    False give a zero vector (never NaN). Aggregators with ``accepts_guide = True`` also take
    ``guide: (B, guide_dim)``, a text vector that steers their attention.

    Attributes:
        in_dim: feature size D of each step.
        out_dim: size of the output vector.
    """

    accepts_guide: bool = False
    in_dim: int
    out_dim: int


def valid_counts(mask: torch.Tensor) -> torch.Tensor:
    """Number of valid steps per row as a float (B, 1) tensor, at least 1 to keep divisions finite."""
    return mask.sum(dim=1, keepdim=True).clamp(min=1).to(torch.float32)


def zero_empty_rows(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero the rows of ``x`` (B, D) whose ``mask`` (B, T) has no valid step."""
    return x * mask.any(dim=1, keepdim=True).to(x.dtype)


__all__ = ["Aggregator", "valid_counts", "zero_empty_rows"]
