"""Tag miners, by name (:data:`MINERS`): ``autophrase`` (quality phrases, distant training from approved
tags), ``pattern`` (frequent tag-combination patterns matched back into the corpus) and ``trending``
(weekly deltas). Each proposes :class:`MinedPhrase` objects that enter the library as candidates."""

from vidlens.tags.miners.autophrase import QualityPhraseMiner
from vidlens.tags.miners.base import MINERS, MinedPhrase, PhraseMiner
from vidlens.tags.miners.pattern import PatternMiner
from vidlens.tags.miners.trending import TrendingPhraseMiner

__all__ = ["MINERS", "MinedPhrase", "PatternMiner", "PhraseMiner", "QualityPhraseMiner", "TrendingPhraseMiner"]
