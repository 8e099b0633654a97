"""Click feedback: ingest click logs into the tag library and turn clicks into training pairs.

A click log is JSONL or CSV; each record is one of

- a **video–tag** click: ``{"video_id": ..., "tag": ..., "clicks": 3}`` (a user clicked a tag shown on a video);
- a **query–video** click: ``{"query": ..., "video_id": ..., "clicks": 1}`` (a search led to the video).

``clicks`` defaults to 1; ``time`` (ISO 8601 or Unix seconds) is optional. A line that is not JSON, lacks
``video_id`` or both ``tag`` and ``query``, has a non-numeric or negative ``clicks``, an unreadable
``time``, or a tag longer than the library's limit is *malformed*: it is counted, its line number and reason
are kept (the first 20), and reading goes on. Video–tag clicks on a tag the library does not know are kept
as text; on a rejected tag they are counted but never turn the tag into a positive.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update

from vidlens.tags.errors import TagError
from vidlens.tags.library import TagLibrary
from vidlens.tags.models import Tag, TagClick


@dataclass
class FeedbackReport:
    """What reading a click log did."""

    lines: int = 0
    video_tag: int = 0
    query_video: int = 0
    unknown_tags: int = 0
    rejected_tags: int = 0
    malformed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the first 20 malformed lines)."""
        return {"lines": self.lines, "video_tag_clicks": self.video_tag, "query_video_clicks": self.query_video,
                "unknown_tags": self.unknown_tags, "rejected_tags": self.rejected_tags, "malformed": self.malformed,
                "malformed_examples": [{"line": n, "reason": r} for n, r in self.errors[:20]]}


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
        return datetime.fromtimestamp(float(value), UTC)
    return datetime.fromisoformat(str(value))


def _records(path: Path, fmt: str):
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        if fmt == "csv":
            reader = csv.DictReader(fh)
            for i, row in enumerate(reader, 2):
                if None in row:
                    yield i, None, "more fields than the header"
                else:
                    yield i, row, None
            return
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                yield i, None, f"not JSON: {exc.msg}"
                continue
            if not isinstance(rec, dict):
                yield i, None, "not a JSON object"
                continue
            yield i, rec, None


def ingest_clicks(tags: TagLibrary, path: str | os.PathLike, format: str | None = None) -> FeedbackReport:
    """Read a click log into the library's ``tag_clicks`` table and update tags' click counts.

    Args:
        tags: the tag library.
        path: a ``.jsonl`` or ``.csv`` click log.
        format: ``jsonl`` or ``csv`` (default: from the suffix).

    Returns:
        Counts of each kind of record and of malformed lines (with reasons); never raises on bad lines.
    """
    path = Path(path)
    fmt = format or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    report = FeedbackReport()
    rows: list[dict[str, Any]] = []
    per_tag: dict[int, int] = {}
    with tags.session() as s:
        norms: dict[str, tuple[int, str] | None] = {}
        for line, rec, problem in _records(path, fmt):
            report.lines += 1
            if problem is None:
                try:
                    video = str(rec.get("video_id") or rec.get("video") or "").strip()
                    tag_text = str(rec.get("tag") or "").strip()
                    query = str(rec.get("query") or "").strip()
                    clicks = int(float(rec.get("clicks") if rec.get("clicks") not in (None, "") else 1))
                    when = _time(rec.get("time"))
                    if not video:
                        raise ValueError("no video_id")
                    if not tag_text and not query:
                        raise ValueError("neither tag nor query")
                    if clicks < 0:
                        raise ValueError("negative clicks")
                    if tag_text:
                        tags.check_name(tag_text)
                except (ValueError, TypeError, OverflowError, TagError) as exc:
                    problem = str(exc)
            if problem is not None:
                report.malformed += 1
                report.errors.append((line, problem))
                continue
            if tag_text:
                display, norm = tags.check_name(tag_text)
                if norm not in norms:
                    tag = tags._find(s, norm)
                    norms[norm] = (tag.id, tag.status) if tag is not None else None
                found = norms[norm]
                if found is None:
                    report.unknown_tags += 1
                elif found[1] == "rejected":
                    report.rejected_tags += 1
                tag_id = found[0] if found is not None else None
                if tag_id is not None:
                    per_tag[tag_id] = per_tag.get(tag_id, 0) + clicks
                rows.append({"kind": "video_tag", "video_id": video, "tag_id": tag_id, "text": display,
                             "clicks": clicks, "at": when})
                report.video_tag += 1
            else:
                rows.append({"kind": "query_video", "video_id": video, "tag_id": None, "text": query[:200],
                             "clicks": clicks, "at": when})
                report.query_video += 1
        for start in range(0, len(rows), 10_000):
            s.execute(insert(TagClick), rows[start:start + 10_000])
        for tag_id, n in per_tag.items():
            s.execute(update(Tag).where(Tag.id == tag_id).values(click_count=func.coalesce(Tag.click_count, 0) + n))
        s.commit()
    return report


