"""The structure of the tag library: tag kinds, the atomic-tag taxonomy and the phrase-tag dimensions.

An *atomic* tag cannot be split further (``连衣裙``, ``成都``); a *phrase* tag is made of atomic tags
(``白色连衣裙``, ``成都美食攻略``). Atomic tags are classified in a tree whose eight top classes are time,
place, person/animal/plant, event, object, IP, organisation and number; a class is written as a path,
``place/city``. Phrase tags are described along four independent dimensions, each with two values.
"""

from __future__ import annotations

from vidlens.errors import ConfigError

TAG_KINDS = ("atomic", "phrase")
TAG_STATUSES = ("candidate", "approved", "rejected")

ATOMIC_TAXONOMY: dict[str, dict[str, tuple[str, ...]]] = {
    "time": {
        "date": ("day", "month", "year"),
        "season": (),
        "festival": (),
        "period": ("era", "time_of_day"),
    },
    "place": {
        "country": (),
        "province": (),
        "city": (),
        "district": (),
        "scenic_spot": (),
        "venue": ("shop", "restaurant", "school", "hospital"),
    },
    "living": {  # person / animal / plant
        "person": ("celebrity", "athlete", "creator", "role", "occupation", "audience"),
        "animal": ("pet", "wild_animal"),
        "plant": ("flower", "tree"),
        "character": (),
    },
    "event": {
        "activity": ("sport", "travel", "cooking", "makeup", "outfit", "game_play"),
        "news_event": (),
        "competition": (),
        "ceremony": (),
    },
    "object": {
        "clothing": ("dress", "shoes", "accessory"),
        "food": ("dish", "ingredient", "drink"),
        "electronics": (),
        "cosmetics": (),
        "vehicle": (),
        "furniture": (),
        "style": ("color", "material", "aesthetic"),
    },
    "ip": {
        "film_tv": (),
        "game": (),
        "anime": (),
        "music": (),
        "book": (),
    },
    "organisation": {
        "company": (),
        "brand": (),
        "team": (),
        "institution": (),
        "media": (),
    },
    "number": {
        "quantity": (),
        "price": (),
        "measure": (),
        "rank": (),
    },
}
"""Top class → second-level class → third-level classes (8 top classes, 40 second-level, 44 third-level)."""

PHRASE_DIMENSIONS: dict[str, tuple[str, str]] = {
    "target": ("content", "product"),
    "lifetime": ("trending", "long_term"),
    "perspective": ("audience_interest", "video_content"),
    "form": ("question", "statement"),
}
"""Phrase-tag dimension → its two values: content vs product, trending vs long-term, audience interest vs
video content, question vs statement."""

_QUESTION_MARKERS = ("?", "？", "怎么", "如何", "为什么", "什么", "哪里", "哪个", "多少", "吗", "呢", "是否")


def atomic_classes() -> list[str]:
    """Every class path of the atomic taxonomy, top classes first (``time``, ``time/date``, ``time/date/day``…)."""
    out: list[str] = []
    for top, seconds in ATOMIC_TAXONOMY.items():
        out.append(top)
        for second, thirds in seconds.items():
            out.append(f"{top}/{second}")
            out.extend(f"{top}/{second}/{third}" for third in thirds)
    return out


_CLASS_SET = frozenset(atomic_classes())


def validate_atomic_class(path: str | None) -> str | None:
    """Check an atomic class path; ``None`` or ``""`` means unclassified.

    Raises:
        ConfigError: the path is not in :data:`ATOMIC_TAXONOMY`; the message lists the top classes.
    """
    if not path:
        return None
    path = path.strip().strip("/").lower()
    if path not in _CLASS_SET:
        raise ConfigError(
            f"unknown atomic tag class {path!r}; classes are paths under {', '.join(ATOMIC_TAXONOMY)} "
            "(e.g. 'place/city'); see vidlens.tags.atomic_classes()"
        )
    return path


def validate_dimensions(dimensions: dict[str, str] | None) -> dict[str, str]:
    """Check phrase-tag dimension values, e.g. ``{"target": "product", "form": "question"}``.

    Raises:
        ConfigError: an unknown dimension or value; the message names it and the allowed values.
    """
    out: dict[str, str] = {}
    for key, value in (dimensions or {}).items():
        if key not in PHRASE_DIMENSIONS:
            raise ConfigError(f"unknown phrase dimension {key!r}; dimensions: {', '.join(PHRASE_DIMENSIONS)}")
        if value not in PHRASE_DIMENSIONS[key]:
            raise ConfigError(
                f"phrase dimension {key!r} takes {' or '.join(PHRASE_DIMENSIONS[key])}, not {value!r}"
            )
        out[key] = value
    return out


def guess_form(name: str) -> str:
    """``question`` when a phrase reads as a question (``怎么``, ``如何``, ``?``…), else ``statement``."""
    return "question" if any(m in name for m in _QUESTION_MARKERS) else "statement"


__all__ = [
    "ATOMIC_TAXONOMY",
    "PHRASE_DIMENSIONS",
    "TAG_KINDS",
    "TAG_STATUSES",
    "atomic_classes",
    "guess_form",
    "validate_atomic_class",
    "validate_dimensions",
]
