"""Tags: the tag library, tag mining, and recall → rank video tagging with a feedback loop.

- :class:`TagLibrary` (``library``): tags in the metadata DB with kinds, atomic taxonomy, phrase
  dimensions, aliases, links, review status, counts and a versioned history (diff, rollback),
  import/export; :func:`normalize_tag` gives the key tags are compared by.
- ``miners``: :class:`QualityPhraseMiner` (AutoPhrase-style), :class:`PatternMiner`,
  :class:`TrendingPhraseMiner`, registered in :data:`MINERS`.
- ``recall``: recall channels (:data:`RECALL_CHANNELS`: ``content_text``, ``product_text``, ``query``,
  ``cross_modal``, ``similar_videos``) over a :class:`VideoDoc`; ``ranker``: :data:`RANKERS`
  (``zero_shot``, ``late_fusion``, ``attention_fusion``); ``tagger``: :class:`Tagger` (recall → rank →
  :class:`TagSelector`) and :func:`evaluate`; ``feedback``: :func:`ingest_clicks`, :func:`retrain`.
"""

from vidlens.tags.errors import TagError
from vidlens.tags.feedback import FeedbackReport, clicked_tags, ingest_clicks, retrain
from vidlens.tags.library import ImportReport, TagLibrary
from vidlens.tags.matcher import TagMatch, TagMatcher
from vidlens.tags.miners import MINERS, MinedPhrase, PatternMiner, QualityPhraseMiner, TrendingPhraseMiner
from vidlens.tags.normalize import MAX_TAG_CHARS, normalize_tag, normalize_text
from vidlens.tags.ranker import RANKERS, TagRanker, load_ranker
from vidlens.tags.recall import RECALL_CHANNELS, Candidate, RecallChannel, TaggingContext, VideoDoc
from vidlens.tags.tagger import Tagger, TagSelector, evaluate
from vidlens.tags.taxonomy import ATOMIC_TAXONOMY, PHRASE_DIMENSIONS, atomic_classes

__all__ = [
    "ATOMIC_TAXONOMY",
    "MAX_TAG_CHARS",
    "MINERS",
    "PHRASE_DIMENSIONS",
    "RANKERS",
    "RECALL_CHANNELS",
    "Candidate",
    "FeedbackReport",
    "ImportReport",
    "MinedPhrase",
    "PatternMiner",
    "QualityPhraseMiner",
    "RecallChannel",
    "TagError",
    "TagLibrary",
    "TagMatch",
    "TagMatcher",
    "TagRanker",
    "TagSelector",
    "Tagger",
    "TaggingContext",
    "TrendingPhraseMiner",
    "VideoDoc",
    "atomic_classes",
    "clicked_tags",
    "evaluate",
    "ingest_clicks",
    "load_ranker",
    "normalize_tag",
    "normalize_text",
    "retrain",
]
