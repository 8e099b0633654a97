"""What one running service holds (the library, the job queue, the search index …) and how routes get it."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request

from vidlens.library import Library
from vidlens.service.feedback import FeedbackLog
from vidlens.service.jobs import JobContext, JobHandler, JobQueue, JobRunner, VideoLocks
from vidlens.service.metrics import Metrics
from vidlens.service.settings import ServiceSettings
from vidlens.service.textsearch import TextSearchIndex


class ResponseCache:
    """A small thread-safe LRU of answered searches. Keys carry the index version, so entries made
    before an update are never served after it (they age out)."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._items: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        """The cached body, or None."""
        with self._lock:
            body = self._items.get(key)
            if body is not None:
                self._items.move_to_end(key)
            return body

    def put(self, key: tuple, body: bytes) -> None:
        """Remember a body, dropping the least recently used beyond ``size``."""
        with self._lock:
            self._items[key] = body
            if len(self._items) > self.size:  # size 0: nothing is kept
                self._items.popitem(last=False)


# An analysis step after extraction (classify, tag …): ``step(state, ctx, video_ids) -> summary dict``.
AnalysisStep = Callable[["ServiceState", JobContext, list[str]], dict[str, Any]]


@dataclass
class ServiceState:
    """Everything the routes of one app share.

    Attributes:
        lib: the library served.
        settings: the service settings.
        token: the API token write endpoints require.
        token_created: whether this start generated the token (then ``vidlens serve`` prints it once).
        queue, runner: the persistent job queue and its worker threads.
        search: the keyword index.
        feedback: the click-event log.
        metrics: request counters for ``/metrics``.
        encoders: the encoder bank extraction uses (None: the real pretrained encoders).
        locks: per-video locks so two jobs never work on one video at once.
        steps: analysis steps after extraction, by name, added by the engine routers that are wired.
        capabilities: which optional engines are wired (classify, tags, retrieval …).
        search_cache: answered searches, by query and index version.
        engines: loaded (or injected) engine objects by role, e.g. ``classifier``.
        job_kinds: further kinds of background job the wired engines run (``dedup``).
        hooks: functions the wired engines provide to the core routes, by name:
            ``category_distribution(state) -> list``, ``video_categories(state, id) -> list``,
            ``video_tags(state, id) -> list``, ``category_members(state, name) -> set[str]``.
    """

    lib: Library
    settings: ServiceSettings
    token: str
    token_created: bool
    queue: JobQueue
    search: TextSearchIndex
    feedback: FeedbackLog
    metrics: Metrics
    encoders: Any = None
    locks: VideoLocks = field(default_factory=VideoLocks)
    steps: dict[str, AnalysisStep] = field(default_factory=dict)
    capabilities: dict[str, bool] = field(default_factory=dict)
    hooks: dict[str, Callable[..., Any]] = field(default_factory=dict)
    search_cache: ResponseCache = field(default_factory=ResponseCache)
    engines: dict[str, Any] = field(default_factory=dict)
    job_kinds: dict[str, JobHandler] = field(default_factory=dict)
    runner: JobRunner = field(init=False)

    @property
    def uploads(self) -> Path:
        """Where uploaded files are kept (``LIBRARY/uploads``)."""
        return self.lib.folder("uploads")


async def get_state(request: Request) -> ServiceState:
    """FastAPI dependency: the :class:`ServiceState` of the app serving ``request`` (a coroutine, so
    resolving it costs no hop to the thread pool)."""
    return request.app.state.vidlens
