"""The video classifier: per-modality aggregation -> fusion -> head, configured by component names.

Input batches are flat dicts of tensors, keyed by modality name ``m``:

- ``m``: ``(B, T, D)`` for a "sequence" modality (frames, audio blocks), ``(B, D)`` for a "vector"
  modality (cover, product text vector) and the sentence vector ``(B, sentence_dim)`` for a "text"
  modality (title, OCR, ASR);
- ``m.mask``: ``(B, T)`` bool, valid steps of a sequence (default: all valid);
- ``m.present``: ``(B,)`` bool, whether the video has this modality at all (default: a sequence with
  at least one valid step, otherwise True); a modality missing from the batch is absent everywhere;
- ``m.tokens``: ``(B, L)`` long hashed n-gram ids of a text modality (its text branch's ``tokenize``).

Targets: ``l2`` (B,) long, optionally ``l1`` (B,) and ``labels`` (B, C2) multi-hot.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from torch import nn

from vidlens.errors import ConfigError, NotFoundError
from vidlens.models.aggregators.base import Aggregator
from vidlens.models.component import load_weights, save_weights
from vidlens.models.fusion.base import Fusion
from vidlens.models.heads.base import Head
from vidlens.models.modal_dropout import modal_dropout
from vidlens.models.registry import AGGREGATORS, FUSIONS, HEADS, TEXT_BRANCHES
from vidlens.models.versions import check_encoder_versions

if TYPE_CHECKING:
    from vidlens.taxonomy import Taxonomy

MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
TAXONOMY_FILE = "taxonomy.json"
FORMAT = "vidlens.multimodal_classifier"
FORMAT_VERSION = 1
DEFAULT_TEXT_BRANCH = "ngram_mean"



def check_modality_name(value: str) -> str:
    """A modality name must be a Python identifier (it names sub-modules and config keys)."""
    if not value.isidentifier():
        raise ValueError(f"modality name {value!r} must be a Python identifier")
    return value

class ComponentSpec(BaseModel):
    """A registered component by name, with its keyword parameters (the classifier fills in sizes)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class ModalityConfig(BaseModel):
    """One input modality.

    Attributes:
        name: key of the modality in input batches; a Python identifier ("frames", "audio", "title").
        dim: feature size D of its steps or vector (for "text": the sentence vector size).
        kind: "sequence" (B, T, D) pooled by ``aggregator``; "vector" (B, D) used as is; "text" (B, D)
            sentence vector plus n-gram ids through a text branch.
        aggregator: for "sequence", the aggregator (``in_dim`` and ``guide_dim`` are filled in).
        guide: for a guided aggregator (``attention_lstm``), the modality whose vector steers attention.
        text_branch: for "text", the text branch: ``name`` (registry ``TEXT_BRANCHES``: "ngram_mean",
            the default, or "tfidf_bag") and its parameters in the same mapping (``sentence_dim`` is
            filled in).
        project_dim: optional ReLU linear layer after aggregation, to this size.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    dim: int = Field(gt=0)
    kind: Literal["sequence", "vector", "text"] = "sequence"
    aggregator: ComponentSpec = Field(default_factory=lambda: ComponentSpec(name="mean"))
    guide: str | None = None
    text_branch: dict[str, Any] = Field(default_factory=dict)
    project_dim: int | None = Field(default=None, gt=0)

    _identifier = field_validator("name")(check_modality_name)


class MultimodalClassifierConfig(BaseModel):
    """Everything needed to rebuild a ``MultimodalClassifier`` (weights aside).

    Attributes:
        modalities: the inputs, in a fixed order.
        fusion: fusion component (``in_dims`` is filled in).
        head: head component (``in_dim``, ``l2_to_l1`` and ``num_l1`` are filled in).
        l2_to_l1: parent L1 index of each L2 class (``Taxonomy.l2_to_l1``).
        num_l1: number of L1 classes; defaults to ``max(l2_to_l1) + 1``.
        modal_dropout: probability of hiding each modality of each training sample.
        aux_loss_weight: weight of the per-modality auxiliary L2 classifiers' loss (Youku's cure for
            a "lazy" model that leans on one modality); 0 disables them.
    """

    model_config = ConfigDict(extra="forbid")

    modalities: list[ModalityConfig] = Field(min_length=1)
    fusion: ComponentSpec = Field(default_factory=lambda: ComponentSpec(name="concat"))
    head: ComponentSpec = Field(default_factory=lambda: ComponentSpec(name="hmc"))
    l2_to_l1: list[int] = Field(min_length=1)
    num_l1: int | None = None
    modal_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    aux_loss_weight: float = Field(default=0.0, ge=0.0)

    @model_validator(mode="after")
    def _consistent(self) -> MultimodalClassifierConfig:
        names = [m.name for m in self.modalities]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"modality {duplicates[0]!r} is listed twice")
        for m in self.modalities:
            if m.guide is not None:
                if m.guide not in names:
                    raise ValueError(f"modality {m.name!r}: guide {m.guide!r} is not a modality")
                guide = next(g for g in self.modalities if g.name == m.guide)
                if guide.kind == "sequence" or m.kind != "sequence":
                    raise ValueError(
                        f"modality {m.name!r}: a guide must be a vector or text modality steering a sequence"
                    )
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MultimodalClassifierConfig:
        """Validate a plain dict (from JSON/YAML).

        Raises:
            ConfigError: naming the first bad key, e.g. ``modalities.0.dim``.
        """
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(config)"
            raise ConfigError(f"classifier config: {where}: {first['msg']}") from None


def _get(registry, spec: ComponentSpec, where: str) -> type:
    try:
        return registry.get(spec.name)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _create(registry, spec: ComponentSpec, where: str, **fixed: Any):
    clash = sorted(set(spec.params) & set(fixed))
    if clash:
        raise ConfigError(f"{where}: parameter {clash[0]!r} is set by the classifier; remove it from params")
    try:
        return registry.create(spec.name, **spec.params, **fixed)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


class MultimodalClassifier(nn.Module):
    """Classifies videos into a two-level taxonomy from any mix of modalities.

    Per modality: aggregator (sequences) or text branch (text), optional projection; then fusion,
    then head. Training adds modal dropout and, optionally, per-modality auxiliary heads. Absent
    modalities are tracked by presence masks all the way into the fusion.

    Args:
        config: the architecture.
        encoder_versions: encoder name -> version of the features it is trained on; ``check_features``
            and ``load`` refuse features from other versions.
        taxonomy: optional taxonomy whose ``l2_to_l1`` must match ``config``; saved with the model.

    Example:
        >>> config = MultimodalClassifierConfig(
        ...     modalities=[
        ...         ModalityConfig(name="frames", dim=16),
        ...         ModalityConfig(name="title", dim=8, kind="vector"),
        ...     ],
        ...     fusion=ComponentSpec(name="modal_attention", params={"hidden_dim": 8}),
        ...     head=ComponentSpec(name="hmc"), l2_to_l1=[0, 0, 1])
        >>> model = MultimodalClassifier(config, encoder_versions={"frames": "effnet-lite0@1"})
        >>> out = model({"frames": torch.randn(2, 5, 16), "title": torch.randn(2, 8)})
        >>> model.decode(out)["l2_pred"].shape
        torch.Size([2])
    """

    def __init__(
        self,
        config: MultimodalClassifierConfig,
        encoder_versions: dict[str, str] | None = None,
        taxonomy: Taxonomy | None = None,
    ):
        super().__init__()
        self.config = config
        self.encoder_versions = dict(encoder_versions or {})
        self.taxonomy = taxonomy
        if taxonomy is not None:
            parents = [int(v) for v in taxonomy.l2_to_l1]
            if parents != config.l2_to_l1 or (config.num_l1 not in (None, taxonomy.num_l1)):
                raise ConfigError("classifier config: l2_to_l1/num_l1 do not match the given taxonomy")
        self.aggregators = nn.ModuleDict()
        self.text_branches = nn.ModuleDict()
        self.projections = nn.ModuleDict()
        out_dims: dict[str, int] = {}
        # Guides must be computed before the sequences they steer.
        self._order = sorted(config.modalities, key=lambda m: m.guide is not None)
        for m in self._order:
            where = f"modalities.{m.name}"
            if m.kind == "sequence":
                fixed: dict[str, Any] = {"in_dim": m.dim}
                if m.guide is not None:
                    if not getattr(
                        _get(AGGREGATORS, m.aggregator, f"{where}.aggregator"), "accepts_guide", False
                    ):
                        raise ConfigError(f"{where}.guide: aggregator {m.aggregator.name!r} takes no guide")
                    fixed["guide_dim"] = out_dims[m.guide]
                agg: Aggregator = _create(AGGREGATORS, m.aggregator, f"{where}.aggregator", **fixed)
                self.aggregators[m.name] = agg
                width = agg.out_dim
            elif m.kind == "text":
                params = dict(m.text_branch)
                spec = ComponentSpec(name=params.pop("name", DEFAULT_TEXT_BRANCH), params=params)
                branch = _create(TEXT_BRANCHES, spec, f"{where}.text_branch", sentence_dim=m.dim)
                self.text_branches[m.name] = branch
                width = branch.out_dim
            else:
                width = m.dim
            if m.project_dim:
                self.projections[m.name] = nn.Sequential(nn.Linear(width, m.project_dim), nn.ReLU())
                width = m.project_dim
            out_dims[m.name] = width
        self.modality_dims = {m.name: out_dims[m.name] for m in config.modalities}
        self.fusion: Fusion = _create(FUSIONS, config.fusion, "fusion", in_dims=self.modality_dims)
        self.head: Head = _create(
            HEADS,
            config.head,
            "head",
            in_dim=self.fusion.out_dim,
            l2_to_l1=config.l2_to_l1,
            num_l1=config.num_l1,
        )
        num_l2 = len(config.l2_to_l1)
        self.aux_heads = nn.ModuleDict(
            {m: nn.Linear(d, num_l2) for m, d in self.modality_dims.items()}
            if config.aux_loss_weight > 0
            else {}
        )

    # ---- forward -------------------------------------------------------------------------------

    def presence(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-modality (B,) bool presence, from ``m.present``, a sequence's mask, or the batch keys."""
        size = _batch_size(batch)
        device = next(self.parameters()).device
        present = {}
        for m in self.config.modalities:
            if f"{m.name}.present" in batch:
                present[m.name] = batch[f"{m.name}.present"].to(torch.bool)
            elif m.name not in batch:
                present[m.name] = torch.zeros(size, dtype=torch.bool, device=device)
            elif m.kind == "sequence" and f"{m.name}.mask" in batch:
                present[m.name] = batch[f"{m.name}.mask"].to(torch.bool).any(dim=1)
            else:
                present[m.name] = torch.ones(size, dtype=torch.bool, device=device)
        return present

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Head outputs plus ``fused`` (B, fusion.out_dim), ``present.<m>`` and, if enabled, ``aux.<m>``."""
        present = self.presence(batch)
        if self.training and self.config.modal_dropout > 0:
            present = modal_dropout(present, self.config.modal_dropout)
        size = _batch_size(batch)
        vectors: dict[str, torch.Tensor] = {}
        for m in self._order:
            vectors[m.name] = self._modality_vector(m, batch, present, vectors, size)
        fused = self.fusion(vectors, present)
        outputs = dict(self.head(fused))
        outputs["fused"] = fused
        for name, mask in present.items():
            outputs[f"present.{name}"] = mask
        for name, aux in self.aux_heads.items():
            outputs[f"aux.{name}"] = aux(vectors[name])
        return outputs

    def _modality_vector(self, m: ModalityConfig, batch, present, vectors, size: int) -> torch.Tensor:
        device = next(self.parameters()).device
        if m.name in batch:
            x = batch[m.name].float()
        elif m.kind == "sequence":
            x = torch.zeros(size, 1, m.dim, device=device)
        else:
            x = torch.zeros(size, m.dim, device=device)
        if m.kind == "sequence":
            mask = batch.get(f"{m.name}.mask")
            mask = (
                torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
                if mask is None
                else mask.to(torch.bool)
            )
            mask = mask & present[m.name].unsqueeze(1)
            agg = self.aggregators[m.name]
            if m.guide is not None:
                guide = vectors[m.guide] * present[m.guide].unsqueeze(1).to(x.dtype)
                v = agg(x, mask, guide)
            else:
                v = agg(x, mask)
        elif m.kind == "text":
            v = self.text_branches[m.name](batch.get(f"{m.name}.tokens"), x)
        else:
            v = x
        if m.name in self.projections:
            v = self.projections[m.name](v)
        return v

    # ---- training and prediction -----------------------------------------------------------------

    def loss(
        self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """``{"total", "head", "aux"}``: the head's loss plus ``aux_loss_weight`` times the mean, over
        modalities, of each auxiliary head's cross-entropy on the samples where that modality is present."""
        head_loss = self.head.loss(outputs, targets)
        aux_terms = []
        for name in self.aux_heads:
            present = outputs[f"present.{name}"]
            if present.any():
                aux_terms.append(F.cross_entropy(outputs[f"aux.{name}"][present], targets["l2"][present]))
        aux = torch.stack(aux_terms).mean() if aux_terms else head_loss.new_zeros(())
        return {"total": head_loss + self.config.aux_loss_weight * aux, "head": head_loss, "aux": aux}

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The head's decoding, plus ``modality_weights`` (B, M) when the fusion attends over modalities."""
        decoded = self.head.decode(outputs)
        weights = getattr(self.fusion, "last_weights_", None)
        if weights:
            decoded["modality_weights"] = torch.stack([weights[m] for m in self.fusion.modalities], dim=1)
        return decoded

    @torch.no_grad()
    def predict(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eval-mode forward and decode (restores the previous training mode)."""
        was_training = self.training
        self.eval()
        try:
            return self.decode(self(batch))
        finally:
            self.train(was_training)

    # ---- versions and persistence ------------------------------------------------------------------

    def check_features(self, encoder_versions: dict[str, str]) -> None:
        """Raise ``ModelVersionError`` unless the features come from the encoder versions this model knows."""
        check_encoder_versions(self.encoder_versions, encoder_versions, what="classifier")

    def save(self, folder: str | Path) -> None:
        """Write ``model.json`` (config + encoder versions), ``weights.safetensors`` and, with a
        taxonomy, ``taxonomy.json`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        spec = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "config": self.config.model_dump(mode="json"),
            "encoder_versions": self.encoder_versions,
        }
        (folder / MODEL_FILE).write_text(json.dumps(spec, ensure_ascii=False, indent=2), encoding="utf-8")
        save_weights(self, folder / WEIGHTS_FILE)
        if self.taxonomy is not None:
            self.taxonomy.save(folder / TAXONOMY_FILE)

    @classmethod
    def load(cls, folder: str | Path, encoder_versions: dict[str, str] | None = None) -> MultimodalClassifier:
        """Rebuild a saved classifier (in eval mode).

        Args:
            folder: written by ``save``.
            encoder_versions: if given, the versions of the features it will see; checked as by
                ``check_features``.

        Raises:
            NotFoundError: no ``model.json``.
            ConfigError: not a classifier folder, or an unsupported format version.
            ModelVersionError: ``encoder_versions`` differ from the recorded ones.
        """
        folder = Path(folder)
        path = folder / MODEL_FILE
        if not path.is_file():
            raise NotFoundError(f"{folder}: no {MODEL_FILE}; not a saved classifier")
        spec = json.loads(path.read_text(encoding="utf-8"))
        if spec.get("format") != FORMAT or spec.get("format_version") != FORMAT_VERSION:
            raise ConfigError(
                f"{path}: expected format {FORMAT} v{FORMAT_VERSION}, found "
                f"{spec.get('format')} v{spec.get('format_version')}"
            )
        taxonomy = None
        if (folder / TAXONOMY_FILE).is_file():
            from vidlens.taxonomy import Taxonomy

            taxonomy = Taxonomy.load(folder / TAXONOMY_FILE)
        config = MultimodalClassifierConfig.from_dict(spec["config"])
        if taxonomy is not None and list(config.l2_to_l1) != [int(v) for v in taxonomy.l2_to_l1]:
            raise ConfigError(
                f"{folder / TAXONOMY_FILE}: its level-2 categories are not in the order of the model's outputs. "
                "Folders saved before 2026-12-07 listed level 2 under their parents, which reorders them "
                "when a parent's children were not consecutive (a taxonomy 'from-data', or add-category); "
                "retrain the model, or restore taxonomy.json in the order it was trained with"
            )
        model = cls(config, encoder_versions=spec.get("encoder_versions", {}), taxonomy=taxonomy)
        if encoder_versions is not None:
            model.check_features(encoder_versions)
        load_weights(model, folder / WEIGHTS_FILE)
        model.eval()
        return model


def _batch_size(batch: dict[str, torch.Tensor]) -> int:
    for value in batch.values():
        return int(value.shape[0])
    raise ConfigError("classifier: empty batch")


__all__ = [
    "ComponentSpec",
    "ModalityConfig",
    "MultimodalClassifier",
    "MultimodalClassifierConfig",
]
