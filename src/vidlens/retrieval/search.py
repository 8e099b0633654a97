"""Text → video search and video → similar videos, over a library's indexes.

``search(lib, "做红烧肉")`` embeds the query with the library's text encoder (``muse_v3`` by default)
and matches it against the text-side vectors of the videos (see :mod:`vidlens.retrieval.embedder` for
how this reaches visual content without a CLIP model). ``similar(lib, ref)`` takes a video id or a
video file that is not in the library and returns the videos nearest in the fused multimodal space.
"""

from __future__ import annotations

import logging
import os
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

from vidlens.errors import MediaError, NotFoundError, VidlensError
from vidlens.index import IndexConfig, SearchFilter, parse_filter
from vidlens.retrieval.embedder import l2n
from vidlens.retrieval.library_index import LibraryIndex, cached_library_index

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 1000


def _filter(filters: SearchFilter | list[str] | str | None) -> SearchFilter | None:
    if filters is None or isinstance(filters, SearchFilter):
        return filters
    return parse_filter(filters)


def clean_query(query: str) -> str:
    """The query as it is embedded: NFKC-normalised, control characters dropped, whitespace collapsed,
    cut to :data:`MAX_QUERY_CHARS` characters (a longer query says nothing more to a sentence encoder).

    Raises:
        VidlensError: not a string, or nothing but whitespace.
    """
    if not isinstance(query, str):
        raise VidlensError(f"a query is text, got {type(query).__name__}")
    text = unicodedata.normalize("NFKC", query)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    text = " ".join(text.split())
    if not text:
        raise VidlensError("empty query: give some words to search for")
    if len(text) > MAX_QUERY_CHARS:
        log.info("query of %d characters cut to %d", len(text), MAX_QUERY_CHARS)
        text = text[:MAX_QUERY_CHARS]
    return text


def _encoder_key(encoder: Any) -> str:
    return f"{encoder.name}@{encoder.version}"


def _text_encoder(space: LibraryIndex, encoder: Any) -> Any:
    """The query encoder: the one given, else the registry encoder the library's text vectors came from
    (built once and kept with the index, so its weights load once per process)."""
    if encoder is None:
        from vidlens.encoders import create_encoder

        name = (space.text_encoder or "muse_v3@").split("@", 1)[0]
        encoder = space.query_encoders.get(name)
        if encoder is None or (space.text_encoder and _encoder_key(encoder) != space.text_encoder):
            try:
                encoder = space.query_encoders[name] = create_encoder(name)
            except VidlensError as exc:
                raise VidlensError(f"cannot build the query encoder {name!r} the library's text vectors came "
                                   f"from: {exc}") from None
    if space.text_encoder and _encoder_key(encoder) != space.text_encoder:
        raise VidlensError(
            f"the library's text vectors were made by {space.text_encoder} but the query encoder is "
            f"{_encoder_key(encoder)}; re-extract text (`vidlens extract -m text --force`) or use that encoder"
        )
    return encoder


def _results(lib: Any, hits: Any) -> list[dict[str, Any]]:
    """Result dicts for index hits, their videos read in one query (a hit whose video was deleted since
    the index was built is left out)."""
    hits = list(hits)
    videos = lib.store.get_videos([h.id for h in hits])
    out = []
    for h in hits:
        video = videos.get(h.id)
        if video is None:
            continue
        thumb = lib.root / "thumbnails" / f"{h.id}.jpg"
        out.append({"id": h.id, "score": round(float(h.score), 4), "title": video.get("title"),
                    "duration": video.get("duration"), "labels": video.get("labels") or [],
                    "path": (video.get("paths") or [None])[0],
                    "thumbnail": str(thumb) if thumb.exists() else None})
    return out


def search(lib: Any, query: str, filters: SearchFilter | list[str] | str | None = None, k: int = 10, *,
           text_encoder: Any = None, index_config: IndexConfig | dict[str, Any] | None = None,
           model: str | os.PathLike | None = None, messages: list[str] | None = None) -> list[dict[str, Any]]:
    """Videos of ``lib`` that match a text query, best first.

    Args:
        lib: the library.
        query: any language the text encoder knows (Chinese, English, mixed, emoji); cut to 1000 characters.
        filters: a :class:`SearchFilter` or filter strings (``["category=美食", "duration<=60"]``).
        k: number of results.
        text_encoder: the query encoder (default: the registry encoder the library's text came from).
        index_config: index backend and parameters.
        model: folder of a trained two-tower model to rank with (default: zero-shot text-side vectors;
            ``"auto"`` uses ``LIBRARY/models/two_tower`` when it exists).
        messages: a list that receives what opening the index did (rebuilds, updates).

    Returns:
        One dict per video: id, score, title, duration, labels, path, thumbnail.

    Raises:
        VidlensError: empty query, no text features, or a query encoder that does not match the library.
    """
    text = clean_query(query)
    flt = _filter(filters)
    if int(k) <= 0:
        raise VidlensError(f"k must be positive, got {k}")
    model_dir = _model_dir(lib, model)
    if model_dir is not None:
        from vidlens.retrieval.two_tower import search_with_model

        return search_with_model(lib, model_dir, text, flt, k, text_encoder=text_encoder, messages=messages)
    space = cached_library_index(lib, "text", index_config)
    if messages is not None:
        messages.extend(space.messages)
    encoder = _text_encoder(space, text_encoder)
    q = np.asarray(encoder.encode_batch([text]), np.float32)
    if not np.any(q):
        raise VidlensError("the query encoder found nothing to embed in this query")
    hits = space.search(l2n(q), k, flt)[0]
    return _results(lib, hits)


