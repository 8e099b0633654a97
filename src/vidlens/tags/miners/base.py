"""The miner contract: explicit parameters (scikit-learn style), ``mine(docs, known, …)`` → phrases."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sklearn.base import BaseEstimator

from vidlens.models.registry import Registry

MINERS: Registry = Registry("tag miner")


@dataclass
class MinedPhrase:
    """A phrase a miner proposes as a tag.

    Attributes:
        name: the phrase (normal form).
        score: the miner's confidence in [0, 1].
        count: occurrences in the corpus.
        miner: the registry name of the miner.
        evidence: what a reviewer needs: example texts, features, pattern, weekly counts …
    """

    name: str
    score: float
    count: int
    miner: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """The record :meth:`TagLibrary.propose` takes."""
        return {"name": self.name, "score": round(float(self.score), 4), "count": int(self.count),
                "source": self.miner, "evidence": {**self.evidence, "miners": [self.miner]}}


class PhraseMiner(BaseEstimator):
    """Base of the miners. Every hyper-parameter is an ``__init__`` keyword; learned state ends in ``_``."""

    registry_name: str = ""

    def mine(self, docs: Sequence[str], known: Iterable[str] = (), exclude: Iterable[str] = (),
             times: Sequence[datetime] | None = None) -> list[MinedPhrase]:
        """Mine phrases from ``docs``.

        Args:
            docs: the corpus (titles, descriptions, ASR/OCR text, queries), one string per document.
            known: approved tags (normal form): the positive examples for distant training.
            exclude: tags already in the library (any status): never proposed again as new.
            times: one time per document (the trending miner needs them; others ignore them).

        Returns:
            Phrases, best first. An empty corpus gives an empty list.
        """
        raise NotImplementedError


__all__ = ["MINERS", "MinedPhrase", "PhraseMiner"]
