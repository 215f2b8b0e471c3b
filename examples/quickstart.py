"""featstat in one minute, offline: distribution losses ignore *where* texture is, pixel losses do not.

    .venv/bin/python examples/quickstart.py

A striped texture is compared with (a) itself shifted by a few pixels and (b) a blurred copy. A pixel L2
loss calls the shift the bigger change; the contextual, Gram and projected-distribution losses on VGG-19
features see that the shifted image has the same statistics and that the blurred one lost its detail.
Runs with seeded random VGG-19 weights (no download); pass weights="vgg19" once you have the file.
"""

import torch

import featstat
from featstat.losses import functional as F

torch.manual_seed(0)
yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
stripes = 0.5 + 0.25 * torch.sin(xx / 2.0 + 0.3 * yy) + 0.1 * torch.rand(128, 128)
image = torch.stack([stripes, stripes.roll(5, 1), 1 - stripes]).clamp(0, 1).unsqueeze(0)  # 1×3×128×128

shifted = image.roll(shifts=(3, 7), dims=(2, 3))
blurred = F.gaussian_blur(image, kernel_size=9, sigma=2.0)

vgg = featstat.vgg19(["relu2_1", "conv3_1"], weights=None, seed=0)  # seeded random weights
target = vgg(image)
print(f"{'compared with the original':28s} {'pixel L2':>9s} {'CX':>7s} {'Gram':>9s} {'PDL':>7s}")
for name, pred in [("shifted by (3, 7) px", shifted), ("blurred (σ = 2)", blurred)]:
    feats = vgg(pred)
    print(
        f"{name:28s} {F.l2_loss(pred, image).item():9.4f} "
        f"{F.contextual_loss(feats['conv3_1'], target['conv3_1'], bandwidth=0.5).item():7.3f} "
        f"{F.gram_loss(feats['relu2_1'], target['relu2_1']).item():9.2e} "
        f"{F.projected_distribution_loss(feats['conv3_1'], target['conv3_1']).item():7.4f}"
    )
