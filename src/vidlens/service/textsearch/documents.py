"""What the keyword index keeps per document: a :class:`DocInfo` while it is new, a row of a
:class:`DocTable` once it is in a base (flat arrays, so a snapshot maps them and worker processes
share them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DocInfo:
    """Per-document values filters and results need."""

    video_id: str
    title: str
    duration: float
    language: str | None
    has_speech: bool
    has_thumbnail: bool


@dataclass(frozen=True)
class DocTable:
    """The :class:`DocInfo` of documents 0 … n-1 as arrays.

    Attributes:
        ids: video ids (UTF-8, fixed-width bytes), by document number.
        by_id: document numbers in id order, for :meth:`find`.
        title_start: title d is ``title_bytes[title_start[d]:title_start[d+1]]`` (UTF-8); n + 1 entries.
        title_bytes: all titles, concatenated.
        duration: seconds.
        has_speech, has_thumbnail: flags.
        language: index into ``languages`` of the transcript's language, -1 when unknown.
        languages: the language codes ``language`` refers to.
    """

    ids: np.ndarray
    by_id: np.ndarray
    title_start: np.ndarray
    title_bytes: np.ndarray
    duration: np.ndarray
    has_speech: np.ndarray
    has_thumbnail: np.ndarray
    language: np.ndarray
    languages: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.duration)

    @classmethod
    def from_infos(cls, infos: Sequence[DocInfo], languages: Sequence[str] = ()) -> DocTable:
        """A table of ``infos`` (document d is ``infos[d]``); ``languages`` are listed first, in order."""
        langs = list(languages)
        code = {lang: i for i, lang in enumerate(langs)}
        lang_codes = np.empty(len(infos), np.int16)
        for d, info in enumerate(infos):
            if info.language is None:
                lang_codes[d] = -1
            else:
                if info.language not in code:
                    code[info.language] = len(langs)
                    langs.append(info.language)
                lang_codes[d] = code[info.language]
        titles = [info.title.encode() for info in infos]
        title_start = np.zeros(len(infos) + 1, np.int64)
        np.cumsum(np.fromiter(map(len, titles), np.int64, len(titles)), out=title_start[1:])
        encoded = [info.video_id.encode() for info in infos]
        ids = np.array(encoded, f"S{max(map(len, encoded), default=1)}")
        return cls(
            ids=ids, by_id=np.argsort(ids, kind="stable").astype(np.int32), title_start=title_start,
            title_bytes=np.frombuffer(b"".join(titles), np.uint8).copy(),
            duration=np.array([i.duration for i in infos], np.float64),
            has_speech=np.array([i.has_speech for i in infos], bool),
            has_thumbnail=np.array([i.has_thumbnail for i in infos], bool),
            language=lang_codes, languages=tuple(langs),
        )

    def info(self, doc: int) -> DocInfo:
        """The :class:`DocInfo` of document ``doc``."""
        code = int(self.language[doc])
        return DocInfo(
            video_id=self.ids[doc].decode(),
            title=self.title_bytes[self.title_start[doc]:self.title_start[doc + 1]].tobytes().decode(),
            duration=float(self.duration[doc]), language=self.languages[code] if code >= 0 else None,
            has_speech=bool(self.has_speech[doc]), has_thumbnail=bool(self.has_thumbnail[doc]),
        )

    def find(self, video_id: str) -> int | None:
        """The document of ``video_id``, or None."""
        raw = video_id.encode()
        if not len(self) or len(raw) > self.ids.dtype.itemsize:
            return None
        key = np.array(raw, self.ids.dtype)
        i = int(np.searchsorted(self.ids, key, sorter=self.by_id))
        if i < len(self) and self.ids[self.by_id[i]] == key:
            return int(self.by_id[i])
        return None

    def contains_ids(self, docs: np.ndarray, video_ids: set[str]) -> np.ndarray:
        """For each document of ``docs``, whether its video id is in ``video_ids``."""
        width = self.ids.dtype.itemsize
        wanted = np.array([raw for raw in (v.encode() for v in video_ids) if len(raw) <= width], self.ids.dtype)
        return np.isin(self.ids[docs], wanted)

    def rows(self, docs: np.ndarray) -> list[tuple[str, str, float, bool]]:
        """(video id, title, duration, has thumbnail) of each of ``docs`` (what a result page shows)."""
        starts, ends = self.title_start[docs].tolist(), self.title_start[docs + 1].tolist()
        titles = self.title_bytes
        return [(raw.decode(), titles[a:b].tobytes().decode(), duration, thumb) for raw, a, b, duration, thumb in zip(
            self.ids[docs].tolist(), starts, ends, self.duration[docs].tolist(), self.has_thumbnail[docs].tolist(),
            strict=True)]

    def select(self, keep: np.ndarray) -> DocTable:
        """The rows ``keep`` (a boolean mask) marks, renumbered densely."""
        ids = self.ids[keep]
        lengths = np.diff(self.title_start)[keep]
        title_start = np.zeros(len(ids) + 1, np.int64)
        np.cumsum(lengths, out=title_start[1:])
        byte_keep = np.repeat(keep, np.diff(self.title_start))
        return DocTable(
            ids=ids, by_id=np.argsort(ids, kind="stable").astype(np.int32), title_start=title_start,
            title_bytes=self.title_bytes[byte_keep], duration=self.duration[keep],
            has_speech=self.has_speech[keep], has_thumbnail=self.has_thumbnail[keep],
            language=self.language[keep], languages=self.languages,
        )

    def extend(self, infos: Sequence[DocInfo]) -> DocTable:
        """This table followed by ``infos``."""
        more = DocTable.from_infos(infos, self.languages)
        width = max(self.ids.dtype.itemsize, more.ids.dtype.itemsize)
        ids = np.concatenate([self.ids.astype(f"S{width}"), more.ids.astype(f"S{width}")])
        return DocTable(
            ids=ids, by_id=np.argsort(ids, kind="stable").astype(np.int32),
            title_start=np.concatenate([self.title_start, self.title_start[-1] + more.title_start[1:]]),
            title_bytes=np.concatenate([self.title_bytes, more.title_bytes]),
            duration=np.concatenate([self.duration, more.duration]),
            has_speech=np.concatenate([self.has_speech, more.has_speech]),
            has_thumbnail=np.concatenate([self.has_thumbnail, more.has_thumbnail]),
            language=np.concatenate([self.language, more.language]), languages=more.languages,
        )
