"""Postings of the keyword index in CSR arrays: building them from text, and folding a delta into them.

Scoring: Σ over query tokens of idf(token) · Σ over fields of weight(field) · tf / (tf + 1.2); a posting
carries the field-weighted part for one (token, document) and the bitmask of fields the token occurs in.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import count

import numpy as np

from vidlens.service.textsearch.tokens import tokenize

FIELD_WEIGHTS: dict[str, float] = {
    "title": 3.0, "summary": 1.5, "product": 1.0, "ocr": 1.2, "asr": 1.0, "concepts": 0.5,
}
FIELDS = tuple(FIELD_WEIGHTS)
K1 = 1.2
# Tokens in at least 1/BITSET_SHARE of the documents also get a bitset of their documents, so the number
# of documents a query matches is counted with a few ORs over n/8 bytes instead of a pass over postings.
BITSET_SHARE = 64

# Postings of one token added since the base was built: (documents, weights, field masks), documents ascending.
DeltaPostings = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Postings:
    """CSR postings: for token id t, documents ``docs[start[t]:start[t+1]]`` (ascending) with their
    weights and field masks. The arrays may be read-only maps of a snapshot's files.

    For ranking without a pass over long lists, ``impact[start[t]:start[t+1]]`` orders the same range by
    weight (highest first, then document): offsets into it, so ``docs[start[t] + impact[start[t]]]`` is
    the token's best document. Tokens in many documents have row ``bitset_of[t]`` of ``bitsets``: bit d
    (little-endian within each byte) set when document d holds the token.
    """

    vocab: dict[str, int]
    start: np.ndarray      # int64, one more than the vocabulary
    docs: np.ndarray       # int32
    weights: np.ndarray    # float32
    fields: np.ndarray     # uint8
    impact: np.ndarray     # int32, like ``docs``
    bitset_of: np.ndarray  # int32 per token, -1: none
    bitsets: np.ndarray    # uint8, (rows, ceil(documents / 8))

    def lookup(self, token: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(documents, weights, field masks) of ``token``, or None when it is not in the vocabulary."""
        t = self.vocab.get(token)
        if t is None:
            return None
        a, b = self.start[t], self.start[t + 1]
        return self.docs[a:b], self.weights[a:b], self.fields[a:b]

    def df(self, token: str) -> int:
        """How many documents hold ``token``."""
        t = self.vocab.get(token)
        return 0 if t is None else int(self.start[t + 1] - self.start[t])

    def ranked(self, token: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None] | None:
        """(documents, weights, impact order, bitset or None) of ``token``, or None when it is unknown."""
        t = self.vocab.get(token)
        if t is None:
            return None
        a, b = self.start[t], self.start[t + 1]
        row = int(self.bitset_of[t])
        return self.docs[a:b], self.weights[a:b], self.impact[a:b], self.bitsets[row] if row >= 0 else None

    def tokens(self) -> list[str]:
        """The vocabulary in token-id order."""
        out = [""] * len(self.vocab)
        for tok, t in self.vocab.items():
            out[t] = tok
        return out

    @classmethod
    def empty(cls) -> Postings:
        """No documents, no tokens."""
        return _ranked({}, np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32),
                       np.zeros(0, np.uint8), 0)


