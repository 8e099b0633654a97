"""Sequence aggregators: ``(B, T, D), mask (B, T) -> (B, out_dim)``, registered in ``AGGREGATORS``.

- ``mean``, ``max``: masked pooling.
- ``netvlad``: NetVLAD (Taobao frame/audio pooling).
- ``nextvlad``: NeXtVLAD (Youku).
- ``attention_lstm``: LSTM + text-guided attention (PaddleVideo).
"""

from vidlens.models.aggregators.attention_lstm import AttentionLSTM
from vidlens.models.aggregators.base import Aggregator
from vidlens.models.aggregators.max import MaxPooling
from vidlens.models.aggregators.mean import MeanPooling
from vidlens.models.aggregators.netvlad import NetVLAD
from vidlens.models.aggregators.nextvlad import NeXtVLAD

__all__ = ["Aggregator", "AttentionLSTM", "MaxPooling", "MeanPooling", "NeXtVLAD", "NetVLAD"]
