"""The training configuration (`vidlens train --config FILE`): data, model components by registry
name, and the training loop. TOML or YAML; every key is validated and a bad one is named.

Example (TOML)::

    name = "my-classifier"

    [data]
    source = "library"            # or "rows" with path = "titles.jsonl"
    taxonomy = "default"          # "default", "from-data" (rows only) or a taxonomy file

    [[model.modalities]]
    name = "frames"
    aggregator = { name = "netvlad", params = { num_clusters = 8, proj_dim = 256 } }

    [[model.modalities]]
    name = "title"                # a text field: sentence vector + trainable n-grams
    text_branch = { name = "tfidf_bag", token_dropout = 0.5 }   # registry TEXT_BRANCHES

    [model]
    fusion = { name = "modal_attention", params = { hidden_dim = 128 } }
    head = { name = "hmc" }
    modal_dropout = 0.1

    [train]
    epochs = 30
    patience = 5
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vidlens.classify.dataset import Kind
from vidlens.errors import ConfigError, NotFoundError
from vidlens.models import ComponentSpec
from vidlens.models.multimodal_classifier import check_modality_name


class SplitConfig(BaseModel):
    """Fixed, seeded split of the labelled items (saved with the model by id)."""

    model_config = ConfigDict(extra="forbid")

    val: float = Field(0.1, ge=0.0, lt=1.0, description="share for validation (early stopping, choices)")
    test: float = Field(0.1, ge=0.0, lt=1.0, description="share held out for `vidlens evaluate`")
    seed: int = 0


class DataConfig(BaseModel):
    """Where the labelled data comes from."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["library", "rows"] = "library"
    path: str | None = Field(None, description="rows file (.jsonl/.json/.csv) for source 'rows'")
    fields: dict[str, list[str]] = Field(
        default_factory=dict, description="rows: modality -> columns joined as its text"
    )
    labels: list[str] = Field(default_factory=lambda: ["labels"], description="rows: label columns, L1 first")
    id_field: str = "id"
    taxonomy: str = Field("default", description="'default' (for source 'library': the library's own "
                          "taxonomy.yaml when it has one; otherwise the shipped tree), 'from-data' (rows) or a "
                          "taxonomy file")
    text_encoder: str = Field("muse_v3", description="rows: registry name of the text encoder")
    cache_dir: str | None = Field(None, description="rows: folder caching text embeddings")
    skip_bad_labels: bool = False
    skip_unusable: bool = False
    max_steps: int = Field(32, ge=1, description="longest sequence fed to an aggregator (evenly sampled)")
    split: SplitConfig = Field(default_factory=SplitConfig)

    @model_validator(mode="after")
    def _rows_need_path(self) -> DataConfig:
        if self.source == "rows" and not self.path:
            raise ValueError("source 'rows' needs a path")
        if self.taxonomy == "from-data" and self.source != "rows":
            raise ValueError("taxonomy 'from-data' is only for source 'rows'")
        return self


