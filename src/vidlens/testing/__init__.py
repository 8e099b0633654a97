"""Helpers for testing vidlens and for demos: synthetic clips made with ffmpeg and espeak-ng.

See :mod:`vidlens.testing.clips`.
"""

from vidlens.testing.clips import has_encoder, make_clip, make_image, make_sample_set, require_tools

__all__ = ["has_encoder", "make_clip", "make_image", "make_sample_set", "require_tools"]
