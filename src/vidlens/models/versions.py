"""Encoder-version bookkeeping: a model refuses features made by other encoders than it was trained on."""

from __future__ import annotations

from collections.abc import Mapping

from vidlens.errors import VidlensError


class ModelVersionError(VidlensError):
    """Features come from encoder names or versions other than those a model was trained on.

    Attributes:
        differences: encoder name -> (version the model expects, version given or None).
    """

    def __init__(self, what: str, differences: dict[str, tuple[str, str | None]]):
        self.differences = differences
        parts = [
            f"{name}: model trained on {want!r}, features {'lack it' if got is None else f'from {got!r}'}"
            for name, (want, got) in sorted(differences.items())
        ]
        super().__init__(f"{what} refuses these features; re-extract them or retrain: " + "; ".join(parts))


def check_encoder_versions(
    expected: Mapping[str, str], given: Mapping[str, str], what: str = "model"
) -> None:
    """Raise ``ModelVersionError`` unless each encoder in ``expected`` is in ``given`` with the same version.

    Encoders in ``given`` that the model does not use are ignored.
    """
    differences = {
        name: (want, given.get(name)) for name, want in expected.items() if given.get(name) != want
    }
    if differences:
        raise ModelVersionError(what, differences)


__all__ = ["ModelVersionError", "check_encoder_versions"]
