"""Milvus backend, through pymilvus: for when one machine is outgrown.

The same code talks to a Milvus server or cluster (``uri="http://host:19530"``) and to Milvus Lite
(``uri`` a local path, default ``<folder>/milvus.db``), which speaks the same client API; the test
suite runs against Milvus Lite. One collection holds ``id`` (VARCHAR primary key), ``vector``
(FLOAT_VECTOR, HNSW index, inner product), ``categories`` (ARRAY of VARCHAR), ``duration`` (DOUBLE) and
``date`` (INT64 epoch seconds). Filters become Milvus boolean expressions
(:meth:`SearchFilter.to_milvus_expr`).

Notes from measuring here: rows must be plain lists (``.tolist()``), numpy rows make inserts very slow;
Milvus Lite 3.x answers a single query in ~0.1–0.2 s (batched: a few ms per query), so it is the test
double of a cluster, not the embedded default.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidlens.errors import MissingDependencyError
from vidlens.index.base import INDEX_BACKENDS, SearchHit, VectorIndex, VectorIndexError, as_matrix, check_upsert
from vidlens.index.filters import SearchFilter, normalize_metadata

log = logging.getLogger(__name__)

PIP_LINE = "pip install pymilvus milvus-lite"
LITE_FILE = "milvus.db"
BATCH = 1000
MAX_CATEGORIES = 64
MAX_TEXT = 512
QUERY_WINDOW = 16_384


def _pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError:
        raise MissingDependencyError("the Milvus index backend", PIP_LINE) from None
    return pymilvus


def _is_local(uri: str) -> bool:
    return "://" not in uri


@INDEX_BACKENDS.register("milvus")
class MilvusIndex(VectorIndex):
    """A Milvus collection behind the :class:`VectorIndex` interface.

    Args:
        dim: vector size.
        folder: where ``state.json`` (and, for Milvus Lite, the database) lives.
        uri: server URI or local Milvus Lite path; default ``<folder>/milvus.db``.
        collection: collection name.
        hnsw_m, ef_construction: HNSW build parameters.
        ef_search: HNSW query beam width (None: 128; Milvus raises it to k when smaller).
        target_recall: recorded for parity with FAISS; Milvus is not tuned here.
    """

    backend_name = "milvus"

    def __init__(self, dim: int, folder: str | os.PathLike | None = None, uri: str | None = None,
                 collection: str = "vidlens", hnsw_m: int = 16, ef_construction: int = 40,
                 ef_search: int | None = None, target_recall: float = 0.95):
        super().__init__(dim, folder)
        if uri is None:
            if folder is None:
                raise VectorIndexError("the Milvus backend needs a folder (for Milvus Lite) or a server uri")
            Path(folder).mkdir(parents=True, exist_ok=True)
            uri = str(Path(folder) / LITE_FILE)
        self.uri = uri
        self.collection = collection
        self.hnsw_m = int(hnsw_m)
        self.ef_construction = int(ef_construction)
        self.ef_search = ef_search
        self.target_recall = float(target_recall)
        pymilvus = _pymilvus()
        # Milvus Lite is an in-process engine: one call at a time. A server client is thread-safe.
        self._lock = threading.RLock() if _is_local(uri) else None
        try:
            self._client = pymilvus.MilvusClient(uri)
        except Exception as exc:  # the client raises many types; the message is what matters
            raise VectorIndexError(f"cannot open Milvus at {uri}: {exc}") from None
        self._ensure_collection(pymilvus)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self._lock is None:
            return fn(*args, **kwargs)
        with self._lock:
            return fn(*args, **kwargs)

    def _ensure_collection(self, pymilvus: Any) -> None:
        c = self._client
        if self._call(c.has_collection, self.collection):
            info = self._call(c.describe_collection, self.collection)
            dims = [f.get("params", {}).get("dim") for f in info["fields"] if f["name"] == "vector"]
            if dims and int(dims[0]) != self.dim:
                raise VectorIndexError(
                    f"Milvus collection {self.collection!r} at {self.uri} holds {dims[0]}-d vectors, not {self.dim}"
                )
            self._call(c.load_collection, self.collection)
            return
        dt = pymilvus.DataType
        schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", dt.VARCHAR, is_primary=True, max_length=256)
        schema.add_field("vector", dt.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("categories", dt.ARRAY, element_type=dt.VARCHAR, max_capacity=MAX_CATEGORIES,
                         max_length=MAX_TEXT)
        schema.add_field("duration", dt.DOUBLE)
        schema.add_field("date", dt.INT64)
        params = c.prepare_index_params()
        params.add_index(field_name="vector", index_type="HNSW", metric_type="IP",
                         params={"M": self.hnsw_m, "efConstruction": self.ef_construction})
        self._call(c.create_collection, self.collection, schema=schema, index_params=params)
        self._call(c.load_collection, self.collection)

    # -- writing ------------------------------------------------------------------------------------
    def upsert(self, ids: Sequence[str], vectors: Any,
               metadata: Sequence[Mapping[str, Any] | None] | None = None) -> int:
        ids, x = check_upsert(ids, vectors, metadata, self.dim)
        last = {item: pos for pos, item in enumerate(ids)}
        rows = []
        for item, pos in last.items():
            meta = normalize_metadata(metadata[pos] if metadata is not None else None)
            duration = meta["duration"]
            rows.append({
                "id": item,
                "vector": x[pos].tolist(),  # plain lists: numpy rows make pymilvus inserts very slow
                "categories": [c[:MAX_TEXT] for c in meta["categories"][:MAX_CATEGORIES]],
                "duration": float(duration) if duration == duration else float("nan"),
                "date": int(meta["date"]),
            })
        for start in range(0, len(rows), BATCH):
            self._call(self._client.upsert, self.collection, rows[start:start + BATCH])
        return len(rows)

    def delete(self, ids: Iterable[str]) -> int:
        ids = list(dict.fromkeys(str(i) for i in ids))
        if not ids:
            return 0
        present = self._existing(ids)
        if present:
            for start in range(0, len(present), BATCH):
                self._call(self._client.delete, self.collection, ids=present[start:start + BATCH])
        return len(present)

    def _existing(self, ids: list[str]) -> list[str]:
        found: list[str] = []
        for start in range(0, len(ids), BATCH):
            rows = self._call(self._client.get, self.collection, ids=ids[start:start + BATCH],
                              output_fields=["id"])
            found.extend(r["id"] for r in rows)
        return found

    # -- reading ------------------------------------------------------------------------------------
    def search(self, queries: Any, k: int = 10, filter: SearchFilter | None = None) -> list[list[SearchHit]]:
        q = as_matrix(queries, self.dim, what="queries")
        if int(k) <= 0:
            raise VectorIndexError(f"k must be positive, got {k}")
        if len(q) == 0:
            return []
        expr = filter.to_milvus_expr() if filter is not None else ""
        ef = max(int(self.ef_search or 128), int(k))
        result = self._call(self._client.search, self.collection, data=q.tolist(), limit=int(k), filter=expr,
                            search_params={"metric_type": "IP", "params": {"ef": ef}}, output_fields=["id"])
        return [[SearchHit(str(hit["id"]), float(hit["distance"])) for hit in row] for row in result]

    def ids(self) -> list[str]:
        total = len(self)
        if total <= QUERY_WINDOW:  # one plain query; Milvus caps offset + limit at 16384
            rows = self._call(self._client.query, self.collection, filter="", output_fields=["id"],
                              limit=max(total, 1))
            return sorted(r["id"] for r in rows)
        out: list[str] = []
        it = self._call(self._client.query_iterator, self.collection, batch_size=BATCH, filter="",
                        output_fields=["id"])
        try:
            while True:
                batch = self._call(it.next)
                if not batch:
                    break
                out.extend(r["id"] for r in batch)
        finally:
            self._call(it.close)
        return sorted(out)

    def __len__(self) -> int:
        rows = self._call(self._client.query, self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and bool(self._existing([item_id]))

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        ids = [str(i) for i in ids]
        got: dict[str, list[float]] = {}
        for start in range(0, len(ids), BATCH):
            rows = self._call(self._client.get, self.collection, ids=ids[start:start + BATCH],
                              output_fields=["id", "vector"])
            got.update({r["id"]: r["vector"] for r in rows})
        missing = [i for i in ids if i not in got]
        if missing:
            raise VectorIndexError(f"no item {missing[0]!r} in the index")
        return np.array([got[i] for i in ids], np.float32).reshape(len(ids), self.dim)

    def stats(self) -> dict[str, Any]:
        """Backend, items, uri, efSearch."""
        return {"backend": "milvus", "uri": self.uri, "collection": self.collection, "items": len(self),
                "ef_search": int(self.ef_search or 128)}

    # -- lifetime -----------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        uri = self.uri
        if self.folder is not None and _is_local(uri) and Path(uri).parent == Path(self.folder):
            uri = None  # stays inside the folder: found again wherever the folder is moved
        return {"uri": uri, "collection": self.collection, "hnsw_m": self.hnsw_m,
                "ef_construction": self.ef_construction, "ef_search": self.ef_search,
                "target_recall": self.target_recall}

    def _save_files(self, folder: Path) -> dict[str, Any]:
        self._call(self._client.flush, self.collection)
        return {"uri": self.uri if not _is_local(self.uri) else os.path.basename(self.uri)}

    @classmethod
    def _load_files(cls, folder: Path, state: dict[str, Any]) -> MilvusIndex:
        params = dict(state.get("params") or {})
        if params.get("uri") is None:
            lite = folder / LITE_FILE
            if not lite.exists():
                raise VectorIndexError(f"index file {lite} is missing")
        index = cls(int(state["dim"]), folder, **params)
        expected = int(state.get("count", -1))
        if expected >= 0 and len(index) != expected:
            index.close()
            raise VectorIndexError(
                f"Milvus collection {index.collection!r} holds {len(index)} items, its state says {expected}"
            )
        return index

    def close(self) -> None:
        try:
            self._call(self._client.close)
        except Exception as exc:  # closing twice or a dropped server: nothing left to release
            log.debug("closing Milvus client: %s", exc)

    def drop(self) -> None:
        """Delete the collection and its data."""
        self._call(self._client.drop_collection, self.collection)
