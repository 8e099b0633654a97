"""A trainable n-gram text encoder fused with a frozen sentence vector.

The pretrained multilingual sentence encoder (512-d) gives general meaning but cannot learn the
platform's vocabulary (brand names, slang, product words); a fastText-style bag of hashed character
and jieba-word n-grams, trained with the classifier, can. PaddleVideo found a trainable layer on top
of a frozen text model both faster and better than fine-tuning the text model itself.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from vidlens.errors import ConfigError, MissingDependencyError
from vidlens.models.component import Component
from vidlens.models.registry import TEXT_BRANCHES

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w", re.UNICODE)


class NgramHasher:
    """Turns text into hashed ids of character n-grams and (jieba) word n-grams.

    Ids are ``crc32(token) % (num_buckets - 1) + 1``, stable across processes; 0 is padding.

    Args:
        num_buckets: size of the hashed vocabulary, padding included.
        char_ngrams: character n-gram lengths (on the lower-cased text, whitespace collapsed).
        word_ngrams: word n-gram lengths over jieba tokens; empty to skip jieba.
        max_tokens: at most this many ids per text (the first ones).
    """

    def __init__(
        self,
        num_buckets: int = 100_000,
        char_ngrams: Sequence[int] = (1, 2, 3),
        word_ngrams: Sequence[int] = (1, 2),
        max_tokens: int = 256,
    ):
        if num_buckets < 2:
            raise ConfigError(f"text branch: num_buckets must be at least 2, not {num_buckets}")
        self.num_buckets = num_buckets
        self.char_ngrams = tuple(char_ngrams)
        self.word_ngrams = tuple(word_ngrams)
        self.max_tokens = max_tokens

    def tokens(self, text: str) -> list[str]:
        """The n-gram strings of ``text``, prefixed ``c:`` (characters) or ``w:`` (words)."""
        clean = _SPACE.sub(" ", (text or "").lower()).strip()
        out: list[str] = []
        for n in self.char_ngrams:
            out.extend("c:" + clean[i : i + n] for i in range(len(clean) - n + 1) if clean[i : i + n].strip())
        if self.word_ngrams and clean:
            words = [w for w in _cut(clean) if _WORD.search(w)]
            for n in self.word_ngrams:
                out.extend("w:" + " ".join(words[i : i + n]) for i in range(len(words) - n + 1))
        return out

    def ids(self, text: str) -> list[int]:
        """Hashed ids of ``text`` (at most ``max_tokens``)."""
        tokens = self.tokens(text)[: self.max_tokens]
        return [zlib.crc32(t.encode("utf-8")) % (self.num_buckets - 1) + 1 for t in tokens]

    def batch(self, texts: Sequence[str]) -> torch.Tensor:
        """(B, L) long ids padded with 0; L is at least 1."""
        rows = [self.ids(t) for t in texts]
        width = max([1, *map(len, rows)])
        out = torch.zeros(len(rows), width, dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return out


def _cut(text: str) -> list[str]:
    try:
        import jieba
    except ImportError:
        raise MissingDependencyError("word n-grams of the text branch", "pip install jieba==0.42.1") from None
    jieba.setLogLevel(60)  # its dictionary-loading chatter goes to stderr otherwise
    return jieba.lcut(text)


@TEXT_BRANCHES.register("ngram_mean")
class TextBranch(Component):
    """Mean of trainable n-gram embeddings, concatenated with a frozen sentence vector, then a layer.

    ``out = ReLU(W [mean_i E[id_i]; s] + b)`` where ``s`` is the sentence encoder's vector (no gradient
    flows into the encoder; it is an input). A text with no n-grams contributes a zero bag.

    Args:
        sentence_dim: size of the frozen sentence vector (512 for multilingual USE).
        out_dim: output size.
        embed_dim: size of each n-gram embedding.
        num_buckets: hashed vocabulary size.
        char_ngrams: character n-gram lengths.
        word_ngrams: jieba word n-gram lengths (empty: characters only, no jieba needed).
        max_tokens: ids kept per text.
        dropout: dropout before the output layer.
    """

    def __init__(
        self,
        sentence_dim: int = 512,
        out_dim: int = 128,
        embed_dim: int = 64,
        num_buckets: int = 100_000,
        char_ngrams: Sequence[int] = (1, 2, 3),
        word_ngrams: Sequence[int] = (1, 2),
        max_tokens: int = 256,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.sentence_dim = sentence_dim
        self.out_dim = out_dim
        self.embed_dim = embed_dim
        self.num_buckets = num_buckets
        self.char_ngrams = tuple(char_ngrams)
        self.word_ngrams = tuple(word_ngrams)
        self.max_tokens = max_tokens
        self.dropout = dropout
        self.hasher = NgramHasher(num_buckets, self.char_ngrams, self.word_ngrams, max_tokens)
        self.embedding = nn.EmbeddingBag(num_buckets, embed_dim, mode="mean", padding_idx=0)
        nn.init.normal_(self.embedding.weight, std=0.1)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(embed_dim + sentence_dim, out_dim), nn.ReLU())

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Hashed n-gram ids (B, L) for ``texts``, ready for ``forward``."""
        return self.hasher.batch(texts)

    def fit_statistics(self, token_lists: Iterable[Sequence[int]]) -> None:
        """Statistics from the training texts before training: none for a mean of embeddings (every
        text branch has this hook; ``tfidf_bag`` computes its IDF weights here)."""

    def forward(self, token_ids: torch.Tensor | None, sentence: torch.Tensor) -> torch.Tensor:
        """(B, L) long ids (0 = padding; None for none) and (B, sentence_dim) -> (B, out_dim)."""
        if token_ids is None or token_ids.numel() == 0:
            bag = sentence.new_zeros(sentence.shape[0], self.embed_dim)
        else:
            bag = self.embedding(token_ids)
        return self.out(torch.cat([bag, sentence.detach()], dim=-1))


__all__ = ["NgramHasher", "TextBranch"]
