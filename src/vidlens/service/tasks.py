"""The kinds of background job the service runs: ``ingest``, ``extract`` and ``analyse``.

``analyse`` is extraction followed by every analysis step that is wired in (classification, tagging),
so an upload needs one job to become fully searchable. Extraction goes through
:class:`vidlens.features.Extractor`, whose runs are idempotent: a job taken over after a crash, or a
second job naming a video already done, computes nothing twice.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import select

from vidlens.features import Extractor
from vidlens.ingest import IngestItem, Ingestor, iter_items
from vidlens.service.jobs import Job, JobContext, JobHandler
from vidlens.service.state import ServiceState
from vidlens.store.models import Video

CHUNK = 32          # videos per extraction run: bounds the work lost to a crash and the lock scope
BATCH = 16          # queued single-video jobs worked off together
MAX_ITEM_RESULTS = 200


def extraction_group(params: dict[str, Any]) -> str | None:
    """Jobs naming explicit videos with the same options may share one extraction run."""
    if params.get("video_ids") is None:
        return None
    return f"{sorted(params.get('modalities') or [])}|{bool(params.get('force'))}"


def _run_extraction(state: ServiceState, ctx: JobContext, jobs: list[Job]) -> tuple[dict[str, dict], list[str]]:
    """Extract the features of every video the jobs name; returns per-job results and the ids touched."""
    lib = state.lib
    p = jobs[0].params
    extractor = Extractor(lib.store, lib.vectors, lib.config, thumbnails=lib.folder("thumbnails"),
                          modalities=p.get("modalities"), force=bool(p.get("force")), encoders=state.encoders)
    owners: dict[str, list[str]] = defaultdict(list)
    if p.get("video_ids") is None:
        job = jobs[0]
        wanted = [vid for vid, _ in extractor.plan(None)]
        for vid in wanted:
            owners[vid].append(job.id)
    else:
        for job in jobs:
            for vid in job.params["video_ids"]:
                owners[vid].append(job.id)
        wanted = sorted(owners)
    wanted = _existing(state, wanted)
    total = {job.id: 0 for job in jobs}
    for vid in wanted:
        for jid in owners[vid]:
            total[jid] += 1
    done = dict.fromkeys(total, 0)
    results: dict[str, dict[str, Any]] = {job.id: {"videos": 0, "errors": []} for job in jobs}
    for jid in total:
        ctx.progress(jid, 0, total[jid], "extracting")
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start:start + CHUNK]
        with state.locks.hold(chunk):
            # Planned again under the locks: another job may have done some of these meanwhile.
            plan = extractor.plan(chunk)
            planned = {vid for vid, _ in plan}
            for vid in chunk:
                if vid not in planned:  # nothing left to do for it
                    for jid in owners[vid]:
                        done[jid] += 1
            order = iter([vid for vid, _ in plan])

            def advance(_n: int = 1, note: str | None = None, order: Any = order) -> None:
                vid = next(order, None)
                for jid in owners.get(vid or "", []):
                    done[jid] += 1
                    ctx.progress(jid, done[jid], total[jid], note)

            report = extractor.run(chunk, progress=advance) if plan else None
        state.search.update(chunk)
        if report is not None:
            for err in report.errors:
                for jid in owners.get(err["video_id"], []):
                    if len(results[jid]["errors"]) < MAX_ITEM_RESULTS:
                        results[jid]["errors"].append(err)
        for jid in total:
            ctx.progress(jid, done[jid], total[jid], f"{done[jid]}/{total[jid]} videos")
    for jid in total:
        results[jid]["videos"] = total[jid]
    return results, wanted


def _existing(state: ServiceState, ids: list[str]) -> list[str]:
    """``ids`` without the videos no longer in the library (deleted since the job was queued)."""
    found: set[str] = set()
    with state.lib.store.session() as s:
        for start in range(0, len(ids), 500):
            found.update(s.scalars(select(Video.id).where(Video.id.in_(ids[start:start + 500]))))
    return [vid for vid in ids if vid in found]


def run_extract(state: ServiceState, ctx: JobContext, jobs: list[Job]) -> dict[str, dict[str, Any]]:
    """Handler of ``extract`` jobs."""
    results, _ids = _run_extraction(state, ctx, jobs)
    return results


def run_analyse(state: ServiceState, ctx: JobContext, jobs: list[Job]) -> dict[str, dict[str, Any]]:
    """Handler of ``analyse`` jobs: extraction, then each wired analysis step over the same videos."""
    results, ids = _run_extraction(state, ctx, jobs)
    if ids:
        per_job_ids = {job.id: set(job.params.get("video_ids") or ids) for job in jobs}
        for name, step in state.steps.items():
            for jid in per_job_ids:
                ctx.progress(jid, len(per_job_ids[jid]), len(per_job_ids[jid]), f"{name}…")
            summary = step(state, ctx, ids)
            for jid in results:
                results[jid][name] = summary
        state.search.update(ids)
    return results


def inside(path: str, roots: list[Path]) -> bool:
    """Whether ``path`` (after resolving links and ``..``) lies under one of ``roots``."""
    real = Path(os.path.realpath(path))
    return any(real.is_relative_to(Path(os.path.realpath(root))) for root in roots)


def run_ingest(state: ServiceState, ctx: JobContext, jobs: list[Job]) -> dict[str, dict[str, Any]]:
    """Handler of ``ingest`` jobs: register server files, folders and manifests under the allowed roots."""
    job = jobs[0]
    lib, roots = state.lib, state.settings.ingest_roots
    items: list[IngestItem] = []
    for item in iter_items(job.params["paths"], lib.config.ingest.extensions, lib.config.ingest.follow_symlinks):
        if item.path is not None and item.error is None and not inside(item.path, roots):
            item = IngestItem(path=None, source=item.label, error="outside the allowed ingest roots")
        items.append(item)
    ctx.progress(job.id, 0, len(items), "ingesting")
    seen = 0

    def advance(_result: Any) -> None:
        nonlocal seen
        seen += 1
        if seen % 25 == 0 or seen == len(items):
            ctx.progress(job.id, seen, len(items), f"{seen}/{len(items)} items")

    report = Ingestor(lib.store).run(items, progress=advance)
    changed = sorted({r.video_id for r in report.results if r.video_id and r.status in ("added", "updated")})
    state.search.update(changed)
    result: dict[str, Any] = {
        "counts": report.counts,
        "items": [r.to_dict() for r in report.results[:MAX_ITEM_RESULTS]],
        "videos": changed[:MAX_ITEM_RESULTS],
    }
    if job.params.get("analyse") and changed:
        submitted, _created = state.queue.submit("analyse", {"video_ids": changed, "modalities": None,
                                                             "force": False},
                                                 group=extraction_group({"video_ids": changed}))
        state.runner.wake()
        result["analyse_job"] = submitted["id"]
    return {job.id: result}


def run_step(state: ServiceState, ctx: JobContext, jobs: list[Job], name: str) -> dict[str, dict[str, Any]]:
    """Handler of a job that runs one wired analysis step (``classify``, ``tag``) on stored features."""
    ids: set[str] = set()
    for job in jobs:
        ids.update(job.params.get("video_ids") or state.lib.store.video_ids())
    wanted = _existing(state, sorted(ids))
    for job in jobs:
        ctx.progress(job.id, 0, len(job.params.get("video_ids") or wanted), f"{name}…")
    summary = state.steps[name](state, ctx, wanted)
    state.search.update(wanted)
    return {job.id: {"videos": len(job.params.get("video_ids") or wanted), name: summary} for job in jobs}


def handlers(state: ServiceState) -> dict[str, JobHandler]:
    """The job kinds this service runs, bound to its state (one more per wired analysis step)."""
    out = {
        "ingest": JobHandler(lambda ctx, jobs: run_ingest(state, ctx, jobs)),
        "extract": JobHandler(lambda ctx, jobs: run_extract(state, ctx, jobs), batch=BATCH),
        "analyse": JobHandler(lambda ctx, jobs: run_analyse(state, ctx, jobs), batch=BATCH),
    }
    for name in state.steps:
        out[name] = JobHandler(lambda ctx, jobs, name=name: run_step(state, ctx, jobs, name), batch=BATCH)
    out.update(state.job_kinds)
    return out
