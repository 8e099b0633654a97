"""Tagging a library: the steps the CLI (``vidlens tag``, ``vidlens tags train|feedback``) and
:meth:`vidlens.Library.tag` share — documents from stored features, a tagger with the library's saved
ranker, and the tag results, optionally stored back on the videos."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidlens.tags.library import TagLibrary
from vidlens.tags.recall import VideoDoc
from vidlens.tags.tagger import Tagger

RANKER_FOLDER = "tag_ranker"
DEFAULT_TEXT_ENCODER = "muse_v3"


def ranker_folder(lib: Any) -> Path:
    """Where the library's trained relevance ranker lives (``LIBRARY/models/tag_ranker``)."""
    return lib.root / "models" / RANKER_FOLDER


def text_encoder(name: str | None) -> Any:
    """The registry text encoder ``name``; None or ``"none"`` for text matching only."""
    if name is None or name == "none":
        return None
    from vidlens.encoders import create_encoder

    return create_encoder(name)


def library_docs(lib: Any, encoder: Any = None, ids: Sequence[str] | None = None) -> list[VideoDoc]:
    """One :class:`VideoDoc` per video of ``lib`` (or per id/prefix in ``ids``), text-encoded when
    ``encoder`` is given."""
    refs = list(ids) if ids else [v["id"] for v in lib.videos()]
    docs = []
    for ref in refs:
        doc = VideoDoc.from_features(lib.features(ref))
        if encoder is not None:
            doc.encode(encoder)
        docs.append(doc)
    return docs


def library_tagger(lib: Any, tags: TagLibrary, encoder: Any, ranker: Any, docs: Sequence[VideoDoc]) -> Tagger:
    """A tagger over ``tags`` whose similar-video channel knows ``docs``' gold/manual tags.

    Args:
        ranker: a registry name, a saved ranker folder, or None for the library's saved ranker
            (``zero_shot`` when none was trained).
    """
    saved = ranker_folder(lib)
    chosen: Any = ranker or (saved if (saved / "ranker.json").is_file() else "zero_shot")
    tagger = Tagger(tags, encoder=encoder, ranker=chosen)
    tagger.use_tagged_videos(docs)
    return tagger


def tag_library(lib: Any, ids: Sequence[str] | None = None, *, encoder: str | None = DEFAULT_TEXT_ENCODER,
                ranker: str | None = None, save: bool = False, tags: TagLibrary | None = None
                ) -> list[dict[str, Any]]:
    """Tag videos of ``lib`` (all, or those in ``ids``): core and related tags with scores and channels.

    Args:
        ids: video ids or unique prefixes (default: every video).
        encoder: text encoder name (``"none"``: text matching only, no cross-modal channel).
        ranker: ``"zero_shot"``, a saved ranker folder, or None for the library's saved ranker.
        save: store the result as the videos' ``tagger`` tags.
        tags: the tag library (default: the one in ``lib``'s DB).
    """
    tags = tags if tags is not None else TagLibrary(lib)
    enc = text_encoder(encoder)
    docs = library_docs(lib, enc)
    tagger = library_tagger(lib, tags, enc, ranker, docs)
    if ids:
        wanted = {lib.get(ref)["id"] for ref in ids}
        docs = [d for d in docs if d.video_id in wanted]
    results = []
    for doc in docs:
        result = tagger.tag(doc)
        results.append(result)
        if save and doc.video_id:
            scored = {t["tag"]: t["score"] for t in result["core"] + result["related"]}
            tags.assign(doc.video_id, scored, source="tagger", create=False)
    return results


__all__ = ["RANKER_FOLDER", "library_docs", "library_tagger", "ranker_folder", "tag_library", "text_encoder"]