def _ranked(vocab: dict[str, int], start: np.ndarray, docs: np.ndarray, weights: np.ndarray, fields: np.ndarray,
            n_docs: int) -> Postings:
    """Postings with their impact order and bitsets computed."""
    df = np.diff(start)
    tok = np.repeat(np.arange(len(df), dtype=np.int64), df)
    # Positive float32 weights order like their bit patterns: one stable sort on (token, -weight) keeps
    # documents ascending among equal weights.
    key = (tok << 32) | (0xFFFFFFFF - np.ascontiguousarray(weights, np.float32).view(np.uint32).astype(np.int64))
    order = np.argsort(key, kind="stable")
    del key
    impact = (order - start[tok]).astype(np.int32)
    del order, tok
    dense = np.flatnonzero(df >= max(n_docs / BITSET_SHARE, 1)) if n_docs else np.zeros(0, np.int64)
    bitset_of = np.full(len(df), -1, np.int32)
    bitset_of[dense] = np.arange(len(dense), dtype=np.int32)
    bitsets = np.zeros((len(dense), (n_docs + 7) // 8), np.uint8)
    member = np.zeros(n_docs, bool)
    for row, t in enumerate(dense.tolist()):
        member[:] = False
        member[docs[start[t]:start[t + 1]]] = True
        bitsets[row] = np.packbits(member, bitorder="little")
    return Postings(vocab=vocab, start=start, docs=docs, weights=weights, fields=fields, impact=impact,
                    bitset_of=bitset_of, bitsets=bitsets)


def build_postings(entries: Iterable[tuple[int, Mapping[str, str | None]]]) -> Postings:
    """CSR postings of documents given as (document number, {field: text}), numbers ascending.

    Python only tokenises and maps tokens to ids; term frequencies, weights and field masks are computed
    with NumPy over all occurrences at once.
    """
    vocab, start, docs, weights, masks, n_docs = _csr(entries)
    return _ranked(vocab, start, docs, weights, masks, n_docs)


def doc_postings(texts: Mapping[str, str | None]) -> dict[str, tuple[float, int]]:
    """token → (weight, field bitmask) for one document (the same arithmetic as a whole build)."""
    vocab, start, _docs, weights, masks, _n = _csr([(0, texts)])
    return {tok: (float(weights[start[t]]), int(masks[start[t]])) for tok, t in vocab.items()}


def _csr(entries: Iterable[tuple[int, Mapping[str, str | None]]]
         ) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """(vocabulary, start, docs, weights, field masks, number of documents) of :func:`build_postings`."""
    vocab: defaultdict[str, int] = defaultdict(count().__next__)
    tok_ids, doc_ids, field_ids = array("i"), array("i"), array("B")
    n_docs = 0
    for doc, texts in entries:
        n_docs = doc + 1
        for bit, name in enumerate(FIELDS):
            text = texts.get(name)
            if not text:
                continue
            toks = tokenize(text, index=True)
            if toks:
                tok_ids.extend([vocab[t] for t in toks])
                doc_ids.extend(array("i", [doc]) * len(toks))
                field_ids.extend(array("B", [bit]) * len(toks))
    if not tok_ids:
        return {}, np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, np.uint8), n_docs
    n_fields = len(FIELDS)
    key = (np.frombuffer(tok_ids, np.int32).astype(np.int64) * n_docs
           + np.frombuffer(doc_ids, np.int32)) * n_fields + np.frombuffer(field_ids, np.uint8)
    # (token, doc, field) → term frequency → weight of that field.
    tdf, tf = np.unique(key, return_counts=True)
    field = (tdf % n_fields).astype(np.int64)
    weight = np.asarray(list(FIELD_WEIGHTS.values()), np.float64)[field] * tf / (tf + K1)
    # (token, doc) → summed weight and OR-ed field mask; ``tdf`` is sorted, so groups are contiguous.
    td = tdf // n_fields
    starts = np.flatnonzero(np.r_[True, td[1:] != td[:-1]])
    td = td[starts]
    weights = np.add.reduceat(weight, starts).astype(np.float32)
    masks = np.bitwise_or.reduceat((1 << field).astype(np.uint8), starts)
    tok = td // n_docs
    start = np.zeros(len(vocab) + 1, np.int64)
    np.cumsum(np.bincount(tok, minlength=len(vocab)), out=start[1:])
    return dict(vocab), start, (td % n_docs).astype(np.int32), weights, masks, n_docs


def fold_postings(base: Postings, delta: Mapping[str, DeltaPostings], alive: np.ndarray) -> Postings:
    """One CSR of ``base`` plus ``delta``, without the documents ``alive`` marks dead, renumbered densely
    (document d becomes the number of live documents before it). Tokens left without postings are dropped.

    Every delta document is numbered after every base document, so after a stable sort on token the
    postings of each token stay in document order.
    """
    renumber = (np.cumsum(alive, dtype=np.int64) - 1).astype(np.int32)
    n_tok = len(base.vocab)
    tok = np.repeat(np.arange(n_tok, dtype=np.int32), np.diff(base.start))
    keep = alive[base.docs]
    parts_tok, parts_docs = [tok[keep]], [renumber[base.docs[keep]]]
    parts_w, parts_f = [base.weights[keep]], [base.fields[keep]]
    vocab = dict(base.vocab)
    for token, (docs, weights, fields) in delta.items():
        live = alive[docs]
        if not live.any():
            continue
        t = vocab.setdefault(token, len(vocab))
        parts_tok.append(np.full(int(live.sum()), t, np.int32))
        parts_docs.append(renumber[docs[live]])
        parts_w.append(weights[live])
        parts_f.append(fields[live])
    tok = np.concatenate(parts_tok)
    order = np.argsort(tok, kind="stable")
    tok = tok[order]
    counts = np.bincount(tok, minlength=len(vocab))
    used = counts > 0
    new_id = (np.cumsum(used) - 1).astype(np.int32)
    start = np.zeros(int(used.sum()) + 1, np.int64)
    np.cumsum(counts[used], out=start[1:])
    return _ranked({token: int(new_id[t]) for token, t in vocab.items() if used[t]}, start,
                   np.concatenate(parts_docs)[order], np.concatenate(parts_w)[order],
                   np.concatenate(parts_f)[order], int(alive.sum()))
