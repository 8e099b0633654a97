"""Storage of a library: the metadata DB (SQLAlchemy) and feature files."""

from vidlens.store.db import MetadataStore, make_engine
from vidlens.store.models import ItemError, Video, VideoPath

__all__ = ["ItemError", "MetadataStore", "Video", "VideoPath", "make_engine"]
