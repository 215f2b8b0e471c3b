"""Training and validation data for restoration: random crops of images of any size, degraded on the fly.

- :class:`RestorationDataset`: each item is a random ``crop_size``×``crop_size`` crop of one of the images
  (optionally flipped / transposed: the 8 symmetries of the square), and its degraded version made by a
  :class:`featstat.restoration.degrade.Degradation` (``{"input": C×h×w, "target": C×H×W}``). All randomness
  of an
  item — which position, which symmetry, the noise, the blur kernel, the JPEG quality — comes from a
  generator seeded with ``(seed, epoch, index)``, so an item is the same whatever the number of DataLoader
  workers, the process (DDP rank) that loads it, or whether the run was resumed.
- :class:`EpochSampler`: the shuffled indices of one epoch as ``(epoch, index)`` pairs, sharded across
  DistributedDataParallel ranks exactly as :class:`torch.utils.data.DistributedSampler` does, and able to
  start mid-epoch (exact resume without loading the skipped samples).
- :class:`ValidationSet`: whole images (mod-cropped to the task's multiple, optionally centre-cropped),
  degraded with a fixed seed per image, so every validation round sees the same inputs.
- :func:`split_validation`: hold out whole images for validation, deterministically.

Surface normals (task ``normals``) read pairs: ``source`` is a folder with ``images/`` (photographs) and
``normals/`` (normal maps, encoded ``(n + 1)/2`` in [0, 1]) holding files with the same stems. Flips and
transposes of a normal map also transform its vectors (x right, y up — the OpenGL convention — by default;
``normals_convention="directx"`` for y down).
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler, Sampler

from .._checks import check_choice
from ..io import IMAGE_EXTENSIONS, list_images, read_image
from .degrade import Degradation, make_degradation

__all__ = [
    "EpochSampler",
    "RestorationDataset",
    "ValidationSet",
    "dihedral",
    "list_sources",
    "pair_normals",
    "seed_for",
    "seed_worker",
    "split_validation",
]

PathLike = str | os.PathLike[str]
NORMAL_CONVENTIONS = ("opengl", "directx")
_MASK64 = (1 << 64) - 1


def seed_for(*values: int) -> int:
    """A 63-bit seed mixing integers with SplitMix64 (well spread even for consecutive inputs)."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (int(v) & _MASK64)) & _MASK64
        h = (h + 0x9E3779B97F4A7C15) & _MASK64
        z = h
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        h = z ^ (z >> 31)
    return h >> 1


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed Python's and NumPy's global generators from the worker's torch seed
    (featstat's datasets do not need it — their items are seeded explicitly — but user transforms might)."""
    s = torch.initial_seed() % 2**32
    random.seed(s)
    np.random.seed(s)  # noqa: NPY002 - the legacy global generator is what third-party code uses


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


# ------------------------------------------------------------------------------------------------ sources


def list_sources(source: PathLike | Sequence[PathLike]) -> list[Path]:
    """Image files from a folder (its images, sorted), one image file, or a list of files."""
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if p.is_dir():
            files = list_images(p)
            if not files:
                raise ValueError(
                    f"source folder {str(p)!r} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})"
                )
            return files
        if p.is_file():
            return [p]
        raise ValueError(f"source {str(p)!r} does not exist; give a folder of images or an image file")
    files = [Path(s) for s in source]
    if not files:
        raise ValueError("source is an empty list; give a folder of images or image files")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ValueError(f"source files do not exist: {missing[:3]}")
    return files


def pair_normals(source: PathLike) -> list[tuple[Path, Path]]:
    """(image, normal map) pairs from ``source/images`` and ``source/normals``, matched by file stem."""
    root = Path(source)
    img_dir, nrm_dir = root / "images", root / "normals"
    if not img_dir.is_dir() or not nrm_dir.is_dir():
        raise ValueError(
            f"the normals task needs {str(root)!r} to hold images/ and normals/ folders (files with the same "
            f"stems), found {'images/' if img_dir.is_dir() else 'no images/'} and "
            f"{'normals/' if nrm_dir.is_dir() else 'no normals/'}"
        )
    normals = {f.stem: f for f in list_images(nrm_dir)}
    pairs = [(f, normals[f.stem]) for f in list_images(img_dir) if f.stem in normals]
    if not pairs:
        raise ValueError(
            f"no image in {str(img_dir)!r} has a normal map of the same stem in {str(nrm_dir)!r}"
        )
    return pairs


def split_validation(
    items: Sequence[Any], count: int | float = 0, *, seed: int = 0
) -> tuple[list[Any], list[Any]]:
    """Split ``items`` (files or pairs) into (train, validation): ``count`` whole items held out (an int, or a
    fraction in (0, 1)), chosen by a seeded shuffle; both lists keep the original order."""
    n = len(items)
    if isinstance(count, float) and 0 < count < 1:
        k = max(1, round(count * n))
    elif isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        k = count
    else:
        raise ValueError(f"count must be an int >= 0 or a fraction in (0, 1), got {count!r}")
    if k >= n and k > 0:
        raise ValueError(f"cannot hold out {k} of {n} images for validation; keep at least one for training")
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(n)[:k].tolist())
    return [x for i, x in enumerate(items) if i not in held], [x for i, x in enumerate(items) if i in held]


