"""A named registry of model components, so configs and the CLI can refer to them by name.

Example:
    >>> AGGREGATORS.list()  # doctest: +SKIP
    ['attention_lstm', 'max', 'mean', 'netvlad', 'nextvlad']
    >>> pool = AGGREGATORS.create("mean", in_dim=8)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from vidlens.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps short names to component classes of one kind (aggregator, fusion, head, loss).

    Args:
        kind: what the registered things are, used in error messages ("aggregator").
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator that registers a class under ``name`` and sets its ``registry_name``."""

        def decorate(cls: type[T]) -> type[T]:
            if name in self._entries and self._entries[name] is not cls:
                raise ConfigError(
                    f"{self.kind} name {name!r} is already registered by {self._entries[name]!r}"
                )
            self._entries[name] = cls
            cls.registry_name = name  # type: ignore[attr-defined]
            cls.registry_kind = self.kind  # type: ignore[attr-defined]
            return cls

        return decorate

    def get(self, name: str) -> type[T]:
        """The class registered under ``name``.

        Raises:
            ConfigError: no such name; the message lists the available names.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; available: {', '.join(self.list()) or '(none)'}"
            ) from None

    def create(self, name: str, /, **params: Any) -> T:
        """Build the component registered under ``name`` with keyword ``params``.

        Raises:
            ConfigError: unknown name, a parameter the component does not take, or a required
                parameter missing; the message names the key.
        """
        cls = self.get(name)
        signature = inspect.signature(cls.__init__)
        accepted = {
            p.name
            for p in list(signature.parameters.values())[1:]
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        unknown = sorted(set(params) - accepted)
        if unknown:
            raise ConfigError(
                f"{self.kind} {name!r} has no parameter {unknown[0]!r}; "
                f"it takes: {', '.join(sorted(accepted))}"
            )
        missing = sorted(
            p.name
            for p in list(signature.parameters.values())[1:]
            if p.name in accepted and p.default is p.empty and p.name not in params
        )
        if missing:
            raise ConfigError(f"{self.kind} {name!r} needs parameter {missing[0]!r}")
        return cls(**params)

    def list(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.list()})"


AGGREGATORS: Registry = Registry("aggregator")
FUSIONS: Registry = Registry("fusion")
HEADS: Registry = Registry("head")
LOSSES: Registry = Registry("loss")
TEXT_BRANCHES: Registry = Registry("text branch")

__all__ = ["AGGREGATORS", "FUSIONS", "HEADS", "LOSSES", "TEXT_BRANCHES", "Registry"]
