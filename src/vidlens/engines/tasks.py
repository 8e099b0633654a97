"""Classification and tagging as engine tasks, and the driver-side runs of classify, tag and embed.

Each task wraps the library call that does the work for a batch of videos, so an engine computes
exactly what the in-process command computes: :func:`~vidlens.classify.runs.classify_library` on a
batch of ids, and :meth:`~vidlens.tags.Tagger.tag` on each video's document. A task made in the driver
holds the open library; pickled to a worker it carries the library's folder and configuration and
reopens it there (reads only). Whatever is stored (tags put on videos, index entries) is written by
the driver. Feature extraction's task is :class:`vidlens.features.ExtractTask`; ``embed`` runs the text
encoder through it (see :func:`embed_library`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from vidlens.engines.base import Engine, Task


class LibraryTask(Task):
    """A task that reads a library: in a worker it reopens the library from its folder and configuration.

    Relative paths (videos ingested by relative path) resolve as in the driver: a worker changes to the
    driver's working directory when that exists on its machine.
    """

    _runtime: tuple[str, ...] = ("_lib",)  # what does not travel to a worker

    def __init__(self, lib: Any):
        self._lib = lib
        self._opened = False
        self.root = str(Path(lib.root).resolve())
        self.config = lib.config
        self.cwd = os.getcwd()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in self._runtime:
            state[name] = None
        state["_opened"] = False
        return state

    def setup(self) -> None:
        """Reopen the library in this worker (once)."""
        if self._lib is None:
            from vidlens.library import Library

            if os.path.isdir(self.cwd):
                os.chdir(self.cwd)
            self._lib = Library(Path(self.root), self.config)
            self._opened = True

    def close(self) -> None:
        """Close the library this task opened in a worker."""
        if self._opened and self._lib is not None:
            self._lib.close()
            self._lib, self._opened = None, False


class ClassifyTask(LibraryTask):
    """Categories of library videos, one record per video id (see ``vidlens classify``).

    Args:
        lib: the library.
        classifier: the classifier the driver loaded (used in this process).
        model_folder: its folder, when it is a trained model (a worker loads it from there); None for
            zero-shot, which a worker rebuilds over ``taxonomy`` (None: the shipped one).
        taxonomy: taxonomy file for zero-shot.
        top_k: categories listed per video.
    """

    _runtime = ("_lib", "_classifier")

    def __init__(self, lib: Any, classifier: Any, model_folder: str | os.PathLike | None = None,
                 taxonomy: str | os.PathLike | None = None, top_k: int = 5):
        super().__init__(lib)
        self._classifier = classifier
        self.model_folder = None if model_folder is None else str(Path(model_folder).resolve())
        self.taxonomy = None if taxonomy is None else str(Path(taxonomy).resolve())
        self.top_k = top_k

    def setup(self) -> None:
        """Reopen the library and load the classifier (once per worker)."""
        super().setup()
        if self._classifier is None:
            if self.model_folder is not None:
                from vidlens.classify.trained import TrainedClassifier

                self._classifier = TrainedClassifier.load(self.model_folder)
            else:
                import vidlens.retrieval  # noqa: F401  (registers hashed_ngrams, a text encoder libraries use)
                from vidlens.classify.runs import zero_shot_for_library
                from vidlens.taxonomy import Taxonomy

                tax = Taxonomy.load(self.taxonomy) if self.taxonomy else None
                self._classifier = zero_shot_for_library(self._lib, tax)

    def process(self, items: Iterable[str]) -> Iterator[dict[str, Any]]:
        """One record per video id, in order."""
        from vidlens.classify.runs import classify_library

        ids = list(items)
        yield from classify_library(self._lib, self._classifier, ids=ids, top_k=self.top_k)


class TagTask(LibraryTask):
    """Tags of library videos, one result per video id (see ``vidlens tag``).

    Each worker builds the tagger once: the documents of every video (its similar-video channel reads
    their gold and manual tags), the text encoder and the ranker.

    Args:
        lib: the library.
        encoder: text encoder name (``"none"``: text matching only).
        ranker: ``"zero_shot"``, a saved ranker folder, or None for the library's saved ranker.
    """

    _runtime = ("_lib", "_tagger", "_docs")

    def __init__(self, lib: Any, encoder: str | None, ranker: str | None):
        super().__init__(lib)
        self.encoder = encoder
        self.ranker = str(Path(ranker).resolve()) if ranker and os.path.exists(ranker) else ranker  # a folder
        self._tagger: Any = None
        self._docs: dict[str, Any] | None = None

    def setup(self) -> None:
        """Reopen the library and build the tagger (once per worker)."""
        super().setup()
        if self._tagger is None:
            from vidlens.tags.library import TagLibrary
            from vidlens.tags.runs import library_docs, library_tagger, text_encoder

            enc = text_encoder(self.encoder)
            docs = library_docs(self._lib, enc)
            self._tagger = library_tagger(self._lib, TagLibrary(self._lib), enc, self.ranker, docs)
            self._docs = {d.video_id: d for d in docs}

    def process(self, items: Iterable[str]) -> Iterator[dict[str, Any]]:
        """One tag result per video id, in order."""
        assert self._docs is not None
        for vid in items:
            yield self._tagger.tag(self._docs[vid])


# ---- runs (the driver side) ------------------------------------------------------------------------


def _all_ids(lib: Any, ids: Sequence[str] | None) -> list[str]:
    if ids is None:
        return lib.store.video_ids()
    with lib.store.session() as s:
        return [lib.store.resolve_id(s, ref) for ref in ids]


def classify_videos(lib: Any, classifier: Any, engine: Engine, *, model_folder: str | os.PathLike | None = None,
                    taxonomy: str | os.PathLike | None = None, ids: Sequence[str] | None = None, top_k: int = 5
                    ) -> list[dict[str, Any]]:
    """``vidlens classify`` on ``engine``: one record per video (all, or ``ids``), in id order.

    Args:
        lib: the library.
        classifier: the loaded classifier (used as it is by the local engine).
        engine: where the work runs.
        model_folder: the trained model's folder (None: zero-shot, rebuilt in workers over ``taxonomy``).
        taxonomy: taxonomy file of a zero-shot classifier.
        ids: video ids or unique prefixes (default: every video).
        top_k: categories listed per video.
    """
    wanted = _all_ids(lib, ids)
    task = ClassifyTask(lib, classifier, model_folder=model_folder, taxonomy=taxonomy, top_k=top_k)
    by_id = {vid: record for vid, record in engine.map(task, wanted)}
    return [by_id[vid] for vid in wanted]


def tag_videos(lib: Any, engine: Engine, *, ids: Sequence[str] | None = None, encoder: str | None = "muse_v3",
               ranker: str | None = None, save: bool = False, tags: Any = None) -> list[dict[str, Any]]:
    """``vidlens tag`` on ``engine``: tag results of videos (all, or ``ids``), in id order.

    With ``save``, the driver stores each result as the video's ``tagger`` tags as it arrives.
    """
    from vidlens.tags.library import TagLibrary

    wanted = _all_ids(lib, ids)
    tags = tags if tags is not None else TagLibrary(lib)
    results: dict[str, dict[str, Any]] = {}
    for vid, result in engine.map(TagTask(lib, encoder, ranker), wanted):
        results[vid] = result
        if save:
            scored = {t["tag"]: t["score"] for t in result["core"] + result["related"]}
            tags.assign(vid, scored, source="tagger", create=False)
    return [results[vid] for vid in wanted]


def embed_library(lib: Any, engine: Engine, *, spaces: Sequence[str] = ("text", "video"), rebuild: bool = False,
                  index_config: Any = None, encoders: Any = None) -> dict[str, Any]:
    """``vidlens embed``: refresh the text vectors, then bring the vector indexes up to date.

    The text vectors (title, summary, product text, and the OCR, ASR and visual-concept text stored by
    ``vidlens extract``) are the per-video model work: they run on ``engine`` as extraction's ``text``
    modality, for the videos whose text changed. The fused video vectors and the text-side vectors are
    then made from the stored features and written into each index by this process (one writer): FAISS
    files in the library, or the Milvus collection of the ``[index]`` settings.

    Args:
        encoders: an ``EncoderBank`` stand-in (tests); default: the real text encoder.

    Returns:
        ``{"text_vectors": extraction report, "indexes": [one summary per space]}``.
    """
    from vidlens.retrieval.library_index import open_library_index

    extracted = lib.extract(["text"], engine=engine, encoders=encoders)
    indexes = []
    for space in spaces:
        li = open_library_index(lib, space, index_config, rebuild=rebuild)
        try:
            stats = li.index.stats() if hasattr(li.index, "stats") else {"items": len(li.index)}
            indexes.append({"space": space, "dim": li.index.dim, **stats, "messages": li.messages})
        finally:
            li.close()
    return {"text_vectors": extracted.to_dict(), "indexes": indexes}


__all__ = ["ClassifyTask", "LibraryTask", "TagTask", "classify_videos", "embed_library", "tag_videos"]