def _model_dir(lib: Any, model: str | os.PathLike | None) -> Path | None:
    if model is None:
        return None
    if str(model) == "auto":
        folder = lib.root / "models" / "two_tower"
        return folder if (folder / "two_tower.json").exists() else None
    folder = Path(model)
    if not (folder / "two_tower.json").exists():
        raise NotFoundError(f"{folder}: no two-tower model here (no two_tower.json)")
    return folder


def similar(lib: Any, ref: str | os.PathLike, k: int = 10, filters: SearchFilter | list[str] | str | None = None,
            *, encoders: Any = None, index_config: IndexConfig | dict[str, Any] | None = None,
            messages: list[str] | None = None) -> list[dict[str, Any]]:
    """Videos nearest to a library video (by id or id prefix) or to a video file, in the fused space.

    Args:
        lib: the library.
        ref: a video id (or unique prefix) of ``lib``, or the path of a video file (need not be in ``lib``).
        k: number of results (the video itself is left out).
        filters: as in :func:`search`.
        encoders: an ``EncoderBank``-like object for a file's frames/audio/concepts (default: the real
            encoders the library's features came from).
        index_config: index backend and parameters.
        messages: receives what opening the index did.

    Raises:
        NotFoundError: ``ref`` is neither a video of the library nor an existing file.
        MediaError: the file cannot be decoded.
    """
    flt = _filter(filters)
    space = cached_library_index(lib, "video", index_config)
    if messages is not None:
        messages.extend(space.messages)
    own_id, vector = _reference_vector(lib, space, ref, encoders)
    hits = space.search(vector[None], k + (1 if own_id else 0), flt)[0]
    return _results(lib, [h for h in hits if h.id != own_id][:k])


def _reference_vector(lib: Any, space: LibraryIndex, ref: str | os.PathLike, encoders: Any
                      ) -> tuple[str | None, np.ndarray]:
    ref_s = os.fspath(ref)
    try:
        vid = lib.get(ref_s)["id"]
    except NotFoundError:
        vid = None
    if vid is not None:
        if vid in space.index:
            return vid, space.index.get_vectors([vid])[0]
        fs = lib.features(vid)
        pooled = {f: ([vid], v[None]) for f, v in fs.pooled.items()}
        vec, has = space.embedder.video_vectors([vid], pooled)
        if not has[0]:
            raise VidlensError(f"video {vid} has no features to compare: run `vidlens extract` first")
        return vid, vec[0]
    path = Path(ref_s)
    if not path.exists():
        raise NotFoundError(f"{ref_s!r} is neither a video id of this library nor an existing file")
    if not path.is_file() or not os.access(path, os.R_OK):
        raise MediaError(path, "not a readable file")
    return None, file_vector(lib, space, path, encoders)


def file_vector(lib: Any, space: LibraryIndex, path: Path, encoders: Any = None) -> np.ndarray:
    """The fused vector of a video file outside the library (frames, cover, audio, visual concepts)."""
    from vidlens.media import read_audio, sample_frames

    if encoders is None:
        from vidlens.features.encoding import EncoderBank

        names = {"frames": space.feature_encoders.get("frames", "efficientnet_lite0@").split("@")[0]}
        if "audio" in space.feature_encoders:
            names["audio"] = space.feature_encoders["audio"].split("@")[0]
        if space.text_encoder:
            names["text"] = space.text_encoder.split("@")[0]
        encoders = EncoderBank(lib.config, names)
    m = lib.config.media
    pooled: dict[str, tuple[list[str], np.ndarray]] = {}
    key = "__file__"
    frames = sample_frames(path, fps=m.fps, max_frames=m.max_frames, max_side=m.frame_max_side)
    if len(frames.times):
        emb, concepts = encoders.frames(frames.frames)
        pooled["frames"] = ([key], emb.mean(axis=0)[None])
        pooled["cover"] = ([key], emb[:1])
        names = ", ".join(c["name"] for c in concepts[:5])
        if names and space.embedder.text_dim:
            pooled["text.concepts"] = ([key], np.asarray(encoders.text([names]), np.float32))
    if "audio" in space.embedder.dims_:
        try:
            wave = read_audio(path, sample_rate=m.audio_sample_rate, max_seconds=m.max_audio_seconds)
            seq = encoders.audio(wave)
            if len(seq):
                pooled["audio"] = ([key], np.asarray(seq, np.float32).mean(axis=0)[None])
        except MediaError as exc:
            log.info("%s: audio left out (%s)", path, exc.reason)
    if not pooled:
        raise MediaError(path, "no decodable frames or audio")
    vec, has = space.embedder.video_vectors([key], pooled)
    if not has[0]:
        raise MediaError(path, "nothing in this file matches the library's features")
    return vec[0]
