"""Features: the FeatureSet of a video and the extraction run that fills it."""

from vidlens.features.extract import Extractor, ExtractReport, ExtractTask, VideoOutcome, video_texts
from vidlens.features.featureset import ALL_FEATURES, MODALITY_FEATURES, FeatureSet, features_for

__all__ = ["ALL_FEATURES", "MODALITY_FEATURES", "ExtractReport", "ExtractTask", "Extractor", "FeatureSet",
           "VideoOutcome", "features_for", "video_texts"]
