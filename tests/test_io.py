"""Image reading and writing: round trips, bit depths, alpha, palettes, bad files, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from featstat.io import image_grid, list_images, read_image, read_images, to_tensor, to_uint8, write_image


def _rgb(h=20, w=24, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _smooth(h=32, w=40) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([yy, xx, 0.5 * (yy + xx)])[None]


# ---------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("ext", [".png", ".tif", ".tiff"])
def test_lossless_round_trip_is_exact(tmp_path, ext):
    arr = _rgb()
    t = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255
    path = tmp_path / f"img{ext}"
    write_image(path, t)
    back = read_image(path)
    assert back.shape == (1, 3, 20, 24) and back.dtype == torch.float32
    assert torch.equal(back, t)
    write_image(path, t[0])  # C×H×W accepted too
    assert torch.equal(read_image(path), t)


@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".webp"])
def test_lossy_round_trip_is_close(tmp_path, ext):
    t = _smooth()
    path = tmp_path / f"img{ext}"
    write_image(path, t, quality=95)
    back = read_image(path)
    assert back.shape == t.shape
    assert (back - t).abs().mean() < 0.01
    write_image(path, t, quality=10)
    assert (read_image(path) - t).abs().mean() < 0.05


def test_write_clamps_and_rounds(tmp_path):
    # out-of-range values are refused by the value check; with checks off (hot loops) they are clamped
    import featstat

    t = torch.tensor([-0.5, 0.0, 0.25, 0.5, 1.0, 1.7]).reshape(1, 1, 1, 6).repeat(1, 3, 2, 1)
    path = tmp_path / "c.png"
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        write_image(path, t)
    assert not path.exists()
    with featstat.value_checks(False):
        write_image(path, t)
    got = np.asarray(Image.open(path))
    assert got[0, :, 0].tolist() == [0, 0, 64, 128, 255, 255]
    assert to_uint8(t)[0, :, 0].tolist() == [0, 0, 64, 128, 255, 255]


def test_grayscale_write_and_read(tmp_path):
    g = torch.from_numpy(_rgb()[:, :, 0]).float()[None, None] / 255
    path = tmp_path / "g.png"
    write_image(path, g)
    assert Image.open(path).mode == "L"
    assert torch.equal(read_image(path, channels=1), g)
    rgb = read_image(path)  # replicated to 3 channels
    assert rgb.shape == (1, 3, 20, 24)
    assert torch.equal(rgb, g.repeat(1, 3, 1, 1))


def test_colour_to_grayscale_uses_bt601_luma(tmp_path):
    arr = _rgb()
    Image.fromarray(arr).save(tmp_path / "c.png")
    got = read_image(tmp_path / "c.png", channels=1, dtype=torch.float64)
    want = (arr.astype(np.float64) / 255) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(got[0, 0].numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_sixteen_bit_grayscale(tmp_path, ext):
    arr = (np.arange(12 * 10).reshape(12, 10) * 546).astype(np.uint16)
    arr[0, 0] = 65535
    img = Image.fromarray(arr)
    assert img.mode.startswith("I;16")
    img.save(tmp_path / f"g16{ext}")
    got = read_image(tmp_path / f"g16{ext}", channels=1, dtype=torch.float64)
    np.testing.assert_allclose(got[0, 0].numpy(), arr / 65535.0, rtol=0, atol=1e-15)
    assert got.max().item() == 1.0
    assert read_image(tmp_path / f"g16{ext}").shape == (1, 3, 12, 10)


def test_device_and_dtype_options(tmp_path):
    write_image(tmp_path / "a.png", _smooth())
    t = read_image(tmp_path / "a.png", dtype=torch.float64, device="cpu")
    assert t.dtype == torch.float64 and t.device.type == "cpu"
    with pytest.raises(ValueError, match="dtype"):
        read_image(tmp_path / "a.png", dtype=torch.uint8)


# -------------------------------------------------------------------------------------- alpha and palette


def _rgba(tmp_path, opaque=False):
    arr = np.zeros((4, 5, 4), dtype=np.uint8)
    arr[..., 0] = 200
    arr[..., 1] = 100
    arr[..., 2] = 50
    arr[..., 3] = 255 if opaque else np.linspace(0, 255, 5).astype(np.uint8)[None, :]
    path = tmp_path / ("opaque.png" if opaque else "rgba.png")
    Image.fromarray(arr, "RGBA").save(path)
    return path, arr


def test_rgba_error_mode_names_choices(tmp_path):
    path, _ = _rgba(tmp_path)
    with pytest.raises(ValueError, match="alpha='drop'") as err:
        read_image(path)
    assert "composite" in str(err.value) and str(path) in str(err.value)


def test_rgba_drop_and_composite(tmp_path):
    path, arr = _rgba(tmp_path)
    dropped = read_image(path, alpha="drop", dtype=torch.float64)
    np.testing.assert_allclose(dropped[0].permute(1, 2, 0).numpy(), arr[..., :3] / 255.0)
    a = arr[..., 3:] / 255.0
    for bg in (1.0, 0.0, (0.2, 0.4, 0.6)):
        comp = read_image(path, alpha="composite", background=bg, dtype=torch.float64)
        want = a * arr[..., :3] / 255.0 + (1 - a) * np.broadcast_to(np.asarray(bg, dtype=float), (3,))
        np.testing.assert_allclose(comp[0].permute(1, 2, 0).numpy(), want, rtol=1e-12)
    with pytest.raises(ValueError, match="background"):
        read_image(path, alpha="composite", background=(0.1, 0.2))
    with pytest.raises(ValueError, match="background"):
        read_image(path, alpha="composite", background=2.0)


def test_fully_opaque_alpha_is_fine(tmp_path):
    path, arr = _rgba(tmp_path, opaque=True)
    got = read_image(path, dtype=torch.float64)
    np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), arr[..., :3] / 255.0)


def test_grayscale_alpha_composite(tmp_path):
    la = np.stack([np.full((3, 4), 100, np.uint8), np.full((3, 4), 51, np.uint8)], axis=-1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    with pytest.raises(ValueError, match="alpha"):
        read_image(tmp_path / "la.png")
    g = read_image(tmp_path / "la.png", channels=1, alpha="composite", background=1.0, dtype=torch.float64)
    assert g[0, 0, 0, 0].item() == pytest.approx(0.2 * 100 / 255 + 0.8)
    c = read_image(tmp_path / "la.png", alpha="composite", background=(1.0, 0.0, 0.0), dtype=torch.float64)
    assert c[0, :, 0, 0].tolist() == pytest.approx([0.2 * 100 / 255 + 0.8, 0.2 * 100 / 255, 0.2 * 100 / 255])


def test_palette_image(tmp_path):
    pal = Image.new("P", (3, 2))
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (768 - 9))
    pal.putdata([0, 1, 2, 2, 1, 0])
    pal.save(tmp_path / "p.png")
    got = read_image(tmp_path / "p.png")
    assert got.shape == (1, 3, 2, 3)
    assert got[0, :, 0, 0].tolist() == [1.0, 0.0, 0.0]
    assert got[0, :, 0, 1].tolist() == [0.0, 1.0, 0.0]
    assert got[0, :, 1, 0].tolist() == [0.0, 0.0, 1.0]
    # a palette with a transparent entry in use is alpha
    pal.info["transparency"] = 1
    pal.save(tmp_path / "pt.png", transparency=1)
    with pytest.raises(ValueError, match="alpha"):
        read_image(tmp_path / "pt.png")
    assert read_image(tmp_path / "pt.png", alpha="composite", background=0.0)[0, :, 0, 1].tolist() == [
        0,
        0,
        0,
    ]


# ----------------------------------------------------------------------------------------------- bad files


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_truncated_file_raises(tmp_path, ext):
    path = tmp_path / f"full{ext}"
    Image.fromarray(_rgb(64, 64)).save(path)
    data = path.read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated") as err:
        read_image(cut)
    assert str(cut) in str(err.value)


def test_non_image_and_missing_files(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    with pytest.raises(ValueError, match="cannot read image") as err:
        read_image(bad)
    assert str(bad) in str(err.value) and "UnidentifiedImageError" in str(err.value)
    with pytest.raises(ValueError, match="does not exist"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="directory"):
        read_image(tmp_path)


def test_bad_read_arguments(tmp_path):
    write_image(tmp_path / "a.png", _smooth())
    with pytest.raises(ValueError, match="channels"):
        read_image(tmp_path / "a.png", channels=4)
    with pytest.raises(ValueError, match="alpha"):
        read_image(tmp_path / "a.png", alpha="keep")


# ------------------------------------------------------------------------------------------------- writes


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    write_image(path, _smooth())
    before = path.read_bytes()

    def failing_save(self, fp, format=None, **params):
        fp.write(b"\x89PNG partial data")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        write_image(path, torch.zeros(1, 3, 8, 8))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temporary file left


def test_write_errors(tmp_path):
    t = _smooth()
    with pytest.raises(ValueError, match=r"\.bmp"):
        write_image(tmp_path / "a.bmp", t)
    with pytest.raises(ValueError, match="one image"):
        write_image(tmp_path / "a.png", t.repeat(2, 1, 1, 1))
    with pytest.raises(ValueError, match="channels"):
        write_image(tmp_path / "a.png", torch.rand(1, 2, 4, 4))
    with pytest.raises(ValueError, match="JPEG"):
        write_image(tmp_path / "a.jpg", torch.rand(1, 4, 4, 4))
    with pytest.raises(ValueError, match="quality"):
        write_image(tmp_path / "a.jpg", t, quality=0)
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "a.png", torch.full((1, 3, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="floating"):
        write_image(tmp_path / "a.png", torch.zeros(1, 3, 2, 2, dtype=torch.uint8))
    assert not list(tmp_path.iterdir())


def test_write_creates_folders_and_rgba(tmp_path):
    t = torch.rand(1, 4, 5, 6)
    path = tmp_path / "a" / "b" / "x.png"
    write_image(path, t)
    assert Image.open(path).mode == "RGBA"


# ---------------------------------------------------------------------------------------- folders, stacks


def test_list_images_sorted_and_filtered(tmp_path):
    for name in ["b.png", "a.JPG", "c.webp", "d.tiff", "e.txt", ".hidden.png", "z.jpeg"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "c.webp", "d.tiff", "z.jpeg"]
    with pytest.raises(ValueError, match="does not exist"):
        list_images(tmp_path / "nope")
    with pytest.raises(ValueError, match="not a directory"):
        list_images(tmp_path / "e.txt")


def test_read_images_stacks_and_checks_sizes(tmp_path):
    write_image(tmp_path / "a.png", _smooth())
    write_image(tmp_path / "b.png", 1 - _smooth())
    write_image(tmp_path / "c.png", torch.rand(1, 3, 10, 10))
    both = read_images([tmp_path / "a.png", tmp_path / "b.png"])
    assert both.shape == (2, 3, 32, 40)
    assert torch.allclose(both[1], 1 - both[0], atol=1.01 / 255)  # each rounded to 8 bits
    with pytest.raises(ValueError, match="same size") as err:
        read_images([tmp_path / "a.png", tmp_path / "c.png"])
    assert "c.png" in str(err.value) and "a.png" in str(err.value)
    with pytest.raises(ValueError, match="empty"):
        read_images([])
    with pytest.raises(ValueError, match="list"):
        read_images(str(tmp_path / "a.png"))


# ------------------------------------------------------------------------------------------------ helpers


def test_to_tensor_and_to_uint8():
    arr = _rgb()
    t = to_tensor(arr)
    assert t.shape == (1, 3, 20, 24) and t.dtype == torch.float32
    assert np.array_equal(to_uint8(t), arr)
    assert np.array_equal(to_uint8(t[0]), arr)
    a16 = np.array([[0, 65535], [32768, 1]], dtype=np.uint16)
    np.testing.assert_allclose(to_tensor(a16, dtype=torch.float64)[0, 0].numpy(), a16 / 65535, rtol=1e-15)
    assert torch.equal(to_tensor(Image.fromarray(arr)), t)
    gray = to_uint8(torch.rand(1, 1, 3, 4))
    assert gray.shape == (3, 4) and gray.dtype == np.uint8
    assert to_tensor(np.ones((2, 2), dtype=bool)).tolist() == [[[[1.0, 1.0], [1.0, 1.0]]]]
    with pytest.raises(ValueError, match="image"):
        to_tensor([1, 2, 3])
    with pytest.raises(ValueError, match="shape"):
        to_tensor(np.zeros((2, 2, 2, 2)))


def test_image_grid_places_images_row_by_row_and_fills_the_rest():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(5, 3, 4, 6, generator=g)
    grid = image_grid(images, 2)
    assert grid.shape == (1, 3, 3 * 4, 2 * 6)
    for i in range(6):  # an explicit oracle: cell (row, col) holds image row·2 + col, the last one `fill`
        r, c = divmod(i, 2)
        cell = grid[0, :, r * 4 : (r + 1) * 4, c * 6 : (c + 1) * 6]
        expected = images[i] if i < 5 else torch.ones(3, 4, 6)
        assert torch.equal(cell, expected), i
    side = image_grid(images[:3], 3, fill=0.0)
    assert torch.equal(side, torch.cat(list(images[:3]), dim=-1)[None])
    one = image_grid(images[:1, :1].double(), 4, fill=0.25)
    assert one.dtype == torch.float64 and one.shape == (1, 1, 4, 24)
    assert torch.equal(one[..., 6:], torch.full((1, 1, 4, 18), 0.25, dtype=torch.float64))


def test_image_grid_bad_inputs_name_the_argument():
    images = torch.rand(2, 3, 4, 4)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="cols"):
            image_grid(images, bad)
    with pytest.raises(ValueError, match="fill"):
        image_grid(images, 2, fill=2.0)
    with pytest.raises(ValueError, match="images"):
        image_grid(images[0], 2)
    with pytest.raises(ValueError, match="images"):
        image_grid(images[:0], 2)
