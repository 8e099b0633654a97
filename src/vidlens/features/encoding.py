"""`EncoderBank`: the encoders one extraction run uses, behind the few calls the extractor makes.

The bank names its encoders by registry name (see :mod:`vidlens.encoders`), creates them on first use
and turns their outputs into the plain structures stored per feature. Tests pass a bank of tiny
encoders with the same methods.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vidlens.config import VidlensConfig

DEFAULT_ENCODERS: dict[str, str] = {
    "frames": "efficientnet_lite0",
    "audio": "aisfx",
    "ocr": "ppocrv5",
    "asr": "whisper_base",
    "text": "muse_v3",
}


def _role(feature: str) -> str:
    if feature == "cover":
        return "frames"
    if feature.startswith("text."):
        return "text"
    return feature


class EncoderBank:
    """Registry encoders for each role (frames, audio, ocr, asr, text), created lazily.

    Args:
        config: library configuration (thread counts, OCR caps).
        names: role → registry name, overriding :data:`DEFAULT_ENCODERS`.
    """

    def __init__(self, config: VidlensConfig, names: dict[str, str] | None = None):
        self.config = config
        self.names = {**DEFAULT_ENCODERS, **(names or {})}
        self._encoders: dict[str, Any] = {}

    def encoder(self, role: str) -> Any:
        """The encoder object for a role (weights load on its first ``encode_batch``)."""
        if role not in self._encoders:
            from vidlens.encoders import create_encoder

            name = self.names[role]
            params: dict[str, Any] = {}
            if role == "asr" and name == DEFAULT_ENCODERS["asr"]:
                params["beam_size"] = self.config.extract.asr_beam_size
            self._encoders[role] = create_encoder(name, **params)
        return self._encoders[role]

    def key_of(self, feature: str) -> str:
        """``name@version`` of the encoder behind a feature."""
        enc = self.encoder(_role(feature))
        return f"{enc.name}@{enc.version}"

    def frames(self, frames: np.ndarray) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """RGB frames (N, H, W, 3) → embeddings (N, D) and the video's top visual concepts."""
        from vidlens.encoders.frames import top_concepts

        out = self.encoder("frames").encode_batch(frames)
        concepts = [{"name": name, "score": round(float(score), 4)}
                    for name, score in top_concepts(out.logits, k=10)]
        return np.asarray(out.embeddings, np.float32), concepts

    def has_frame_grid(self) -> bool:
        """Whether the frame encoder gives features over a grid of cells (:meth:`frame_grid`)."""
        return hasattr(self.encoder("frames"), "encode_grid")

    def frame_grid(self, frames: np.ndarray) -> np.ndarray:
        """RGB frames (N, H, W, 3) → the frame encoder's features over a 2 × 2 grid of cells (N, 4 · D),
        for copy detection (see :meth:`has_frame_grid`)."""
        return np.asarray(self.encoder("frames").encode_grid(frames), np.float32)

    def audio(self, wave: np.ndarray) -> np.ndarray:
        """16 kHz mono waveform → (T, 512) block embeddings."""
        return np.asarray(self.encoder("audio").encode_batch([wave])[0], np.float32)

    def asr(self, wave: np.ndarray, language: str | None = None) -> dict[str, Any]:
        """16 kHz mono waveform → transcript dict (language, text, segments with start/end/text)."""
        result = dict(self.encoder("asr").transcribe(wave, language=language))
        result["text"] = (result.get("text") or "").strip()
        result["segments"] = [{"start": round(float(a), 2), "end": round(float(b), 2), "text": t.strip()}
                              for a, b, t in result.get("segments", [])]
        return result

    def ocr(self, frames: np.ndarray, times: np.ndarray, max_frames: int) -> dict[str, Any]:
        """Sampled frames → de-duplicated on-screen text lines (``text``, ``first_seen``, ``last_seen``, …)."""
        from vidlens.encoders.ocr import dedupe_lines, select_ocr_frames

        if max_frames <= 0 or len(frames) == 0:
            return {"lines": [], "text": "", "frames_read": []}
        chosen = select_ocr_frames(frames, times, max_frames=max_frames)
        per_frame = self.encoder("ocr").encode_batch([frames[i] for i in chosen])
        lines = dedupe_lines([float(times[i]) for i in chosen], per_frame)
        return {
            "lines": lines,
            "text": "\n".join(line["text"] for line in lines),
            "frames_read": [round(float(times[i]), 3) for i in chosen],
        }

    def text(self, texts: list[str]) -> np.ndarray:
        """Strings → (N, 512) L2-normalised vectors."""
        return np.asarray(self.encoder("text").encode_batch(texts), np.float32)