class ModalityInput(BaseModel):
    """One model input: which feature, how it is pooled, and its text branch.

    ``dim`` comes from the data. ``kind`` defaults from the feature (frames/audio: sequence; cover:
    vector; text fields: text). For source 'rows' the modality's text comes from ``data.fields``.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    feature: str | None = None
    kind: Kind | None = None
    aggregator: ComponentSpec = Field(default_factory=lambda: ComponentSpec(name="mean"))
    guide: str | None = None
    text_branch: dict[str, Any] = Field(default_factory=dict)
    project_dim: int | None = Field(None, gt=0)

    _identifier = field_validator("name")(check_modality_name)


class ModelSection(BaseModel):
    """The classifier: modalities, fusion, head (registry names), robustness options."""

    model_config = ConfigDict(extra="forbid")

    modalities: list[ModalityInput] = Field(min_length=1)
    fusion: ComponentSpec = Field(default_factory=lambda: ComponentSpec(name="concat"))
    head: ComponentSpec = Field(default_factory=lambda: ComponentSpec(name="hmc"))
    modal_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    aux_loss_weight: float = Field(0.0, ge=0.0)


class TrainingLoop(BaseModel):
    """Optimisation and early stopping."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(30, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    sparse_lr: float | None = Field(
        None, gt=0, description="train the text branches' n-gram embedding tables by plain SGD at this "
        "learning rate (same schedule as lr) instead of AdamW: SGD moves an n-gram's row in proportion to "
        "its gradient, whereas Adam moves every row that gets any gradient by about lr, which memorises "
        "rare n-grams")
    sparse_weight_decay: float = Field(0.0, ge=0, description="with sparse_lr: L2 penalty on those tables")
    patience: int = Field(5, ge=1, description="epochs without validation gain before stopping")
    metric: Literal["l2_accuracy", "l1_accuracy", "l2_macro_f1", "loss"] = "l2_accuracy"
    seed: int = 0
    threads: int = Field(
        1, ge=1, description="torch threads; 1 is fastest for these small models on shared cores (measured)"
    )
    grad_clip: float = Field(5.0, gt=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    eval_batch_size: int = Field(512, ge=1)
    zero_shot_blend: bool = Field(
        False, description="after training, mix the zero-shot classifier's confidences (category names "
        "against the text fields) into the model's, (1 - a) * model + a * zero-shot, with a in 0, 0.1, ..., "
        "0.9 chosen on the validation split by the selection metric (0 when mixing does not help); for "
        "taxonomies whose classes have few examples, which zero-shot knows by name")
    prototypes: bool = Field(
        False, description="with zero_shot_blend: each category's vector also takes in its training examples' "
        "text vectors, normalise(w * name + sum of examples), a nearest-prototype classifier whose prior is the "
        "category's description; w in 1, 2, 3, the parent's weight in 0.5, 1, 2 and the mixing share in 0, "
        "0.1, ..., 1 are chosen together on the validation split")
    decoding: Literal["joint", "top_down", "auto"] = Field(
        "joint", description="how predictions are read from the confidences: 'joint' (the most confident "
        "(L1, L2) pair), 'top_down' (the L1 whose children hold the most confidence together, then its best "
        "child; maximises expected L1 accuracy) or 'auto' (the better of the two on the validation split by "
        "the selection metric, chosen together with the zero-shot blend; ties go to 'joint')")


class TrainConfig(BaseModel):
    """A whole training run; ``vidlens train --config FILE`` reads it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("classifier", pattern=r"^[\w.\-]+$")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelSection
    train: TrainingLoop = Field(default_factory=TrainingLoop)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "training config") -> TrainConfig:
        """Validate a plain dict.

        Raises:
            ConfigError: naming the first bad key, e.g. ``model.modalities.0.name``.
        """
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise ConfigError(f"{where}: {loc}: {first['msg']}") from None

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a ``.toml``, ``.yaml``/``.yml`` or ``.json`` file. A relative ``data.path``,
        ``data.cache_dir`` or taxonomy file is taken relative to the config file's folder.

        Raises:
            NotFoundError: no such file.
            ConfigError: unreadable or invalid (the key is named).
        """
        path = Path(path)
        if not path.is_file():
            raise NotFoundError(f"{path}: training config not found")
        text = path.read_text(encoding="utf-8")
        suffix = path.suffix.lower()
        try:
            if suffix == ".toml":
                data = tomllib.loads(text)
            elif suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            elif suffix == ".json":
                data = json.loads(text)
            else:
                raise ConfigError(f"{path}: unknown config format {suffix!r} (use .toml, .yaml or .json)")
        except (tomllib.TOMLDecodeError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot parse: {exc}") from None
        except Exception as exc:  # yaml.YAMLError without importing yaml at module level
            if type(exc).__module__.startswith("yaml"):
                raise ConfigError(f"{path}: cannot parse: {exc}") from None
            raise
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        config = cls.from_dict(data, where=str(path))
        base = path.resolve().parent
        data_cfg = config.data
        updates: dict[str, Any] = {}
        if data_cfg.path and not Path(data_cfg.path).is_absolute():
            updates["path"] = str(base / data_cfg.path)
        if data_cfg.cache_dir and not Path(data_cfg.cache_dir).is_absolute():
            updates["cache_dir"] = str(base / data_cfg.cache_dir)
        if data_cfg.taxonomy not in ("default", "from-data") and not Path(data_cfg.taxonomy).is_absolute():
            updates["taxonomy"] = str(base / data_cfg.taxonomy)
        if updates:
            config = config.model_copy(update={"data": data_cfg.model_copy(update=updates)})
        return config

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (saved with the model)."""
        return self.model_dump(mode="json")


__all__ = ["DataConfig", "ModalityInput", "ModelSection", "SplitConfig", "TrainConfig", "TrainingLoop"]
