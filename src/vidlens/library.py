"""A library: one folder that holds a metadata DB, feature files, indexes, models and reports."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.engine import make_url

from vidlens.config import CONFIG_FILE_NAME, VidlensConfig, load_config
from vidlens.errors import VidlensError
from vidlens.features import Extractor, ExtractReport, FeatureSet, video_texts
from vidlens.features.featureset import VECTOR_FEATURES
from vidlens.ingest import Ingestor, IngestReport, iter_items
from vidlens.progress import progress_bar
from vidlens.store import MetadataStore
from vidlens.store.models import Extraction
from vidlens.store.vectors import PooledMatrix, VectorStore

DB_FILE_NAME = "library.db"
SUBFOLDERS = ("features", "index", "models", "reports", "thumbnails")


class Library:
    """A vidlens library folder. Create one with :func:`vidlens.open`.

    Attributes:
        root: the library folder.
        config: its validated configuration.
        store: the metadata DB.
    """

    def __init__(self, root: Path, config: VidlensConfig):
        self.root = root
        self.config = config
        url = config.database_url or f"sqlite:///{(root / DB_FILE_NAME).resolve()}"
        self.store = MetadataStore(url)

    def folder(self, name: str) -> Path:
        """A sub-folder of the library (``features``, ``index``, ``models``, ``reports``, ``thumbnails``)."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- ingest ---------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | os.PathLike] | str | os.PathLike, progress: bool = False
               ) -> IngestReport:
        """Take in files, folders (recursively) and manifests.

        Each item is hashed, probed and committed on its own: bad items are recorded (see
        :meth:`errors`) and the batch goes on; a killed run resumes without redoing finished items.

        Args:
            paths: one path or several.
            progress: draw a progress bar on stderr.

        Returns:
            Per-item results and counts.
        """
        if isinstance(paths, (str, bytes, os.PathLike)):
            paths = [paths]
        items = list(iter_items(paths, self.config.ingest.extensions, self.config.ingest.follow_symlinks))
        ingestor = Ingestor(self.store)
        with progress_bar(len(items), "ingest", enabled=progress) as advance:
            return ingestor.run(items, progress=lambda r: advance(1, f"{r.status}: {r.item}"))

    # -- features -------------------------------------------------------------------------------
    @property
    def vectors(self) -> VectorStore:
        """The feature files of this library."""
        return VectorStore(self.folder("features"))

    def extract(self, modalities: list[str] | None = None, ids: list[str] | None = None, force: bool = False,
                progress: bool = False, encoders: Any = None, engine: Any = None) -> ExtractReport:
        """Compute the features that are missing or stale, for every video (or ``ids``).

        Args:
            modalities: any of ``frames cover audio ocr asr text`` (default: the configured list).
            ids: limit the run to these videos (ids or unique prefixes).
            force: recompute even up-to-date features.
            progress: draw a progress bar on stderr.
            encoders: an ``EncoderBank`` to use instead of the real pretrained encoders.
            engine: a :mod:`vidlens.engines` engine for the per-video work (default: this process);
                results are stored here either way.

        Returns:
            Counts and seconds per feature, and per-video errors (also recorded, see :meth:`errors`).
        """
        if ids is not None:
            with self.store.session() as s:
                ids = [self.store.resolve_id(s, ref) for ref in ids]
        try:
            extractor = Extractor(self.store, self.vectors, self.config, thumbnails=self.folder("thumbnails"),
                                  modalities=modalities, force=force, encoders=encoders)
        except ValueError as exc:
            raise VidlensError(str(exc)) from None
        total = len(extractor.plan(ids)) if progress else None
        with progress_bar(total, "extract", enabled=progress) as advance:
            return extractor.run(ids, progress=advance, engine=engine)

    def features(self, ref: str) -> FeatureSet:
        """The :class:`FeatureSet` of one video (pooled vectors loaded, sequences lazily)."""
        video = self.get(ref)
        with self.store.session() as s:
            rows = list(s.scalars(select(Extraction).where(Extraction.video_id == video["id"])))
        fs = FeatureSet(video_id=video["id"], _vectors=self.vectors)
        by_feature = {r.feature: r for r in rows}
        for row in rows:
            fs.present[row.feature] = row.status == "ok"
            fs.keys[row.feature] = row.key
            fs.results[row.feature] = dict(row.result or {}, status=row.status, message=row.message)
            if row.status == "ok" and row.feature in VECTOR_FEATURES:
                m = self.vectors.load_pooled(row.feature, [video["id"]])
                if m.ids:
                    fs.pooled[row.feature] = m.vectors[0]
                else:
                    fs.present[row.feature] = False

        def ok(feature: str) -> dict[str, Any] | None:
            r = by_feature.get(feature)
            return r.result if r is not None and r.status == "ok" else None

        fs.texts = video_texts(video, ok("ocr"), ok("asr"), ok("frames"))
        return fs

    def feature_matrix(self, feature: str, ids: list[str] | None = None) -> PooledMatrix:
        """Pooled vectors of one feature for many videos at once (what training reads)."""
        return self.vectors.load_pooled(feature, ids)

    # -- reading --------------------------------------------------------------------------------
    def get(self, ref: str) -> dict[str, Any]:
        """One video's stored record; ``ref`` is its id or a unique prefix of at least 4 characters.

        Raises:
            NotFoundError: no such video, or the prefix is ambiguous.
        """
        return self.store.get_video(ref)

    def videos(self) -> Iterator[dict[str, Any]]:
        """Every video's record, in id order, streamed."""
        return self.store.iter_videos()

    def __len__(self) -> int:
        return self.store.counts()["videos"]

    def errors(self, stage: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Per-item errors still standing (cleared when the item later succeeds)."""
        return self.store.errors(stage, limit)

    def status(self) -> dict[str, Any]:
        """Counts of what is in the library."""
        out = {"library": str(self.root), "database": _redact(self.store.url)}
        out.update(self.store.counts())
        return out

    def export(self, out: IO[str]) -> int:
        """Write every video as one JSON line to ``out``; returns the number written."""
        n = 0
        for record in self.videos():
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
        return n

    # -- understanding ---------------------------------------------------------------------------
    # Thin doors into the sub-packages, imported lazily so that opening a library stays light.
    def classify(self, ids: list[str] | None = None, *, model: str | os.PathLike | None = None,
                 zero_shot: bool = False, taxonomy: str | os.PathLike | None = None, top_k: int = 5
                 ) -> list[dict[str, Any]]:
        """Categories (L1, L2, confidences, top-k, modalities present) for videos of this library.

        Args:
            ids: video ids or unique prefixes (default: every video).
            model: a trained model's name or folder (default: the newest model in ``models/``; zero-shot
                over the shipped or given taxonomy when there is none).
            zero_shot: classify from category names even when a trained model exists.
            taxonomy: a taxonomy file for zero-shot (default: the library's own, else the shipped one).
            top_k: categories listed per video.

        Returns:
            One record per video, as ``vidlens classify`` prints them.

        Raises:
            ModelVersionError: the model was trained on features of other encoder versions.
        """
        from vidlens.classify.runs import classify_library, find_model, zero_shot_for_library
        from vidlens.classify.trained import TrainedClassifier
        from vidlens.taxonomy import Taxonomy

        folder = None if zero_shot else find_model(None if model is None else str(model), self)
        if folder is not None:
            classifier: Any = TrainedClassifier.load(folder)
        else:
            classifier = zero_shot_for_library(self, Taxonomy.load(taxonomy) if taxonomy else None)
        return classify_library(self, classifier, ids=ids, top_k=top_k)

    def search(self, query: str, filters: list[str] | str | None = None, k: int = 10) -> list[dict[str, Any]]:
        """Videos matching a text query in any language the text encoder knows, best first.

        ``filters`` are strings such as ``"category=美食"`` or ``"duration<=60"`` (see
        :func:`vidlens.retrieval.search`).
        """
        from vidlens.retrieval import search

        return search(self, query, filters, k)

    def similar(self, ref: str | os.PathLike, k: int = 10, filters: list[str] | str | None = None
                ) -> list[dict[str, Any]]:
        """Videos nearest to a library video (id or prefix) or to a video file."""
        from vidlens.retrieval import similar

        return similar(self, ref, k, filters)

    def dedup(self, threshold: float | None = None) -> list[dict[str, Any]]:
        """Groups of near-duplicate videos, with scores and matching segments, largest first."""
        from vidlens.retrieval import DEFAULT_THRESHOLD, dedup

        return dedup(self, DEFAULT_THRESHOLD if threshold is None else threshold)

    def tag(self, ids: list[str] | None = None, *, encoder: str | None = "muse_v3", ranker: str | None = None,
            save: bool = False) -> list[dict[str, Any]]:
        """Core and related tags (scores, recalling channels) from the library's tag library.

        ``encoder`` embeds text for the cross-modal channel and the ranker (``"none"``: matching only);
        ``ranker`` is ``"zero_shot"``, a saved ranker folder, or None for the library's trained one.
        """
        from vidlens.tags.runs import tag_library

        return tag_library(self, ids, encoder=encoder, ranker=ranker, save=save)

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the DB connections and the indexes that searches kept open."""
        searched = sys.modules.get("vidlens.retrieval.library_index")  # not imported: no index is open
        if searched is not None:
            searched.close_library_indexes(self)
        self.store.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Library({str(self.root)!r})"


def _redact(url: str) -> str:
    """A DB URL without its password, for display and logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def _write_external_db_marker(root: Path, url: str) -> None:
    """Mark a new library whose metadata DB lives outside the folder (there is no library.db to find).

    Its ``vidlens.toml`` names the DB; a URL with a password is written only as a comment. A second
    process creating the same library at the same moment finds the file there and leaves it.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return
    if parsed.password is None:
        text = f"database_url = {json.dumps(url)}\n"  # a JSON string is a TOML basic string
    else:
        shown = parsed.render_as_string(hide_password=True)
        text = (f"# Metadata DB: {shown} (password not stored here). Give the URL with --database-url or\n"
                f"# VIDLENS_DATABASE_URL each time, or set database_url in this file.\n")
    try:
        with open(root / CONFIG_FILE_NAME, "x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        pass


def open_library(
    path: str | os.PathLike,
    *,
    create: bool = True,
    config_file: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
) -> Library:
    """Open (or create) the library in folder ``path``.

    Args:
        path: the library folder.
        create: make a new library when the folder does not hold one yet.
        config_file: a TOML file with settings that win over the library's own ``vidlens.toml``.
        overrides: nested settings that win over both (e.g. ``{"media": {"fps": 2}}``).

    Returns:
        The library.

    Raises:
        VidlensError: the folder is not a library and ``create`` is False, or it is a non-empty folder
            that holds something else.
        ConfigError: a setting is invalid (the message names the key).
    """
    root = Path(path)
    is_library = (root / DB_FILE_NAME).exists() or (root / CONFIG_FILE_NAME).exists()
    if not is_library:
        if not create:
            raise VidlensError(f"{root}: not a vidlens library (no {DB_FILE_NAME}); run `vidlens init {root}`")
        if root.exists() and not root.is_dir():
            raise VidlensError(f"{root}: exists and is not a folder")
        if root.is_dir() and any(root.iterdir()):
            raise VidlensError(
                f"{root}: folder is not empty and is not a vidlens library; choose a new or empty folder"
            )
        root.mkdir(parents=True, exist_ok=True)
    config = load_config(root, config_file=config_file, overrides=overrides)
    if not is_library and config.database_url is not None:
        _write_external_db_marker(root, config.database_url)
    lib = Library(root, config)
    for name in SUBFOLDERS:
        (root / name).mkdir(exist_ok=True)
    return lib
