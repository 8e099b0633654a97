"""vidlens: multimodal short-video understanding.

The public face is small::

    import vidlens
    lib = vidlens.open("mylib/")
    lib.ingest("videos/")
    lib.extract()
    lib.classify()          # L1/L2 categories (zero-shot until a model is trained)
    lib.search("做红烧肉")   # text -> video
    lib.similar(video_id); lib.dedup(); lib.tag()

Inside, in data-flow order: ``media`` decodes, ``ingest`` takes files in, ``store`` keeps rows and
features, ``encoders`` turn media into features, ``features`` runs extraction, ``models`` and
``classify`` categorise, ``index`` and ``retrieval`` search, ``tags`` tag, ``service`` serves HTTP.
"""

from vidlens.config import VidlensConfig, load_config
from vidlens.errors import ConfigError, IngestError, MediaError, NotFoundError, VidlensError
from vidlens.library import Library, open_library

__version__ = "0.1.0"


def open(path, *, create=True, config_file=None, overrides=None) -> Library:
    """Open (or create) a library folder. See :func:`vidlens.library.open_library`."""
    return open_library(path, create=create, config_file=config_file, overrides=overrides)


__all__ = [
    "ConfigError",
    "IngestError",
    "Library",
    "MediaError",
    "NotFoundError",
    "VidlensConfig",
    "VidlensError",
    "__version__",
    "load_config",
    "open",
]
