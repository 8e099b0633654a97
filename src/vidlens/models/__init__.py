"""Trainable models on top of pre-extracted features.

Layout (follows the data flow):

- ``aggregators/``: a modality's feature sequence -> one vector (mean, max, NetVLAD, NeXtVLAD,
  attention-LSTM with text guidance), registry ``AGGREGATORS``;
- ``text_branch.py``, ``tfidf_text_branch.py``: trainable n-gram text encoders fused with a frozen
  sentence vector (mean of n-gram embeddings; TF-IDF-weighted wide & deep bag), registry
  ``TEXT_BRANCHES``;
- ``fusion/``: per-modality vectors -> one vector (concat, context gating, modal attention, TFN, LMF),
  registry ``FUSIONS``; ``modal_dropout.py``: hiding modalities in training;
- ``heads/``: vector -> categories (flat softmax, multi-label sigmoid, HMC, mixture of experts),
  registry ``HEADS``; ``hierarchy.py``: L1/L2 tensor operations; ``losses/``: ``LOSSES`` (HMC loss);
- ``multimodal_classifier.py``: the assembled classifier, configured by registry names, saved to and
  loaded from one folder; ``versions.py``: refusing features from other encoder versions.
"""

from vidlens.models import aggregators, fusion, heads, losses  # noqa: F401  (registers the components)
from vidlens.models.aggregators import Aggregator
from vidlens.models.component import Component, load_component
from vidlens.models.fusion import Fusion
from vidlens.models.heads import Head
from vidlens.models.losses import HMCLoss, hierarchy_mismatch
from vidlens.models.modal_dropout import modal_dropout
from vidlens.models.multimodal_classifier import (
    ComponentSpec,
    ModalityConfig,
    MultimodalClassifier,
    MultimodalClassifierConfig,
)
from vidlens.models.registry import AGGREGATORS, FUSIONS, HEADS, LOSSES, TEXT_BRANCHES, Registry
from vidlens.models.text_branch import NgramHasher, TextBranch
from vidlens.models.tfidf_text_branch import TfidfTextBranch
from vidlens.models.versions import ModelVersionError, check_encoder_versions

__all__ = [
    "AGGREGATORS",
    "FUSIONS",
    "HEADS",
    "LOSSES",
    "TEXT_BRANCHES",
    "Aggregator",
    "Component",
    "ComponentSpec",
    "Fusion",
    "HMCLoss",
    "Head",
    "ModalityConfig",
    "ModelVersionError",
    "MultimodalClassifier",
    "MultimodalClassifierConfig",
    "NgramHasher",
    "Registry",
    "TextBranch",
    "TfidfTextBranch",
    "check_encoder_versions",
    "hierarchy_mismatch",
    "load_component",
    "modal_dropout",
]
