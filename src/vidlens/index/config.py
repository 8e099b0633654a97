"""Typed settings of a vector index (backend by registry name plus its parameters)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vidlens.errors import ConfigError


class IndexConfig(BaseModel):
    """How a library's vectors are indexed.

    The lead may mount this as the ``[index]`` section of ``vidlens.toml``; until then it is passed
    explicitly (Python) or by ``--backend`` (CLI).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    backend: str = Field("faiss", description="registry name of the backend: 'faiss' (embedded) or 'milvus'")
    exact_threshold: int = Field(
        20_000, ge=0, description="FAISS: exact search up to this many vectors, HNSW above it"
    )
    hnsw_m: int = Field(32, ge=4, le=128, description="HNSW graph degree")
    ef_construction: int = Field(200, ge=8, le=4096, description="HNSW build-time beam width")
    ef_search: int | None = Field(
        None, ge=1, le=32_768, description="HNSW query-time beam width; None: tuned for target_recall"
    )
    target_recall: float = Field(0.95, gt=0, le=1, description="recall@10 that efSearch is tuned for")
    brute_force_max: int = Field(
        20_000, ge=0, description="FAISS: a filter matching at most this many vectors is searched exactly"
    )
    milvus_uri: str | None = Field(
        None, description="Milvus: server URI (http://host:19530) or a local file; default LIBRARY/index/milvus.db"
    )
    milvus_collection: str = Field("vidlens", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> IndexConfig:
        """Validate a plain dict; errors name the bad key."""
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            problems = [f"index.{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})"
                        for e in exc.errors()]
            raise ConfigError("invalid index configuration: " + "; ".join(problems)) from None

    def backend_params(self) -> dict[str, Any]:
        """The keyword parameters the chosen backend's constructor takes."""
        common = {"hnsw_m": self.hnsw_m, "ef_construction": self.ef_construction, "ef_search": self.ef_search,
                  "target_recall": self.target_recall}
        if self.backend == "faiss":
            return {**common, "exact_threshold": self.exact_threshold, "brute_force_max": self.brute_force_max}
        if self.backend == "milvus":
            return {**common, "uri": self.milvus_uri, "collection": self.milvus_collection}
        return {}
