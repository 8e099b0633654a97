"""Fusion methods: ``dict[str, (B, D_m)], present -> (B, out_dim)``, registered in ``FUSIONS``.

- ``concat``: concatenation.
- ``context_gating``: concat, linear, context gating (Youku).
- ``modal_attention``: per-video weight per modality (Taobao).
- ``tfn``: Tensor Fusion Network.
- ``lmf``: Low-rank Multimodal Fusion.
"""

from vidlens.models.fusion.base import Fusion
from vidlens.models.fusion.concat import ConcatFusion
from vidlens.models.fusion.context_gating import ContextGating, ContextGatingFusion
from vidlens.models.fusion.lmf import LMFFusion
from vidlens.models.fusion.modal_attention import ModalAttentionFusion
from vidlens.models.fusion.tfn import TFNFusion

__all__ = [
    "ConcatFusion",
    "ContextGating",
    "ContextGatingFusion",
    "Fusion",
    "LMFFusion",
    "ModalAttentionFusion",
    "TFNFusion",
]
