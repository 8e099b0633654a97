"""Pattern mining: frequent tag-combination patterns, matched back into the corpus.

Patterns come from two places:

- *templates* learned from the library's phrase tags: each phrase tag is cut into words and every way of
  turning one word into a slot gives a template (``复古穿搭`` → ``<*> 穿搭`` and ``复古 <*>``; a word with
  an atomic class gives a class slot, ``<place/city> 美食``). Templates that ``min_support`` different
  tags share are kept;
- *combinations*: two known tags that stand next to each other in the corpus ``min_count`` times or more
  (``巴黎`` + ``圣日尔曼``).

Matching the templates back into the corpus finds new phrases of the same shape (``秋冬穿搭``), including
trending names that no dictionary knows yet. A template's confidence is the share of its corpus matches
that are already tags (Laplace-smoothed); a phrase's score is that confidence times ``1 − 1/(1 + count)``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

from vidlens.tags.miners.base import MINERS, MinedPhrase, PhraseMiner
from vidlens.tags.miners.candidates import tokenize_corpus
from vidlens.tags.normalize import normalize_text
from vidlens.tags.tokenize import FUNCTION_WORDS, has_word_char, is_cjk, words

ANY = "<*>"


def _slot_ok(word: str) -> bool:
    """Whether a corpus word may fill a ``<*>`` slot: a content word, not one lone CJK character."""
    return _fits(ANY, [word], {})


@MINERS.register("pattern")
class PatternMiner(PhraseMiner):
    """Frequent tag-combination pattern miner.

    Args:
        min_support: fewest distinct tags a template must come from.
        min_count: fewest corpus occurrences of a proposed phrase.
        max_words: longest template, in words.
        slot_words: most words a ``<*>`` slot may take (jieba often cuts a new name in two).
        max_chars: longest proposed phrase, in characters.
        combinations: also propose pairs of known tags that often stand together.
        threshold: lowest score proposed.
        max_phrases: most phrases returned, best first (``None``: all).
        n_examples: example documents kept as evidence.
    """

    def __init__(self, min_support: int = 2, min_count: int = 2, max_words: int = 4, slot_words: int = 2,
                 max_chars: int = 12,
                 combinations: bool = True, threshold: float = 0.0, max_phrases: int | None = 500,
                 n_examples: int = 2):
        self.min_support = min_support
        self.min_count = min_count
        self.max_words = max_words
        self.slot_words = slot_words
        self.max_chars = max_chars
        self.combinations = combinations
        self.threshold = threshold
        self.max_phrases = max_phrases
        self.n_examples = n_examples

    def learn_templates(self, known: Iterable[str], classes: dict[str, str] | None = None) -> dict[tuple, int]:
        """Templates (tuples of words and slots) → how many known tags share each."""
        classes = {normalize_text(k): v.split("/")[0] for k, v in (classes or {}).items() if v}
        support: dict[tuple, set[str]] = defaultdict(set)
        for name in known:
            norm = normalize_text(name)
            ws = [w for w in words(norm) if w.strip()]
            if not 2 <= len(ws) <= self.max_words:
                continue
            for k, w in enumerate(ws):
                slot = f"<{classes[w]}>" if w in classes else ANY
                support[(*ws[:k], slot, *ws[k + 1:])].add(norm)
                if slot != ANY:
                    support[(*ws[:k], ANY, *ws[k + 1:])].add(norm)
        return {t: len(names) for t, names in support.items() if len(names) >= self.min_support}

    def mine(self, docs: Sequence[str], known: Iterable[str] = (), exclude: Iterable[str] = (),
             times: Sequence[datetime] | None = None, classes: dict[str, str] | None = None
             ) -> list[MinedPhrase]:
        """See :meth:`PhraseMiner.mine`; ``classes`` maps atomic tag names to their taxonomy class."""
        known = [normalize_text(k) for k in known]
        known_set = set(known)
        skip = known_set | {normalize_text(e) for e in exclude}
        templates = self.learn_templates(known, classes)
        self.templates_ = templates
        word_class = {normalize_text(k): v.split("/")[0] for k, v in (classes or {}).items() if v}
        # Each template, expanded to every slot width, indexed under its first literal word and offset.
        by_literal: dict[str, list[tuple[tuple, int, int, int]]] = defaultdict(list)
        for t in templates:
            slot = next(k for k, el in enumerate(t) if el.startswith("<"))
            first = next((k for k, el in enumerate(t) if not el.startswith("<")), None)
            if first is None:
                continue
            for width in range(1, (self.slot_words if t[slot] == ANY else 1) + 1):
                offset = first if first < slot else first + width - 1
                by_literal[t[first]].append((t, slot, width, offset))
        tokenized = tokenize_corpus(docs)
        found: Counter = Counter()
        via: dict[str, Counter] = defaultdict(Counter)
        template_hits: Counter = Counter()
        template_known: Counter = Counter()
        examples: dict[str, list[int]] = defaultdict(list)
        for d, doc in enumerate(tokenized):
            for ws in doc:
                n = len(ws)
                for i, w in enumerate(ws):
                    for t, slot, width, offset in by_literal.get(w, ()):
                        start = i - offset
                        length = len(t) - 1 + width
                        if start < 0 or start + length > n:
                            continue
                        span = ws[start:start + length]
                        filler = span[slot:slot + width]
                        rest = span[:slot] + span[slot + width:]
                        literals = t[:slot] + t[slot + 1:]
                        if rest != list(literals) or not _fits(t[slot], filler, word_class):
                            continue
                        phrase = "".join(span)
                        if len(phrase) > self.max_chars:
                            continue
                        template_hits[t] += 1
                        if phrase in known_set:
                            template_known[t] += 1
                            continue
                        found[phrase] += 1
                        via[phrase][t] += 1
                        if len(examples[phrase]) < self.n_examples and d not in examples[phrase]:
                            examples[phrase].append(d)
                    if self.combinations and i + 1 < n and w in known_set and ws[i + 1] in known_set:
                        phrase = w + ws[i + 1]
                        if len(phrase) <= self.max_chars and phrase not in known_set:
                            found[phrase] += 1
                            via[phrase][("<tag>", "<tag>")] += 1
                            if len(examples[phrase]) < self.n_examples and d not in examples[phrase]:
                                examples[phrase].append(d)
        self.n_templates_ = len(templates)
        out = []
        for phrase, count in found.items():
            if count < self.min_count or phrase in skip:
                continue
            t, _ = via[phrase].most_common(1)[0]
            if t == ("<tag>", "<tag>"):
                confidence = 0.5
            else:
                confidence = (template_known[t] + 1) / (template_hits[t] + 2)
            score = confidence * (1 - 1 / (1 + count))
            if score < self.threshold:
                continue
            evidence = {"pattern": " ".join(t), "support": int(templates.get(t, 0)),
                        "pattern_confidence": round(confidence, 3),
                        "examples": [" ".join("".join(ws) for ws in tokenized[d])[:120] for d in examples[phrase]]}
            out.append(MinedPhrase(phrase, score, count, "pattern", evidence))
        out.sort(key=lambda p: (-p.score, -p.count, p.name))
        return out[:self.max_phrases] if self.max_phrases is not None else out


def _fits(element: str, filler: list[str], word_class: dict[str, str]) -> bool:
    """Whether the words ``filler`` may fill slot ``element``."""
    if element == ANY:
        text = "".join(filler)
        return (filler[0] not in FUNCTION_WORDS and filler[-1] not in FUNCTION_WORDS and has_word_char(text)
                and not (len(text) == 1 and is_cjk(text)))
    return len(filler) == 1 and word_class.get(filler[0]) == element[1:-1]


__all__ = ["PatternMiner"]
