"""Background jobs: a persistent queue in the metadata DB and the threads that work it off.

A job is a row of ``service_jobs``. Its life: ``queued`` → ``running`` → ``done`` | ``failed`` |
``cancelled``. Guarantees:

- **Survives a restart.** A server stopped cleanly puts its running jobs back in the queue; one that
  died leaves them ``running`` with a heartbeat that stops moving, and any process (the restarted one
  included) takes them over once the heartbeat is older than ``stale_after``. The work itself is
  resumable (extraction skips what is stored), so a job taken over continues where it stopped.
- **Never twice at once.** While a job is queued or running it holds an ``active_key`` (its kind plus a
  hash of its parameters) under a UNIQUE constraint, so submitting the same work again returns the job
  already there instead of a second one, across threads and processes. Submitting it while it runs
  marks it for one more pass (``rerun``), so inputs changed meanwhile (a new title) are not missed.
- **Claimed atomically.** A worker owns a job only if its ``UPDATE … WHERE status='queued'`` changed
  the row, which is safe with several processes on one SQLite file or on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from vidlens.store.db import MetadataStore
from vidlens.store.models import Base, utcnow

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)


class Job(Base):
    """One unit of background work (see the module docstring for its life and guarantees)."""

    __tablename__ = "service_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Jobs with the same group key may be worked off together in one batch.
    group_key: Mapped[str] = mapped_column(String(96))
    active_key: Mapped[str | None] = mapped_column(String(96), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default=QUEUED)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rerun: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the row (what the API returns)."""
        def iso(t: datetime | None) -> str | None:
            if t is None:
                return None
            return (t if t.tzinfo is not None else t.replace(tzinfo=UTC)).isoformat()

        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "params": self.params or {},
            "done": self.done or 0,
            "total": self.total,
            "message": self.message,
            "result": self.result or {},
            "error": self.error,
            "attempts": self.attempts or 0,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
        }