# ---------------------------------------------------------------------------------------------- transforms


def dihedral(x: Tensor, k: int, *, normals: bool = False, convention: str = "opengl") -> Tensor:
    """Apply symmetry ``k`` ∈ 0..7 of the square to C×H×W ``x``: bit 0 flips left-right, bit 1 flips up-down,
    bit 2 transposes (after the flips). With ``normals=True``, ``x`` is an encoded normal map ((n + 1)/2) and
    its vectors are transformed with the image (x right; y up for "opengl", down for "directx")."""
    if normals:
        n = 2 * x - 1
        sy = 1.0 if convention == "directx" else -1.0  # y component in image-down coordinates
        nx, ny, nz = n[0], n[1] * sy, n[2]
        if k & 1:
            nx = -nx
        if k & 2:
            ny = -ny
        if k & 4:
            nx, ny = ny, nx
        n = torch.stack([nx, ny * sy, nz])
        x = (n + 1) / 2
    if k & 1:
        x = x.flip(-1)
    if k & 2:
        x = x.flip(-2)
    if k & 4:
        x = x.transpose(-1, -2)
    return x


class _ImageCache:
    """Images read on demand, kept in memory (as uint8 when they are 8-bit) when ``enabled``."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._store: dict[Path, Tensor] = {}

    def get(self, path: Path) -> Tensor:
        hit = self._store.get(path)
        if hit is not None:
            return hit.float() / 255.0 if hit.dtype == torch.uint8 else hit
        img = read_image(path, alpha="drop")[0]
        if self.enabled:
            q = (img * 255).round()
            self._store[path] = q.to(torch.uint8) if torch.equal(q / 255.0, img) else img
        return img


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            w, h = im.size
    except Exception as err:
        raise ValueError(f"could not read image {str(path)!r} ({type(err).__name__}: {err})") from err
    return h, w


def _as_degradation(degradation: Degradation | str) -> Degradation:
    if isinstance(degradation, Degradation):
        return degradation
    if isinstance(degradation, str):
        return make_degradation(degradation)
    raise ValueError(f"degradation must be a Degradation or a task name, got {type(degradation).__name__}")


# ---------------------------------------------------------------------------------------------- datasets


class RestorationDataset(Dataset):
    """Random crops of a set of images, with degradations applied on the fly.

    Args:
        source: a folder of images (any sizes), an image file (single-image SR), or a list of files; for
            the normals task, a folder with ``images/`` and ``normals/`` (or a list of (image, normal) pairs).
        degradation: a :class:`~featstat.restoration.degrade.Degradation` or a task name ("sr4", "denoise",
        ...).
        crop_size: side of the *target* (clean / high-resolution) crop; SR inputs are ``crop_size/scale``.
            Must be a multiple of the task's multiple (the SR factor; 2 for demosaicking).
        samples_per_epoch: number of items per epoch (default: the number of images); item i uses image
            ``i mod len(images)``.
        augment: random flips/transposes (8 symmetries).
        seed: base seed; item i of epoch e uses ``seed_for(seed, e, i)``.
        cache: keep decoded images in memory (uint8 for 8-bit images).
        normals_convention: "opengl" (y up) or "directx" (y down), for transforming normal maps.

    ``dataset[i]`` is item i of epoch 0; ``dataset[(e, i)]`` of epoch e (what :class:`EpochSampler` yields).
    Images smaller than the crop are skipped with a warning (an error when none is large enough).
    """

    def __init__(
        self,
        source: PathLike | Sequence[PathLike] | Sequence[tuple[PathLike, PathLike]],
        degradation: Degradation | str = "sr4",
        *,
        crop_size: int = 96,
        samples_per_epoch: int | None = None,
        augment: bool = True,
        seed: int = 0,
        cache: bool = True,
        normals_convention: str = "opengl",
    ) -> None:
        self.degradation = _as_degradation(degradation)
        self.normals = self.degradation.task == "normals"
        m = self.degradation.multiple
        if not isinstance(crop_size, int) or isinstance(crop_size, bool) or crop_size < m or crop_size % m:
            raise ValueError(
                f"crop_size must be a positive multiple of {m} for task {self.degradation.task!r}, got "
                f"{crop_size!r}"
            )
        self.crop_size = crop_size
        self.augment = bool(augment)
        self.seed = int(seed)
        self.convention = check_choice("normals_convention", normals_convention, NORMAL_CONVENTIONS)
        items = self._items(source)
        kept, small = [], []
        for item in items:
            h, w = _image_size(item[0])
            if self.normals and _image_size(item[1]) != (h, w):
                raise ValueError(f"image {str(item[0])!r} and normal map {str(item[1])!r} differ in size")
            (kept if min(h, w) >= crop_size else small).append(item)
        if small:
            names = ", ".join(str(p[0].name) for p in small[:3])
            if not kept:
                raise ValueError(
                    f"every image is smaller than crop_size={crop_size} (e.g. {names}); use a smaller "
                    f"crop_size"
                )
            warnings.warn(
                f"skipping {len(small)} image(s) smaller than crop_size={crop_size}: {names}", stacklevel=2
            )
        self.items: list[tuple[Path, ...]] = kept
        if samples_per_epoch is None:
            samples_per_epoch = len(kept)
        if (
            not isinstance(samples_per_epoch, int)
            or isinstance(samples_per_epoch, bool)
            or samples_per_epoch < 1
        ):
            raise ValueError(f"samples_per_epoch must be a positive integer, got {samples_per_epoch!r}")
        self.samples_per_epoch = samples_per_epoch
        self._cache = _ImageCache(cache)

    def _items(self, source: Any) -> list[tuple[Path, ...]]:
        if self.normals:
            if isinstance(source, (str, os.PathLike)):
                return [tuple(p) for p in pair_normals(source)]
            pairs = [tuple(Path(q) for q in p) for p in source]
            if not pairs or any(len(p) != 2 for p in pairs):
                raise ValueError(
                    "source for the normals task must be a folder or a list of (image, normal) pairs"
                )
            return pairs
        return [(p,) for p in list_sources(source)]

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Tensor]:
        epoch, i = (0, index) if isinstance(index, int) else index
        if not 0 <= i < self.samples_per_epoch:
            raise IndexError(f"index {i} out of range for {self.samples_per_epoch} samples per epoch")
        return self.sample(int(epoch), int(i))

    def sample(self, epoch: int, index: int) -> dict[str, Tensor]:
        """Item ``index`` of epoch ``epoch`` (deterministic)."""
        g = _generator(seed_for(self.seed, epoch, index))
        item = self.items[index % len(self.items)]
        image = self._cache.get(item[0])
        h, w = image.shape[-2:]
        c = self.crop_size
        top = int(torch.randint(0, h - c + 1, (1,), generator=g))
        left = int(torch.randint(0, w - c + 1, (1,), generator=g))
        k = int(torch.randint(0, 8, (1,), generator=g)) if self.augment else 0
        crop = dihedral(image[:, top : top + c, left : left + c], k)
        if self.normals:
            normal = self._cache.get(item[1])[:, top : top + c, left : left + c]
            return {
                "input": crop.contiguous(),
                "target": dihedral(normal, k, normals=True, convention=self.convention).contiguous(),
            }
        degraded = self.degradation(crop.unsqueeze(0), g)[0]
        return {"input": degraded.contiguous(), "target": crop.contiguous()}


class ValidationSet(Dataset):
    """Whole images for validation: ``{"input", "target", "name"}`` per image, degraded with
    ``seed_for(seed, index)`` (the same inputs every round).

    Images are cropped to a multiple of the task's multiple (top-left kept, as SR "mod-crop"), and — when
    ``max_size`` is given — centre-cropped to at most ``max_size`` pixels a side (CPU budgets).
    """

    def __init__(
        self,
        source: PathLike | Sequence[PathLike] | Sequence[tuple[PathLike, PathLike]],
        degradation: Degradation | str = "sr4",
        *,
        seed: int = 0,
        max_size: int | None = None,
    ) -> None:
        self.degradation = _as_degradation(degradation)
        self.normals = self.degradation.task == "normals"
        if max_size is not None and (not isinstance(max_size, int) or max_size < self.degradation.multiple):
            raise ValueError(
                f"max_size must be None or an integer >= {self.degradation.multiple}, got {max_size!r}"
            )
        self.max_size = max_size
        self.seed = int(seed)
        if self.normals:
            self.items = (
                [tuple(p) for p in pair_normals(source)]
                if isinstance(source, (str, os.PathLike))
                else [tuple(Path(q) for q in p) for p in source]
            )
        else:
            self.items = [(p,) for p in list_sources(source)]

    def __len__(self) -> int:
        return len(self.items)

    def _crop(self, x: Tensor) -> Tensor:
        m = self.degradation.multiple
        h, w = x.shape[-2:]
        if self.max_size is not None:
            s = self.max_size - self.max_size % m
            th, tw = min(h, s), min(w, s)
            top, left = (h - th) // 2, (w - tw) // 2
            x = x[..., top : top + th, left : left + tw]
            h, w = th, tw
        return x[..., : h - h % m, : w - w % m]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        image = self._crop(read_image(item[0], alpha="drop")[0])
        name = item[0].stem
        if self.normals:
            normal = self._crop(read_image(item[1], alpha="drop")[0])
            return {"input": image, "target": normal, "name": name}
        g = _generator(seed_for(self.seed, index))
        return {"input": self.degradation(image.unsqueeze(0), g)[0], "target": image, "name": name}


# ------------------------------------------------------------------------------------------------ sampler


class EpochSampler(Sampler):
    """``(epoch, index)`` pairs of one epoch: a seeded shuffle (or order) sharded over ``world`` ranks exactly
    like ``DistributedSampler(drop_last=True)``, skipping the first ``skip`` pairs of this rank (resume).

    With ``world`` ranks and a per-rank batch b, the union of the ranks' k-th batches is the k-th batch of
    size world·b a single process would get from ``EpochSampler(..., world=1)`` (same elements).
    """

    def __init__(
        self,
        length: int,
        *,
        epoch: int,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        shuffle: bool = True,
        skip: int = 0,
    ) -> None:
        if length < world:
            raise ValueError(f"the dataset has {length} samples per epoch, fewer than the {world} processes")
        self.epoch, self.skip = int(epoch), int(skip)
        self._inner = DistributedSampler(
            range(length), num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=True
        )
        self._inner.set_epoch(self.epoch)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Move to ``epoch``, skipping its first ``skip`` pairs (a DataLoader with persistent workers can keep
        the same sampler across epochs)."""
        self.epoch, self.skip = int(epoch), int(skip)
        self._inner.set_epoch(self.epoch)

    def __len__(self) -> int:
        return max(0, len(self._inner) - self.skip)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for k, i in enumerate(self._inner):
            if k >= self.skip:
                yield (self.epoch, int(i))
