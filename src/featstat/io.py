"""Reading and writing images: the only place in featstat that touches image files.

Images are float tensors N×C×H×W (one image: 1×C×H×W) with values in [0, 1], RGB (C = 3) or grayscale
(C = 1). Files are read and written with Pillow; the formats supported are PNG, JPEG, WebP and TIFF.

Bit depths: 8-bit images are divided by 255 and 16-bit images (16-bit grayscale PNG, 16-bit TIFF, modes
``I;16*``) by 65535, the real maximum of their mode, so a white pixel is 1.0 either way. 32-bit float TIFFs
(mode ``F``) are taken as they are. Note that Pillow itself reduces 16-bit *colour* PNGs to 8 bits per channel
when it opens them; those are therefore read at 8-bit precision.

Alpha is never dropped silently: an image with a transparency channel (RGBA, LA, a palette or grayscale image
with a transparency entry) that is not fully opaque raises unless ``alpha="drop"`` (ignore it) or
``alpha="composite"`` (blend onto ``background``) is given. A fully opaque alpha channel carries no
information and is removed in every mode.

Decompression bombs: a file whose pixel count exceeds Pillow's ``Image.MAX_IMAGE_PIXELS`` (about 89 M; the
limit at which Pillow warns) is refused *before* its pixels are decoded, with an error naming the file (an
18 KB PNG can hold 12000×12000 pixels). Opt out per call with ``max_pixels=None`` (or a larger number), or
for the process with Pillow's own switch ``PIL.Image.MAX_IMAGE_PIXELS = None``. Pixels are converted in
float32 (float64 only when ``dtype=torch.float64`` is asked for), never through extra float64 copies.

Float (mode ``F``) and 32-bit integer (mode ``I``) TIFFs hold values of any scale: values outside [0, 1]
raise a ``ValueError`` naming the file and the range seen, rather than being returned silently.

Writes are atomic (:func:`featstat._atomic.atomic_write`): an interrupted or failing write leaves the previous
file untouched and no temporary file behind.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from ._atomic import atomic_write
from ._checks import check_device, check_finite, check_image, check_tensor

__all__ = [
    "IMAGE_EXTENSIONS",
    "image_grid",
    "list_images",
    "read_image",
    "read_images",
    "to_tensor",
    "to_uint8",
    "write_image",
]

#: File extensions (lower case) that :func:`list_images` picks up and :func:`write_image` can write.
IMAGE_EXTENSIONS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

ALPHA_MODES = ("error", "drop", "composite")

PathLike = str | os.PathLike

# ITU-R BT.601 luma weights, the ones Pillow uses for RGB -> L.
_LUMA = np.array([0.299, 0.587, 0.114])


# --------------------------------------------------------------------------------------------- conversions


def _pil_to_float(
    img: Image.Image, work: type = np.float32, source: str = "image"
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode a loaded Pillow image to (H×W×C array in [0, 1], alpha H×W in [0, 1] or None), in ``work``
    precision (float32 unless float64 is asked for; scaled in place, no extra copies).

    C is 1 (grayscale) or 3 (colour); the value scale follows the mode's real maximum.
    """
    mode = img.mode
    has_trns = "transparency" in img.info
    if mode == "1":
        img, mode = img.convert("L"), "L"
    elif mode == "P" or mode == "PA":
        img = img.convert("RGBA" if (has_trns or mode == "PA") else "RGB")
        mode = img.mode
    elif mode in ("L", "RGB") and has_trns:
        img = img.convert("LA" if mode == "L" else "RGBA")
        mode = img.mode
    elif mode == "La":
        img, mode = img.convert("LA"), "LA"
    elif mode == "RGBa":
        img, mode = img.convert("RGBA"), "RGBA"
    elif mode in ("RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        img, mode = img.convert("RGB"), "RGB"

    if mode in ("L", "LA", "RGB", "RGBA"):
        arr = np.asarray(img).astype(work)
        arr /= work(255.0)
    elif mode.startswith("I;16"):
        arr = np.asarray(img).astype(work)
        arr /= work(65535.0)
    elif mode == "I":
        raw = np.asarray(img).astype(np.float64)
        bits = 16
        tags = getattr(img, "tag_v2", None)
        if tags is not None and 258 in tags:
            bps = tags[258]
            bits = int(bps[0] if isinstance(bps, tuple) else bps)
        elif raw.size and raw.max() > 65535:
            bits = 32
        if raw.size and raw.min() < 0:
            _check_unit_range(raw, source, "signed 32-bit integer")  # negative values: refused, named
        arr = (raw / float(2**bits - 1)).astype(work, copy=False)
    elif mode == "F":
        arr = np.asarray(img).astype(work)
        _check_unit_range(arr, source, "floating-point")
    else:  # any other mode Pillow can convert
        img = img.convert("RGBA" if "A" in mode else "RGB")
        return _pil_to_float(img, work, source)

    if arr.ndim == 2:
        arr = arr[:, :, None]
    alpha = None
    if mode in ("LA", "RGBA"):
        arr, alpha = arr[:, :, :-1], arr[:, :, -1]
    return arr, alpha


def _check_unit_range(arr: np.ndarray, source: str, kind: str) -> None:
    """Modes without a fixed scale (float, signed 32-bit) must already hold [0, 1] values."""
    if not arr.size:
        return
    lo, hi = float(np.min(arr)), float(np.max(arr))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{source} is a {kind} image holding NaN or Inf values; it is not an image")
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(
            f"{source} is a {kind} image with values in [{lo:.6g}, {hi:.6g}], but featstat images hold "
            f"[0, 1] and the file does not say how to scale it; rescale it to [0, 1] (e.g. (x - min) / "
            f"(max - min)) and save it again, or save it as 8/16-bit"
        )


def _array_to_float(array: np.ndarray) -> np.ndarray:
    """Scale a numpy image (H×W or H×W×C) to float64 by its dtype's maximum (floats unchanged)."""
    if array.dtype == np.bool_:
        return array.astype(np.float64)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.float64) / float(np.iinfo(array.dtype).max)
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float64)
    raise ValueError(f"array must hold integers, booleans or floats, got dtype {array.dtype}")


