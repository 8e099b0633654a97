"""Ingest: files, folders and manifests → rows in the metadata DB, keyed by content hash."""

from vidlens.ingest.runner import Ingestor, IngestReport, ItemResult, content_id
from vidlens.ingest.sources import IngestItem, iter_items, iter_manifest

__all__ = ["IngestItem", "IngestReport", "Ingestor", "ItemResult", "content_id", "iter_items", "iter_manifest"]
