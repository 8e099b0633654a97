"""Tokens of the keyword index: lower-cased Latin/digit runs, and CJK character bigrams."""

from __future__ import annotations

import re

# Bump when tokenisation changes: snapshots made with another tokeniser are rebuilt.
TOKENIZER_VERSION = 1
_TOKEN_RE = re.compile(r"[0-9a-z]+|[\u3400-\u9fff\uf900-\ufaff]+")


def tokenize(text: str, index: bool = False) -> list[str]:
    """Tokens of ``text``: lower-cased runs of Latin letters/digits, and for CJK text every character
    bigram (plus the character itself for one-character runs), so "红烧肉" matches "做红烧肉" without a
    word segmenter.

    Args:
        index: tokens for indexing: CJK characters are emitted as well as their bigrams, so that a
            one-character query finds them; a query of two or more CJK characters matches on bigrams.
    """
    out: list[str] = []
    for run in _TOKEN_RE.findall(text.lower()):
        if run[0].isascii() or len(run) == 1:
            out.append(run)
        else:
            out.extend(run[i:i + 2] for i in range(len(run) - 1))
            if index:
                out.extend(run)
    return out
