"""Tag-name normalisation: the one key under which a tag, its aliases and matched text are compared.

Two strings name the same tag when their normal forms are equal. The normal form is:

1. Unicode NFKC, which folds full-width letters, digits and punctuation to half width (``ＡＢＣ１２`` →
   ``ABC12``) and compatibility forms (``①`` → ``1``);
2. case-folded (``iPhone`` → ``iphone``);
3. Traditional Chinese characters mapped to Simplified (``連衣裙`` → ``连衣裙``) with OpenCC's
   dictionaries, character by character plus OpenCC's traditional phrases;
4. every run of whitespace (and zero-width characters) collapsed to one space, ends stripped.

The display name keeps what the user wrote; only the key is normalised. The same function normalises text
before it is matched against the library, so matching is width-, case- and script-insensitive.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

from vidlens.errors import MissingDependencyError

MAX_TAG_CHARS = 50
"""Longest tag name accepted (in characters, after normalisation). Longer strings are sentences, not tags."""

_SPACE = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]+")
OPENCC_PIP_LINE = "pip install opencc-python-reimplemented==0.1.7"


@functools.lru_cache(maxsize=1)
def _t2s_tables() -> tuple[dict[int, str], tuple[tuple[str, str], ...]]:
    """Character table for ``str.translate`` and the multi-character phrase pairs, from OpenCC's data."""
    try:
        import opencc
    except ImportError:
        raise MissingDependencyError("traditional → simplified tag normalisation", OPENCC_PIP_LINE) from None
    folder = Path(opencc.__file__).parent / "dictionary"
    chars: dict[int, str] = {}
    for line in (folder / "TSCharacters.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 1 and parts[0] != parts[1]:
            chars[ord(parts[0])] = parts[1]
    phrases = []
    for line in (folder / "TSPhrases.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            phrases.append((parts[0], parts[1]))
    # Longest first, so a phrase wins over the phrases inside it.
    phrases.sort(key=lambda p: -len(p[0]))
    return chars, tuple(phrases)


@functools.lru_cache(maxsize=1)
def _any_phrase() -> re.Pattern[str]:
    # One regex search finds whether any traditional phrase occurs at all (in ~0.02 % of tag names): the
    # ordered replacement loop below then runs only for those, not for every name of a million-tag import.
    return re.compile("|".join(re.escape(trad) for trad, _ in _t2s_tables()[1]))


def to_simplified(text: str) -> str:
    """Map Traditional Chinese characters (and OpenCC's traditional phrases) in ``text`` to Simplified."""
    chars, phrases = _t2s_tables()
    if _any_phrase().search(text) is not None:
        for trad, simp in phrases:
            if trad in text:
                text = text.replace(trad, simp)
    return text.translate(chars)


def normalize_text(text: str) -> str:
    """The normal form of any text (see the module docstring); used for tag keys and for matching."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = to_simplified(text)
    return _SPACE.sub(" ", text).strip()


normalize_tag = normalize_text
"""The normal form of a tag name; the same function as :func:`normalize_text`, named for the call site."""


__all__ = ["MAX_TAG_CHARS", "normalize_tag", "normalize_text", "to_simplified"]
