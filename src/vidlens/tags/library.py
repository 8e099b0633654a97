"""`TagLibrary`: the tag library in the metadata DB, versioned.

Every edit (add, approve, reject, alias, link, merge, delete, import, propose, rollback) is one
*revision*; each revision records, per touched tag, its full snapshot before and after (row, aliases and
outgoing links). So ``history`` lists who changed what when, ``diff(v1, v2)`` compares any two versions,
and ``rollback(v)`` restores version ``v`` as a new revision (itself undoable).

Tags are compared by their normal form (:func:`~vidlens.tags.normalize.normalize_tag`): adding ``ＡＢＣ``,
``abc`` or the traditional spelling of an existing tag finds that tag instead of making a duplicate.
Statuses change only through :meth:`TagLibrary.approve`, :meth:`TagLibrary.reject` and rollback, so a
rejected tag that a miner or an import proposes again stays rejected.

Example:
    >>> import vidlens
    >>> from vidlens.tags import TagLibrary
    >>> tags = TagLibrary(vidlens.open("mylib/"))  # doctest: +SKIP
    >>> tags.add("白色连衣裙", status="approved")  # doctest: +SKIP
    >>> tags.decompose("白色连衣裙")  # doctest: +SKIP
    ['白色', '连衣裙']
"""

from __future__ import annotations

import csv
import getpass
import itertools
import json
import os
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from json.encoder import encode_basestring_ascii as _json_str  # the string escaper of json.dumps
from pathlib import Path
from typing import IO, Any

from sqlalchemy import String, cast, delete, func, literal, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from vidlens.errors import NotFoundError, VidlensError
from vidlens.store.db import MetadataStore, make_engine, session_scope
from vidlens.store.models import utcnow
from vidlens.store.schema import upgrade_schema
from vidlens.tags._bulk import CHUNK_ROWS, chunks, driver_insert, gc_paused
from vidlens.tags.errors import TagError
from vidlens.tags.models import Tag, TagAlias, TagChange, TagClick, TagLink, TagRevision, VideoTag
from vidlens.tags.normalize import MAX_TAG_CHARS, normalize_tag
from vidlens.tags.taxonomy import (
    TAG_KINDS,
    TAG_STATUSES,
    validate_atomic_class,
    validate_dimensions,
)
from vidlens.tags.tokenize import has_word_char, is_function_word, segments, words

LINK_RELATIONS = ("parent", "related", "component")
ROW_FIELDS = ("id", "name", "norm", "kind", "atomic_class", "dimensions", "status", "source", "created_by",
              "reviewed_by", "reviewed_at", "count", "video_count", "click_count", "score", "evidence",
              "created_at")
_TIME_FIELDS = ("reviewed_at", "created_at")
EXPORT_COLUMNS = ("name", "kind", "atomic_class", "dimensions", "aliases", "parents", "related", "components",
                  "status", "source", "count", "video_count", "click_count", "score", "reviewed_by",
                  "reviewed_at", "evidence")

TagRef = int | str
VERSION_TTL = 1.0
PROGRESS_MIN_TAGS = 50_000
"""Imports of at least this many distinct tags draw a progress bar when asked to (``progress=True``)."""
_IN_CHUNK = 900  # ids or names per ``IN (…)`` query: under SQLite's oldest limit of 999 parameters
_CHANGE_COLUMNS = ("tag_id", "action", "before", "after")


@dataclass(slots=True)
class _Record:
    """One cleaned import record. Empty dimensions/evidence are ``None`` and lists are tuples (``()`` is
    shared), so the million records of a big import stay small in memory."""

    name: str
    norm: str
    kind: str | None
    atomic_class: str | None
    dimensions: dict[str, str] | None
    status: str
    source: str
    count: int
    score: float | None
    evidence: dict[str, Any] | None
    aliases: tuple[str, ...]
    parents: tuple[str, ...]
    related: tuple[str, ...]


@dataclass
class ImportReport:
    """What an import or a proposal did.

    Attributes:
        created: tags that did not exist before.
        merged: records that named an existing tag (by name or alias) and were merged into it.
        rejected_again: records naming a rejected tag (it stays rejected).
        errors: ``(line, message)`` for records that could not be taken (too long, empty, malformed).
        version: the library version after the import (``None`` when nothing changed).
    """

    created: int = 0
    merged: int = 0
    rejected_again: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the first 20 errors)."""
        return {"created": self.created, "merged": self.merged, "rejected_again": self.rejected_again,
                "n_errors": len(self.errors), "errors": [{"line": n, "message": m} for n, m in self.errors[:20]],
                "version": self.version}


def _default_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return os.environ.get("USER", "unknown")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _created_json(tag_id: int, r: _Record) -> str:
    """The ``after`` of a tag made by a bulk import: a compact snapshot (rollback never needs the state after
    a create; diff and history show these fields), as the JSON text ``json.dumps`` gives for the dict
    ``{id, name, norm, kind, status, source}``, written out directly: five times faster, a million times."""
    return (f'{{"id": {tag_id}, "name": {_json_str(r.name)}, "norm": {_json_str(r.norm)}, '
            f'"kind": {_json_str(r.kind or "atomic")}, "status": {_json_str(r.status)}, '
            f'"source": {_json_str(r.source)}}}')


def _tag_snapshot(tag: Any, aliases: list[list[str]], links: list[list[Any]]) -> dict[str, Any]:
    """A tag's state as history stores it: its row (a :class:`Tag` or a row of its table), aliases
    ``[alias, norm]`` and links ``[relation, dst_id, position]``."""
    snap = {f: getattr(tag, f) for f in ROW_FIELDS}
    for f in _TIME_FIELDS:
        snap[f] = _iso(snap[f])
    snap["dimensions"] = dict(snap["dimensions"] or {})
    snap["evidence"] = dict(snap["evidence"] or {})
    snap["aliases"] = aliases
    snap["links"] = links
    return snap


class _Recorder:
    """Collects the changes of one revision; the revision row is made on the first change."""

    def __init__(self, lib: TagLibrary, s: Session, who: str, message: str):
        self.lib, self.s, self.who, self.message = lib, s, who, message
        self.revision: TagRevision | None = None
        self.n = 0

    def _rev(self) -> TagRevision:
        """The revision row (made and flushed on first use)."""
        if self.revision is None:
            self.revision = TagRevision(who=self.who, message=self.message)
            self.s.add(self.revision)
            self.s.flush()
        return self.revision

    def record(self, tag_id: int, action: str, before: dict[str, Any] | None,
               after: dict[str, Any] | None = ...) -> None:  # type: ignore[assignment]
        """Record one tag's change; ``after`` defaults to its snapshot now."""
        if after is ...:
            self.s.flush()
            after = self.lib._snapshot(self.s, tag_id)
        if before == after:
            return
        self.s.add(TagChange(revision_id=self._rev().id, tag_id=tag_id, action=action, before=before, after=after))
        self.n += 1

    def record_many(self, rows: Iterable[tuple[int, str, Any, Any]], after_as_json: bool = False) -> None:
        """Record many prepared changes ``(tag_id, action, before, after)``, inserted through the driver in
        chunks (a bulk import writes one per new tag); ``after_as_json``: the ``after`` values are JSON text."""
        it = iter(rows)
        first = next(it, None)
        if first is None:
            return
        revision_id = self._rev().id
        self.s.flush()
        self.n += driver_insert(self.s.connection(), TagChange.__table__, _CHANGE_COLUMNS,
                                itertools.chain([first], it), constants={"revision_id": revision_id},
                                prepared=("after",) if after_as_json else ())


