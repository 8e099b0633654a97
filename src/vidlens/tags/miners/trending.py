"""Trending phrases: candidates whose count in the latest window jumps against the windows before."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from vidlens.errors import VidlensError
from vidlens.tags.miners.base import MINERS, MinedPhrase, PhraseMiner
from vidlens.tags.miners.candidates import acceptable, collect, tokenize_corpus
from vidlens.tags.normalize import normalize_text


@MINERS.register("trending")
class TrendingPhraseMiner(PhraseMiner):
    """Weekly (or any window) deltas of candidate phrases.

    The corpus is cut into windows of ``window_days`` ending at the latest document time; a phrase trends
    when its count in the latest window is at least ``min_count`` and ``min_lift`` times its mean count
    in the ``n_history`` windows before (plus ``smoothing``). Sub-phrases that only ever occur inside a
    trending phrase are folded into it. Score: ``1 − 1/lift``.

    Args:
        window_days: window length in days (7: weekly deltas).
        n_history: earlier windows to compare against.
        min_count: fewest occurrences in the latest window.
        min_lift: smallest ratio of latest to earlier counts.
        smoothing: added to both counts (so a brand-new phrase has a finite lift).
        min_pmi: smallest concordance of multi-word phrases in the latest window (drops chance pairs).
        max_words, max_chars: candidate size limits.
        max_phrases: most phrases returned, best first.
    """

    def __init__(self, window_days: int = 7, n_history: int = 4, min_count: int = 3, min_lift: float = 3.0,
                 smoothing: float = 1.0, min_pmi: float = 1.0, max_words: int = 4, max_chars: int = 12,
                 max_phrases: int | None = 100):
        self.window_days = window_days
        self.n_history = n_history
        self.min_count = min_count
        self.min_lift = min_lift
        self.smoothing = smoothing
        self.min_pmi = min_pmi
        self.max_words = max_words
        self.max_chars = max_chars
        self.max_phrases = max_phrases

    def mine(self, docs: Sequence[str], known: Iterable[str] = (), exclude: Iterable[str] = (),
             times: Sequence[datetime] | None = None) -> list[MinedPhrase]:
        """See :meth:`PhraseMiner.mine`; ``times`` is required."""
        if not docs:
            return []
        if times is None or len(times) != len(docs):
            raise VidlensError("trending mining needs one time per document (e.g. a 'time' field in the corpus)")
        end = max(times)
        width = timedelta(days=self.window_days)
        windows: list[list[int]] = [[] for _ in range(self.n_history + 1)]
        for i, t in enumerate(times):
            k = int((end - t) / width)
            if k <= self.n_history:
                windows[k].append(i)
        tokenized = tokenize_corpus([docs[i] for w in windows for i in w])
        offsets = [0]
        for w in windows:
            offsets.append(offsets[-1] + len(w))
        counts: list[Counter] = []
        latest = None
        for k in range(len(windows)):
            st = collect(tokenized[offsets[k]:offsets[k + 1]], self.max_words, self.max_chars, self.min_count,
                         neighbours=(k == 0))
            counts.append(st.counts)
            if k == 0:
                latest = st
        skip = {normalize_text(x) for x in (*known, *exclude)}
        total = max(sum(counts[0].values()), 1)
        rows = []
        for cand, n in counts[0].items():
            if n < self.min_count or not acceptable(cand):
                continue
            if len(cand) > 1:
                parts = [counts[0].get(cand[:j], 0) * counts[0].get(cand[j:], 0) for j in range(1, len(cand))]
                pmi = min(math.log(n * total / p) if p else 0.0 for p in parts)
                if pmi < self.min_pmi:
                    continue
            history = [counts[k].get(cand, 0) for k in range(len(windows) - 1, 0, -1)]
            mean_prev = sum(history) / max(len(history), 1)
            lift = (n + self.smoothing) / (mean_prev + self.smoothing)
            if lift < self.min_lift:
                continue
            rows.append((cand, n, lift, history))
        # Fold a sub-phrase into a longer trending phrase that accounts for nearly all its occurrences.
        names = {"".join(c): n for c, n, _, _ in rows}
        out = []
        for cand, n, lift, history in sorted(rows, key=lambda r: (-r[2], -r[1])):
            name = "".join(cand)
            if name in skip:
                continue
            if any(name != other and name in other and m >= 0.8 * n for other, m in names.items()):
                continue
            examples = [" ".join("".join(ws) for ws in latest.docs[d])[:120] for d in latest.examples.get(cand, [])[:2]]
            out.append(MinedPhrase(name, 1 - 1 / lift, n, "trending", {
                "window_days": self.window_days, "weekly_counts": [*history, n],
                "delta": round(n - sum(history) / max(len(history), 1), 2), "lift": round(lift, 2),
                "examples": examples}))
            if self.max_phrases is not None and len(out) >= self.max_phrases:
                break
        return out


__all__ = ["TrendingPhraseMiner"]