def clicked_tags(tags: TagLibrary, min_clicks: int = 1) -> dict[str, set[int]]:
    """Video id → tags users clicked on it at least ``min_clicks`` times (never rejected tags)."""
    with tags.session() as s:
        rows = s.execute(select(TagClick.video_id, TagClick.tag_id, func.sum(TagClick.clicks))
                         .join(Tag, Tag.id == TagClick.tag_id)
                         .where(TagClick.kind == "video_tag", Tag.status != "rejected")
                         .group_by(TagClick.video_id, TagClick.tag_id))
        out: dict[str, set[int]] = {}
        for video, tag_id, n in rows:
            if n >= min_clicks:
                out.setdefault(video, set()).add(tag_id)
        return out





def retrain(tagger: Any, docs: list, gold: dict[str, set[int]], min_clicks: int = 1, holdout: float = 0.3,
            ranker: Any = "late_fusion", seed: int = 0, ks: tuple[int, ...] = (5, 10)) -> dict[str, Any]:
    """Retrain the tagger's ranker with click feedback and report the metric before and after.

    Videos with clicks are split (seeded) into a training part and a held-out part; the held-out videos'
    clicked tags are the target of the evaluation. The new ranker trains on ``gold`` plus the clicks of
    the training part; "before" is the tagger's current ranker on the same held-out videos.

    Returns:
        ``{"before": metrics, "after": metrics, "n_train", "n_eval", "ranker"}``; the tagger keeps the new ranker.
    """
    import numpy as np

    from vidlens.tags.ranker import RANKERS
    from vidlens.tags.tagger import evaluate

    clicks = clicked_tags(tagger.tags, min_clicks)
    clicked = sorted(v for v in clicks if any(d.video_id == v for d in docs))
    rng = np.random.default_rng(seed)
    rng.shuffle(clicked)
    n_eval = max(1, int(len(clicked) * holdout)) if clicked else 0
    eval_ids = set(clicked[:n_eval])
    eval_docs = [d for d in docs if d.video_id in eval_ids]
    eval_gold = {v: clicks[v] for v in eval_ids}
    before = evaluate(tagger, eval_docs, eval_gold, ks)
    train_gold = {v: set(t) for v, t in gold.items() if v not in eval_ids}
    for v, t in clicks.items():
        if v not in eval_ids:
            train_gold.setdefault(v, set()).update(t)
    tagger.ranker = RANKERS.create(ranker, random_state=seed) if isinstance(ranker, str) else ranker
    tagger.fit([d for d in docs if d.video_id in train_gold], train_gold)
    after = evaluate(tagger, eval_docs, eval_gold, ks)
    return {"before": before, "after": after, "n_train": len(train_gold), "n_eval": len(eval_ids),
            "ranker": tagger.ranker.registry_name}
__all__ = ["FeedbackReport", "clicked_tags", "ingest_clicks", "retrain"]
