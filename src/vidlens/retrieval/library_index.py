"""A library's vector indexes, kept in step with its stored features.

Each *space* is one index under ``LIBRARY/index/<space>/``:

- ``text``: the text-side vector of every video (what text queries are matched against);
- ``video``: the fused multimodal vector (similar videos, duplicate candidates).

Opening a space compares the index with the stored features: a missing or unreadable index is rebuilt
from the features, a stale one (videos added, re-extracted or removed, metadata changed) is brought up
to date by upserts and deletes, and a change of encoder or embedder settings rebuilds it whole. Each of
these leaves a line in :attr:`LibraryIndex.messages` (and the log), so a user sees why a command took
longer. Nothing here decodes video or runs an encoder: vectors come from the feature store.

:func:`cached_library_index` keeps what it opened with the library object, so the searches of one process
(the CLI's, the service's) do not reload features and index each time: a later call only checks a
cheap fingerprint (the feature part files, the videos' count and last update, the index's
``state.json``) and goes through :func:`open_library_index` again when any of it changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import weakref
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

from vidlens.errors import VidlensError
from vidlens.index import (
    IndexConfig,
    SearchFilter,
    SearchHit,
    VectorIndex,
    VectorIndexError,
    create_index,
    load_index,
    read_state,
)
from vidlens.index.base import STATE_FILE
from vidlens.retrieval.embedder import VideoEmbedder
from vidlens.store.models import Video

log = logging.getLogger(__name__)

SPACES = ("text", "video")
TEXT_FEATURES = tuple(f"text.{f}" for f in ("title", "summary", "product", "ocr", "asr", "concepts"))
SPACE_FEATURES = {"text": TEXT_FEATURES, "video": ("frames", "cover", "audio", *TEXT_FEATURES)}
DATE_KEYS = ("date", "pubdate", "published_at", "publish_time", "upload_date")
FORMAT = 1


def _hash(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()[:16]


def video_metadata(video: dict[str, Any]) -> dict[str, Any]:
    """The filterable metadata of a video record: categories (its labels), duration, date.

    The date is the first of ``extra.date / pubdate / published_at / publish_time / upload_date`` that is
    set (the publication date a manifest carried), else the time the video was ingested.
    """
    extra = video.get("extra") or {}
    cats = list(video.get("labels") or [])
    for key in ("category", "categories"):
        value = extra.get(key)
        if isinstance(value, str):
            cats.append(value)
        elif isinstance(value, list):
            cats.extend(str(v) for v in value)
    date = next((extra[k] for k in DATE_KEYS if extra.get(k) not in (None, "")), None)
    return {"categories": list(dict.fromkeys(c for c in cats if c)), "duration": video.get("duration"),
            "date": date if date is not None else video.get("created_at")}


@dataclass
class LibraryFeatures:
    """Pooled vectors and feature keys of a library, loaded once for building indexes."""

    pooled: dict[str, tuple[list[str], np.ndarray]]
    keys: dict[str, dict[str, str]]
    videos: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, lib: Any, features: tuple[str, ...]) -> LibraryFeatures:
        """Read ``features`` of every video in ``lib``."""
        pooled, keys = {}, {}
        videos = {v["id"]: v for v in lib.videos()}
        for feature in features:
            m = lib.feature_matrix(feature)
            keep = [i for i, vid in enumerate(m.ids) if vid in videos]
            ids = [m.ids[i] for i in keep]
            pooled[feature] = (ids, m.vectors[keep] if len(keep) else np.zeros((0, 0), np.float32))
            keys[feature] = {m.ids[i]: m.keys[i] for i in keep}
        return cls(pooled, keys, videos)

    def encoder_of(self, prefix: str) -> str | None:
        """The most common ``name@version`` (key before '#') among features starting with ``prefix``."""
        counts: Counter[str] = Counter()
        for feature, keys in self.keys.items():
            if feature.startswith(prefix):
                counts.update(k.split("#", 1)[0] for k in keys.values())
        return counts.most_common(1)[0][0] if counts else None

    def item_hashes(self, features: tuple[str, ...]) -> dict[str, str]:
        """A hash per video of its feature keys and metadata; videos with none of ``features`` are left out."""
        per: dict[str, list[tuple[str, str]]] = {}
        for feature in features:
            for vid, key in self.keys.get(feature, {}).items():
                per.setdefault(vid, []).append((feature, key))
        return {vid: _hash([sorted(fk), video_metadata(self.videos[vid])]) for vid, fk in per.items()}


@dataclass
class LibraryIndex:
    """One space's index of a library, with the embedder that made its vectors.

    Attributes:
        space: ``text`` or ``video``.
        index: the backend.
        embedder: its :class:`VideoEmbedder` (with the centring means the vectors were made with).
        text_encoder: ``name@version`` of the text encoder behind the stored text vectors.
        messages: what opening it did ("rebuilt from stored features: …").
    """

    space: str
    index: VectorIndex
    embedder: VideoEmbedder
    text_encoder: str | None
    feature_encoders: dict[str, str] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    query_encoders: dict[str, Any] = field(default_factory=dict, repr=False)  # kept for the next search

    def search(self, vectors: np.ndarray, k: int = 10, filter: SearchFilter | None = None) -> list[list[SearchHit]]:
        """Nearest videos of each query vector in this space."""
        return self.index.search(vectors, k, filter)

    def close(self) -> None:
        """Release the backend."""
        self.index.close()


def index_config(lib: Any, config: IndexConfig | dict[str, Any] | None = None) -> IndexConfig:
    """The index settings: ``config`` if it is an :class:`IndexConfig`, else the library's ``[index]``
    section with the keys of a ``config`` dict (e.g. the CLI's ``{"backend": "milvus"}``) over it."""
    if isinstance(config, IndexConfig):
        return config
    own = getattr(lib.config, "index", None)
    base = own.model_dump() if isinstance(own, IndexConfig) else {}
    return IndexConfig.from_dict({**base, **(config or {})})


def open_library_index(lib: Any, space: str = "text", config: IndexConfig | dict[str, Any] | None = None,
                       rebuild: bool = False) -> LibraryIndex:
    """Open the ``space`` index of ``lib``, building or updating it from stored features as needed.

    The caller owns what this returns and closes it; :func:`cached_library_index` is the kept-open way.

    Args:
        lib: a :class:`vidlens.Library`.
        space: ``text`` (text-side vectors) or ``video`` (fused vectors).
        config: index settings (backend and its parameters); default: see :func:`index_config`.
        rebuild: rebuild from the features even if the index is up to date.

    Raises:
        VidlensError: unknown space, or the library has no vectors for it (run ``vidlens extract``).
    """
    if space not in SPACES:
        raise VidlensError(f"unknown index space {space!r}; known: {', '.join(SPACES)}")
    return _open(lib, space, index_config(lib, config), rebuild)


def _open(lib: Any, space: str, cfg: IndexConfig, rebuild: bool = False,
          current: VectorIndex | None = None) -> LibraryIndex:
    """:func:`open_library_index`; ``current``: the same index already in memory and still what its
    files hold, updated in place instead of loaded again."""
    features = SPACE_FEATURES[space]
    lf = LibraryFeatures.load(lib, features)
    hashes = lf.item_hashes(features)
    if not hashes:
        raise VidlensError(
            f"no {'text ' if space == 'text' else ''}features in {lib.root}: run `vidlens extract` first"
        )
    folder = lib.folder("index") / space
    embedder = VideoEmbedder().fit(lf.pooled)
    text_encoder = lf.encoder_of("text.")
    feature_encoders = {f: e for f in ("frames", "audio") if (e := lf.encoder_of(f))}
    params = cfg.backend_params()
    if cfg.backend == "milvus" and cfg.milvus_uri:  # one server (or file) holds every space: a collection each
        params["collection"] = f"{cfg.milvus_collection}_{space}"
    settings = {"format": FORMAT, "space": space, "embedder": embedder.params_key(), "text_encoder": text_encoder,
                "feature_encoders": feature_encoders, "backend": cfg.backend, "params": params}
    settings_key = _hash(settings)
    messages: list[str] = []

    def note(msg: str) -> None:
        messages.append(msg)
        log.warning("%s", msg)

    index: VectorIndex | None = None
    if rebuild:
        note(f"index '{space}': rebuilding from stored features (asked)")
    elif current is not None and current.info.get("settings_key") == settings_key:
        index = current
    elif _no_state(folder):
        note(f"index '{space}': none yet, building it from stored features")
    else:
        try:
            index = load_index(folder)
        except VectorIndexError as exc:
            note(f"index '{space}': {exc}; rebuilding from stored features")
        else:
            if index.info.get("settings_key") != settings_key:
                note(f"index '{space}': built with other encoders or settings; rebuilding from stored features")
                index.close()
                index = None
    if index is not None:
        embedder = VideoEmbedder.from_state(index.info["embedder"])  # the means its vectors were made with
        stored: dict[str, str] = index.info.get("items", {})
        changed = [vid for vid, h in hashes.items() if stored.get(vid) != h]
        removed = [vid for vid in stored if vid not in hashes]
        if changed or removed:
            note(f"index '{space}': stale ({len(changed)} new or changed, {len(removed)} removed videos); "
                 "updating from stored features")
            if removed:
                index.delete(removed)
            _upsert(index, space, embedder, lf, changed)
            index.info["items"] = hashes
            index.save()
    else:
        _wipe(folder, cfg)
        vectors_dim = embedder.text_dim if space == "text" else embedder.video_dim
        index = create_index(cfg.backend, int(vectors_dim or 1), folder, **params)
        if len(index):  # a Milvus server keeps its collection across our folder being wiped
            index.delete(index.ids())
        _upsert(index, space, embedder, lf, sorted(hashes))
        index.info = {"settings_key": settings_key, "settings": settings, "embedder": embedder.state(),
                      "text_encoder": text_encoder, "feature_encoders": feature_encoders, "items": hashes}
        index.save()
    return LibraryIndex(space, index, embedder, text_encoder, feature_encoders, messages)


@dataclass
class _Opened:
    """An index a library keeps open, and the fingerprints it was checked against."""

    space: LibraryIndex
    data: tuple
    files: tuple


class _LibraryIndexes:
    """The indexes one library object keeps open (one per space and configuration)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.opened: dict[tuple[str, str], _Opened] = {}
        self.retired: list[LibraryIndex] = []  # replaced while a search may still use them; closed last

    def close(self) -> None:
        with self.lock:
            for li in [o.space for o in self.opened.values()] + self.retired:
                try:
                    li.close()
                except Exception as exc:  # closing the others must go on
                    log.warning("closing index '%s': %s", li.space, exc)
            self.opened.clear()
            self.retired.clear()


_OPEN: weakref.WeakKeyDictionary[Any, _LibraryIndexes] = weakref.WeakKeyDictionary()
_OPEN_LOCK = threading.Lock()


def _indexes_of(lib: Any) -> _LibraryIndexes:
    with _OPEN_LOCK:
        held = _OPEN.get(lib)
        if held is None:
            held = _OPEN[lib] = _LibraryIndexes()
            weakref.finalize(lib, held.close)  # a library dropped without close_library_indexes()
        return held


def _data_fingerprint(lib: Any, space: str) -> tuple:
    """What the index is built from, cheaply: the feature part files and the videos' count and last update."""
    store = lib.vectors
    parts = tuple((f, tuple(p.name for p in store.parts(f))) for f in SPACE_FEATURES[space])
    with lib.store.session() as s:
        count, last = s.execute(select(func.count(Video.id), func.max(Video.updated_at))).one()
    return parts, count, str(last)


def _files_fingerprint(folder: Path) -> tuple:
    """The index's ``state.json`` (rewritten at every save, by this process or another)."""
    try:
        st = (folder / STATE_FILE).stat()
    except OSError:
        return ()
    return st.st_mtime_ns, st.st_size, st.st_ino


def cached_library_index(lib: Any, space: str = "text", config: IndexConfig | dict[str, Any] | None = None
                         ) -> LibraryIndex:
    """The ``space`` index of ``lib``, kept open with the library object for later calls.

    The first call opens it like :func:`open_library_index`; later ones return the same object after a
    check of a few milliseconds (feature part files, videos' count and last update, the index's
    ``state.json``). A change there brings it up to date: new or changed videos are upserted into the
    index in memory, and an index rewritten by another process is loaded again. What is returned shares
    the index with every other caller (its ``messages`` are this call's own); do not close it:
    :func:`close_library_indexes` does (a library that is garbage-collected also does).

    Raises:
        VidlensError: as :func:`open_library_index`.
    """
    if space not in SPACES:
        raise VidlensError(f"unknown index space {space!r}; known: {', '.join(SPACES)}")
    cfg = index_config(lib, config)
    key = (space, cfg.model_dump_json())
    held = _indexes_of(lib)
    folder = lib.folder("index") / space
    data, files = _data_fingerprint(lib, space), _files_fingerprint(folder)  # outside the lock: searches overlap
    with held.lock:
        opened = held.opened.get(key)
        if opened is not None and opened.data == data and opened.files == files:
            return replace(opened.space, messages=[])
        current = None
        if opened is not None and opened.files == _files_fingerprint(folder):
            current = opened.space.index  # only the features changed: update it in place
        li = _open(lib, space, cfg, current=current)
        if opened is not None:
            li.query_encoders = opened.space.query_encoders
            if li.index is not current:
                held.retired.append(opened.space)
        held.opened[key] = _Opened(replace(li, messages=[]), data, _files_fingerprint(folder))
        return li


def close_library_indexes(lib: Any) -> None:
    """Close the indexes :func:`cached_library_index` keeps open for ``lib`` (for ``Library.close()``)."""
    with _OPEN_LOCK:
        held = _OPEN.pop(lib, None)
    if held is not None:
        held.close()


def _no_state(folder: Any) -> bool:
    """True when there is no index in ``folder``; a damaged ``state.json`` counts as an index, which then
    fails to load and is rebuilt with a message."""
    try:
        return read_state(folder) is None
    except VectorIndexError:
        return False


def _upsert(index: VectorIndex, space: str, embedder: VideoEmbedder, lf: LibraryFeatures, ids: list[str],
            batch: int = 10_000) -> None:
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        if space == "text":
            vecs, has = embedder.text_vectors(chunk, lf.pooled)
        else:
            vecs, has = embedder.video_vectors(chunk, lf.pooled)
        keep = [i for i in range(len(chunk)) if has[i]]
        gone = [chunk[i] for i in range(len(chunk)) if not has[i]]
        if gone:
            index.delete(gone)
        if keep:
            index.upsert([chunk[i] for i in keep], vecs[keep],
                         [video_metadata(lf.videos[chunk[i]]) for i in keep])


def _wipe(folder: Any, cfg: IndexConfig) -> None:
    """Remove an old index's files before a full rebuild (a Milvus Lite file would keep its collection)."""
    import shutil

    if folder.exists():
        for child in folder.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
