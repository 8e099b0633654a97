"""The vector index contract every backend implements, and the registry of backends by name.

An index maps string ids to unit vectors (inner product = cosine) plus a little metadata per item
(categories, duration, date; see :mod:`vidlens.index.filters`). It lives in one folder: the backend's
files and ``state.json`` (backend name, dimension, parameters and the caller's ``info``, e.g. a
fingerprint of the features the vectors came from, so a stale index can be told and rebuilt).
"""

from __future__ import annotations

import abc
import json
import os
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from vidlens.errors import VidlensError
from vidlens.index.filters import SearchFilter
from vidlens.models.registry import Registry

STATE_FILE = "state.json"

INDEX_BACKENDS: Registry = Registry("index backend")


class VectorIndexError(VidlensError):
    """An index cannot be opened, is damaged, or was asked something it cannot do."""


@dataclass(frozen=True)
class SearchHit:
    """One result of a search: the item id and its score (inner product of unit vectors: cosine)."""

    id: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "score": round(float(self.score), 6)}


class ReadWriteLock:
    """Many readers or one writer; searches share it, upserts and deletes take it alone."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def as_matrix(vectors: Any, dim: int, what: str = "vectors", normalize: bool = True) -> np.ndarray:
    """A C-contiguous float32 ``(N, dim)`` array, rows L2-normalised; checks shape and finiteness."""
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != dim:
        raise VectorIndexError(f"{what}: expected shape (N, {dim}), got {tuple(np.shape(vectors))}")
    if not np.isfinite(x).all():
        raise VectorIndexError(f"{what}: contains NaN or infinite values")
    x = np.ascontiguousarray(x)
    if normalize:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.maximum(norms, 1e-12)
    return np.ascontiguousarray(x, dtype=np.float32)


class VectorIndex(abc.ABC):
    """A searchable set of (id, unit vector, metadata) items.

    Implementations are thread-safe: searches may run while other threads upsert or delete.

    Attributes:
        dim: vector size.
        folder: where :meth:`save` writes (None: in memory only, ``save`` needs a folder then).
        info: free JSON-ready facts the caller keeps with the index (saved with it).
    """

    backend_name: ClassVar[str] = ""

    def __init__(self, dim: int, folder: str | os.PathLike | None = None):
        if int(dim) <= 0:
            raise VectorIndexError(f"dimension must be positive, got {dim}")
        self.dim = int(dim)
        self.folder = Path(folder) if folder is not None else None
        self.info: dict[str, Any] = {}

    # -- writing ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def upsert(self, ids: Sequence[str], vectors: Any,
               metadata: Sequence[Mapping[str, Any] | None] | None = None) -> int:
        """Insert or replace items; a later duplicate id in the batch wins. Returns the number written."""

    @abc.abstractmethod
    def delete(self, ids: Iterable[str]) -> int:
        """Remove items (unknown ids are ignored). Returns the number removed."""

    # -- reading ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def search(self, queries: Any, k: int = 10, filter: SearchFilter | None = None) -> list[list[SearchHit]]:
        """Top-``k`` items by inner product for each row of ``queries`` ``(Q, dim)``, best first."""

    def search_one(self, query: Any, k: int = 10, filter: SearchFilter | None = None) -> list[SearchHit]:
        """Top-``k`` items for one query vector."""
        return self.search(np.asarray(query, np.float32).reshape(1, -1), k, filter)[0]

    @abc.abstractmethod
    def ids(self) -> list[str]:
        """Ids of all items, sorted."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of items."""

    @abc.abstractmethod
    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Stored vectors of ``ids`` ``(N, dim)``; raises for an unknown id."""

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and item_id in set(self.ids())

    # -- lifetime ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """Constructor parameters (saved in ``state.json`` and used by :func:`load_index`)."""

    @abc.abstractmethod
    def _save_files(self, folder: Path) -> dict[str, Any]:
        """Write the backend's own files below ``folder``; returns what ``state.json`` must record to find
        them again. Files must not overwrite the ones the current ``state.json`` points to."""

    def _after_save(self, folder: Path, files: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Called once the new ``state.json`` is in place (e.g. to remove older generations)."""

    @classmethod
    @abc.abstractmethod
    def _load_files(cls, folder: Path, state: dict[str, Any]) -> VectorIndex:
        """Rebuild an index saved by :meth:`_save_files`."""

    def save(self, folder: str | os.PathLike | None = None) -> Path:
        """Persist the index into ``folder`` (default: the one it was created with), atomically.

        Returns:
            The folder.
        """
        target = Path(folder) if folder is not None else self.folder
        if target is None:
            raise VectorIndexError("this index has no folder; pass one to save()")
        target.mkdir(parents=True, exist_ok=True)
        self.folder = target
        files = self._save_files(target)
        state = {"backend": self.backend_name, "dim": self.dim, "params": self.params(), "info": self.info,
                 "count": len(self), "files": files}
        # state.json is the one pointer to the files: replacing it is the atomic switch to the new copy.
        atomic_write_text(target / STATE_FILE, json.dumps(state, ensure_ascii=False, indent=2))
        self._after_save(target, files)
        return target

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections and memory held outside Python (the index stays on disk)."""

    def __enter__(self) -> VectorIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, items={len(self)}, folder={str(self.folder)!r})"



def check_upsert(ids: Sequence[Any], vectors: Any, metadata: Sequence[Any] | None,
                 dim: int) -> tuple[list[str], np.ndarray]:
    """Validate the arguments of ``upsert`` (same for every backend): string ids, matrix, lengths."""
    ids = [str(i) for i in ids]
    x = as_matrix(vectors, dim)
    if len(ids) != len(x):
        raise VectorIndexError(f"upsert: {len(ids)} ids but {len(x)} vectors")
    if metadata is not None and len(metadata) != len(ids):
        raise VectorIndexError(f"upsert: {len(ids)} ids but {len(metadata)} metadata rows")
    if any(not i for i in ids):
        raise VectorIndexError("upsert: empty id")
    return ids, x

def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file under a temporary name, flush it to disk, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_state(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The ``state.json`` of an index folder; None when there is none.

    Raises:
        VectorIndexError: the file exists but cannot be read as JSON.
    """
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VectorIndexError(f"{path}: unreadable index state ({exc})") from None


def create_index(backend: str, dim: int, folder: str | os.PathLike | None = None, **params: Any) -> VectorIndex:
    """A new, empty index of the backend registered as ``backend`` (``faiss`` or ``milvus``).

    Raises:
        ConfigError: unknown backend or parameter (the message names it).
    """
    return INDEX_BACKENDS.create(backend, dim=dim, folder=folder, **params)


def load_index(folder: str | os.PathLike) -> VectorIndex:
    """Open the index saved in ``folder``.

    Raises:
        VectorIndexError: no index there, or its files are missing or damaged (the message says which).
    """
    state = read_state(folder)
    if state is None:
        raise VectorIndexError(f"{folder}: no index here (no {STATE_FILE})")
    cls = INDEX_BACKENDS.get(state["backend"])
    index = cls._load_files(Path(folder), state)
    index.info = dict(state.get("info") or {})
    index.folder = Path(folder)
    return index
