"""Classifier two-sample test (C2ST; Lopez-Paz & Oquab 2017), the quantitative measure of the thesis' table
5.1b: train a classifier to tell real target images from generated ones and report its log-loss on held-out
images. A higher log-loss means the two sets are harder to tell apart; chance level is ln 2 ≈ 0.693.

Protocol (fixed by ``seed``): both sets are resized to ``size``² (area/bicubic), each split in two halves by a
seeded permutation — classifier training and test; a small CNN (four stride-2 3×3 convolutions with
LeakyReLU 0.2, global average pooling, a linear logit; random horizontal flips as augmentation) is trained
with Adam for ``epochs`` full passes over the training half (balanced minibatches); the test log-loss
(binary cross-entropy of the predicted probabilities, classes weighted equally) and accuracy are reported.

This is a *set* metric: it compares two distributions of images, not image pairs, so it needs tens of
images per set at least (``min_per_set``). It is not differentiable (it trains its own network).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_image, check_tensor, make_generator

__all__ = ["C2STResult", "c2st"]


@dataclass(frozen=True)
class C2STResult:
    """``log_loss`` (test binary cross-entropy, nats; higher = harder to tell; ln 2 at chance),
    ``accuracy`` (test), ``chance`` (ln 2), ``n_train``/``n_test`` (images per set), ``duplicates`` (fake
    images identical to a real one: a copy of the real set would score at chance — a warning is raised)."""

    log_loss: float
    accuracy: float
    n_train: int
    n_test: int
    duplicates: int = 0
    chance: float = math.log(2.0)

    higher_is_better = True  # the generated set is more like the real one


def _classifier(width: int, g: torch.Generator) -> nn.Module:
    layers: list[nn.Module] = []
    ch = 3
    for i in range(4):
        out = width * 2**i
        layers += [nn.Conv2d(ch, out, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        ch = out
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(ch, 1))
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            with torch.no_grad():
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
                m.bias.zero_()
    return net


def _prepare(name: str, images: Tensor, size: int) -> Tensor:
    x = check_tensor(name, images, ndim=4, channels=3)
    check_image(name, x.detach())
    x = x.detach().float()
    if x.shape[-2:] != (size, size):
        mode = "area" if min(x.shape[-2:]) >= size else "bicubic"
        x = F.interpolate(x, size=(size, size), mode=mode).clamp(0, 1)
    return x


def c2st(
    real: Tensor,
    fake: Tensor,
    *,
    size: int = 64,
    epochs: int = 20,
    batch: int = 32,
    width: int = 16,
    lr: float = 1e-3,
    seed: int | torch.Generator = 0,
    min_per_set: int = 8,
) -> C2STResult:
    """Classifier two-sample test between ``real`` (N×3×H×W) and ``fake`` (M×3×H'×W') images in [0, 1].

    Returns a :class:`C2STResult`; ``result.log_loss`` is the thesis' number (higher is better for the
    generator). The same inputs and ``seed`` give the same result (on one machine and thread count).
    """
    for name, value in (("size", size), ("epochs", epochs), ("batch", batch), ("width", width)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if size < 16:
        raise ValueError(f"size must be at least 16 (four stride-2 layers), got {size}")
    r, f = _prepare("real", real, size), _prepare("fake", fake, size)
    for name, t in (("real", r), ("fake", f)):
        if t.shape[0] < min_per_set:
            raise ValueError(
                f"{name} holds {t.shape[0]} images; the two-sample test needs at least {min_per_set} per set "
                f"(half train the classifier, half test it) — use more images"
            )
    duplicates = int((torch.cdist(f.flatten(1), r.flatten(1)).amin(dim=1) == 0).sum())
    if duplicates:
        warnings.warn(
            f"c2st: {duplicates} of the fake images are identical to real ones; the test needs real images "
            f"the generator never saw (a copy of the real set scores at chance)", stacklevel=2,
        )
    g = make_generator(seed)
    n = min(r.shape[0], f.shape[0])  # balanced classes
    r = r[torch.randperm(r.shape[0], generator=g)[:n]]
    f = f[torch.randperm(f.shape[0], generator=g)[:n]]
    half = n // 2
    train_x = torch.cat([r[:half], f[:half]])
    train_y = torch.cat([torch.ones(half), torch.zeros(half)])
    test_x = torch.cat([r[half:], f[half:]])
    test_y = torch.cat([torch.ones(n - half), torch.zeros(n - half)])
    net = _classifier(width, g)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(train_x.shape[0], generator=g)
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            xb = train_x[idx]
            flip = torch.rand(len(idx), generator=g) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            loss = F.binary_cross_entropy_with_logits(net(xb * 2 - 1).squeeze(1), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        logits = net(test_x * 2 - 1).squeeze(1)
    log_loss = F.binary_cross_entropy_with_logits(logits, test_y).item()
    accuracy = ((logits > 0).float() == test_y).float().mean().item()
    return C2STResult(log_loss=log_loss, accuracy=accuracy, n_train=half, n_test=n - half,
                      duplicates=duplicates)  # fmt: skip
