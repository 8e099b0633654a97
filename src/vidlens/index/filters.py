"""Metadata filters of a vector search: category, duration range, date range.

Every indexed item carries three metadata fields:

- ``categories``: a list of strings (a video's labels: level-1 and level-2 category, or any tags);
  a filter on categories matches an item that has *any* of the asked ones;
- ``duration``: seconds (float; unknown is NaN and never matches a duration range);
- ``date``: a timezone-aware datetime, ISO string or epoch seconds (unknown never matches a date range).

The CLI writes filters as ``key OP value`` strings, see :func:`parse_filter`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from vidlens.errors import VidlensError

# Stored for "no date", far outside any real range so every range filter excludes it.
MISSING_DATE = -(2**62)


@dataclass(frozen=True)
class SearchFilter:
    """Conditions an item must meet to be returned (all given ones must hold).

    Attributes:
        categories: match items having any of these categories (empty: no condition).
        min_duration, max_duration: inclusive duration range in seconds (None: open end).
        date_from, date_to: inclusive range of epoch seconds (None: open end).
    """

    categories: tuple[str, ...] = ()
    min_duration: float | None = None
    max_duration: float | None = None
    date_from: int | None = None
    date_to: int | None = None

    @property
    def empty(self) -> bool:
        """True when the filter lets everything through."""
        return not self.categories and self.min_duration is None and self.max_duration is None \
            and self.date_from is None and self.date_to is None

    def matches(self, meta: Mapping[str, Any]) -> bool:
        """Whether one item's metadata passes (reference semantics for every backend)."""
        item = normalize_metadata(meta)
        if self.categories and not set(self.categories) & set(item["categories"]):
            return False
        d = item["duration"]
        if self.min_duration is not None and not (d >= self.min_duration):
            return False
        if self.max_duration is not None and not (d <= self.max_duration):
            return False
        t = item["date"]
        if self.date_from is not None and (t == MISSING_DATE or t < self.date_from):
            return False
        return not (self.date_to is not None and (t == MISSING_DATE or t > self.date_to))

    def to_milvus_expr(self) -> str:
        """The same condition as a Milvus boolean expression ('' when empty)."""
        parts = []
        if self.categories:
            quoted = ", ".join(_milvus_str(c) for c in self.categories)
            parts.append(f"array_contains_any(categories, [{quoted}])")
        if self.min_duration is not None:
            parts.append(f"duration >= {float(self.min_duration)!r}")
        if self.max_duration is not None:
            parts.append(f"duration <= {float(self.max_duration)!r}")
        if self.date_from is not None:
            parts.append(f"date >= {int(self.date_from)}")
        if self.date_to is not None:
            parts.append(f"date <= {int(self.date_to)}")
        if self.date_to is not None and self.date_from is None:
            parts.append(f"date != {MISSING_DATE}")  # unknown dates are stored as a huge negative number
        return " and ".join(parts)


def _milvus_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_epoch(value: Any) -> int:
    """Epoch seconds of a datetime, date, ISO string or number; :data:`MISSING_DATE` when unknown."""
    if value is None or value == "":
        return MISSING_DATE
    if isinstance(value, bool):
        raise VidlensError(f"not a date: {value!r}")
    if isinstance(value, (int, float)):
        return MISSING_DATE if isinstance(value, float) and math.isnan(value) else int(value)
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(dt.timestamp())
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return int(float(text))
        try:
            return to_epoch(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            raise VidlensError(f"not a date: {value!r} (use YYYY-MM-DD or an ISO time)") from None
    raise VidlensError(f"not a date: {value!r}")


def normalize_metadata(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"categories": list[str], "duration": float, "date": int}`` from loosely typed input."""
    meta = meta or {}
    cats = meta.get("categories") or []
    if isinstance(cats, str):
        cats = [cats]
    duration = meta.get("duration")
    try:
        duration = float("nan") if duration is None else float(duration)
    except (TypeError, ValueError):
        duration = float("nan")
    return {"categories": [str(c) for c in cats if str(c)], "duration": duration,
            "date": to_epoch(meta.get("date"))}


_FILTER_RE = re.compile(r"^\s*(category|categories|cat|label|duration|dur|date)\s*(>=|<=|=|>|<|:)\s*(.+?)\s*$",
                        re.IGNORECASE)


def parse_filter(specs: Iterable[str] | str | None) -> SearchFilter:
    """Build a :class:`SearchFilter` from strings like the CLI's ``--filter``.

    Forms: ``category=美食`` (several: ``category=美食|游戏``), ``duration>=10``, ``duration<=60``,
    ``duration=10..60``, ``date>=2024-01-01``, ``date=2024-01-01..2024-06-30``.

    Raises:
        VidlensError: a string that does not parse, naming it.
    """
    if specs is None:
        return SearchFilter()
    if isinstance(specs, str):
        specs = [specs]
    cats: list[str] = []
    lo_d = hi_d = None
    lo_t = hi_t = None
    for spec in specs:
        m = _FILTER_RE.match(spec)
        if not m:
            raise VidlensError(
                f"bad filter {spec!r}; use category=NAME, duration>=S, duration=A..B, date>=YYYY-MM-DD"
            )
        key, op, value = m.group(1).lower(), m.group(2), m.group(3)
        if key in ("category", "categories", "cat", "label"):
            if op not in ("=", ":"):
                raise VidlensError(f"bad filter {spec!r}: categories take '=' only")
            cats.extend(v.strip() for v in value.split("|") if v.strip())
            continue
        parse = _parse_seconds if key in ("duration", "dur") else _parse_date_bound
        if op in ("=", ":") and ".." in value:
            a, b = value.split("..", 1)
            lo = parse(a, spec, end=False) if a.strip() else None
            hi = parse(b, spec, end=True) if b.strip() else None
        elif op in (">=", ">"):
            lo, hi = parse(value, spec, end=False), None
        elif op in ("<=", "<"):
            lo, hi = None, parse(value, spec, end=True)
        else:
            lo, hi = parse(value, spec, end=False), parse(value, spec, end=True)
        if key in ("duration", "dur"):
            lo_d = lo if lo is not None else lo_d
            hi_d = hi if hi is not None else hi_d
        else:
            lo_t = lo if lo is not None else lo_t
            hi_t = hi if hi is not None else hi_t
    return SearchFilter(tuple(dict.fromkeys(cats)), lo_d, hi_d, lo_t, hi_t)


def _parse_seconds(text: str, spec: str, end: bool) -> float:
    try:
        value = float(text.strip().rstrip("s"))
    except ValueError:
        raise VidlensError(f"bad filter {spec!r}: {text!r} is not a number of seconds") from None
    if math.isnan(value):
        raise VidlensError(f"bad filter {spec!r}: NaN")
    return value


def _parse_date_bound(text: str, spec: str, end: bool) -> int:
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            d = date.fromisoformat(text)
            start = int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())
            return start + 86_399 if end else start  # a whole day is inclusive at both ends
        return to_epoch(text)
    except (ValueError, VidlensError):
        raise VidlensError(f"bad filter {spec!r}: {text!r} is not a date (YYYY-MM-DD)") from None


__all__ = ["MISSING_DATE", "SearchFilter", "normalize_metadata", "parse_filter", "to_epoch"]
