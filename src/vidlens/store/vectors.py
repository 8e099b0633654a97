"""Feature files of a library: pooled vectors in columnar parts, sequences in per-video arrays.

Layout under ``LIBRARY/features/``::

    <feature>/part-<time>-<uuid>.arrow     pooled vectors: columns video_id, key, vector (fixed-size list)
    <feature>/seq/<id[:2]>/<id>.npy        the per-time-step sequence (T, D) of one video, loaded lazily

Pooled vectors of a whole library load in one pass over a few Arrow IPC files (memory-mapped), which is
what training on 100k videos needs. Every file is written under a temporary name and renamed into place,
so a killed run never leaves a half-written file that looks valid. Parts written by many small batches
are merged by :meth:`VectorStore.compact`; when the same video appears in several parts the newest wins.

Arrow IPC files carry no checksum of their own, so each part records a CRC-32 of its contents in its
schema metadata (``vidlens.crc32``) and every read checks it, after Arrow's full validation (which
catches, among others, an id that is no longer valid UTF-8). A part that fails either check, or cannot
be read at all, is moved aside as ``*.corrupt`` with a warning naming it; its videos then count as not
extracted, so the next extraction redoes them, and the other parts are untouched. Parts written before
checksums existed have no metadata: they are validated, not checksummed. A :class:`VectorStore` checks a
part once while the part's file is unchanged (same inode, size and modification time); damage that leaves
all three as they were (bit rot) is found by the next process that reads it.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyarrow import ipc

log = logging.getLogger(__name__)

PART_GLOB = "part-*.arrow"
CHECKSUM_KEY = b"vidlens.crc32"
_COLUMNS = ("video_id", "key", "vector")
_SETTLED_NS = 2_000_000_000  # a file time this old cannot be repeated by a change made after the check
_STALE_TEMPORARY_S = 3600


def _atomic_write_bytes(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class DamagedPart(Exception):
    """A pooled-vector part whose contents fail validation or do not match its checksum."""


def _string_bytes(column: pa.ChunkedArray) -> tuple[bytes, memoryview | bytes]:
    """The lengths (int32, little-endian) and the UTF-8 bytes of a string column, whatever its layout."""
    arr = column.combine_chunks()
    _validity, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype="<i4")[arr.offset:arr.offset + len(arr) + 1]
    data = b"" if data_buf is None else memoryview(data_buf)[int(offsets[0]):int(offsets[-1])]
    return np.diff(offsets).astype("<i4").tobytes(), data


def _vector_values(table: pa.Table) -> np.ndarray:
    """The vector column as a (rows, dim) float32 array."""
    column = table.column("vector")
    values = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return values.reshape(table.num_rows, column.type.list_size)


def _checksum(table: pa.Table) -> str:
    """CRC-32 of a part's contents: row count, dimension, ids, keys and vector values.

    Computed from the values rather than the file's bytes, so it is the same however Arrow lays out
    buffers and padding, and can be written into the file's own schema metadata.
    """
    crc = zlib.crc32(f"{table.num_rows}:{table.column('vector').type.list_size}".encode())
    for name in ("video_id", "key"):
        for chunk in _string_bytes(table.column(name)):
            crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(np.ascontiguousarray(_vector_values(table), dtype="<f4").tobytes(), crc)
    return f"{crc:08x}"


def _check_part(table: pa.Table) -> None:
    """Raise :class:`DamagedPart` unless ``table`` is a valid part whose checksum (if any) matches."""
    try:
        table.validate(full=True)
    except pa.ArrowInvalid as exc:
        raise DamagedPart(f"invalid contents: {exc}") from None
    schema = table.schema
    if (tuple(schema.names) != _COLUMNS or schema.field("video_id").type != pa.string()
            or schema.field("key").type != pa.string()
            or not pa.types.is_fixed_size_list(schema.field("vector").type)
            or schema.field("vector").type.value_type != pa.float32()):
        raise DamagedPart(f"unexpected columns: {schema.remove_metadata()}")
    values = table.column("vector").combine_chunks().flatten()
    if any(table.column(name).null_count for name in _COLUMNS) or values.null_count:
        raise DamagedPart("null values, which vidlens never writes")
    if schema.metadata is None:
        return  # written before parts carried checksums
    stored = schema.metadata.get(CHECKSUM_KEY)
    if stored is None:
        raise DamagedPart("its checksum entry is missing from the metadata")
    actual = _checksum(table)
    if stored != actual.encode():
        raise DamagedPart(f"checksum mismatch (stored {stored[:16]!r}, contents give {actual})")


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


@dataclass
class _Part:
    """One readable part: its ids, keys and vectors."""

    ids: list[str]
    keys: list[str]
    vectors: np.ndarray


class VectorStore:
    """Reads and writes feature arrays below one folder.

    Args:
        root: the library's ``features`` folder.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        # Parts checked in this process, by (inode, size, mtime): parts are never rewritten in place, so one
        # check per process is enough unless the file changes. Only parts whose mtime was older than the
        # coarse file-time resolution when checked are remembered, so a later change always shows.
        self._checked: dict[Path, tuple[int, int, int]] = {}

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
        """Write (video_id, key, vector) rows as one new part, with its checksum; returns its path (None if
        no rows)."""
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
        table = table.replace_schema_metadata({CHECKSUM_KEY: _checksum(table).encode()})
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

    def _read_part(self, path: Path) -> _Part | None:
        """A part's rows; None when it is gone, or damaged (then it is moved aside as ``*.corrupt``)."""
        try:
            stat = path.stat()
            with pa.memory_map(str(path), "r") as source:
                table = ipc.open_file(source).read_all()
            signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if self._checked.get(path) != signature:
                _check_part(table)
                if time.time_ns() - stat.st_mtime_ns > _SETTLED_NS:
                    self._checked[path] = signature
            return _Part(table.column("video_id").to_pylist(), table.column("key").to_pylist(),
                         _vector_values(table))
        except FileNotFoundError:
            return None  # merged or moved aside by another reader meanwhile
        except (DamagedPart, pa.ArrowException, OSError, ValueError, IndexError) as exc:
            self._quarantine(path, exc)
            return None

    def _quarantine(self, path: Path, reason: Exception) -> None:
        self._checked.pop(path, None)
        aside = path.with_suffix(".corrupt")
        try:
            os.replace(path, aside)
        except FileNotFoundError:
            return
        log.warning("feature part %s is damaged or unreadable (%s); moved aside to %s: the videos it held "
                    "count as not extracted, and the next `vidlens extract` redoes them",
                    path, str(reason)[:300], aside.name)

    def _latest(self, feature: str) -> tuple[list[_Part], dict[str, tuple[int, int]]]:
        """The readable parts of a feature (oldest first) and where each video's newest row is."""
        parts: list[_Part] = []
        latest: dict[str, tuple[int, int]] = {}
        for path in self.parts(feature):
            part = self._read_part(path)
            if part is None or not part.ids:
                continue
            for row, vid in enumerate(part.ids):
                latest[vid] = (len(parts), row)  # later parts overwrite earlier ones
            parts.append(part)
        return parts, latest

    def load_pooled(self, feature: str, ids: Iterable[str] | None = None) -> PooledMatrix:
        """Pooled vectors of ``feature`` (all videos, or those in ``ids`` in that order if present).

        When the stored vectors have different sizes (the feature's encoder changed and not every video
        has been extracted again yet), the vectors of the size of the newest part, i.e. of the encoder the
        last extraction used, are returned, and a warning names the feature, the sizes and how many
        videos are left out until ``vidlens extract`` redoes them.
        """
        parts, latest = self._latest(feature)
        wanted = list(latest) if ids is None else [i for i in ids if i in latest]
        if not parts:
            return PooledMatrix([], np.zeros((0, 0), np.float32), [])
        dim = parts[-1].vectors.shape[1]
        sizes = {parts[t].vectors.shape[1] for t, _row in latest.values()}
        if len(sizes) > 1:
            stale = {vid for vid, (t, _row) in latest.items() if parts[t].vectors.shape[1] != dim}
            log.warning("%s: stored vectors have sizes %s (its encoder changed); using the %d-d vectors of the "
                        "newest (%s) and leaving out %d video(s) with vectors of another size until "
                        "`vidlens extract` redoes them", feature, sorted(sizes), dim,
                        parts[-1].keys[-1].split("#", 1)[0], len(stale))
            wanted = [vid for vid in wanted if vid not in stale]
        out = np.empty((len(wanted), dim), np.float32)
        out_keys = []
        for i, vid in enumerate(wanted):
            t, row = latest[vid]
            out[i] = parts[t].vectors[row]
            out_keys.append(parts[t].keys[row])
        return PooledMatrix(wanted, out, out_keys)

    def keys(self, feature: str) -> dict[str, str]:
        """The key of each video's newest pooled vector of ``feature`` (whatever its size)."""
        parts, latest = self._latest(feature)
        return {vid: parts[t].keys[row] for vid, (t, row) in latest.items()}

    def ids(self, feature: str) -> list[str]:
        """Ids of the videos that have a pooled vector of ``feature``."""
        return sorted(self.keys(feature))

    def compact(self, feature: str) -> int:
        """Merge all parts of a feature into one per vector size; returns the number of rows kept.

        Only each video's newest row is kept. Vectors of another size than the newest (an encoder change
        not yet redone everywhere) are kept too, in their own part, written before the newest size's so
        that the latter stays the newest.
        """
        self._remove_stale_temporaries(feature)
        paths = self.parts(feature)
        if len(paths) <= 1:
            return 0 if not paths else self._count(paths[0])
        parts, latest = self._latest(feature)
        by_size: dict[int, list[tuple[str, str, np.ndarray]]] = {}
        newest_part: dict[int, int] = {}
        for vid, (t, row) in latest.items():
            size = parts[t].vectors.shape[1]
            by_size.setdefault(size, []).append((vid, parts[t].keys[row], parts[t].vectors[row]))
            newest_part[size] = max(newest_part.get(size, -1), t)
        for size in sorted(by_size, key=newest_part.__getitem__):
            self.write_pooled(feature, by_size[size])
        for path in paths:
            path.unlink(missing_ok=True)
            self._checked.pop(path, None)
        return len(latest)

    def _remove_stale_temporaries(self, feature: str) -> None:
        """Remove part files left half-written by a killed run (a write takes milliseconds; these are hours
        old, so no running writer owns them)."""
        folder = self._dir(feature)
        if not folder.exists():
            return
        cutoff = time.time() - _STALE_TEMPORARY_S
        for tmp in folder.glob(".part-*.tmp"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
            except FileNotFoundError:
                pass

    def _count(self, path: Path) -> int:
        part = self._read_part(path)
        return 0 if part is None else len(part.ids)

    def features(self) -> list[str]:
        """Names of the features that have files."""
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
