"""Vector index: one interface, backends chosen by name (``faiss`` embedded default, ``milvus``).

- ``base.py``: :class:`VectorIndex` (upsert, delete, batched filtered search, save/load), the
  ``INDEX_BACKENDS`` registry, :func:`create_index` and :func:`load_index`;
- ``faiss_index.py``: FAISS, exact below a size threshold and HNSW (efSearch tuned) above it;
- ``milvus_index.py``: Milvus through pymilvus (a cluster, or Milvus Lite in a local file);
- ``filters.py``: :class:`SearchFilter` on category, duration and date, and :func:`parse_filter`;
- :class:`IndexConfig` (the ``[index]`` section of ``vidlens.toml``) lives with the other settings in
  :mod:`vidlens.config`.

Example::

    from vidlens.index import create_index, parse_filter
    index = create_index("faiss", dim=512, folder="lib/index/text")
    index.upsert(ids, vectors, [{"categories": ["美食"], "duration": 31.0, "date": "2024-05-01"}, ...])
    hits = index.search(queries, k=10, filter=parse_filter(["category=美食", "duration<=60"]))
    index.save()
"""

from vidlens.config import IndexConfig
from vidlens.index import faiss_index, milvus_index  # noqa: F401  (registers the backends)
from vidlens.index.base import (
    INDEX_BACKENDS,
    SearchHit,
    VectorIndex,
    VectorIndexError,
    create_index,
    load_index,
    read_state,
)
from vidlens.index.faiss_index import FaissIndex
from vidlens.index.filters import SearchFilter, parse_filter
from vidlens.index.milvus_index import MilvusIndex

__all__ = [
    "INDEX_BACKENDS",
    "FaissIndex",
    "IndexConfig",
    "MilvusIndex",
    "SearchFilter",
    "SearchHit",
    "VectorIndex",
    "VectorIndexError",
    "create_index",
    "load_index",
    "parse_filter",
    "read_state",
]
