"""Audio encoder: the aiSFX sound-event CNN (``aisfx``), one 512-d embedding per ~2.3 s block.

Preprocessing follows the package's librosa path (``aisfx.spectrogram.spectrogram_librosa`` and
``aisfx.preprocessing``): resample to 44.1 kHz, peak-normalise, 96-band HTK mel power spectrogram
(2048-sample Hann window, 1024 hop, centred, unit-sum filters), ``log10(10000·x + 1)``, min-max scaled
with the paper's constants, cut into blocks of 100 frames (≈2.32 s). The resampling (soxr "HQ", what
``librosa.resample`` uses), the STFT and the mel filters are computed here with numpy to the same
numbers as librosa (checked to 1e-5), without importing librosa, whose first use costs seconds.
The embedding is the CNN's pooled output (``EmbeddingNet``), as ``aisfx.inference.model_get_embedding``
returns it; the CNN runs as an ONNX export of the package's checkpoint (built once by
:mod:`vidlens.encoders.assets`) in onnxruntime.

Blocks hop by ``hop`` × block length (1.0: back to back; the ISMIR paper used 0.5). A last partial
block is kept when it covers at least half a block, zero-padded like the package does; a waveform
shorter than one block gives one padded block; an empty waveform gives ``(0, 512)``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np

from vidlens.encoders.assets import AISFX_PIP, ensure_asset, rebuild_asset
from vidlens.encoders.base import Encoder, as_waveform, ort_session, register_encoder, require
from vidlens.errors import MissingDependencyError

PIP_LINE = AISFX_PIP

INPUT_RATE = 16000
MODEL_RATE = 44100
N_FFT = 2048
HOP = 1024
N_MELS = 96
BLOCK_FRAMES = 100
SPEC_MAX = 9.457798957824707  # aisfx.preprocessing.spectrogram_normalize, 'original'


def mel_filters() -> np.ndarray:
    """``(96, 1025)`` HTK mel filters, each summing to 1: ``librosa.filters.mel(htk=True, norm=1.0)``."""
    fft_freqs = np.fft.rfftfreq(N_FFT, d=1.0 / MODEL_RATE)
    top = 2595.0 * np.log10(1.0 + (MODEL_RATE / 2) / 700.0)
    mel_freqs = 700.0 * (10.0 ** (np.linspace(0.0, top, N_MELS + 2) / 2595.0) - 1.0)
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    sums = weights.sum(axis=1, keepdims=True)
    return (weights / np.where(sums > 0, sums, 1.0)).astype(np.float32)


def power_spectrogram(y: np.ndarray) -> np.ndarray:
    """``(frames, 1025)`` |STFT|² with a periodic Hann window, zero-padded centred frames (librosa's)."""
    padded = np.pad(y, (N_FFT // 2, N_FFT // 2))
    if padded.size < N_FFT:
        padded = np.pad(padded, (0, N_FFT - padded.size))
    n_frames = 1 + (padded.size - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:n_frames]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)
    return (np.abs(np.fft.rfft(frames * window, axis=1)) ** 2).astype(np.float32)


class AisfxEncoder(Encoder):
    """16 kHz mono waveforms → ``(T, 512)`` sound-event embeddings (one per ~2.3 s block).

    Args:
        hop: block hop as a fraction of the block length (0 < hop ≤ 1).
        batch_size: blocks per CNN forward pass.
        threads: onnxruntime intra-op threads.
    """

    default_name = "aisfx"
    modality = "audio"
    dim = 512
    weights_id = "aisfx-0.1.2-x-sequential-ce.librosa-onnx.r1"
    output_params = ("hop",)
    all_params = ("hop", "batch_size", "threads")
    block_seconds = BLOCK_FRAMES * HOP / MODEL_RATE

    def __init__(self, *, hop: float = 1.0, batch_size: int = 64, threads: int = 2):
        super().__init__()
        if not 0 < hop <= 1:
            raise ValueError(f"hop must be in (0, 1], got {hop}")
        self.hop = hop
        self.batch_size = batch_size
        self.threads = threads
        self._session: Any = None
        self._mel_basis: np.ndarray | None = None

    def _load(self) -> None:
        # The weights are aisfx's: insist on the package even when the ONNX export is already cached.
        if importlib.util.find_spec("aisfx") is None:
            raise MissingDependencyError(self.default_name, PIP_LINE)
        require("soxr", self.default_name, PIP_LINE)
        require("onnxruntime", self.default_name, PIP_LINE)
        path = ensure_asset("aisfx") / "model.onnx"
        try:
            self._session = ort_session(str(path), self.threads)
        except Exception as err:  # a file that hashes right but does not load: rebuild once
            path = rebuild_asset("aisfx", reason=str(err)) / "model.onnx"
            self._session = ort_session(str(path), self.threads)
        self._mel_basis = mel_filters()

    def spectrogram(self, wave: np.ndarray) -> np.ndarray:
        """A 16 kHz waveform → normalised log-mel spectrogram ``(frames, 96)`` at 44.1 kHz framing."""
        import soxr

        self.load()
        y = soxr.resample(wave.astype(np.float64), INPUT_RATE, MODEL_RATE, quality="HQ")
        peak = float(np.max(np.abs(y))) if y.size else 0.0
        if peak > 0:
            y = y / peak
        mel = power_spectrogram(y) @ self._mel_basis.T
        return (np.log10(mel * 10000.0 + 1.0) / SPEC_MAX).astype(np.float32)

    def blocks(self, spec: np.ndarray) -> np.ndarray:
        """Cut a spectrogram into ``(T, 100, 96)`` blocks (see the module docstring for the edges)."""
        hop = max(1, round(BLOCK_FRAMES * self.hop))
        n = spec.shape[0]
        starts = list(range(0, max(n - BLOCK_FRAMES, 0) + 1, hop))
        last_end = starts[-1] + BLOCK_FRAMES
        if n - (starts[-1] + hop) >= BLOCK_FRAMES // 2 and last_end < n:
            starts.append(starts[-1] + hop)
        padded = np.zeros((max(n, starts[-1] + BLOCK_FRAMES), spec.shape[1]), np.float32)
        padded[:n] = spec
        return np.stack([padded[s:s + BLOCK_FRAMES] for s in starts])

    def encode_batch(self, items: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Encode waveforms.

        Arguments:
            items: 1-D float waveforms at 16 kHz, mono, in [-1, 1].

        Returns:
            one ``float32 (T_i, 512)`` array per waveform (``(0, 512)`` for an empty one).

        Raises:
            ValueError: a waveform is not 1-D or not finite.
        """
        waves = [as_waveform(w) for w in items]
        counts, all_blocks = [], []
        for wave in waves:
            if wave.size == 0:
                counts.append(0)
                continue
            blocks = self.blocks(self.spectrogram(wave))
            counts.append(len(blocks))
            all_blocks.append(blocks)
        if not all_blocks:
            return [np.zeros((0, self.dim), np.float32) for _ in waves]
        stacked = np.concatenate(all_blocks)
        outputs = [self._session.run(None, {"spectrogram": stacked[start:start + self.batch_size]})[0]
                   for start in range(0, len(stacked), self.batch_size)]
        embeddings = np.concatenate(outputs).astype(np.float32, copy=False)
        result, offset = [], 0
        for count in counts:
            result.append(embeddings[offset:offset + count].copy())
            offset += count
        return result



@register_encoder("aisfx", modality="audio")
def aisfx(*, hop: float = 1.0, batch_size: int = 64, threads: int = 2) -> AisfxEncoder:
    """aiSFX sound-event embeddings, 512-d per ~2.3 s block."""
    return AisfxEncoder(hop=hop, batch_size=batch_size, threads=threads)