def to_tensor(
    image: Image.Image | np.ndarray,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Convert a Pillow image or a numpy array to a 1×C×H×W float tensor.

    Args:
        image: a Pillow image (any mode; alpha is kept as a 4th/2nd channel, palettes become RGB), or a numpy
            array H×W or H×W×C. Integer arrays are divided by their dtype's maximum (uint8: 255, uint16:
            65535), booleans map to {0, 1}, float arrays are taken as they are.
        device, dtype: of the result (float32 by default).

    Returns:
        Tensor 1×C×H×W, values in [0, 1] for integer inputs.
    """
    if isinstance(image, Image.Image):
        arr, alpha = _pil_to_float(image)
        if alpha is not None:
            arr = np.concatenate([arr, alpha[:, :, None]], axis=2)
    elif isinstance(image, np.ndarray):
        if image.ndim not in (2, 3):
            raise ValueError(f"image must be a H×W or H×W×C array, got shape {image.shape}")
        arr = _array_to_float(image)
        if arr.ndim == 2:
            arr = arr[:, :, None]
    else:
        raise ValueError(f"image must be a PIL.Image.Image or a numpy array, got {type(image).__name__}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype}")
    device = check_device("device", device)
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]
    return t.to(device=device, dtype=dtype)


def to_uint8(image: Tensor) -> np.ndarray:
    """Convert a 1×C×H×W or C×H×W tensor with values in [0, 1] to a uint8 numpy array.

    Values are clamped to [0, 1], multiplied by 255 and rounded to the nearest integer. Returns H×W×C, or
    H×W when C = 1 (the layout Pillow's ``Image.fromarray`` expects). NaN/Inf raise a ``ValueError``.
    """
    x = _single_image("image", image)
    check_finite("image", x)
    arr = x.detach().to(device="cpu", dtype=torch.float32).clamp(0, 1).mul(255).round()
    arr = arr.to(torch.uint8).permute(1, 2, 0).numpy()
    return arr[:, :, 0] if arr.shape[2] == 1 else arr


def _single_image(name: str, image: object) -> Tensor:
    x = check_tensor(name, image, ndim=(3, 4))
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(
                f"{name} must hold one image (1×C×H×W or C×H×W), got shape {tuple(x.shape)}; "
                f"write the images of a batch one at a time, e.g. write_image(path, batch[i])"
            )
        x = x[0]
    if x.shape[0] not in (1, 3, 4):
        raise ValueError(
            f"{name} must have 1 (grayscale), 3 (RGB) or 4 (RGBA) channels, got shape {tuple(image.shape)}"
        )
    return x


# ------------------------------------------------------------------------------------------------ reading


def read_image(
    path: PathLike,
    *,
    channels: int = 3,
    alpha: str = "error",
    background: float | Sequence[float] = 1.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    max_pixels: int | str | None = "pillow",
) -> Tensor:
    """Read an image file (PNG, JPEG, WebP, TIFF) into a 1×C×H×W tensor with values in [0, 1].

    Args:
        path: the file. Missing, unreadable, truncated or non-image files raise a ``ValueError`` that names
            the path and the Pillow error (truncation is detected when the pixels are decoded, unless some
            other code has set Pillow's global ``ImageFile.LOAD_TRUNCATED_IMAGES = True``).
        channels: 3 (RGB; grayscale images are replicated to 3 channels) or 1 (grayscale; colour images are
            converted with the ITU-R BT.601 luma weights 0.299, 0.587, 0.114, as Pillow does).
        alpha: what to do with a transparency channel that is not fully opaque: "error" (default) raises,
            "drop" ignores it, "composite" blends the image onto ``background``:
            ``out = alpha·image + (1 − alpha)·background``.
        background: the background for "composite": one value in [0, 1] or one per RGB channel.
        device, dtype: of the result (float32 by default).
        max_pixels: files with more pixels are refused before decoding (decompression bombs); the default
            follows Pillow's ``Image.MAX_IMAGE_PIXELS`` (≈ 89 M pixels), None disables the check.

    EXIF orientation (JPEG/TIFF/WebP from cameras) is applied, so the tensor is upright as viewers show it.
    8-bit modes are divided by 255, 16-bit modes by 65535 (see the module docstring).
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    if alpha not in ALPHA_MODES:
        raise ValueError(f"alpha must be one of {ALPHA_MODES}, got {alpha!r}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype}")
    bg = _background(background)
    device = check_device("device", device)
    limit = Image.MAX_IMAGE_PIXELS if max_pixels == "pillow" else max_pixels
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"max_pixels must be a positive int or None, got {max_pixels!r}")
    work = np.float64 if dtype == torch.float64 else np.float32
    p = Path(path)
    if not p.exists():
        raise ValueError(f"image file {str(p)!r} does not exist; check the path")
    if p.is_dir():
        raise ValueError(f"{str(p)!r} is a directory, not an image file; use list_images() for folders")
    try:
        with warnings.catch_warnings():
            # our own limit is checked below, before decoding; Pillow's warning would only repeat it
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img_file = Image.open(p)
    except Image.DecompressionBombError as exc:
        raise ValueError(_bomb_message(p, None, limit)) from exc
    except Exception as exc:
        raise ValueError(
            f"cannot read image {str(p)!r}: {type(exc).__name__}: {exc}; the file is not a readable "
            f"PNG/JPEG/WebP/TIFF image or is truncated/corrupt"
        ) from exc
    with img_file as img:
        w, h = img.size
        if limit is not None and w * h > limit:
            raise ValueError(_bomb_message(p, (w, h), limit))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img.load()  # decodes everything: truncated files raise here, not at open()
            img = ImageOps.exif_transpose(img)
            arr, a = _pil_to_float(img, work, f"image {str(p)!r}")
        except ValueError as exc:
            if str(p) in str(exc):
                raise
            raise ValueError(
                f"cannot read image {str(p)!r}: ValueError: {exc}; the file is not a readable "
                f"PNG/JPEG/WebP/TIFF image or is truncated/corrupt"
            ) from exc
        except Exception as exc:
            raise ValueError(
                f"cannot read image {str(p)!r}: {type(exc).__name__}: {exc}; the file is not a readable "
                f"PNG/JPEG/WebP/TIFF image or is truncated/corrupt"
            ) from exc

    if a is not None and bool((a < 1.0).any()):
        if alpha == "error":
            raise ValueError(
                f"image {str(p)!r} has a transparency (alpha) channel; pass alpha='drop' to ignore it or "
                f"alpha='composite' (with background=...) to blend it onto a background colour"
            )
        if alpha == "composite":
            if arr.shape[2] == 1 and not np.all(bg == bg[0]):
                arr = np.repeat(arr, 3, axis=2)  # grayscale image on a coloured background: blend in RGB
            bgc = bg[: arr.shape[2]].astype(arr.dtype)
            arr = a[:, :, None] * arr + (1.0 - a[:, :, None]) * bgc[None, None, :]

    if channels == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif channels == 1 and arr.shape[2] == 3:
        arr = (arr @ _LUMA.astype(arr.dtype))[:, :, None]
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]
    return t.to(device=device, dtype=dtype)


