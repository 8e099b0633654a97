"""The base of every registered model component: explicit parameters and a folder round trip.

A component keeps each ``__init__`` argument as an attribute of the same name (scikit-learn style), so
``get_params()`` can read them back, and ``save(folder)`` / ``load_component(folder)`` rebuild it exactly:
``component.json`` holds the registry kind, name and parameters, ``weights.safetensors`` the tensors.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from torch import nn

from vidlens.errors import ConfigError, MissingDependencyError, NotFoundError

CONFIG_FILE = "component.json"
WEIGHTS_FILE = "weights.safetensors"


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


class Component(nn.Module):
    """An ``nn.Module`` built from explicit keyword parameters and registered under a name.

    Subclasses store every ``__init__`` argument under the same attribute name. ``registry_name`` and
    ``registry_kind`` are set by ``Registry.register``.
    """

    registry_name: str = ""
    registry_kind: str = ""

    def get_params(self) -> dict[str, Any]:
        """The keyword parameters this component was built with, as JSON-ready values."""
        signature = inspect.signature(type(self).__init__)
        params = {}
        for name in list(signature.parameters)[1:]:
            if not hasattr(self, name):
                raise AttributeError(f"{type(self).__name__} does not keep its parameter {name!r}")
            params[name] = _jsonable(getattr(self, name))
        return params

    def save(self, folder: str | Path) -> None:
        """Write ``component.json`` and ``weights.safetensors`` into ``folder`` (created if needed)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        spec = {"kind": self.registry_kind, "name": self.registry_name, "params": self.get_params()}
        (folder / CONFIG_FILE).write_text(json.dumps(spec, ensure_ascii=False, indent=2), encoding="utf-8")
        save_weights(self, folder / WEIGHTS_FILE)


def save_weights(module: nn.Module, path: str | Path) -> None:
    """Save a module's ``state_dict`` as safetensors."""
    safetensors_torch = _safetensors()
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    safetensors_torch.save_file(state, str(path))


def load_weights(module: nn.Module, path: str | Path) -> None:
    """Load safetensors weights into ``module``; every key must match."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{path}: weights file not found")
    state = _safetensors().load_file(str(path))
    module.load_state_dict(state, strict=True)


def load_component(folder: str | Path) -> Component:
    """Rebuild a component saved with ``Component.save``.

    Raises:
        NotFoundError: the folder has no ``component.json``.
        ConfigError: the saved kind or name is not registered.
    """
    from vidlens.models.registry import AGGREGATORS, FUSIONS, HEADS, LOSSES, TEXT_BRANCHES

    folder = Path(folder)
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise NotFoundError(f"{folder}: no {CONFIG_FILE}; not a saved component")
    spec = json.loads(config_path.read_text(encoding="utf-8"))
    registries = {r.kind: r for r in (AGGREGATORS, FUSIONS, HEADS, LOSSES, TEXT_BRANCHES)}
    if spec.get("kind") not in registries:
        raise ConfigError(f"{config_path}: unknown component kind {spec.get('kind')!r}")
    component = registries[spec["kind"]].create(spec["name"], **spec["params"])
    load_weights(component, folder / WEIGHTS_FILE)
    return component


def _safetensors():
    try:
        import safetensors.torch as safetensors_torch
    except ImportError:
        raise MissingDependencyError("saving model weights", "pip install safetensors") from None
    return safetensors_torch


__all__ = ["Component", "load_component", "load_weights", "save_weights"]