def _key(kind: str, params: dict[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps(params, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return f"{kind}:{digest[:40]}"


class JobInterrupted(Exception):
    """Raised inside a handler (from ``progress``) when its job is cancelled or the server stops."""

    def __init__(self, cancelled_job: str | None):
        self.cancelled_job = cancelled_job
        super().__init__("cancelled" if cancelled_job else "server stopping")


class JobQueue:
    """The persistent queue: submit, look up, claim, report progress, finish.

    Args:
        store: the library's metadata DB (its engine is shared; its migrations made the jobs table).
    """

    def __init__(self, store: MetadataStore):
        self.store = store

    # -- submitting and reading -----------------------------------------------------------------
    def submit(self, kind: str, params: dict[str, Any], group: str | None = None) -> tuple[dict[str, Any], bool]:
        """Queue ``kind`` work with ``params`` unless the same work is already queued or running.

        Returns:
            (job, created): the new job, or the active one doing the same work (``created`` False).
        """
        active_key = _key(kind, params)
        group_key = f"{kind}:{group}" if group is not None else active_key
        for _ in range(5):
            with self.store.session() as s:
                job = Job(id=uuid.uuid4().hex, kind=kind, params=params, group_key=group_key,
                          active_key=active_key, status=QUEUED, result={})
                s.add(job)
                try:
                    s.commit()
                    return job.to_dict(), True
                except IntegrityError:
                    s.rollback()
            with self.store.session() as s:
                existing = s.scalar(select(Job).where(Job.active_key == active_key))
                if existing is None:
                    continue  # it finished between our insert and this look-up: try again
                if existing.status == RUNNING:
                    existing.rerun = True
                    s.commit()
                return existing.to_dict(), False
        raise RuntimeError(f"could not queue {kind} job: the queue kept changing under it")

    def get(self, job_id: str) -> dict[str, Any] | None:
        """One job, or None."""
        with self.store.session() as s:
            job = s.get(Job, job_id)
            return job.to_dict() if job is not None else None

    def list(self, status: str | None = None, kind: str | None = None, limit: int = 50, offset: int = 0
             ) -> list[dict[str, Any]]:
        """Jobs, newest first."""
        with self.store.session() as s:
            q = select(Job).order_by(Job.created_at.desc(), Job.id)
            if status is not None:
                q = q.where(Job.status == status)
            if kind is not None:
                q = q.where(Job.kind == kind)
            return [j.to_dict() for j in s.scalars(q.limit(limit).offset(offset))]

    def counts(self) -> dict[str, int]:
        """How many jobs are in each status."""
        with self.store.session() as s:
            found = dict(s.execute(select(Job.status, func.count()).group_by(Job.status)).all())
        return {st: int(found.get(st, 0)) for st in STATUSES}

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        """Cancel a queued job now, or ask a running one to stop at its next progress report."""
        with self.store.session() as s:
            job = s.get(Job, job_id)
            if job is None:
                return None
            if job.status == QUEUED:
                job.status, job.active_key, job.finished_at = CANCELLED, None, utcnow()
            elif job.status == RUNNING:
                job.cancel_requested = True
            s.commit()
            return job.to_dict()

    # -- the worker side ----------------------------------------------------------------------------
    def claim(self, owner: str, kinds: list[str], batch: Callable[[str], int]) -> list[Job]:
        """Take the oldest queued job of ``kinds`` (plus, up to ``batch(kind)``, queued jobs of its group).

        Returns:
            The claimed jobs (detached rows), empty when there is nothing to do.
        """
        with self.store.session() as s:
            first = s.scalar(select(Job).where(Job.status == QUEUED, Job.kind.in_(kinds))
                             .order_by(Job.created_at, Job.id).limit(1))
            if first is None:
                return []
            candidates = [first]
            n = batch(first.kind)
            if n > 1:
                candidates += list(s.scalars(
                    select(Job).where(Job.status == QUEUED, Job.group_key == first.group_key, Job.id != first.id)
                    .order_by(Job.created_at, Job.id).limit(n - 1)))
            ids = [j.id for j in candidates]
        claimed = []
        now = utcnow()
        for job_id in ids:
            with self.store.session() as s:
                res = s.execute(update(Job).where(Job.id == job_id, Job.status == QUEUED).values(
                    status=RUNNING, owner=owner, heartbeat_at=now, started_at=now,
                    attempts=Job.attempts + 1, rerun=False, message=None))
                s.commit()
                if res.rowcount == 1:
                    claimed.append(s.get(Job, job_id))
        return claimed

    def heartbeat(self, owner: str) -> None:
        """Mark every job ``owner`` is running as alive."""
        with self.store.session() as s:
            s.execute(update(Job).where(Job.owner == owner, Job.status == RUNNING).values(heartbeat_at=utcnow()))
            s.commit()

    def reclaim_stale(self, stale_after: float) -> int:
        """Put back in the queue running jobs whose owner stopped sending heartbeats; returns how many."""
        limit = utcnow() - timedelta(seconds=stale_after)
        with self.store.session() as s:
            res = s.execute(update(Job).where(Job.status == RUNNING, Job.heartbeat_at < limit).values(
                status=QUEUED, owner=None, message="taken over after its worker stopped"))
            s.commit()
        if res.rowcount:
            log.warning("re-queued %d job(s) whose worker stopped sending heartbeats", res.rowcount)
        return int(res.rowcount or 0)

    def progress(self, job_id: str, done: int, total: int | None, message: str | None = None) -> bool:
        """Record progress; returns whether cancellation was asked for."""
        with self.store.session() as s:
            job = s.get(Job, job_id)
            if job is None:
                return True
            job.done, job.total, job.heartbeat_at = done, total, utcnow()
            if message is not None:
                job.message = message[:500]
            s.commit()
            return bool(job.cancel_requested)

    def finish(self, job_id: str, status: str, result: dict[str, Any] | None = None,
               error: str | None = None) -> None:
        """End a job; a job asked to run again while it ran goes back into the queue instead."""
        with self.store.session() as s:
            job = s.get(Job, job_id)
            if job is None:
                return
            job.result = result or {}
            job.error = error
            job.owner = None
            if status == DONE and job.rerun and not job.cancel_requested:
                job.status, job.rerun, job.message = QUEUED, False, "queued again: asked for while running"
            else:
                job.status, job.active_key, job.finished_at = status, None, utcnow()
            s.commit()

    def requeue(self, job_id: str, message: str) -> None:
        """Give a running job back to the queue (the server is stopping)."""
        with self.store.session() as s:
            s.execute(update(Job).where(Job.id == job_id, Job.status == RUNNING).values(
                status=QUEUED, owner=None, message=message))
            s.commit()


@dataclass
class JobHandler:
    """What a kind of job does.

    Attributes:
        run: ``run(ctx, jobs) -> {job_id: result dict}``; raises to fail every job of the batch. Per-job
            failures are reported by putting ``{"error": "..."}`` in that job's result.
        batch: how many queued jobs of the same group it may take at once.
    """

    run: Callable[[JobContext, list[Job]], dict[str, dict[str, Any]]]
    batch: int = 1


class JobContext:
    """What a handler gets: a progress reporter that also carries cancellation and shutdown."""

    def __init__(self, queue: JobQueue, stop: threading.Event):
        self.queue = queue
        self._stop = stop

    def progress(self, job_id: str, done: int, total: int | None, message: str | None = None) -> None:
        """Report progress of one job.

        Raises:
            JobInterrupted: the job was cancelled or the server is stopping; the work done so far must
                already be committed (handlers report progress only between committed steps).
        """
        cancelled = self.queue.progress(job_id, done, total, message)
        if cancelled or self._stop.is_set():
            raise JobInterrupted(job_id if cancelled else None)


class VideoLocks:
    """In-process locks per video id, so two jobs never work on the same video at the same time."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def hold(self, ids: list[str]) -> Iterator[None]:
        """Hold the locks of ``ids`` (taken in sorted order, so two holders cannot deadlock)."""
        with self._guard:
            locks = [self._locks.setdefault(i, threading.Lock()) for i in sorted(set(ids))]
        for lock in locks:
            lock.acquire()
        try:
            yield
        finally:
            for lock in reversed(locks):
                lock.release()


class JobRunner:
    """Worker threads that claim and run jobs, plus one thread for heartbeats and take-overs.

    Args:
        queue: the job queue.
        handlers: kind → handler.
        workers: worker threads.
        stale_after: seconds without heartbeat after which another worker takes a running job over.
    """

    def __init__(self, queue: JobQueue, handlers: dict[str, JobHandler], workers: int = 1,
                 stale_after: float = 20.0):
        self.queue = queue
        self.handlers = handlers
        self.workers = workers
        self.stale_after = stale_after
        self.owner = f"{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self.ctx = JobContext(queue, self._stop)

    def start(self) -> None:
        """Take over orphaned jobs and start the threads."""
        self.queue.reclaim_stale(self.stale_after)
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"vidlens-job-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._keepalive, name="vidlens-job-heartbeat", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, timeout: float = 30.0) -> None:
        """Ask running jobs to stop at their next progress report (they go back to the queue) and join."""
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def wake(self) -> None:
        """Tell idle workers that a job was queued."""
        self._wake.set()

    def _keepalive(self) -> None:
        interval = max(0.05, self.stale_after / 4)
        while not self._stop.wait(interval):
            try:
                self.queue.heartbeat(self.owner)
                if self.queue.reclaim_stale(self.stale_after):
                    self._wake.set()
            except Exception:
                log.exception("job heartbeat failed")

    def _work(self) -> None:
        kinds = sorted(self.handlers)
        while not self._stop.is_set():
            try:
                jobs = self.queue.claim(self.owner, kinds, lambda k: self.handlers[k].batch)
            except Exception:
                log.exception("claiming a job failed")
                jobs = []
            if not jobs:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self._run(jobs)

    def _run(self, jobs: list[Job]) -> None:
        handler = self.handlers[jobs[0].kind]
        try:
            results = handler.run(self.ctx, jobs)
        except JobInterrupted as exc:
            for job in jobs:
                if job.id == exc.cancelled_job:
                    self.queue.finish(job.id, CANCELLED, error="cancelled")
                else:
                    self.queue.requeue(job.id, "interrupted; will resume")
            return
        except Exception as exc:
            log.exception("%s job failed", jobs[0].kind)
            for job in jobs:
                self.queue.finish(job.id, FAILED, error=f"{type(exc).__name__}: {exc}")
            return
        for job in jobs:
            result = results.get(job.id, {})
            if result.get("error"):
                self.queue.finish(job.id, FAILED, result, error=str(result["error"]))
            else:
                self.queue.finish(job.id, DONE, result)
