"""The encoder contract and the registry of encoders by name.

An encoder is a small object with a name, a modality, an output size and a ``version`` that keys the
features it produces. Its weights load lazily, on the first :meth:`Encoder.encode_batch` (or an explicit
:meth:`Encoder.load`), from an installed package — never from a model hub.

Registering a new encoder is one factory function::

    @register_encoder("my_clip")
    def my_clip(*, checkpoint: str, threads: int = 2) -> Encoder:
        return MyClipEncoder(checkpoint=checkpoint, threads=threads)

after which ``create_encoder("my_clip", checkpoint="/models/clip.pt")`` builds it.
"""

from __future__ import annotations

import abc
import hashlib
import importlib
import json
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from vidlens.errors import ConfigError, MissingDependencyError

EncoderFactory = Callable[..., "Encoder"]

_REGISTRY: dict[str, EncoderFactory] = {}
_MODALITY: dict[str, str] = {}


class Encoder(abc.ABC):
    """One pretrained encoder: turns a batch of items of one modality into features.

    Subclasses set the class attributes, take every hyper-parameter as an explicit keyword in
    ``__init__`` (stored under the same attribute name) and implement :meth:`_load` and
    :meth:`encode_batch`.

    Attributes:
        name: registry name (set by :func:`create_encoder`; defaults to ``default_name``).
        modality: ``"frames"``, ``"audio"``, ``"ocr"``, ``"asr"`` or ``"text"``.
        dim: size of the output vectors, or ``None`` for encoders that output text.
        weights_id: identifies the weights and the preprocessing code; bump its revision suffix when
            either changes, so stored features from the old version are not mixed with new ones.
        output_params: names of the ``__init__`` keywords that change the output (thread counts and
            batch sizes do not and are left out of :attr:`version`).
    """

    default_name: ClassVar[str] = ""
    modality: ClassVar[str] = ""
    dim: ClassVar[int | None] = None
    weights_id: ClassVar[str] = ""
    output_params: ClassVar[tuple[str, ...]] = ()
    all_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.name = self.default_name
        self._lock = threading.RLock()
        self._loaded = False

    @property
    def params(self) -> dict[str, Any]:
        """Every hyper-parameter of this encoder, by keyword name."""
        return {key: getattr(self, key) for key in self.all_params}

    @property
    def version(self) -> str:
        """``weights_id`` plus a short hash of the output-changing parameters.

        Computed without loading the weights, so a store can look up cached features first.
        """
        relevant = {key: getattr(self, key) for key in self.output_params}
        digest = hashlib.sha1(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()
        return f"{self.weights_id}.{digest[:8]}"

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory."""
        return self._loaded

    def load(self) -> None:
        """Load the weights now (otherwise the first :meth:`encode_batch` does). Idempotent, thread-safe.

        Raises:
            MissingDependencyError: the package carrying the weights is not installed.
        """
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    @abc.abstractmethod
    def _load(self) -> None:
        """Import the backing package and load the weights."""

    @abc.abstractmethod
    def encode_batch(self, items: Any) -> Any:
        """Encode a batch of items; the output is aligned with the input order."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}(name={self.name!r}, version={self.version!r}, {args})"


def register_encoder(name: str, *, modality: str = "") -> Callable[[EncoderFactory], EncoderFactory]:
    """Decorator: register ``factory(**kwargs) -> Encoder`` under ``name``.

    Arguments:
        name: the registry name configs and the CLI use.
        modality: what the encoder reads (lets :func:`list_encoders` filter without importing models).

    Raises:
        ValueError: ``name`` is already registered.
    """

    def decorate(factory: EncoderFactory) -> EncoderFactory:
        if name in _REGISTRY:
            raise ValueError(f"encoder {name!r} is already registered")
        _REGISTRY[name] = factory
        _MODALITY[name] = modality
        return factory

    return decorate


def create_encoder(name: str, **kwargs: Any) -> Encoder:
    """Build the encoder registered as ``name``; the weights load on first use.

    Arguments:
        name: a name from :func:`list_encoders`.
        **kwargs: the encoder's hyper-parameters (see its class).

    Raises:
        ConfigError: no encoder has that name.
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ConfigError(f"unknown encoder {name!r}; registered encoders: {known}") from None
    encoder = factory(**kwargs)
    encoder.name = name
    return encoder


def list_encoders(modality: str | None = None) -> list[str]:
    """Registered encoder names, sorted; only those of ``modality`` when given.

    Listing does not import any model package.
    """
    names = sorted(_REGISTRY)
    if modality is None:
        return names
    return [n for n in names if _MODALITY[n] == modality]


def require(module: str, what: str, pip_line: str) -> Any:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the pip line that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(what, pip_line) from err


def limit_torch_threads(threads: int) -> None:
    """Cap torch's intra-op threads (process-wide; never raises the count someone else lowered)."""
    import torch

    if torch.get_num_threads() > threads:
        torch.set_num_threads(threads)


def ort_session(path: str, threads: int) -> Any:
    """An onnxruntime CPU session with a fixed, small thread pool (the default grabs every core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def as_waveform(wave: Any) -> np.ndarray:
    """Check and convert a mono waveform to contiguous ``float32 (N,)``.

    Raises:
        ValueError: not 1-D, not floating point, or with NaN/inf samples.
    """
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ValueError(f"a waveform must be 1-D mono, got shape {wave.shape}")
    if not np.issubdtype(wave.dtype, np.floating):
        raise ValueError(f"a waveform must be float in [-1, 1], got dtype {wave.dtype}")
    wave = np.ascontiguousarray(wave, dtype=np.float32)
    if not np.all(np.isfinite(wave)):
        raise ValueError("waveform has NaN or infinite samples")
    return wave
