"""On-disk snapshots of the keyword index, so a start-up maps files instead of re-reading the DB.

A snapshot is the base of the index (:class:`~.postings.Postings` and :class:`~.documents.DocTable`) as
``.npy`` files that are memory-mapped read-only, so every worker process of a server shares one copy in
the page cache. It is keyed by a :class:`Fingerprint` of the DB (counts and latest change times of
videos and extractions): equal fingerprints mean nothing changed since it was written.

Layout of the snapshot folder (``LIBRARY/index/textsearch/``)::

    CURRENT            name of the generation to read (replaced atomically, written last)
    lock               held (flock) while a process loads, builds or writes a snapshot
    g<ns>-<pid>/       one generation: manifest.json (format, scoring parameters, fingerprint, array
                       dtypes and shapes), vocab.txt (the tokens in id order, one a line) and one .npy
                       file per array

Generations are written beside each other and never changed in place: a reader that mapped an older
one keeps a valid map after it is replaced (the files are unlinked, not truncated).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from vidlens.service.filelock import FileLock
from vidlens.service.textsearch.documents import DocTable
from vidlens.service.textsearch.postings import FIELD_WEIGHTS, K1, Postings
from vidlens.service.textsearch.tokens import TOKENIZER_VERSION

FORMAT = 1
CURRENT = "CURRENT"
_POSTINGS = ("start", "docs", "weights", "fields", "impact", "bitset_of", "bitsets")
_TABLE = ("ids", "by_id", "title_start", "title_bytes", "duration", "has_speech", "has_thumbnail", "language")
_GENERATION = re.compile(r"g[0-9]+-[0-9]+")


def parameters() -> dict[str, Any]:
    """What a snapshot's contents depend on besides the DB; a snapshot made with others is rebuilt."""
    return {"format": FORMAT, "tokenizer": TOKENIZER_VERSION, "field_weights": FIELD_WEIGHTS, "k1": K1}


class Fingerprint(NamedTuple):
    """The state of the DB a base reflects: how many videos and extractions, and their latest change."""

    videos: int
    videos_at: datetime | None
    extractions: int
    extractions_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"videos": self.videos, "videos_at": _iso(self.videos_at), "extractions": self.extractions,
                "extractions_at": _iso(self.extractions_at)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Fingerprint:
        """The inverse of :meth:`to_json`."""
        return cls(int(d["videos"]), _parse(d["videos_at"]), int(d["extractions"]), _parse(d["extractions_at"]))


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _parse(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s)


class SnapshotError(Exception):
    """A snapshot is missing, unreadable, inconsistent or made with other parameters (then rebuild)."""


class NoSnapshot(SnapshotError):
    """None was written yet."""


@dataclass(frozen=True)
class Snapshot:
    """A base read from disk."""

    postings: Postings
    table: DocTable
    fingerprint: Fingerprint
    generation: str


def locked(folder: Path) -> FileLock:
    """The folder's lock (use with ``with``): one process at a time builds, writes or loads, so workers
    starting together build once and the others map what it wrote."""
    return FileLock(folder / "lock")


def _generation(folder: Path) -> str:
    generation = (folder / CURRENT).read_text().strip()
    if not _GENERATION.fullmatch(generation):
        raise ValueError(f"{CURRENT} names no generation")
    return generation


