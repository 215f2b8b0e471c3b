"""Style transfer with spatial masks (issue 13 item 6): the guided Gram loss through transfer_style and the
CLI — a masked region of the output takes its style only from the matching region of the style image."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from featstat import features
from featstat.cli import main
from featstat.io import read_image, write_image
from featstat.losses import GramLoss, GuidedGramLoss
from featstat.texture.synthesis import transfer_style

RED, BLUE = (0.9, 0.1, 0.1), (0.1, 0.2, 0.9)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


def _two_colour_style() -> tuple[torch.Tensor, torch.Tensor]:
    """A style image of two flat halves (left red, right blue) and its mask (white = the red half)."""
    style = torch.empty(1, 3, 64, 128)
    style[..., :64] = torch.tensor(RED).view(1, 3, 1, 1)
    style[..., 64:] = torch.tensor(BLUE).view(1, 3, 1, 1)
    mask = torch.zeros(1, 1, 64, 128)
    mask[..., :64] = 1
    return style, mask


def _run(content_mask: torch.Tensor, style: torch.Tensor, style_mask: torch.Tensor) -> torch.Tensor:
    layers = ["relu1_1", "relu2_1"]
    return transfer_style(
        torch.full((1, 3, 64, 64), 0.5),  # a flat grey content: every colour comes from the style
        style,
        extractor=features.vgg19(layers=layers, weights=None, seed=0),
        style_layers=layers,
        content_layers=["relu2_1"],
        style_weight=1e4,
        content_weight=0.0,
        content_mask=content_mask,
        style_mask=style_mask,
        steps=40,
        progress=False,
        seed=0,
    ).image


@pytest.mark.parametrize("top", ["red", "blue"])
def test_masked_region_takes_its_style_only_from_the_matching_region(top):
    style, style_mask = _two_colour_style()
    content_mask = torch.zeros(1, 1, 64, 64)
    content_mask[..., :32, :] = 1  # white (region of the red half) on top
    if top == "blue":
        content_mask = 1 - content_mask
    image = _run(content_mask, style, style_mask)
    upper, lower = image[..., 6:26, :].mean((0, 2, 3)), image[..., 38:58, :].mean((0, 2, 3))
    want_up, want_low = (RED, BLUE) if top == "red" else (BLUE, RED)
    torch.testing.assert_close(upper, torch.tensor(want_up), atol=0.08, rtol=0)
    torch.testing.assert_close(lower, torch.tensor(want_low), atol=0.08, rtol=0)


def test_guided_gram_loss_binds_masks_and_an_all_ones_mask_is_the_plain_loss():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(1, 4, 8, 8, generator=g), torch.rand(1, 4, 10, 12, generator=g)
    ones = torch.ones(1, 1, 5, 5)
    torch.testing.assert_close(GuidedGramLoss(ones, ones)(x, y), GramLoss()(x, y))
    half = torch.zeros(1, 1, 8, 8)
    half[..., :4] = 1
    two = torch.cat([half, 1 - half], 1)
    loss = GuidedGramLoss(two, torch.cat([torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)], 1))
    assert torch.isfinite(loss(x, y))
    torch.testing.assert_close(loss(x, y), GramLoss()(x, y, two, loss.mask_target))
    with pytest.raises(ValueError, match="same number of regions"):
        GuidedGramLoss(two, ones)


def test_bad_masks():
    style, style_mask = _two_colour_style()
    content, mask = torch.rand(1, 3, 64, 64), torch.ones(1, 1, 64, 64)
    with pytest.raises(ValueError, match="style_mask is missing"):
        transfer_style(content, style, content_mask=mask, preset="random-filters", steps=1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        transfer_style(content, style, content_mask=mask * 2, style_mask=style_mask, steps=1)
    with pytest.raises(ValueError, match="Gram statistic only"):
        transfer_style(content, style, content_mask=mask, style_mask=style_mask, statistic="cx", steps=1)
    with pytest.raises(ValueError, match="same number of regions"):
        transfer_style(content, style, content_mask=torch.ones(1, 3, 8, 8), style_mask=style_mask, steps=1)


def test_cli_style_masks(tmp_path):
    style, style_mask = _two_colour_style()
    write_image(tmp_path / "style.png", style)
    write_image(tmp_path / "style_mask.png", style_mask)
    write_image(tmp_path / "content.png", torch.full((1, 3, 128, 128), 0.5))
    content_mask = torch.zeros(1, 1, 64, 64)  # any size: resized to each layer
    content_mask[..., :32, :] = 1
    write_image(tmp_path / "content_mask.png", content_mask)
    base = ["style", str(tmp_path / "content.png"), str(tmp_path / "style.png"), "--steps", "2", "--quiet",
            "--preset", "random-filters", "--scales", "1"]  # fmt: skip
    out = tmp_path / "out.png"
    res = CliRunner().invoke(
        main,
        [
            *base,
            "-o",
            str(out),
            "--content-mask",
            str(tmp_path / "content_mask.png"),
            "--style-mask",
            str(tmp_path / "style_mask.png"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert read_image(out).shape[-2:] == (128, 128)
    res = CliRunner().invoke(
        main, [*base, "-o", str(out), "--content-mask", str(tmp_path / "content_mask.png")]
    )
    assert res.exit_code != 0 and "--content-mask and --style-mask go together" in res.output


def test_guided_texture_synthesis_through_the_objective_guides():
    """The masks are the objective's guides: a guided texture objective (TSRN eq. 4 in synthesis) puts the
    example's red half where the output guide says, and synthesize checks the guides it is given."""
    from featstat.texture.synthesis import synthesize, texture_objective

    style, style_mask = _two_colour_style()
    layers = ["relu1_1", "relu2_1"]
    objective = texture_objective(
        features.vgg19(layers=layers, weights=None, seed=0), layers, guides=("out", "example")
    )
    assert [(t.pred_guide, t.target_guide) for t in objective.terms] == [("out", "example")]
    left = torch.zeros(1, 1, 64, 64)
    left[..., :32] = 1
    two = lambda m: torch.cat([m, 1 - m], 1)  # noqa: E731
    guides = {"out": two(left.transpose(-1, -2)), "example": two(style_mask)}  # red on top, blue below
    image = synthesize(objective, {"style": style}, 64, guides=guides, steps=40, seed=0).image
    torch.testing.assert_close(image[..., 6:26, :].mean((0, 2, 3)), torch.tensor(RED), atol=0.08, rtol=0)
    torch.testing.assert_close(image[..., 38:58, :].mean((0, 2, 3)), torch.tensor(BLUE), atol=0.08, rtol=0)
    with pytest.raises(ValueError, match="exactly the masks"):
        synthesize(objective, {"style": style}, 64, guides={"out": guides["out"]}, steps=1)
    with pytest.raises(ValueError, match="tile"):
        synthesize(objective, {"style": style}, 64, guides=guides, steps=1, tile=True)
    with pytest.raises(ValueError, match="no guided form"):
        texture_objective(
            features.vgg19(layers=layers, weights=None, seed=0), layers, "cx", guides=("a", "b")
        )
