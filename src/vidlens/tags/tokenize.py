"""Chinese (and mixed Latin) tokenisation shared by decomposition, mining and matching: jieba words,
split into punctuation-free segments, with a small list of function words that never start or end a tag."""

from __future__ import annotations

import functools
import logging
import re

from vidlens.errors import MissingDependencyError

JIEBA_PIP_LINE = "pip install jieba==0.42.1"

# Characters that end a segment: a tag never spans them.
_SEGMENT_BREAK = re.compile(r"[\s,，.。!！?？;；:：、/\\|()（）\[\]【】{}<>《》「」『』\"“”'‘’~～#@&*+=^`…—\-_·•]+")
_HAS_WORD = re.compile(r"[0-9a-z\u3400-\u9fff]")
_CJK = re.compile(r"[\u3400-\u9fff]")

FUNCTION_WORDS = frozenset(
    "的 了 着 过 和 与 及 或 是 在 有 也 都 就 还 又 很 太 最 更 被 把 给 让 从 向 对 为 于 以 而 但 却 "
    "吗 呢 吧 啊 呀 哦 嘛 啦 么 之 其 这 那 这个 那个 这些 那些 一个 一些 我 你 他 她 它 我们 你们 他们 "
    "她们 自己 什么 怎么 怎样 如何 为什么 哪 哪里 多少 几 个 中 上 下 里 后 前 时 会 能 要 想 说 去 来 "
    "到 得 地 不 没 没有 可以 已经 正在 将 却 并 等 等等 之后 之前 以及 因为 所以 如果 虽然 但是 然后 "
    "还是 就是 只是 真的 一下 一起 竟然 居然 终于 这样 那样 如此 这么 那么 今天 现在 一 再 才 第".split()
)


@functools.lru_cache(maxsize=1)
def _jieba():
    try:
        import jieba
    except ImportError:
        raise MissingDependencyError("Chinese word segmentation", JIEBA_PIP_LINE) from None
    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def segments(text: str) -> list[str]:
    """Split (already normalised) text at punctuation and spaces into pieces a tag cannot cross."""
    return [s for s in _SEGMENT_BREAK.split(text) if s]


def words(text: str, hmm: bool = True) -> list[str]:
    """jieba words of one segment (no punctuation inside). ``hmm`` lets jieba guess unseen words."""
    return [w for w in _jieba().lcut(text, HMM=hmm) if w.strip()]


def tokenize(text: str, hmm: bool = True) -> list[list[str]]:
    """Normalised text → segments → jieba words: a list of word lists, one per segment."""
    return [ws for seg in segments(text) if (ws := words(seg, hmm=hmm))]


def is_function_word(word: str) -> bool:
    """Whether ``word`` is a function word (particle, pronoun, conjunction…) that cannot edge a tag."""
    return word in FUNCTION_WORDS


def has_word_char(text: str) -> bool:
    """Whether ``text`` holds at least one letter, digit or CJK character (after normalisation)."""
    return _HAS_WORD.search(text) is not None


def is_cjk(text: str) -> bool:
    """Whether ``text`` holds a CJK ideograph."""
    return _CJK.search(text) is not None


__all__ = ["FUNCTION_WORDS", "has_word_char", "is_cjk", "is_function_word", "segments", "tokenize", "words"]
