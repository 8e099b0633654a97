"""`TagMatcher`: find every library tag (name or alias) inside a text, with an Aho-Corasick automaton.

Text is normalised exactly as tag names are (width, case, traditional → simplified, spaces), then scanned
once by ``pyahocorasick`` (C code; time grows with the text, not with the library). A hit must sit on word
boundaries so that the tag ``海`` is not found inside ``上海``: Latin/digit tags need non-alphanumeric
neighbours, and with ``boundary="token"`` Chinese hits must start and end on jieba word boundaries.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vidlens.errors import MissingDependencyError
from vidlens.tags.normalize import normalize_text
from vidlens.tags.tokenize import is_cjk, segments, words

AHOCORASICK_PIP_LINE = "pip install pyahocorasick==2.3.1"
BOUNDARIES = ("token", "char")


def _ahocorasick():
    try:
        import ahocorasick
    except ImportError:
        raise MissingDependencyError("matching text against the tag library", AHOCORASICK_PIP_LINE) from None
    return ahocorasick


@dataclass(frozen=True)
class TagMatch:
    """One tag found in a text: its id, the matched normal form and its span in the normalised text."""

    tag_id: int
    text: str
    start: int
    end: int


class TagMatcher:
    """Matches texts against a fixed set of tag names.

    Build with :meth:`build` (from ``(normal form, tag id)`` pairs) or :meth:`load`.

    Args:
        automaton: a finished ``ahocorasick.Automaton`` whose values are ``(tag_id, length)``.
        boundary: ``token`` (Chinese hits on jieba word boundaries) or ``char`` (any position).
    """

    def __init__(self, automaton, boundary: str = "token"):
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {BOUNDARIES}, not {boundary!r}")
        self.automaton = automaton
        self.boundary = boundary

    @classmethod
    def build(cls, entries: Iterable[tuple[str, int]], boundary: str = "token") -> TagMatcher:
        """Build from ``(normal form, tag id)`` pairs (names and aliases); later duplicates are ignored."""
        automaton = _ahocorasick().Automaton()
        add = automaton.add_word
        seen: set[str] = set()  # a set lookup is cheaper than asking the trie, a million times over
        for norm, tag_id in entries:
            if norm and norm not in seen:
                seen.add(norm)
                add(norm, (tag_id, len(norm)))
        del seen
        automaton.make_automaton()
        return cls(automaton, boundary=boundary)

    def save(self, path: str | os.PathLike) -> None:
        """Write the automaton to ``path`` (atomically)."""
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        self.automaton.save(str(tmp), pickle.dumps)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike, boundary: str = "token") -> TagMatcher:
        """Read an automaton written by :meth:`save`."""
        return cls(_ahocorasick().load(str(path), pickle.loads), boundary=boundary)

    def __len__(self) -> int:
        return len(self.automaton)

    def match(self, text: str, normalized: bool = False) -> list[TagMatch]:
        """Every tag occurring in ``text`` (overlapping and nested hits included), in text order."""
        if not normalized:
            text = normalize_text(text)
        if not text or len(self.automaton) == 0:
            return []
        hits = []
        for end, (tag_id, length) in self.automaton.iter(text):
            start = end + 1 - length
            hits.append(TagMatch(tag_id, text[start:end + 1], start, end + 1))
        if not hits:
            return []
        cuts = _token_cuts(text) if self.boundary == "token" and any(is_cjk(h.text) for h in hits) else None
        out = []
        for h in hits:
            if not _latin_edges_ok(text, h.start, h.end):
                continue
            if cuts is not None and (_cjk_at(text, h.start) or _cjk_at(text, h.end - 1)):
                # Chinese edge: it must be a word boundary (a jieba cut or a segment edge).
                if (_cjk_at(text, h.start) and h.start not in cuts) or (_cjk_at(text, h.end - 1) and h.end not in cuts):
                    continue
            out.append(h)
        out.sort(key=lambda h: (h.start, -h.end))
        return out


def _cjk_at(text: str, i: int) -> bool:
    return 0 <= i < len(text) and "\u3400" <= text[i] <= "\u9fff"


def _latin_edges_ok(text: str, start: int, end: int) -> bool:
    """A hit that starts/ends with a letter or digit must not continue a Latin word or number."""
    first, last = text[start], text[end - 1]
    if first.isascii() and first.isalnum() and start > 0:
        prev = text[start - 1]
        if prev.isascii() and prev.isalnum():
            return False
    if last.isascii() and last.isalnum() and end < len(text):
        nxt = text[end]
        if nxt.isascii() and nxt.isalnum():
            return False
    return True


def _token_cuts(text: str) -> set[int]:
    """Offsets in ``text`` where a word starts or ends, by jieba, per segment."""
    cuts = {0, len(text)}
    pos = 0
    for seg in segments(text):
        start = text.find(seg, pos)
        cuts.add(start)
        offset = start
        for w in words(seg):
            offset = text.find(w, offset)
            cuts.add(offset)
            offset += len(w)
            cuts.add(offset)
        pos = start + len(seg)
        cuts.add(pos)
    return cuts


__all__ = ["TagMatch", "TagMatcher"]
