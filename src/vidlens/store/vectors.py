"""Feature files of a library: pooled vectors in columnar parts, sequences in per-video arrays.

Layout under ``LIBRARY/features/``::

    <feature>/part-<time>-<uuid>.arrow     pooled vectors: columns video_id, key, vector (fixed-size list)
    <feature>/seq/<id[:2]>/<id>.npy        the per-time-step sequence (T, D) of one video, loaded lazily

Pooled vectors of a whole library load in one pass over a few Arrow IPC files (memory-mapped), which is
what training on 100k videos needs. Every file is written under a temporary name and renamed into place,
so a killed run never leaves a half-written file that looks valid. Parts written by many small batches
are merged by :meth:`VectorStore.compact`; when the same video appears in several parts the newest wins.
A part that cannot be read (a corrupt file) is moved aside as ``*.corrupt`` and its videos count as not
extracted, so the next extraction redoes them.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyarrow import ipc

log = logging.getLogger(__name__)

PART_GLOB = "part-*.arrow"


def _atomic_write_bytes(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@dataclass
class PooledMatrix:
    """Pooled vectors of one feature for many videos.

    Attributes:
        ids: video ids, one per row.
        vectors: float32 array (N, D).
        keys: the extractor key each row was made with.
    """

    ids: list[str]
    vectors: np.ndarray
    keys: list[str]

    def index(self) -> dict[str, int]:
        """Row number of each video id."""
        return {vid: i for i, vid in enumerate(self.ids)}


class VectorStore:
    """Reads and writes feature arrays below one folder.

    Args:
        root: the library's ``features`` folder.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _dir(self, feature: str) -> Path:
        if not feature or "/" in feature or feature.startswith("."):
            raise ValueError(f"bad feature name {feature!r}")
        return self.root / feature

    # -- sequences --------------------------------------------------------------------------------
    def seq_path(self, feature: str, video_id: str) -> Path:
        """Where the sequence of one video's feature lives."""
        return self._dir(feature) / "seq" / video_id[:2] / f"{video_id}.npy"

    def write_sequence(self, feature: str, video_id: str, seq: np.ndarray) -> None:
        """Store a (T, D) sequence atomically."""
        path = self.seq_path(feature, video_id)
        path.parent.mkdir(parents=True, exist_ok=True)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(seq, dtype=np.float32))

        _atomic_write_bytes(path, write)

    def read_sequence(self, feature: str, video_id: str, mmap: bool = True) -> np.ndarray | None:
        """One video's sequence, memory-mapped; None when absent or unreadable."""
        path = self.seq_path(feature, video_id)
        if not path.exists():
            return None
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError) as exc:
            log.warning("unreadable sequence file %s (%s); it will be recomputed", path, exc)
            return None

    # -- pooled vectors ---------------------------------------------------------------------------
    def write_pooled(self, feature: str, rows: Iterable[tuple[str, str, np.ndarray]]) -> Path | None:
        """Write (video_id, key, vector) rows as one new part; returns its path (None if no rows)."""
        rows = list(rows)
        if not rows:
            return None
        dim = int(np.asarray(rows[0][2]).shape[-1])
        flat = np.concatenate([np.asarray(v, dtype=np.float32).reshape(-1) for _, _, v in rows])
        if flat.size != dim * len(rows):
            raise ValueError(f"{feature}: pooled vectors of different sizes in one part")
        table = pa.table({
            "video_id": pa.array([r[0] for r in rows], pa.string()),
            "key": pa.array([r[1] for r in rows], pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim),
        })
        folder = self._dir(feature)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.arrow"

        def write(tmp: Path) -> None:
            with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)

        _atomic_write_bytes(path, write)
        return path

    def parts(self, feature: str) -> list[Path]:
        """Part files of a feature, oldest first."""
        folder = self._dir(feature)
        return sorted(folder.glob(PART_GLOB)) if folder.exists() else []

    def _read_part(self, path: Path) -> pa.Table | None:
        try:
            with pa.memory_map(str(path), "r") as source:
                return ipc.open_file(source).read_all()
        except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
            aside = path.with_suffix(".corrupt")
            log.warning("feature part %s is unreadable (%s); moved to %s, its videos will be redone",
                        path, exc, aside.name)
            os.replace(path, aside)
            return None

    def load_pooled(self, feature: str, ids: Iterable[str] | None = None) -> PooledMatrix:
        """Pooled vectors of ``feature`` (all videos, or those in ``ids`` in that order if present)."""
        latest: dict[str, tuple[int, int]] = {}
        tables: list[pa.Table] = []
        for path in self.parts(feature):
            table = self._read_part(path)
            if table is None or table.num_rows == 0:
                continue
            t = len(tables)
            tables.append(table)
            for row, vid in enumerate(table.column("video_id").to_pylist()):
                latest[vid] = (t, row)  # later parts overwrite earlier ones
        wanted = list(latest) if ids is None else [i for i in ids if i in latest]
        if not tables:
            return PooledMatrix([], np.zeros((0, 0), np.float32), [])
        mats = [t.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
                .reshape(t.num_rows, -1) for t in tables]
        keys = [t.column("key").to_pylist() for t in tables]
        dim = mats[0].shape[1]
        out = np.empty((len(wanted), dim), np.float32)
        out_keys = []
        for i, vid in enumerate(wanted):
            t, row = latest[vid]
            out[i] = mats[t][row]
            out_keys.append(keys[t][row])
        return PooledMatrix(wanted, out, out_keys)

    def ids(self, feature: str) -> list[str]:
        """Ids of the videos that have a pooled vector of ``feature`` (reads only the id column)."""
        seen: set[str] = set()
        for path in self.parts(feature):
            table = self._read_part(path)
            if table is not None:
                seen.update(table.column("video_id").to_pylist())
        return sorted(seen)

    def compact(self, feature: str) -> int:
        """Merge all parts of a feature into one; returns the number of rows kept."""
        parts = self.parts(feature)
        if len(parts) <= 1:
            return 0 if not parts else self._count(parts[0])
        matrix = self.load_pooled(feature)
        self.write_pooled(feature, zip(matrix.ids, matrix.keys, matrix.vectors, strict=True))
        for path in parts:
            path.unlink(missing_ok=True)
        return len(matrix.ids)

    def _count(self, path: Path) -> int:
        table = self._read_part(path)
        return 0 if table is None else table.num_rows

    def features(self) -> list[str]:
        """Names of the features that have files."""
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
