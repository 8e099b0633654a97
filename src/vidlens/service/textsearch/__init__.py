"""The keyword index over the stored text of every video (title, summary, product text, OCR, ASR, concepts).

This is the service's search until the retrieval engine (``vidlens.retrieval``) is wired in; it also
serves as the keyword channel beside vector search. It answers a query with a handful of NumPy
operations over CSR postings, is kept current incrementally, and keeps a snapshot on disk that later
starts (and every worker process) map instead of re-reading the DB.

Inside: ``tokens`` (tokenisation), ``postings`` (CSR postings, scoring weights, folding a delta in),
``documents`` (per-document columns), ``snapshot`` (the on-disk format), ``index`` (:class:`TextSearchIndex`).
"""

from vidlens.service.textsearch.documents import DocInfo
from vidlens.service.textsearch.index import STOPWORD_SHARE, SearchHit, TextSearchIndex
from vidlens.service.textsearch.postings import FIELD_WEIGHTS, FIELDS
from vidlens.service.textsearch.snapshot import Fingerprint, SnapshotError
from vidlens.service.textsearch.tokens import tokenize

__all__ = ["FIELDS", "FIELD_WEIGHTS", "STOPWORD_SHARE", "DocInfo", "Fingerprint", "SearchHit", "SnapshotError",
           "TextSearchIndex", "tokenize"]
