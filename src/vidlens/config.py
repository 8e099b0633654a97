"""Typed configuration of a vidlens library.

Values come, later ones winning, from the defaults below, the library's own ``vidlens.toml``, an explicit
TOML file, then environment variables ``VIDLENS_<SECTION>__<KEY>`` (for example
``VIDLENS_MEDIA__FPS=2``). An invalid value raises :class:`~vidlens.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vidlens.errors import ConfigError

CONFIG_FILE_NAME = "vidlens.toml"
ENV_PREFIX = "VIDLENS_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MediaConfig(_Section):
    """How videos are decoded."""

    fps: float = Field(1.0, gt=0, le=30, description="frames sampled per second of video")
    max_frames: int = Field(64, ge=1, le=10_000, description="cap on sampled frames per video")
    frame_max_side: int = Field(448, ge=32, le=4096, description="longest side of sampled frames, pixels")
    audio_sample_rate: int = Field(16_000, ge=8_000, le=48_000)
    max_audio_seconds: float = Field(600.0, gt=0, description="audio read per video is capped at this")


class IngestConfig(_Section):
    """Which files are taken in and how."""

    extensions: list[str] = Field(
        default_factory=lambda: [
            ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".flv", ".ts", ".mpg", ".mpeg", ".wmv", ".3gp",
            ".mp3", ".m4a", ".aac", ".wav", ".flac", ".ogg", ".opus",
        ],
        description="file name endings taken when a folder is walked (explicit files are always tried)",
    )
    follow_symlinks: bool = False


class ExtractConfig(_Section):
    """Feature extraction (see vidlens.features)."""

    modalities: list[str] = Field(
        default_factory=lambda: ["frames", "cover", "audio", "ocr", "asr", "text"],
        description="modalities extracted by default",
    )
    workers: int = Field(1, ge=1, le=64, description="decode worker processes")
    batch_size: int = Field(16, ge=1, le=1024)
    ocr_max_frames: int = Field(8, ge=0, le=1000, description="cap on frames sent to OCR per video")
    asr_max_seconds: float = Field(600.0, gt=0)
    asr_language: str | None = Field(None, description="force an ASR language (e.g. 'zh'); None detects")
    asr_beam_size: int = Field(5, ge=1, le=10, description="Whisper beam width (1 = greedy: ~25 % less ASR "
                               "CPU, slightly higher error rate; see BENCHMARKS.md)")


class IndexConfig(_Section):
    """How a library's vectors are indexed (see vidlens.index): the backend by registry name and its
    parameters. The ``[index]`` section of ``vidlens.toml``; the CLI's ``--backend`` overrides ``backend``."""

    backend: Literal["faiss", "milvus"] = Field(
        "faiss", description="'faiss' (embedded, the default) or 'milvus' (a Milvus server, or Milvus Lite in a file)"
    )
    exact_threshold: int = Field(
        20_000, ge=0, description="FAISS: exact search up to this many vectors, HNSW above it"
    )
    hnsw_m: int = Field(16, ge=4, le=128, description="HNSW graph degree (memory per item ≈ 4·dim + 8·hnsw_m bytes)")
    ef_construction: int = Field(
        40, ge=8, le=4096, description="HNSW build-time beam width (build time grows about linearly with it)"
    )
    ef_search: int | None = Field(
        None, ge=1, le=32_768, description="HNSW query-time beam width; None: tuned for target_recall"
    )
    target_recall: float = Field(
        0.95, gt=0, le=1, description="recall@10 against exact search that efSearch is tuned for"
    )
    brute_force_max: int = Field(
        2_000, ge=0, description="FAISS: a filter matching at most this many vectors is always searched exactly"
    )
    milvus_uri: str | None = Field(
        None,
        description="Milvus: server URI (http://host:19530) or a local file; default LIBRARY/index/<space>/milvus.db",
    )
    milvus_collection: str = Field("vidlens", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Milvus collection")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> IndexConfig:
        """Validate a plain dict (as the ``[index]`` section); errors name the bad key."""
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
        return {**common, "uri": self.milvus_uri, "collection": self.milvus_collection}


class VidlensConfig(_Section):
    """All settings of one library."""

    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the metadata DB; default: SQLite file inside the library"
    )
    media: MediaConfig = Field(default_factory=MediaConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """``VIDLENS_MEDIA__FPS=2`` → ``{"media": {"fps": "2"}}``; pydantic converts the strings."""
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _NON_CONFIG_ENV:
            continue
        parts = name[len(ENV_PREFIX):].lower().split("__")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        leaf = parts[-1]
        if leaf in _LIST_KEYS:
            node[leaf] = [item.strip() for item in value.split(",") if item.strip()]
        else:
            node[leaf] = value
    return out


# Environment variables with the prefix that are not configuration keys.
_NON_CONFIG_ENV = {"VIDLENS_CACHE_DIR", "VIDLENS_LIBRARY", "VIDLENS_LOG_LEVEL"}
_LIST_KEYS = {"extensions", "modalities"}


def load_config(
    library_dir: str | os.PathLike | None = None,
    config_file: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> VidlensConfig:
    """Build the configuration of a library.

    Args:
        library_dir: the library folder; its ``vidlens.toml`` is read when present.
        config_file: an extra TOML file whose values win over the library's.
        overrides: a nested dict applied last but before environment variables.
        environ: environment to read ``VIDLENS_*`` variables from (default ``os.environ``).

    Returns:
        The validated configuration.

    Raises:
        ConfigError: a file cannot be read, or a value is invalid; the message names the key.
    """
    data: dict[str, Any] = {}
    if library_dir is not None:
        own = Path(library_dir) / CONFIG_FILE_NAME
        if own.is_file():
            data = _deep_merge(data, _read_toml(own))
    if config_file is not None:
        data = _deep_merge(data, _read_toml(Path(config_file)))
    if overrides:
        data = _deep_merge(data, overrides)
    data = _deep_merge(data, _env_overrides(dict(os.environ if environ is None else environ)))
    try:
        return VidlensConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"])
            problems.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


def config_to_toml(config: VidlensConfig) -> str:
    """Render a configuration as TOML text (for ``vidlens config`` and new libraries)."""
    lines: list[str] = []
    top = config.model_dump(exclude_none=True)
    sections = {k: v for k, v in top.items() if isinstance(v, dict)}
    for key, value in top.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {_toml_value(value)}")
    for name, section in sections.items():
        lines.append(f"\n[{name}]")
        for key, value in section.items():
            if value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
