"""The SRGAN image discriminator (Ledig et al. 2017, Fig. 4), for the adversarial term of restoration recipes.

Eight 3×3 convolutions with LeakyReLU(0.2) — 64, 64, 128, 128, 256, 256, 512, 512 channels, stride 1 and 2
alternating (the first without BatchNorm, the others with) — then a dense layer of 1024 units, LeakyReLU and
a dense layer to one logit. The paper flattens the 6×6×512 map a 96×96 input gives; we average-pool the map to
``pool_size``×``pool_size`` (6) first, which is the identity for 96×96 inputs and lets any size through.

The input is an image in [0, 1] (mapped to [−1, 1] inside, SRGAN's range); the output is one logit per image
(shape N), to be used with :mod:`featstat.losses.adversarial` (non-saturating or least-squares losses).
"""

from __future__ import annotations

from torch import Tensor, nn

from .._checks import check_tensor

__all__ = ["SRGANDiscriminator"]


class SRGANDiscriminator(nn.Module):
    """SRGAN discriminator; see the module docstring.

    Args:
        in_channels: 3 for RGB.
        channels: width of the first block (paper 64; doubled every two blocks up to 8×).
        hidden: units of the first dense layer (paper 1024).
        pool_size: side of the map fed to the dense layers (paper: 6, for 96×96 inputs).
        batch_norm: BatchNorm after every convolution but the first (paper True).
    """

    def __init__(
        self,
        in_channels: int = 3,
        *,
        channels: int = 64,
        hidden: int = 1024,
        pool_size: int = 6,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("channels", channels),
            ("hidden", hidden),
            ("pool_size", pool_size),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        widths = [
            channels,
            channels,
            2 * channels,
            2 * channels,
            4 * channels,
            4 * channels,
            8 * channels,
            8 * channels,
        ]
        layers: list[nn.Module] = []
        cin = in_channels
        for i, cout in enumerate(widths):
            stride = 1 if i % 2 == 0 else 2
            layers.append(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=not (batch_norm and i > 0)))
            if batch_norm and i > 0:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cin * pool_size * pool_size, hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, 1),
        )
        self.spec = {
            "name": "srgan",
            "in_channels": in_channels,
            "channels": channels,
            "hidden": hidden,
            "pool_size": pool_size,
            "batch_norm": batch_norm,
        }

    def forward(self, images: Tensor) -> Tensor:
        """Logits (shape N) for images N×C×H×W in [0, 1] (H, W ≥ 16: four stride-2 convolutions)."""
        x = check_tensor("images", images, ndim=4)
        if min(x.shape[-2:]) < 16:
            raise ValueError(
                f"images must be at least 16×16 for the SRGAN discriminator, got shape {tuple(x.shape)}"
            )
        return self.classifier(self.pool(self.features(2 * x - 1))).squeeze(1)
