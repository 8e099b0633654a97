"""Classification heads over the taxonomy's L2 classes, registered in ``HEADS``.

- ``flat_softmax``: one softmax over L2.
- ``multilabel_sigmoid``: sigmoid per class with per-class thresholds.
- ``hmc``: L1 + L2 channels, mismatch loss, consistent decoding (Taobao).
- ``moe``: mixture of softmax experts (Youku).
"""

from vidlens.models.heads.base import Head
from vidlens.models.heads.flat_softmax import FlatSoftmaxHead
from vidlens.models.heads.hmc import HMCHead
from vidlens.models.heads.moe import MoEHead
from vidlens.models.heads.multilabel_sigmoid import MultiLabelSigmoidHead

__all__ = ["FlatSoftmaxHead", "HMCHead", "Head", "MoEHead", "MultiLabelSigmoidHead"]
