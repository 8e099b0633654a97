"""A TF-IDF-weighted bag of hashed n-grams, wide and deep, fused with a frozen sentence vector.

On short Chinese headlines a linear model over character and word n-gram TF-IDF is a strong
baseline, and the multilingual sentence vector adds meaning the n-grams miss. A *mean* of n-gram
embeddings (``ngram_mean``) weights "的" like a brand name and over-fits fast; this branch weights each
n-gram by its inverse document frequency in the training texts (stored with the model) and
L2-normalises the bag, so the projected bag is exactly a linear map of the TF-IDF vector a
scikit-learn ``TfidfVectorizer`` would give (binary term frequency, hashed vocabulary).

Two paths leave the branch, concatenated (Cheng et al., "Wide & Deep Learning", 2016):

- wide: the projected TF-IDF bag itself (linear in the sparse features, so the head's linear layer on
  it is a linear TF-IDF classifier);
- deep: ``ReLU(W [bag; sentence] + b)``, the interactions of the n-grams with the sentence vector.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidlens.errors import ConfigError
from vidlens.models.component import Component
from vidlens.models.registry import TEXT_BRANCHES
from vidlens.models.text_branch import NgramHasher


@TEXT_BRANCHES.register("tfidf_bag")
class TfidfTextBranch(Component):
    """TF-IDF-weighted sum of hashed n-gram embeddings (wide) plus a layer over it and the sentence
    vector (deep).

    ``x`` is the L2-normalised TF-IDF vector of the text over ``num_buckets`` hashed n-grams (binary
    term frequency, ``idf_b = ln((1 + N) / (1 + df_b)) + 1`` from the N training texts, 0 for buckets
    seen in fewer than ``min_df`` of them), ``bag = E^T x`` (``embed_dim``) and
    ``out = [ReLU(W [drop(bag); s] + b); drop(bag)]`` (``deep_dim + embed_dim``; without ``wide``
    only the first part). ``s`` is the frozen sentence vector (no gradient flows into it).

    Call :meth:`fit_statistics` with the training texts' ids before training; until then every
    bucket has idf 1 (a normalised binary bag).

    Args:
        sentence_dim: size of the frozen sentence vector (512 for multilingual USE).
        embed_dim: width of the projected bag (the wide part).
        deep_dim: width of the deep layer.
        wide: also output the projected bag itself.
        num_buckets: hashed vocabulary size (padding included).
        char_ngrams: character n-gram lengths.
        word_ngrams: jieba word n-gram lengths (empty: characters only, no jieba needed).
        max_tokens: n-gram ids kept per text.
        min_df: buckets found in fewer training texts get idf 0 (ignored, like unseen ones).
        token_dropout: in training, the probability of dropping each n-gram before weighting.
        dropout: dropout on the projected bag.

    Attributes:
        idf: ``(num_buckets,)`` buffer, saved with the weights; 0 at padding and ignored buckets.
        out_dim: output size.

    Example:
        >>> branch = TfidfTextBranch(sentence_dim=8, embed_dim=4, deep_dim=6, num_buckets=500,
        ...                          word_ngrams=())
        >>> ids = branch.tokenize(["红烧肉做法", "口红试色"])
        >>> branch.fit_statistics(ids.tolist())
        >>> branch(ids, torch.randn(2, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        sentence_dim: int = 512,
        embed_dim: int = 128,
        deep_dim: int = 128,
        wide: bool = True,
        num_buckets: int = 200_000,
        char_ngrams: Sequence[int] = (1, 2, 3),
        word_ngrams: Sequence[int] = (1, 2),
        max_tokens: int = 512,
        min_df: int = 1,
        token_dropout: float = 0.0,
        dropout: float = 0.0,
    ):
        super().__init__()
        if not 0.0 <= token_dropout < 1.0 or not 0.0 <= dropout < 1.0:
            raise ConfigError("text branch: token_dropout and dropout must be in [0, 1)")
        if min_df < 1:
            raise ConfigError(f"text branch: min_df must be at least 1, not {min_df}")
        self.sentence_dim = sentence_dim
        self.embed_dim = embed_dim
        self.deep_dim = deep_dim
        self.wide = wide
        self.num_buckets = num_buckets
        self.char_ngrams = tuple(char_ngrams)
        self.word_ngrams = tuple(word_ngrams)
        self.max_tokens = max_tokens
        self.min_df = min_df
        self.token_dropout = token_dropout
        self.dropout = dropout
        self.hasher = NgramHasher(num_buckets, self.char_ngrams, self.word_ngrams, max_tokens)
        self.embedding = nn.Embedding(num_buckets, embed_dim, padding_idx=0)
        # A normalised bag sums ~10 unit-weight rows scaled by ~1/sqrt(n): this keeps its scale ~0.1.
        nn.init.normal_(self.embedding.weight, std=0.1)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        idf = torch.ones(num_buckets)
        idf[0] = 0.0
        self.register_buffer("idf", idf)
        self.bag_dropout = nn.Dropout(dropout)
        self.deep = nn.Sequential(nn.Linear(embed_dim + sentence_dim, deep_dim), nn.ReLU())
        self.out_dim = deep_dim + (embed_dim if wide else 0)

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Hashed n-gram ids (B, L) for ``texts``, ready for ``forward``."""
        return self.hasher.batch(texts)

    @torch.no_grad()
    def fit_statistics(self, token_lists: Iterable[Sequence[int] | np.ndarray]) -> None:
        """Set ``idf`` from the training texts' n-gram ids (one sequence per text; 0 = padding).

        Raises:
            ConfigError: no texts.
        """
        df = np.zeros(self.num_buckets, np.int64)
        n = 0
        for ids in token_lists:
            unique = np.unique(np.asarray(ids, dtype=np.int64))
            df[unique[unique > 0]] += 1
            n += 1
        if n == 0:
            raise ConfigError("text branch: no training texts to compute IDF weights from")
        idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
        idf[df < self.min_df] = 0.0
        idf[0] = 0.0
        self.idf.copy_(torch.from_numpy(idf.astype(np.float32)))

    def bag_weights(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sorted ids (B, L) and their L2-normalised TF-IDF weights (B, L); repeats weigh 0."""
        ids, _ = token_ids.sort(dim=1)
        repeat = torch.zeros_like(ids, dtype=torch.bool)
        repeat[:, 1:] = ids[:, 1:] == ids[:, :-1]
        weights = self.idf[ids].masked_fill(repeat, 0.0)
        return ids, weights / weights.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def forward(self, token_ids: torch.Tensor | None, sentence: torch.Tensor) -> torch.Tensor:
        """(B, L) long ids (0 = padding; None for none) and (B, sentence_dim) -> (B, out_dim)."""
        if token_ids is None or token_ids.numel() == 0:
            bag = sentence.new_zeros(sentence.shape[0], self.embed_dim)
        else:
            if self.training and self.token_dropout > 0:
                keep = torch.rand(token_ids.shape, device=token_ids.device) >= self.token_dropout
                token_ids = token_ids * keep
            ids, weights = self.bag_weights(token_ids)
            bag = F.embedding_bag(ids, self.embedding.weight, per_sample_weights=weights, mode="sum")
        bag = self.bag_dropout(bag)
        deep = self.deep(torch.cat([bag, sentence.detach()], dim=-1))
        return torch.cat([deep, bag], dim=-1) if self.wide else deep


__all__ = ["TfidfTextBranch"]