def current(folder: Path) -> tuple[str, Fingerprint] | None:
    """(generation, fingerprint) of the current snapshot from its manifest alone, or None if unreadable."""
    try:
        generation = _generation(folder)
        manifest = json.loads((folder / generation / "manifest.json").read_text())
        if manifest.get("parameters") != parameters():
            return None
        return generation, Fingerprint.from_json(manifest["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(folder: Path, postings: Postings, table: DocTable, fingerprint: Fingerprint) -> str:
    """Write a new generation and make it current (call while holding :func:`locked`).

    Returns:
        The generation's name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    generation = f"g{time.time_ns()}-{os.getpid()}"
    tmp = folder / f".tmp-{generation}"
    tmp.mkdir()
    arrays = {name: getattr(postings, name) for name in _POSTINGS} | {name: getattr(table, name) for name in _TABLE}
    for name, array in arrays.items():
        np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
    (tmp / "vocab.txt").write_text("\n".join(postings.tokens()), encoding="utf-8")
    manifest = {
        "parameters": parameters(),
        "fingerprint": fingerprint.to_json(),
        "documents": len(table),
        "tokens": len(postings.vocab),
        "postings": len(postings.docs),
        "languages": list(table.languages),
        "arrays": {name: {"dtype": a.dtype.str, "shape": list(a.shape)} for name, a in arrays.items()},
        "written_at": datetime.now().astimezone().isoformat(),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    tmp.rename(folder / generation)
    pointer = folder / f".{CURRENT}.tmp"
    pointer.write_text(generation + "\n")
    os.replace(pointer, folder / CURRENT)
    for old in folder.iterdir():
        if old.is_dir() and old.name != generation and (old.name.startswith("g") or old.name.startswith(".tmp-")):
            shutil.rmtree(old, ignore_errors=True)
    return generation


def read(folder: Path) -> Snapshot:
    """Map the current snapshot (read-only) and check that it is whole.

    Raises:
        SnapshotError: there is none, it was made with other parameters, or a file is missing,
            truncated or inconsistent with the others.
    """
    try:
        generation = _generation(folder)
        path = folder / generation
        manifest = json.loads((path / "manifest.json").read_text())
    except FileNotFoundError:
        if not (folder / CURRENT).exists():
            raise NoSnapshot("none written yet") from None
        raise SnapshotError("its current generation is missing") from None
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"unreadable manifest: {exc}") from None
    if manifest.get("parameters") != parameters():
        raise SnapshotError("made with other index parameters")
    try:
        arrays: dict[str, np.ndarray] = {}
        for name in (*_POSTINGS, *_TABLE):
            spec = manifest["arrays"][name]
            array = np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False).view(np.ndarray)
            if array.dtype.str != spec["dtype"] or list(array.shape) != spec["shape"]:
                raise SnapshotError(f"{name}.npy does not match the manifest")
            arrays[name] = array
        tokens = (path / "vocab.txt").read_text(encoding="utf-8").split("\n") if manifest["tokens"] else []
        fingerprint = Fingerprint.from_json(manifest["fingerprint"])
        languages = tuple(manifest["languages"])
    except SnapshotError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SnapshotError(f"unreadable: {type(exc).__name__}: {exc}") from None
    postings = Postings(vocab=dict(zip(tokens, range(len(tokens)), strict=True)),
                        **{name: arrays[name] for name in _POSTINGS})
    table = DocTable(**{name: arrays[name] for name in _TABLE}, languages=languages)
    _check(postings, table, manifest)
    return Snapshot(postings=postings, table=table, fingerprint=fingerprint, generation=generation)


def _check(postings: Postings, table: DocTable, manifest: dict[str, Any]) -> None:
    """Cheap consistency checks: lengths agree, offsets are monotone, references are in range."""
    n, start, docs = len(table), postings.start, postings.docs
    problems = []
    if len(postings.vocab) != manifest["tokens"] or len(start) != len(postings.vocab) + 1:
        problems.append("vocabulary and offsets disagree")
    elif start[0] != 0 or start[-1] != len(docs) or np.any(start[1:] < start[:-1]):
        problems.append("postings offsets are not monotone")
    if not len(docs) == len(postings.weights) == len(postings.fields) == len(postings.impact) == manifest["postings"]:
        problems.append("postings arrays differ in length")
    elif len(docs) and (int(docs.min()) < 0 or int(docs.max()) >= n):
        problems.append("a posting refers to a missing document")
    rows = postings.bitsets.shape[0]
    if (len(postings.bitset_of) != len(postings.vocab) or postings.bitsets.ndim != 2
            or (rows and postings.bitsets.shape[1] != (n + 7) // 8)
            or (len(postings.bitset_of) and int(postings.bitset_of.max()) >= rows)):
        problems.append("bitsets are inconsistent")
    if n != manifest["documents"] or not (len(table.ids) == len(table.by_id) == len(table.has_speech)
                                          == len(table.has_thumbnail) == len(table.language) == n):
        problems.append("document arrays differ in length")
    ts = table.title_start
    if len(ts) != n + 1 or ts[0] != 0 or ts[-1] != len(table.title_bytes) or np.any(ts[1:] < ts[:-1]):
        problems.append("title offsets are inconsistent")
    if n and (int(table.by_id.min()) < 0 or int(table.by_id.max()) >= n
              or int(table.language.max()) >= len(table.languages)):
        problems.append("a document column is out of range")
    if problems:
        raise SnapshotError("; ".join(problems))