def _bomb_message(path: Path, size: tuple[int, int] | None, limit: int | None) -> str:
    what = f"{size[0]}×{size[1]} pixels" if size else "more pixels than Pillow allows"
    return (
        f"image {str(path)!r} has {what}, over the limit of {limit} pixels (a possible decompression "
        f"bomb: decoding it could take gigabytes of memory); if you trust the file pass max_pixels=None "
        f"(or set PIL.Image.MAX_IMAGE_PIXELS = None)"
    )


def _background(background: float | Sequence[float]) -> np.ndarray:
    if isinstance(background, (int, float)):
        values = [float(background)] * 3
    else:
        try:
            values = [float(v) for v in background]
        except TypeError:
            values = []
        if len(values) != 3:
            raise ValueError(
                f"background must be a number in [0, 1] or three numbers (R, G, B), got {background!r}"
            )
    if not all(0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"background values must lie in [0, 1], got {background!r}")
    return np.array(values)


def read_images(
    paths: Sequence[PathLike],
    *,
    channels: int = 3,
    alpha: str = "error",
    background: float | Sequence[float] = 1.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    max_pixels: int | str | None = "pillow",
) -> Tensor:
    """Read several images of the same size into one N×C×H×W tensor (arguments as :func:`read_image`).

    Images of different sizes raise a ``ValueError`` naming the first mismatching file and both sizes.
    """
    if isinstance(paths, (str, os.PathLike)):
        raise ValueError("paths must be a list of files; for a single file use read_image(path)")
    paths = list(paths)
    if not paths:
        raise ValueError("paths is empty; give at least one image file")
    images = []
    for p in paths:
        img = read_image(
            p, channels=channels, alpha=alpha, background=background, device=device, dtype=dtype,
            max_pixels=max_pixels,
        )
        if images and img.shape[2:] != images[0].shape[2:]:
            h0, w0 = images[0].shape[2:]
            h, w = img.shape[2:]
            raise ValueError(
                f"all images must have the same size to be stacked: {str(paths[0])!r} is {w0}×{h0} (W×H) but "
                f"{str(p)!r} is {w}×{h}; resize or crop them first, or read them one at a time with "
                f"read_image()"
            )
        images.append(img)
    return torch.cat(images, dim=0)