class TagLibrary:
    """The tag library of a vidlens library (or of any database URL).

    Args:
        target: a :class:`vidlens.Library`, a :class:`~vidlens.store.MetadataStore`, or a SQLAlchemy URL.
        user: who edits (recorded with each revision); defaults to the login name.
        max_chars: longest tag name accepted, in characters after normalisation.

    Raises:
        TagError: on names that are empty, have no letter/digit/CJK character, or exceed ``max_chars``.
    """

    def __init__(self, target: Any, *, user: str | None = None, max_chars: int = MAX_TAG_CHARS):
        if isinstance(target, str):
            engine = make_engine(target)
            upgrade_schema(engine)  # a Library or MetadataStore has done this on opening
            self.cache_dir: Path | None = None
        elif isinstance(target, MetadataStore):
            engine = target.engine
            self.cache_dir = None
        elif hasattr(target, "store") and isinstance(target.store, MetadataStore):
            engine = target.store.engine
            self.cache_dir = target.folder("index")
        else:
            raise TypeError(f"TagLibrary needs a Library, a MetadataStore or a DB URL, not {type(target).__name__}")
        self.library = target if hasattr(target, "store") else None
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.user = user or _default_user()
        self.max_chars = max_chars
        self._matchers: dict[tuple, Any] = {}
        self._version: tuple[int, float] | None = None

    # -- sessions ----------------------------------------------------------------------------------
    def session(self) -> AbstractContextManager[Session]:
        """A session that rolls back on error and is always closed."""
        return session_scope(self._sessions)

    @contextmanager
    def _edit(self, who: str | None, message: str) -> Iterator[tuple[Session, _Recorder]]:
        with self.session() as s:
            rec = _Recorder(self, s, who or self.user, message)
            try:
                yield s, rec
                if rec.revision is not None:
                    rec.revision.n_changes = rec.n
                s.commit()
            finally:
                self._version = None

    # -- names -------------------------------------------------------------------------------------
    def check_name(self, name: str) -> tuple[str, str]:
        """Validate a tag name; returns ``(display name, normal form)``.

        Raises:
            TagError: empty, no letter/digit/CJK character, or longer than ``max_chars``.
        """
        if not isinstance(name, str):
            raise TagError(f"a tag name must be a string, not {type(name).__name__}")
        display = " ".join(name.split())
        norm = normalize_tag(display)
        if not norm:
            raise TagError("empty tag name")
        if len(norm) > self.max_chars:
            raise TagError(
                f"tag name is {len(norm)} characters long; the limit is {self.max_chars} "
                f"(a tag is a word or short phrase, not a sentence): {display[:30]!r}…"
            )
        if not has_word_char(norm):
            raise TagError(f"tag name {display!r} has no letter, digit or CJK character")
        return display, (display if norm == display else norm)  # one string object when they agree: less memory

    # -- snapshots ---------------------------------------------------------------------------------
    def _snapshot(self, s: Session, tag_id: int) -> dict[str, Any] | None:
        return self._snapshots(s, [tag_id])[tag_id]

    def _snapshots(self, s: Session, ids: Sequence[int]) -> dict[int, dict[str, Any] | None]:
        """Per tag id, its full state (row, aliases, outgoing links) or ``None`` when there is no such tag;
        three queries per 900 ids."""
        out: dict[int, dict[str, Any] | None] = {}
        s.flush()
        table = Tag.__table__
        for chunk in chunks(ids, _IN_CHUNK):
            tags = s.execute(select(table).where(table.c.id.in_(chunk))).all()  # rows: lighter than objects
            aliases: dict[int, list[list[str]]] = {}
            for tag_id, alias, norm in s.execute(select(TagAlias.tag_id, TagAlias.alias, TagAlias.norm)
                                                 .where(TagAlias.tag_id.in_(chunk)).order_by(TagAlias.id)):
                aliases.setdefault(tag_id, []).append([alias, norm])
            links: dict[int, list[list[Any]]] = {}
            for src, relation, dst, position in s.execute(
                    select(TagLink.src_id, TagLink.relation, TagLink.dst_id, TagLink.position)
                    .where(TagLink.src_id.in_(chunk))
                    .order_by(TagLink.src_id, TagLink.relation, TagLink.position, TagLink.dst_id)):
                links.setdefault(src, []).append([relation, dst, position])
            out.update(dict.fromkeys(chunk))
            for tag in tags:
                out[tag.id] = _tag_snapshot(tag, aliases.get(tag.id, []), links.get(tag.id, []))
        return out

    def _incoming_sources(self, s: Session, tag_id: int) -> list[int]:
        return list(s.scalars(select(TagLink.src_id).where(TagLink.dst_id == tag_id).distinct()))

    # -- lookup ------------------------------------------------------------------------------------
    def _find(self, s: Session, ref: TagRef) -> Tag | None:
        if isinstance(ref, int):
            return s.get(Tag, ref)
        if isinstance(ref, str) and ref.startswith("#") and ref[1:].isdigit():
            return s.get(Tag, int(ref[1:]))
        norm = normalize_tag(str(ref))
        tag = s.scalar(select(Tag).where(Tag.norm == norm))
        if tag is None:
            tag_id = s.scalar(select(TagAlias.tag_id).where(TagAlias.norm == norm))
            tag = s.get(Tag, tag_id) if tag_id is not None else None
        return tag

    def _get(self, s: Session, ref: TagRef) -> Tag:
        tag = self._find(s, ref)
        if tag is None:
            raise NotFoundError(f"no tag {ref!r} in the tag library")
        return tag

    def _to_dict(self, s: Session, tag: Tag, full: bool = True) -> dict[str, Any]:
        out = {f: getattr(tag, f) for f in ROW_FIELDS if f != "norm"}
        for f in _TIME_FIELDS:
            out[f] = _iso(out[f])
        if full:
            out["aliases"] = list(s.scalars(select(TagAlias.alias).where(TagAlias.tag_id == tag.id)
                                            .order_by(TagAlias.id)))
            links = s.execute(select(TagLink.relation, Tag.name).join(Tag, Tag.id == TagLink.dst_id)
                              .where(TagLink.src_id == tag.id).order_by(TagLink.relation, TagLink.position))
            out["parents"], out["related"], out["components"] = [], [], []
            for relation, name in links:
                out[{"parent": "parents", "related": "related", "component": "components"}[relation]].append(name)
            out["children"] = list(s.scalars(
                select(Tag.name).join(TagLink, TagLink.src_id == Tag.id)
                .where(TagLink.dst_id == tag.id, TagLink.relation == "parent")))
        return out

    def get(self, ref: TagRef) -> dict[str, Any]:
        """One tag as a dict, found by id (``int`` or ``"#12"``), name or alias (any width/case/script).

        Raises:
            NotFoundError: no such tag.
        """
        with self.session() as s:
            return self._to_dict(s, self._get(s, ref))

    def find(self, ref: TagRef) -> dict[str, Any] | None:
        """Like :meth:`get` but ``None`` when there is no such tag."""
        with self.session() as s:
            tag = self._find(s, ref)
            return self._to_dict(s, tag) if tag is not None else None

    def list(self, status: str | None = None, kind: str | None = None, source: str | None = None,
             limit: int | None = None, offset: int = 0, order: str = "id") -> list[dict[str, Any]]:
        """Tags, filtered; ``order`` is ``id``, ``name``, ``-score``, ``-count`` or ``-updated``."""
        orders = {"id": Tag.id, "name": Tag.norm, "-score": Tag.score.desc(), "-count": Tag.count.desc(),
                  "-updated": Tag.updated_at.desc()}
        if order not in orders:
            raise VidlensError(f"unknown order {order!r}; choose one of {', '.join(orders)}")
        with self.session() as s:
            q = select(Tag)
            if status:
                q = q.where(Tag.status == status)
            if kind:
                q = q.where(Tag.kind == kind)
            if source:
                q = q.where(Tag.source == source)
            q = q.order_by(orders[order], Tag.id).offset(offset)
            if limit is not None:
                q = q.limit(limit)
            return [self._to_dict(s, t) for t in s.scalars(q)]

    def names(self, ids: Iterable[int]) -> dict[int, str]:
        """Display names of tag ids."""
        ids = list(ids)
        out: dict[int, str] = {}
        with self.session() as s:
            for start in range(0, len(ids), 5000):
                chunk = ids[start:start + 5000]
                out.update(dict(s.execute(select(Tag.id, Tag.name).where(Tag.id.in_(chunk))).all()))
        return out

    def ids(self, status: str | None = "approved") -> list[int]:
        """Tag ids with ``status`` (all tags when ``None``), ascending."""
        with self.session() as s:
            q = select(Tag.id).order_by(Tag.id)
            if status:
                q = q.where(Tag.status == status)
            return list(s.scalars(q))

    def stats(self) -> dict[str, Any]:
        """Counts by status, kind, source and atomic top class, plus tagged videos and the version."""
        with self.session() as s:
            def group(col):
                return {k or "": v for k, v in s.execute(select(col, func.count()).group_by(col)).all()}

            classes: dict[str, int] = {}
            for cls, n in s.execute(select(Tag.atomic_class, func.count()).where(Tag.kind == "atomic")
                                    .group_by(Tag.atomic_class)).all():
                top = (cls or "unclassified").split("/")[0]
                classes[top] = classes.get(top, 0) + n
            return {
                "tags": s.scalar(select(func.count(Tag.id))) or 0,
                "by_status": group(Tag.status),
                "by_kind": group(Tag.kind),
                "by_source": group(Tag.source),
                "atomic_by_class": classes,
                "aliases": s.scalar(select(func.count(TagAlias.id))) or 0,
                "links": group(TagLink.relation),
                "tagged_videos": s.scalar(select(func.count(func.distinct(VideoTag.video_id)))) or 0,
                "clicks": s.scalar(select(func.coalesce(func.sum(TagClick.clicks), 0))) or 0,
                "version": self.version,
            }

    @property
    def version(self) -> int:
        """The current version: the id of the last revision (0 for a library never edited).

        Read from the DB at most once per ``VERSION_TTL`` seconds (edits through this object refresh it at
        once), so tagging many videos does not query it per call; another process's edit is seen within
        that time.
        """
        now = time.monotonic()
        if self._version is None or now - self._version[1] > VERSION_TTL:
            with self.session() as s:
                self._version = (int(s.scalar(select(func.max(TagRevision.id))) or 0), now)
        return self._version[0]

    # -- decomposition -----------------------------------------------------------------------------
    def decompose(self, name: str) -> list[str]:
        """Split a (phrase) tag into its atomic parts, in normal form.

        jieba cuts the name; adjacent words whose concatenation is an existing atomic tag (or alias) are
        joined back, longest first, so the library's own words win over jieba's; function words are
        dropped. A name that is one atomic word gives a one-element list.
        """
        norm = normalize_tag(name)
        parts: list[str] = []
        with self.session() as s:
            for seg in segments(norm):
                ws = words(seg)
                i = 0
                while i < len(ws):
                    best = 1
                    for j in range(min(len(ws), i + 6), i + 1, -1):
                        joined = "".join(ws[i:j])
                        if joined != norm and self._is_atomic_name(s, joined):
                            best = j - i
                            break
                    piece = "".join(ws[i:i + best])
                    if not is_function_word(piece) and has_word_char(piece):
                        parts.append(piece)
                    i += best
        return parts

    def _is_atomic_name(self, s: Session, norm: str) -> bool:
        if s.scalar(select(Tag.id).where(Tag.norm == norm, Tag.kind == "atomic")) is not None:
            return True
        return s.scalar(select(TagAlias.id).join(Tag, Tag.id == TagAlias.tag_id)
                        .where(TagAlias.norm == norm, Tag.kind == "atomic")) is not None

    # -- creating and editing ----------------------------------------------------------------------
    def add(self, name: str, *, kind: str | None = None, atomic_class: str | None = None,
            dimensions: dict[str, str] | None = None, aliases: Iterable[str] = (), parents: Iterable[str] = (),
            related: Iterable[str] = (), status: str = "candidate", source: str = "manual", count: int = 0,
            score: float | None = None, evidence: dict[str, Any] | None = None, decompose: bool = True,
            who: str | None = None) -> dict[str, Any]:
        """Add one tag, or merge into the existing tag of the same normal form (name or alias).

        Args:
            name: the display name.
            kind: ``atomic`` or ``phrase``; by default ``phrase`` when :meth:`decompose` finds several parts.
            atomic_class: a path of :data:`~vidlens.tags.taxonomy.ATOMIC_TAXONOMY` (atomic tags).
            dimensions: phrase-tag dimensions (see :data:`~vidlens.tags.taxonomy.PHRASE_DIMENSIONS`).
            aliases: synonyms; each must not already name another tag.
            parents, related: names of existing tags to link to (missing ones are created as candidates).
            status: for a new tag; an existing tag keeps its status (use approve/reject).
            source: where the tag came from (``manual``, ``import``, ``autophrase``, ``pattern``…).
            count, score, evidence: mining evidence (counts add up, the best score is kept).
            decompose: link a phrase tag to its atomic parts that exist in the library.
            who: the editor (defaults to the library's user).

        Returns:
            The tag as :meth:`get` gives it, plus ``"existing": True`` when it was already there.

        Raises:
            TagError: bad name, kind, status, class, dimension, or an alias that names another tag.
        """
        display, norm = self.check_name(name)
        if status not in TAG_STATUSES:
            raise TagError(f"unknown status {status!r}; statuses: {', '.join(TAG_STATUSES)}")
        if kind is not None and kind not in TAG_KINDS:
            raise TagError(f"unknown tag kind {kind!r}; kinds: {', '.join(TAG_KINDS)}")
        atomic_class = validate_atomic_class(atomic_class)
        dimensions = validate_dimensions(dimensions)
        parts = self.decompose(display) if (decompose or kind is None) else []
        with self._edit(who, f"add {display}") as (s, rec):
            tag = self._find(s, norm)
            existing = tag is not None
            if tag is None:
                tag = Tag(name=display, norm=norm, kind=kind or ("phrase" if len(parts) > 1 else "atomic"),
                          atomic_class=atomic_class, dimensions=dimensions, status=status, source=source,
                          created_by=who or self.user, count=count, score=score, evidence=evidence or {})
                if status != "candidate":
                    tag.reviewed_by, tag.reviewed_at = who or self.user, utcnow()
                s.add(tag)
                s.flush()
                before = None
            else:
                before = self._snapshot(s, tag.id)
                if kind:
                    tag.kind = kind
                tag.atomic_class = atomic_class or tag.atomic_class
                tag.dimensions = {**(tag.dimensions or {}), **dimensions}
                tag.count = (tag.count or 0) + count
                if score is not None:
                    tag.score = max(score, tag.score or score)
                if evidence:
                    tag.evidence = _merge_evidence(tag.evidence, evidence)
            for alias in aliases:
                self._add_alias(s, tag, alias)
            for relation, refs in (("parent", parents), ("related", related)):
                for ref in refs:
                    self._link(s, rec, tag, self._find_or_candidate(s, rec, ref, who), relation)
            if decompose and tag.kind == "phrase" and len(parts) > 1:
                self._set_components(s, tag, parts)
            rec.record(tag.id, "update" if existing else "create", before)
            s.flush()
            out = self._to_dict(s, tag)
        out["existing"] = existing
        return out

    def _find_or_candidate(self, s: Session, rec: _Recorder, ref: TagRef, who: str | None) -> Tag:
        tag = self._find(s, ref)
        if tag is None:
            if not isinstance(ref, str):
                raise NotFoundError(f"no tag {ref!r} in the tag library")
            display, norm = self.check_name(ref)
            tag = Tag(name=display, norm=norm, kind="atomic", status="candidate", source="link",
                      created_by=who or self.user, dimensions={}, evidence={})
            s.add(tag)
            s.flush()
            rec.record(tag.id, "create", None)
        return tag

    def _add_alias(self, s: Session, tag: Tag, alias: str) -> None:
        display, norm = self.check_name(alias)
        if norm == tag.norm:
            return
        owner = s.scalar(select(Tag.id).where(Tag.norm == norm))
        if owner is not None and owner != tag.id:
            raise TagError(f"alias {display!r} is itself a tag (#{owner}); merge the two tags instead")
        held = s.scalar(select(TagAlias.tag_id).where(TagAlias.norm == norm))
        if held is not None and held != tag.id:
            raise TagError(f"alias {display!r} already belongs to tag #{held}")
        if held is None:
            s.add(TagAlias(tag_id=tag.id, alias=display, norm=norm))

    def _link(self, s: Session, rec: _Recorder, src: Tag, dst: Tag, relation: str, position: int = 0) -> None:
        if relation not in LINK_RELATIONS:
            raise TagError(f"unknown link {relation!r}; links: {', '.join(LINK_RELATIONS)}")
        if src.id == dst.id:
            raise TagError(f"a tag cannot be its own {relation}")
        if relation == "parent" and self._is_ancestor(s, src.id, dst.id):
            raise TagError(f"{dst.name!r} is below {src.name!r}; making it a parent would close a cycle")
        exists = s.scalar(select(TagLink.id).where(TagLink.src_id == src.id, TagLink.dst_id == dst.id,
                                                   TagLink.relation == relation))
        if exists is None:
            s.add(TagLink(src_id=src.id, dst_id=dst.id, relation=relation, position=position))

    def _is_ancestor(self, s: Session, ancestor: int, node: int) -> bool:
        """Whether ``ancestor`` is reachable from ``node`` going down (i.e. node is above ancestor)."""
        frontier, seen = [ancestor], set()
        while frontier:
            current = frontier.pop()
            if current == node:
                return True
            if current in seen:
                continue
            seen.add(current)
            frontier.extend(s.scalars(select(TagLink.src_id).where(TagLink.dst_id == current,
                                                                   TagLink.relation == "parent")))
        return False

    def _set_components(self, s: Session, tag: Tag, parts: list[str]) -> None:
        s.execute(delete(TagLink).where(TagLink.src_id == tag.id, TagLink.relation == "component"))
        seen = set()
        for position, part in enumerate(parts):
            dst = self._find(s, part)
            if dst is not None and dst.id != tag.id and dst.id not in seen:
                seen.add(dst.id)
                s.add(TagLink(src_id=tag.id, dst_id=dst.id, relation="component", position=position))

    def update(self, ref: TagRef, *, name: str | None = None, kind: str | None = None,
               atomic_class: str | None = None, dimensions: dict[str, str] | None = None,
               who: str | None = None) -> dict[str, Any]:
        """Rename a tag or change its kind, atomic class or phrase dimensions.

        Raises:
            TagError: the new name belongs to another tag, or a value is invalid.
        """
        with self._edit(who, f"update {ref}") as (s, rec):
            tag = self._get(s, ref)
            before = self._snapshot(s, tag.id)
            if name is not None:
                display, norm = self.check_name(name)
                other = self._find(s, norm)
                if other is not None and other.id != tag.id:
                    raise TagError(f"{display!r} already names tag #{other.id}; merge instead of renaming")
                s.execute(delete(TagAlias).where(TagAlias.tag_id == tag.id, TagAlias.norm == norm))
                tag.name, tag.norm = display, norm
            if kind is not None:
                if kind not in TAG_KINDS:
                    raise TagError(f"unknown tag kind {kind!r}; kinds: {', '.join(TAG_KINDS)}")
                tag.kind = kind
            if atomic_class is not None:
                tag.atomic_class = validate_atomic_class(atomic_class)
            if dimensions is not None:
                tag.dimensions = {**(tag.dimensions or {}), **validate_dimensions(dimensions)}
            rec.record(tag.id, "update", before)
            s.flush()
            return self._to_dict(s, tag)

    def add_alias(self, ref: TagRef, alias: str, who: str | None = None) -> dict[str, Any]:
        """Give a tag a synonym (matched like the name itself)."""
        with self._edit(who, f"alias {ref} = {alias}") as (s, rec):
            tag = self._get(s, ref)
            before = self._snapshot(s, tag.id)
            self._add_alias(s, tag, alias)
            rec.record(tag.id, "alias", before)
            s.flush()
            return self._to_dict(s, tag)

    def remove_alias(self, alias: str, who: str | None = None) -> None:
        """Drop a synonym."""
        norm = normalize_tag(alias)
        with self._edit(who, f"unalias {alias}") as (s, rec):
            row = s.scalar(select(TagAlias).where(TagAlias.norm == norm))
            if row is None:
                raise NotFoundError(f"no alias {alias!r}")
            before = self._snapshot(s, row.tag_id)
            s.delete(row)
            rec.record(row.tag_id, "unalias", before)

    def link(self, ref: TagRef, other: TagRef, relation: str = "related", who: str | None = None) -> None:
        """Link two tags: ``parent`` (other becomes ref's parent) or ``related``."""
        with self._edit(who, f"link {ref} -{relation}-> {other}") as (s, rec):
            src, dst = self._get(s, ref), self._get(s, other)
            before = self._snapshot(s, src.id)
            self._link(s, rec, src, dst, relation)
            rec.record(src.id, "link", before)

    def unlink(self, ref: TagRef, other: TagRef, relation: str = "related", who: str | None = None) -> None:
        """Remove a link."""
        with self._edit(who, f"unlink {ref} -{relation}-> {other}") as (s, rec):
            src, dst = self._get(s, ref), self._get(s, other)
            before = self._snapshot(s, src.id)
            s.execute(delete(TagLink).where(TagLink.src_id == src.id, TagLink.dst_id == dst.id,
                                            TagLink.relation == relation))
            rec.record(src.id, "unlink", before)

    def _set_status(self, refs: Iterable[TagRef], status: str, who: str | None, note: str | None) -> int:
        refs = list(refs)
        who = who or self.user
        with self._edit(who, f"{status} {len(refs)} tag(s)" + (f": {note}" if note else "")) as (s, rec):
            n = 0
            for ref in refs:
                tag = self._get(s, ref)
                if tag.status == status:
                    continue
                before = self._snapshot(s, tag.id)
                tag.status, tag.reviewed_by, tag.reviewed_at = status, who, utcnow()
                if note:
                    tag.evidence = {**(tag.evidence or {}), "review_note": note}
                rec.record(tag.id, status[:-1] if status.endswith("ed") else status, before)
                n += 1
            return n

    def approve(self, refs: TagRef | Iterable[TagRef], who: str | None = None, note: str | None = None) -> int:
        """Approve tags (by id, name or alias); returns how many changed status."""
        return self._set_status([refs] if isinstance(refs, int | str) else refs, "approved", who, note)

    def reject(self, refs: TagRef | Iterable[TagRef], who: str | None = None, note: str | None = None) -> int:
        """Reject tags: they are never matched or recalled, and stay rejected when proposed again."""
        return self._set_status([refs] if isinstance(refs, int | str) else refs, "rejected", who, note)

    def merge(self, source: TagRef, into: TagRef, who: str | None = None) -> dict[str, Any]:
        """Merge duplicate ``source`` into ``into``: its name and aliases become aliases of ``into``, its
        links, counts, video tags and clicks move over, and ``source`` is deleted."""
        with self._edit(who, f"merge {source} into {into}") as (s, rec):
            src, dst = self._get(s, source), self._get(s, into)
            if src.id == dst.id:
                raise TagError(f"{src.name!r} and {dst.name!r} are the same tag")
            touched = set(self._incoming_sources(s, src.id)) - {src.id, dst.id}
            befores = {i: self._snapshot(s, i) for i in touched | {src.id, dst.id}}
            aliases = list(s.execute(select(TagAlias.alias, TagAlias.norm).where(TagAlias.tag_id == src.id)))
            s.execute(delete(TagAlias).where(TagAlias.tag_id == src.id))
            s.flush()
            for alias, norm in [(src.name, src.norm), *aliases]:
                if norm != dst.norm and s.scalar(select(TagAlias.id).where(TagAlias.norm == norm)) is None:
                    s.add(TagAlias(tag_id=dst.id, alias=alias, norm=norm))
            for link in list(s.scalars(select(TagLink).where(or_(TagLink.src_id == src.id,
                                                                 TagLink.dst_id == src.id)))):
                new_src = dst.id if link.src_id == src.id else link.src_id
                new_dst = dst.id if link.dst_id == src.id else link.dst_id
                dup = s.scalar(select(TagLink.id).where(TagLink.src_id == new_src, TagLink.dst_id == new_dst,
                                                        TagLink.relation == link.relation))
                if new_src == new_dst or dup is not None:
                    s.delete(link)
                else:
                    link.src_id, link.dst_id = new_src, new_dst
            dst.count = (dst.count or 0) + (src.count or 0)
            dst.click_count = (dst.click_count or 0) + (src.click_count or 0)
            dst.evidence = _merge_evidence(dst.evidence, src.evidence)
            for vt in list(s.scalars(select(VideoTag).where(VideoTag.tag_id == src.id))):
                dup = s.scalar(select(VideoTag.id).where(VideoTag.video_id == vt.video_id,
                                                         VideoTag.tag_id == dst.id, VideoTag.source == vt.source))
                if dup is None:
                    vt.tag_id = dst.id
                else:
                    s.delete(vt)
            s.execute(update(TagClick).where(TagClick.tag_id == src.id).values(tag_id=dst.id))
            s.flush()
            s.delete(src)
            s.flush()
            dst.video_count = self._video_count(s, dst.id)
            for i, before in befores.items():
                rec.record(i, "merge", before)
            s.flush()
            return self._to_dict(s, dst)

    def delete(self, ref: TagRef, who: str | None = None) -> None:
        """Delete a tag outright (prefer :meth:`reject`, which keeps it from coming back)."""
        with self._edit(who, f"delete {ref}") as (s, rec):
            tag = self._get(s, ref)
            touched = set(self._incoming_sources(s, tag.id)) - {tag.id}
            befores = {i: self._snapshot(s, i) for i in touched | {tag.id}}
            s.delete(tag)
            s.flush()
            for i, before in befores.items():
                rec.record(i, "delete", before)

    # -- proposals (mining) and imports ------------------------------------------------------------
    def propose(self, records: Iterable[dict[str, Any]], source: str, who: str | None = None) -> ImportReport:
        """Enter mined tags as candidates with their evidence.

        Each record has ``name`` and optionally ``score``, ``count``, ``kind`` and ``evidence``. A new name
        becomes a ``candidate``; a known one (by name or alias, any width/case/script) gets its count and
        evidence merged and keeps its status, so a rejected tag stays rejected.
        """
        records = [dict(r, status="candidate", source=r.get("source", source)) for r in records]
        return self.import_records(records, who=who, source=source, message=f"propose {len(records)} from {source}")

    def import_records(self, records: Iterable[dict[str, Any]], who: str | None = None, source: str = "import",
                       status: str = "approved", decompose: bool = False, message: str | None = None,
                       progress: bool = False) -> ImportReport:
        """Bulk-add tags: the path behind import and propose (one revision, however many tags).

        Records take the keys of :data:`EXPORT_COLUMNS` (``name`` required; ``aliases``, ``parents``,
        ``related`` as lists of names). Duplicates (in the input or against the library, by normal form)
        merge; a record naming an existing tag adds to its counts and evidence but never changes its status,
        so a rejected tag stays rejected. Bad records are reported in ``errors`` with their position and
        skipped.

        New tags go in through the DB driver's ``executemany`` (chunks of
        :data:`~vidlens.tags._bulk.CHUNK_ROWS`, one transaction), each with one compact ``create`` change
        row, so :meth:`diff`, :meth:`history` and :meth:`rollback` see the import like any edit; a million
        plain names go in well under a minute (BENCHMARKS-tags.md). Existing tags are merged in batches;
        aliases and links go through the ORM, tag by tag.

        Args:
            records: tag records.
            who: the editor.
            source: ``source`` of records that do not say.
            status: status of new tags whose record does not say.
            decompose: link phrase tags to their atomic parts (slower: jieba per tag).
            message: the revision message.
            progress: draw a progress bar on stderr (for imports of at least :data:`PROGRESS_MIN_TAGS` tags).
        """
        with gc_paused():
            return self._import_records(records, who or self.user, source, status, decompose, message, progress)

    def _import_records(self, records: Iterable[dict[str, Any]], who: str, source: str, status: str,
                        decompose: bool, message: str | None, progress: bool) -> ImportReport:
        from vidlens.progress import progress_bar

        report = ImportReport()
        merged = self._collect_records(records, source, status, report)
        if not merged:
            return report
        with_extras = [r for r in merged.values()
                       if r.aliases or r.parents or r.related or (decompose and r.kind != "atomic")]
        extra_norms = {r.norm for r in with_extras}
        bar = progress_bar(len(merged), "import tags", enabled=progress and len(merged) >= PROGRESS_MIN_TAGS)
        with self._edit(who, message or f"import {len(merged)} tags") as (s, rec), bar as advance:
            existing = self._existing_norms(s, merged)
            created = self._insert_new_tags(s, rec, [r for k, r in merged.items() if k not in existing], who,
                                            extra_norms, advance)
            report.created = len(created)
            extra_ids = {created[n] if n in created else existing[n] for n in extra_norms}
            # Per touched tag, its state before the import (None: new), for the change rows written last.
            touched: dict[int, dict[str, Any] | None] = dict.fromkeys(created[n] for n in extra_norms if n in created)
            touched.update(self._merge_existing(s, rec, merged, existing, extra_ids, report, advance))
            # Aliases and links, once every tag of the batch exists.
            for r in with_extras:
                tag = s.get(Tag, created[r.norm] if r.norm in created else existing[r.norm])
                try:
                    for alias in r.aliases:
                        self._add_alias(s, tag, alias)
                    for relation, refs in (("parent", r.parents), ("related", r.related)):
                        for ref in refs:
                            self._link(s, rec, tag, self._find_or_candidate(s, rec, ref, who), relation)
                    if decompose:
                        parts = self.decompose(tag.name)
                        if len(parts) > 1:
                            tag.kind = "phrase"
                            self._set_components(s, tag, parts)
                except (TagError, NotFoundError) as exc:
                    report.errors.append((0, f"{r.name}: {exc}"))
            afters = self._snapshots(s, list(touched))
            rec.record_many((tag_id, "create" if before is None else "merge", before, afters[tag_id])
                            for tag_id, before in touched.items() if before != afters[tag_id])
        report.version = self.version if rec.n else None
        return report

    def _collect_records(self, records: Iterable[dict[str, Any]], source: str, status: str,
                         report: ImportReport) -> dict[str, _Record]:
        """Clean the records and merge those of one normal form, in first-seen order."""
        merged: dict[str, _Record] = {}
        for i, raw in enumerate(records, 1):
            try:
                r = self._clean_record(raw, source, status)
            except (TagError, VidlensError, TypeError, ValueError) as exc:
                report.errors.append((i, str(exc)))
                continue
            prev = merged.get(r.norm)
            if prev is None:
                merged[r.norm] = r
            else:
                merged[r.norm] = _merge_records(prev, r)
                report.merged += 1
        return merged

    def _insert_new_tags(self, s: Session, rec: _Recorder, new: list[_Record], who: str,
                         full_history: set[str], advance: Any) -> dict[str, int]:
        """Insert tags that do not exist yet and their ``create`` change rows (except for ``full_history``
        names, whose rows the caller writes with a full snapshot); returns ``{norm: new id}``."""
        created: dict[str, int] = {}
        if not new:
            return created
        s.flush()
        conn = s.connection()
        table = Tag.__table__
        now = utcnow()
        empty: dict[str, Any] = {}  # one object for every empty dict: it is serialised once
        last_id = s.scalar(select(func.max(Tag.id))) or 0
        columns = ("name", "norm", "kind", "atomic_class", "dimensions", "status", "source", "reviewed_by",
                   "reviewed_at", "count", "score", "evidence")
        constants = {"created_by": who, "video_count": 0, "click_count": 0, "created_at": now, "updated_at": now}
        for chunk in chunks(new, CHUNK_ROWS):
            driver_insert(conn, table, columns, (
                (r.name, r.norm, r.kind or "atomic", r.atomic_class, r.dimensions or empty, r.status, r.source,
                 who if r.status != "candidate" else None, now if r.status != "candidate" else None, r.count,
                 r.score, r.evidence or empty) for r in chunk), constants=constants)
            ids, last_id = self._new_ids(s, [r.norm for r in chunk], last_id)
            created.update(ids)
            rec.record_many(((ids[r.norm], "create", None, _created_json(ids[r.norm], r))
                             for r in chunk if r.norm not in full_history), after_as_json=True)
            advance(len(chunk))
        return created

    def _new_ids(self, s: Session, norms: list[str], last_id: int) -> tuple[dict[str, int], int]:
        """Ids of tags just inserted (in ``norms`` order) above the previous highest id ``last_id``; returns
        them and the new highest id.

        Both SQLite and PostgreSQL number the rows of one ``executemany`` upwards in order. When exactly
        ``len(norms)`` rows now sit above ``last_id``, without a gap, and the first and last carry the first
        and last name, they are ours in order and no name needs reading back. Otherwise (another writer's
        rows in between) the ids are read by name.
        """
        conn = s.connection()
        n, top = conn.execute(select(func.count(), func.max(Tag.id)).where(Tag.id > last_id)).one()
        if n == len(norms) and top == last_id + n:
            ends = dict(conn.execute(select(Tag.id, Tag.norm).where(Tag.id.in_([last_id + 1, top]))).all())
            if ends.get(last_id + 1) == norms[0] and ends.get(top) == norms[-1]:
                return {norm: last_id + 1 + i for i, norm in enumerate(norms)}, top
        ids = self._existing_norms(s, norms, aliases=False)
        return ids, max(last_id, top or 0, *ids.values())

    def _merge_existing(self, s: Session, rec: _Recorder, merged: dict[str, _Record], existing: dict[str, int],
                        keep_before: set[int], report: ImportReport, advance: Any) -> dict[int, dict[str, Any]]:
        """Merge records naming existing tags into them: counts add up, the best score and the union of
        evidence are kept, an empty atomic class or dimension is filled; the status never changes. Writes
        the ``merge`` change rows, except for ``keep_before`` tags, whose state before is returned."""
        by_tag: dict[int, list[_Record]] = {}
        for norm, r in merged.items():
            if norm in existing:
                by_tag.setdefault(existing[norm], []).append(r)
        kept: dict[int, dict[str, Any]] = {}
        for chunk in chunks(list(by_tag), _IN_CHUNK):
            tags = {t.id: t for t in s.scalars(select(Tag).where(Tag.id.in_(chunk)))}
            befores = self._snapshots(s, chunk)
            changes = []
            for tag_id in chunk:
                tag, before = tags[tag_id], befores[tag_id]
                for r in by_tag[tag_id]:
                    report.merged += 1
                    if tag.status == "rejected":
                        report.rejected_again += 1
                    tag.count = (tag.count or 0) + r.count
                    if r.score is not None:
                        tag.score = max(r.score, tag.score if tag.score is not None else r.score)
                    if r.evidence:
                        tag.evidence = _merge_evidence(tag.evidence, r.evidence)
                    if r.atomic_class and not tag.atomic_class:
                        tag.atomic_class = r.atomic_class
                    if r.dimensions:
                        tag.dimensions = {**(tag.dimensions or {}), **r.dimensions}
                if tag_id in keep_before:
                    kept[tag_id] = before
                    continue
                # Aliases and links are untouched here, so the state after is the row plus those.
                after = _tag_snapshot(tag, before["aliases"], before["links"])
                if after != before:
                    changes.append((tag_id, "merge", before, after))
            s.flush()
            rec.record_many(changes)
            advance(sum(len(by_tag[i]) for i in chunk))
        return kept

    def _existing_norms(self, s: Session, norms: Collection[str], aliases: bool = True) -> dict[str, int]:
        """``{norm: tag id}`` for the normal forms that already name a tag (or, with ``aliases``, an alias)."""
        s.flush()
        conn = s.connection()
        out: dict[str, int] = {}
        size = len(norms) + 1
        if len(norms) >= 10 * _IN_CHUNK:  # counting costs a scan: only worth it for big batches
            size = conn.scalar(select(func.count()).select_from(Tag.__table__)) or 0
            if aliases:
                size += conn.scalar(select(func.count()).select_from(TagAlias.__table__)) or 0
        if size <= len(norms):
            # A batch as big as the library: reading every key once beats asking 900 at a time.
            want = norms if isinstance(norms, set | dict) else set(norms)
            for norm, tag_id in conn.execute(select(Tag.norm, Tag.id)):
                if norm in want:
                    out[norm] = tag_id
            if aliases:
                for norm, tag_id in conn.execute(select(TagAlias.norm, TagAlias.tag_id)):
                    if norm in want:
                        out.setdefault(norm, tag_id)
            return out
        for chunk in chunks(norms, _IN_CHUNK):
            out.update(conn.execute(select(Tag.norm, Tag.id).where(Tag.norm.in_(chunk))).all())
            if aliases:
                for norm, tag_id in conn.execute(select(TagAlias.norm, TagAlias.tag_id)
                                                 .where(TagAlias.norm.in_(chunk))):
                    out.setdefault(norm, tag_id)
        return out

    def _clean_record(self, rec: dict[str, Any], source: str, status: str) -> _Record:
        if not isinstance(rec, dict):
            raise TagError(f"a tag record must be an object, not {type(rec).__name__}")
        get = rec.get
        if len(rec) == 1 and get("name") and status in TAG_STATUSES:  # a bare name: most of a big import
            display, norm = self.check_name(str(rec["name"]))
            return _Record(display, norm, None, None, None, status, source, 0, None, None, (), (), ())
        name = get("name") or get("tag")
        if name is None:
            raise TagError("record has no 'name'")
        display, norm = self.check_name(str(name))
        st = get("status") or status
        if st not in TAG_STATUSES:
            raise TagError(f"unknown status {st!r}; statuses: {', '.join(TAG_STATUSES)}")
        kind = get("kind") or None
        if kind is not None and kind not in TAG_KINDS:
            raise TagError(f"unknown tag kind {kind!r}; kinds: {', '.join(TAG_KINDS)}")
        dims = get("dimensions") or None
        if isinstance(dims, str):
            dims = dict(p.split("=", 1) for p in dims.split(";") if "=" in p)
        evidence = get("evidence") or None
        if isinstance(evidence, str):
            evidence = json.loads(evidence) or None
        score = get("score")
        # Positional: this runs once per record, a million times in a big import.
        return _Record(display, norm, kind, validate_atomic_class(get("atomic_class")),
                       (validate_dimensions(dims) or None) if dims else None, st, get("source") or source,
                       int(get("count") or 0), float(score) if score not in (None, "") else None, evidence,
                       _as_list(get("aliases")), _as_list(get("parents")), _as_list(get("related")))

    def import_file(self, path: str | os.PathLike, format: str | None = None, who: str | None = None,
                    source: str = "import", status: str = "approved", decompose: bool = False,
                    progress: bool = False) -> ImportReport:
        """Import tags from JSONL (one record per line) or CSV (a header with :data:`EXPORT_COLUMNS`;
        list columns separated by ``|``, dimensions as ``key=value;…``) or a plain list (one name per line).

        Records stream from the file into :meth:`import_records` (one revision). Malformed lines are
        counted in the report's ``errors`` with their line number; the rest go in. ``progress`` draws a bar
        for big files.
        """
        path = Path(path)
        fmt = format or {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}.get(path.suffix.lower(), "txt")
        if fmt not in ("jsonl", "csv", "txt"):
            raise TagError(f"unknown tag file format {fmt!r}; use jsonl, csv or txt")
        report_errors: list[tuple[int, str]] = []
        lines: list[int] = []  # the file line of each record handed on

        def read(fh: IO[str]) -> Iterator[dict[str, Any]]:
            if fmt == "csv":
                reader = csv.DictReader(fh)
                if not reader.fieldnames or "name" not in reader.fieldnames:
                    raise TagError(f"{path}: CSV needs a header row with a 'name' column")
                for i, row in enumerate(reader, 2):
                    if None in row:
                        report_errors.append((i, "more fields than the header"))
                        continue
                    lines.append(i)
                    yield row
            elif fmt == "jsonl":
                for i, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as exc:
                        report_errors.append((i, f"not JSON: {exc.msg}"))
                        continue
                    lines.append(i)
                    yield record
            else:
                for i, line in enumerate(fh, 1):
                    if line.strip():
                        lines.append(i)
                        yield {"name": line.strip()}

        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            report = self.import_records(read(fh), who=who, source=source, status=status, decompose=decompose,
                                         message=f"import {path.name}", progress=progress)
        report.errors = sorted(report_errors + [(lines[n - 1] if n else 0, m) for n, m in report.errors])
        return report

    def export(self, out: str | os.PathLike | IO[str], format: str | None = None, status: str | None = None) -> int:
        """Write tags as JSONL or CSV (to a path or an open text file); returns how many were written."""
        if isinstance(out, str | os.PathLike):
            fmt = format or ("csv" if str(out).lower().endswith(".csv") else "jsonl")
            with open(out, "w", encoding="utf-8", newline="") as fh:
                return self.export(fh, fmt, status)
        fmt = format or "jsonl"
        if fmt not in ("jsonl", "csv"):
            raise TagError(f"unknown export format {fmt!r}; use jsonl or csv")
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS) if fmt == "csv" else None
        if writer:
            writer.writeheader()
        n = 0
        for record in self.iter_records(status=status):
            if writer:
                row = dict(record)
                for key in ("aliases", "parents", "related", "components"):
                    row[key] = "|".join(row[key])
                row["dimensions"] = ";".join(f"{k}={v}" for k, v in row["dimensions"].items())
                row["evidence"] = json.dumps(row["evidence"], ensure_ascii=False) if row["evidence"] else ""
                writer.writerow(row)
            else:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
        return n

    def iter_records(self, status: str | None = None, batch: int = 5000) -> Iterator[dict[str, Any]]:
        """Every tag as an export record, in id order, streamed."""
        last = 0
        while True:
            with self.session() as s:
                q = select(Tag).where(Tag.id > last).order_by(Tag.id).limit(batch)
                if status:
                    q = q.where(Tag.status == status)
                tags = list(s.scalars(q))
                if not tags:
                    return
                ids = [t.id for t in tags]
                aliases: dict[int, list[str]] = {}
                for tag_id, alias in s.execute(select(TagAlias.tag_id, TagAlias.alias)
                                               .where(TagAlias.tag_id.in_(ids)).order_by(TagAlias.id)):
                    aliases.setdefault(tag_id, []).append(alias)
                links: dict[int, dict[str, list[str]]] = {}
                for src, relation, name in s.execute(
                        select(TagLink.src_id, TagLink.relation, Tag.name).join(Tag, Tag.id == TagLink.dst_id)
                        .where(TagLink.src_id.in_(ids)).order_by(TagLink.position, TagLink.id)):
                    links.setdefault(src, {}).setdefault(relation, []).append(name)
                records = []
                for t in tags:
                    lk = links.get(t.id, {})
                    records.append({
                        "name": t.name, "kind": t.kind, "atomic_class": t.atomic_class,
                        "dimensions": dict(t.dimensions or {}), "aliases": aliases.get(t.id, []),
                        "parents": lk.get("parent", []), "related": lk.get("related", []),
                        "components": lk.get("component", []), "status": t.status, "source": t.source,
                        "count": t.count, "video_count": t.video_count, "click_count": t.click_count,
                        "score": t.score, "reviewed_by": t.reviewed_by, "reviewed_at": _iso(t.reviewed_at),
                        "evidence": dict(t.evidence or {}),
                    })
                last = ids[-1]
            yield from records

    # -- history -----------------------------------------------------------------------------------
    def history(self, ref: TagRef | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Revisions, newest first; with ``ref``, only those that touched that tag (with its changes)."""
        with self.session() as s:
            if ref is None:
                revs = s.scalars(select(TagRevision).order_by(TagRevision.id.desc()).limit(limit))
                return [{"version": r.id, "who": r.who, "at": _iso(r.at), "message": r.message,
                         "changes": r.n_changes} for r in revs]
            tag = self._find(s, ref)
            tag_id = tag.id if tag is not None else None
            if tag_id is None:  # a deleted tag is still in the history under its name
                norm = normalize_tag(str(ref))
                for change in s.scalars(select(TagChange).order_by(TagChange.id.desc())):
                    snap = change.before or change.after or {}
                    if snap.get("norm") == norm:
                        tag_id = change.tag_id
                        break
            if tag_id is None:
                raise NotFoundError(f"no tag {ref!r} in the tag library or its history")
            rows = s.execute(select(TagChange, TagRevision).join(TagRevision, TagRevision.id == TagChange.revision_id)
                             .where(TagChange.tag_id == tag_id).order_by(TagChange.id.desc()).limit(limit))
            return [{"version": r.id, "who": r.who, "at": _iso(r.at), "message": r.message, "action": c.action,
                     "fields": _field_diff(c.before, c.after)} for c, r in rows]

    def diff(self, from_version: int, to_version: int | None = None) -> list[dict[str, Any]]:
        """What changed between two versions, per tag: ``added``, ``removed`` or ``modified`` with
        ``{field: [old, new]}``. ``to_version`` defaults to the current version."""
        to_version = self.version if to_version is None else to_version
        lo, hi = sorted((from_version, to_version))
        first, last = self._span_states(lo, hi)
        out = []
        for tag_id in sorted(first):
            old, new = (first[tag_id], last[tag_id]) if from_version <= to_version else (last[tag_id], first[tag_id])
            if old == new:
                continue
            change = "added" if old is None else "removed" if new is None else "modified"
            snap = new or old
            out.append({"tag_id": tag_id, "name": snap["name"], "change": change, "fields": _field_diff(old, new)})
        return out

    def _span_states(self, lo: int, hi: int, with_last: bool = True) -> tuple[dict[int, Any], dict[int, Any]]:
        """Per tag touched by revisions ``lo < v <= hi``: its state at ``lo`` and (``with_last``) at ``hi``.

        Rollback needs only the first; not reading the other keeps undoing a million-tag import light.
        """
        first: dict[int, Any] = {}
        last: dict[int, Any] = {}
        span = (TagChange.revision_id > lo, TagChange.revision_id <= hi)
        with self.engine.connect() as conn:
            if not with_last:
                for tag_id, before in conn.execute(select(TagChange.tag_id, TagChange.before).where(*span)
                                                   .order_by(TagChange.id)):
                    first.setdefault(tag_id, before)
                return first, last
            for tag_id, before, after in conn.execute(select(TagChange.tag_id, TagChange.before, TagChange.after)
                                                      .where(*span).order_by(TagChange.id)):
                first.setdefault(tag_id, before)
                last[tag_id] = after
        return first, last

    def rollback(self, to_version: int, who: str | None = None) -> dict[str, Any]:
        """Restore the library as it was at ``to_version``; recorded as a new revision.

        Tags, aliases and links return to their state then (tags made later are deleted, deleted ones come
        back with their ids). Video tags and clicks are usage data, not library state, and are kept.
        Undoing a bulk import deletes its tags in batches.

        Returns:
            ``{"version": new version, "restored": n tags changed}``.
        """
        current = self.version
        if not 0 <= to_version <= current:
            raise TagError(f"version {to_version} does not exist; versions run from 0 to {current}")
        target, _ = self._span_states(to_version, current, with_last=False)
        if not target:
            return {"version": current, "restored": 0}
        with self._edit(who, f"rollback to version {to_version}") as (s, rec):
            ids = sorted(target)
            kept = [i for i in ids if target[i] is not None]
            # Every state before anything is deleted (a deleted tag's incoming links go with it). Tags that
            # did not exist at to_version are simply gone afterwards: their change rows are written now, so
            # only the kept tags' states stay in memory.
            befores: dict[int, dict[str, Any] | None] = {}
            for chunk in chunks(ids, _IN_CHUNK):
                snaps = self._snapshots(s, chunk)
                rec.record_many((i, "rollback", snaps[i], None) for i in chunk
                                if target[i] is None and snaps[i] is not None)
                befores.update((i, snaps[i]) for i in chunk if target[i] is not None)
            # Clear what the affected tags hold, then rebuild it: aliases and links may swap between them.
            placeholder = literal("\x01rollback", String) + cast(Tag.id, String)
            for chunk in chunks(ids, _IN_CHUNK):
                s.execute(delete(TagAlias).where(TagAlias.tag_id.in_(chunk)))
                s.execute(delete(TagLink).where(TagLink.src_id.in_(chunk)))
                s.execute(delete(Tag).where(Tag.id.in_([i for i in chunk if target[i] is None])))
                s.execute(update(Tag).where(Tag.id.in_([i for i in chunk if target[i] is not None]))
                          .values(norm=placeholder))
            # Kept tags: rows updated in place, or inserted again with their ids (undoing the undo of a bulk
            # import brings back every tag); then all their aliases and the links whose target exists.
            now = utcnow()
            for chunk in chunks(kept, _IN_CHUNK):
                present = {t.id: t for t in s.scalars(select(Tag).where(Tag.id.in_(chunk)))}
                missing = []
                for tag_id in chunk:
                    values = {f: target[tag_id].get(f) for f in ROW_FIELDS}
                    for f in _TIME_FIELDS:
                        values[f] = _parse_time(values[f])
                    tag = present.get(tag_id)
                    if tag is None:
                        missing.append((*values.values(), now))
                    else:
                        for k, v in values.items():
                            if k != "id":
                                setattr(tag, k, v)
                s.flush()
                driver_insert(s.connection(), Tag.__table__, (*ROW_FIELDS, "updated_at"), missing)
            for chunk in chunks(kept, _IN_CHUNK):
                dsts = {d for i in chunk for _, d, _ in target[i].get("links", [])}
                live = set(s.scalars(select(Tag.id).where(Tag.id.in_(dsts)))) if dsts else set()
                driver_insert(s.connection(), TagAlias.__table__, ("tag_id", "alias", "norm"),
                              [(i, alias, norm) for i in chunk for alias, norm in target[i].get("aliases", [])])
                driver_insert(s.connection(), TagLink.__table__, ("src_id", "dst_id", "relation", "position"),
                              [(i, dst, relation, position) for i in chunk
                               for relation, dst, position in target[i].get("links", []) if dst in live])
            afters = self._snapshots(s, kept)
            rec.record_many((i, "rollback", befores[i], afters[i]) for i in kept if befores[i] != afters[i])
            n = rec.n
        return {"version": self.version, "restored": n}

    # -- video tags --------------------------------------------------------------------------------
    def assign(self, video_id: str, tags: Iterable[TagRef] | dict[TagRef, float], source: str = "gold",
               role: str | None = None, channels: dict[int, list[str]] | None = None, replace: bool = True,
               create: bool = True, who: str | None = None) -> list[int]:
        """Put tags on a video under ``source`` (``gold`` labels, ``manual``, ``tagger``).

        Args:
            video_id: any video key.
            tags: names/ids, or ``{name or id: score}``.
            source: which set of tags on that video this is.
            role: ``core`` or ``related`` for every tag given (or ``None``).
            channels: recall channels per tag id (tagger output).
            replace: drop the video's other tags of the same source first.
            create: unknown names become approved tags (source ``source``); otherwise they are skipped.
            who: the editor, when tags are created.

        Returns:
            The tag ids assigned (rejected tags are never assigned).
        """
        scores = dict(tags) if isinstance(tags, dict) else {t: None for t in tags}
        with self.session() as s:
            missing = [r for r in scores if self._find(s, r) is None and isinstance(r, str)]
        if missing and create:
            self.import_records([{"name": m} for m in missing], who=who, source=source, status="approved",
                                message=f"tags of video {video_id}")
        assigned: list[int] = []
        with self.session() as s:
            if replace:
                old = list(s.scalars(select(VideoTag.tag_id).where(VideoTag.video_id == video_id,
                                                                   VideoTag.source == source)))
                s.execute(delete(VideoTag).where(VideoTag.video_id == video_id, VideoTag.source == source))
            else:
                old = []
            for ref, score in scores.items():
                try:
                    tag = self._find(s, ref)
                except TagError:
                    continue
                if tag is None or tag.status == "rejected" or tag.id in assigned:
                    continue
                s.merge(VideoTag(video_id=video_id, tag_id=tag.id, source=source, role=role, score=score,
                                 channels=(channels or {}).get(tag.id, [])))
                assigned.append(tag.id)
            s.flush()
            for tag_id in set(old) | set(assigned):
                s.execute(update(Tag).where(Tag.id == tag_id).values(video_count=self._video_count(s, tag_id)))
            s.commit()
        return assigned

    def _video_count(self, s: Session, tag_id: int) -> int:
        return int(s.scalar(select(func.count(func.distinct(VideoTag.video_id))).where(VideoTag.tag_id == tag_id))
                   or 0)

    def video_tags(self, video_id: str | None = None, sources: Iterable[str] | None = None) -> dict[str, list[int]]:
        """Tag ids per video (one video, or all), from the given sources (all when ``None``)."""
        with self.session() as s:
            q = select(VideoTag.video_id, VideoTag.tag_id).order_by(VideoTag.video_id, VideoTag.id)
            if video_id is not None:
                q = q.where(VideoTag.video_id == video_id)
            if sources is not None:
                q = q.where(VideoTag.source.in_(list(sources)))
            out: dict[str, list[int]] = {}
            for vid, tag_id in s.execute(q):
                ids = out.setdefault(vid, [])
                if tag_id not in ids:
                    ids.append(tag_id)
            return out

    # -- matching ----------------------------------------------------------------------------------
    def match_entries(self, statuses: tuple[str, ...] = ("approved",)) -> Iterator[tuple[str, int]]:
        """``(normal form, tag id)`` for every name and alias of tags with ``statuses``, streamed (plain rows
        from a connection: no ORM work per row, which counts at a million tags)."""
        with self.engine.connect() as conn:
            q = select(Tag.norm, Tag.id).where(Tag.status.in_(statuses)).execution_options(yield_per=50_000)
            yield from conn.execute(q)
            q = (select(TagAlias.norm, TagAlias.tag_id).join(Tag, Tag.id == TagAlias.tag_id)
                 .where(Tag.status.in_(statuses)).execution_options(yield_per=50_000))
            yield from conn.execute(q)

    def matcher(self, statuses: tuple[str, ...] = ("approved",), boundary: str = "token"):
        """A :class:`~vidlens.tags.matcher.TagMatcher` over the current version (built once per version;
        cached on disk in the library's ``index`` folder when there is one)."""
        from vidlens.tags.matcher import TagMatcher

        key = (tuple(statuses), boundary, self.version)
        if key not in self._matchers:
            self._matchers.clear()
            cache = None
            if self.cache_dir is not None:
                cache = self.cache_dir / f"tags-matcher-v{key[2]}-{'-'.join(statuses)}.pkl"
            if cache is not None and cache.is_file():
                m = TagMatcher.load(cache, boundary=boundary)
            else:
                m = TagMatcher.build(self.match_entries(statuses), boundary=boundary)
                if cache is not None:
                    for old in cache.parent.glob("tags-matcher-v*.pkl"):
                        old.unlink(missing_ok=True)
                    m.save(cache)
            self._matchers[key] = m
        return self._matchers[key]


def _as_list(value: Any) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split("|") if v.strip())
    return tuple(str(v) for v in value if str(v).strip())


def _merge_records(a: _Record, b: _Record) -> _Record:
    """Two records of one normal form as one: the first one's name, status and source, counts added."""
    return _Record(
        name=a.name, norm=a.norm, kind=a.kind or b.kind, atomic_class=a.atomic_class or b.atomic_class,
        dimensions={**(b.dimensions or {}), **(a.dimensions or {})} or None, status=a.status, source=a.source,
        count=a.count + b.count,
        score=a.score if b.score is None else max(b.score, a.score if a.score is not None else b.score),
        evidence=_merge_evidence(a.evidence, b.evidence) or None,
        aliases=tuple(dict.fromkeys(a.aliases + b.aliases)), parents=tuple(dict.fromkeys(a.parents + b.parents)),
        related=tuple(dict.fromkeys(a.related + b.related)),
    )


def _merge_evidence(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    """Merge mining evidence: examples are unioned (first 5 kept), numbers from the newest win."""
    out = dict(old or {})
    for key, value in (new or {}).items():
        if key == "examples" and isinstance(value, list):
            out[key] = list(dict.fromkeys([*out.get(key, []), *value]))[:5]
        elif key == "miners" and isinstance(value, list):
            out[key] = sorted(set(out.get(key, [])) | set(value))
        else:
            out[key] = value
    return out


def _field_diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, list[Any]]:
    before, after = before or {}, after or {}
    return {k: [before.get(k), after.get(k)] for k in sorted(set(before) | set(after))
            if before.get(k) != after.get(k) and k not in ("created_at",)}


__all__ = ["EXPORT_COLUMNS", "ImportReport", "TagLibrary"]
