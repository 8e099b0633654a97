"""Helpers for exercising the service in tests and benchmarks: stand-in encoders and a server in a thread.

:class:`StandInEncoders` have the :class:`vidlens.features.encoding.EncoderBank` interface, answer in
microseconds and are deterministic. ASR cannot be faked from a waveform, so the stand-in "hears" a fixed ``transcript``
whenever the audio is not silent: a test that speaks that phrase into a clip can search for it.
Not for real use: the vectors carry no meaning.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np


class StandInEncoders:
    """Cheap encoders that count their calls.

    Args:
        transcript: what ASR returns for any audio that is not silent.
        ocr_text: what OCR returns for any video.
        delay: seconds each call sleeps (to make jobs last long enough to interrupt in tests).
    """

    def __init__(self, transcript: str = "hello there", ocr_text: str = "SALE", delay: float = 0.0):
        self.transcript = transcript
        self.ocr_text = ocr_text
        self.delay = delay
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _count(self, role: str) -> None:
        with self._lock:
            self.calls[role] += 1
        if self.delay:
            time.sleep(self.delay)

    def key_of(self, feature: str) -> str:
        """``name@version`` of the stand-in behind a feature."""
        role = "frames" if feature == "cover" else "text" if feature.startswith("text.") else feature
        return f"standin-{role}@1"

    def frames(self, frames: np.ndarray) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Colour statistics per frame, and one 'concept' named after the dominant channel."""
        self._count("frames")
        x = frames.reshape(len(frames), -1, 3).astype(np.float32) / 255
        emb = np.concatenate([x.mean(1), x.std(1)], axis=1)
        channel = ("red", "green", "blue")[int(np.argmax(emb[:, :3].mean(0)))]
        return emb, [{"name": f"{channel} scene", "score": round(float(emb[:, :3].max()), 4)}]

    def audio(self, wave: np.ndarray) -> np.ndarray:
        """Loudness per ~2 s block."""
        self._count("audio")
        n = max(1, len(wave) // 32000)
        return np.stack([np.array([np.abs(b).mean(), b.std()], np.float32) for b in np.array_split(wave, n)])

    def asr(self, wave: np.ndarray, language: str | None = None) -> dict[str, Any]:
        """``transcript`` when the audio is not silent, else nothing."""
        self._count("asr")
        speech = float(np.abs(wave).mean()) > 0.005
        text = self.transcript if speech else ""
        seconds = len(wave) / 16000
        return {"language": language or "en", "language_probability": 0.99, "text": text,
                "segments": [{"start": 0.0, "end": round(seconds, 2), "text": text}] if speech else []}

    def ocr(self, frames: np.ndarray, times: np.ndarray, max_frames: int) -> dict[str, Any]:
        """``ocr_text`` on screen from the first to the last sampled frame."""
        self._count("ocr")
        lines = [{"text": self.ocr_text, "start": float(times[0]), "end": float(times[-1]), "score": 0.99}]
        return {"lines": lines, "text": self.ocr_text, "frames_read": [float(times[0])]}

    def text(self, texts: list[str]) -> np.ndarray:
        """A 16-bin character histogram, L2-normalised."""
        self._count("text")
        out = np.zeros((len(texts), 16), np.float32)
        for i, t in enumerate(texts):
            for ch in t:
                out[i, ord(ch) % 16] += 1
            out[i] /= max(float(np.linalg.norm(out[i])), 1e-6)
        return out


class StandInClassifier:
    """A classifier with the interface :func:`vidlens.classify.runs.classify_library` uses, deciding by words:
    a video whose title or transcript names a level-2 category (or one of its aliases or keywords) gets
    that category, every other video the first one. For exercising the service without a trained model.

    Args:
        taxonomy: the categories (default: a small food/sports tree).
    """

    name = "stand-in"

    def __init__(self, taxonomy: Any = None):
        from vidlens.taxonomy import Taxonomy

        self.taxonomy = taxonomy or Taxonomy.from_records([
            {"name": "美食", "aliases": ["food"], "children": [
                {"name": "家常菜", "aliases": ["home cooking"], "keywords": ["红烧肉"]},
                {"name": "烘焙", "aliases": ["baking"], "keywords": ["cake"]}]},
            {"name": "体育", "aliases": ["sports"], "children": [
                {"name": "足球", "aliases": ["football"], "keywords": ["goal", "harbour"]}]}])

    def dataset_from_library(self, lib: Any, ids: list[str] | None = None, require_labels: bool = False) -> Any:
        """The titles and transcripts of ``ids`` (all videos by default)."""
        from types import SimpleNamespace

        ids = ids if ids is not None else [v["id"] for v in lib.videos()]
        titles, texts = [], []
        for vid in ids:
            fs = lib.features(vid)
            titles.append(fs.texts.get("title", ""))
            texts.append(" ".join(fs.texts.values()).lower())
        return SimpleNamespace(ids=list(ids), titles=titles, texts=texts, modalities={})

    def predict(self, dataset: Any) -> Any:
        """Scores: 0.8 for the category named in the text (first match wins), the rest shared."""
        from vidlens.classify import Predictions

        l2_names = self.taxonomy.l2_names
        words = [[w.lower() for w in (c.name, *c.aliases, *c.keywords)] for c in
                 (self.taxonomy.get(n) for n in l2_names)]
        l2 = np.full((len(dataset.ids), len(l2_names)), 0.2 / max(len(l2_names) - 1, 1))
        for i, text in enumerate(dataset.texts):
            hit = next((j for j, ws in enumerate(words) if any(w in text for w in ws)), 0)
            l2[i, hit] = 0.8
        parents = self.taxonomy.l2_to_l1
        l1 = np.zeros((len(dataset.ids), self.taxonomy.num_l1))
        np.add.at(l1.T, parents, l2.T)
        return Predictions(ids=list(dataset.ids), taxonomy=self.taxonomy, l2_probs=l2, l1_probs=l1,
                           method="zero-shot", model=self.name)


class StandInTagger:
    """A tagger with the interface of :class:`vidlens.tags.Tagger` that the service uses (``tag(doc)``):
    each of ``words`` found in the video's text becomes a core tag recalled by ``content_text``. The tags
    must exist (approved) in the tag library to be assigned.
    """

    def __init__(self, words: list[str]):
        self.words = list(words)

    def tag(self, doc: Any) -> dict[str, Any]:
        """``{video_id, core, related, n_candidates}`` like the real tagger."""
        text = " ".join(doc.texts.values()).lower()
        core = [{"tag": w, "score": 0.9, "kind": "atomic", "channels": ["content_text"]}
                for w in self.words if w.lower() in text]
        return {"video_id": doc.video_id, "core": core, "related": [], "n_candidates": len(core)}


@contextmanager
def running_server(app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread; yields its base URL and stops it afterwards.

    The app's lifespan runs as under ``vidlens serve`` (index built, job workers started).
    """
    import uvicorn

    if port == 0:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, name="vidlens-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