def list_images(folder: PathLike) -> list[Path]:
    """The image files (extensions in :data:`IMAGE_EXTENSIONS`, any case) directly inside ``folder``.

    Sorted by file name; hidden files (names starting with ".") and sub-folders are skipped.
    """
    d = Path(folder)
    if not d.is_dir():
        what = "does not exist" if not d.exists() else "is not a directory"
        raise ValueError(f"folder {str(d)!r} {what}; give a directory that holds image files")
    files = [
        f
        for f in d.iterdir()
        if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_EXTENSIONS
    ]
    return sorted(files, key=lambda f: f.name)


# ------------------------------------------------------------------------------------------------ writing


def image_grid(images: Tensor, cols: int, *, fill: float = 1.0) -> Tensor:
    """Tile a batch N×C×H×W into one image 1×C×(rows·H)×(cols·W), row by row (image i at row i // cols,
    column i % cols), rows = ⌈N / cols⌉; the cells after the last image are filled with ``fill`` (white by
    default). ``cols = N`` puts the images side by side. Same device and dtype as ``images``; for
    :func:`write_image` (contact sheets of samples, reconstructions, colourisations)."""
    x = check_tensor("images", images, ndim=4, channels=None)
    if not isinstance(cols, int) or isinstance(cols, bool) or cols < 1:
        raise ValueError(f"cols must be a positive int (images per row), got {cols!r}")
    if not isinstance(fill, (int, float)) or isinstance(fill, bool) or not 0.0 <= float(fill) <= 1.0:
        raise ValueError(f"fill must be a number in [0, 1] (the value of empty cells), got {fill!r}")
    n, c, h, w = x.shape
    if n == 0:
        raise ValueError("images holds no image (batch size 0); pass at least one")
    rows = -(-n // cols)
    x = torch.cat([x, x.new_full((rows * cols - n, c, h, w), float(fill))])
    return x.view(rows, cols, c, h, w).permute(2, 0, 3, 1, 4).reshape(1, c, rows * h, cols * w)


def write_image(path: PathLike, image: Tensor, *, quality: int = 95) -> None:
    """Write one image (1×C×H×W or C×H×W, values in [0, 1]) to ``path``, atomically.

    The format follows the extension: .png, .jpg/.jpeg, .webp, .tif/.tiff. Values must lie in [0, 1] (a
    tolerance of 1e-3 is clamped away): NaN/Inf, 0–255 or [-1, 1] tensors raise a ``ValueError`` (a value
    check, see :func:`featstat.set_value_checks`; with checks off values are clamped). Values are rounded
    to 8 bits. C = 1 writes a grayscale file, C = 3 RGB, C = 4 RGBA (not for JPEG). ``quality``
    (1–100) is used by JPEG and WebP; PNG and TIFF are lossless. Parent folders are created. The file is
    written to a temporary name beside ``path`` and renamed over it, so a failure leaves any previous file
    intact.
    """
    p = Path(path)
    fmt = IMAGE_EXTENSIONS.get(p.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"cannot tell the image format of {str(p)!r} from its extension {p.suffix!r}; use one of "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}"
        )
    if not isinstance(quality, int) or isinstance(quality, bool) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an integer in [1, 100], got {quality!r}")
    x = _single_image("image", image)
    check_image("image", x.detach()[None], channels=None)  # a 0–255 or [-1, 1] tensor is refused, not clamped
    arr = to_uint8(x)
    if fmt == "JPEG" and arr.ndim == 3 and arr.shape[2] == 4:
        raise ValueError(
            f"JPEG cannot store an alpha channel (image has 4 channels) for {str(p)!r}; write "
            f"PNG/WebP/TIFF or drop the alpha channel with image[..., :3, :, :]"
        )
    pil = Image.fromarray(arr)
    options: dict[str, object] = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    if fmt == "WEBP":
        options["exact"] = True  # keep the colour of transparent pixels (lossy WebP would discard it)
    with atomic_write(p, "wb") as fh:
        pil.save(fh, format=fmt, **options)
