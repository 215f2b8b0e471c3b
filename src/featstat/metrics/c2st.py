"""Classifier two-sample test (C2ST; Lopez-Paz & Oquab 2017), the quantitative measure of the thesis' table
5.1b: train a classifier to tell real target images from generated ones and report its log-loss on held-out
images. A higher log-loss means the two sets are harder to tell apart; chance level is ln 2 ≈ 0.693.

Protocol (fixed by ``seed``): both sets are resized to ``size``² (area/bicubic), each split in two halves by a
seeded permutation — classifier training and test; a small CNN (four stride-2 3×3 convolutions with
LeakyReLU 0.2, global average pooling, a linear logit; random horizontal flips as augmentation) is trained
with Adam for ``epochs`` full passes over the training half (balanced minibatches); the test log-loss
(binary cross-entropy of the predicted probabilities, classes weighted equally) and accuracy are reported.

This is a *set* metric: it compares two distributions of images, not image pairs, so it needs tens of
images per set at least (``min_per_set``). It is not differentiable (it trains its own network). It is
registered as ``"c2st"`` in :data:`featstat.registry.SET_METRICS` (:class:`C2ST`, ``higher_is_better``), the
registry of set-level metrics that ``featstat eval --metrics c2st PRED_DIR REF_DIR`` reads: the two folders
are compared as sets, unpaired.

A set given as one copy of the other (the same images) is not "indistinguishable" here: each image is in the
training half of one class and the test half of the other, so a classifier that remembers its training
images scores *above* ln 2. Such copies raise a warning (``duplicates``); the test needs real images that
the generator never saw.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_image, check_tensor, make_generator
from ..registry import SET_METRICS

__all__ = ["C2ST", "C2STResult", "c2st"]


@dataclass(frozen=True)
class C2STResult:
    """``log_loss`` (test binary cross-entropy, nats; higher = harder to tell; ln 2 at chance),
    ``accuracy`` (test), ``chance`` (ln 2), ``n_train``/``n_test`` (images per set), ``duplicates`` (fake
    images identical to a real one: such copies make the log-loss meaningless — a warning is raised)."""

    log_loss: float
    accuracy: float
    n_train: int
    n_test: int
    duplicates: int = 0
    chance: float = math.log(2.0)

    higher_is_better = True  # the generated set is more like the real one

    @property
    def value(self) -> float:
        """The number the thesis reports: :attr:`log_loss`."""
        return self.log_loss

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for JSON): every field and ``value``."""
        return {**asdict(self), "value": self.value}


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


def _stack(name: str, images: Sequence[Tensor]) -> Tensor:
    """A list of images (each 1×3×H×W, N×3×H×W or 3×H×W) of one size as one N×3×H×W batch."""
    if len(images) == 0:
        raise ValueError(f"{name} is an empty list of images; pass the images of the set")
    parts = []
    for i, image in enumerate(images):
        if isinstance(image, Tensor) and image.dim() == 3:
            image = image[None]  # one C×H×W image
        t = check_tensor(f"{name}[{i}]", image, ndim=4, channels=3)
        if parts and t.shape[-2:] != parts[0].shape[-2:]:
            (h0, w0), (h, w) = parts[0].shape[-2:], t.shape[-2:]
            raise ValueError(
                f"{name}: the images of a set must share one size (they are resized together to size²), but "
                f"{name}[0] is {w0}×{h0} and {name}[{i}] is {w}×{h} (W×H); crop or resize them to one size"
            )
        parts.append(t)
    return torch.cat(parts)


def _prepare(name: str, images: Tensor | Sequence[Tensor], size: int) -> Tensor:
    if isinstance(images, Sequence) and not isinstance(images, Tensor):
        images = _stack(name, images)
    x = check_tensor(name, images, ndim=4, channels=3)
    check_image(name, x.detach())
    x = x.detach().float()
    if x.shape[-2:] != (size, size):
        mode = "area" if min(x.shape[-2:]) >= size else "bicubic"
        x = F.interpolate(x, size=(size, size), mode=mode).clamp(0, 1)
    return x


def _check_options(size: int, epochs: int, batch: int, width: int, lr: float, min_per_set: int) -> None:
    for name, value in (("size", size), ("epochs", epochs), ("batch", batch), ("width", width)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if size < 16:
        raise ValueError(f"size must be at least 16 (four stride-2 layers), got {size}")
    if not isinstance(min_per_set, int) or isinstance(min_per_set, bool) or min_per_set < 2:
        raise ValueError(
            f"min_per_set must be an int >= 2 (one image to train on, one to test), got {min_per_set!r}"
        )
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")


def c2st(
    real: Tensor | Sequence[Tensor],
    fake: Tensor | Sequence[Tensor],
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

    Each set is one tensor or a list of images of one size (1×3×H×W or 3×H×W each; images of different
    sizes in one set are a ``ValueError`` naming the set). Both are resized to ``size``² and must be on one
    device; the classifier runs there (its random draws come from ``seed`` on the CPU, so the split and the
    initialisation do not depend on the device).

    Returns a :class:`C2STResult`; ``result.log_loss`` is the thesis' number (higher is better for the
    generator). The same inputs and ``seed`` give the same result (on one machine and thread count).
    """
    _check_options(size, epochs, batch, width, lr, min_per_set)
    r, f = _prepare("real", real, size), _prepare("fake", fake, size)
    if r.device != f.device:
        raise ValueError(
            f"real and fake must be on the same device, got {r.device} and {f.device}; move one with .to()"
        )
    device = r.device
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
            f"the generator never saw (copies land in the training half of one class and the test half of "
            f"the other, so the log-loss says nothing about the generator)",
            stacklevel=2,
        )
    g = make_generator(seed)
    n = min(r.shape[0], f.shape[0])  # balanced classes
    r = r[torch.randperm(r.shape[0], generator=g)[:n]]
    f = f[torch.randperm(f.shape[0], generator=g)[:n]]
    half = n // 2
    train_x = torch.cat([r[:half], f[:half]])
    train_y = torch.cat([torch.ones(half), torch.zeros(half)]).to(device)
    test_x = torch.cat([r[half:], f[half:]])
    test_y = torch.cat([torch.ones(n - half), torch.zeros(n - half)]).to(device)
    net = _classifier(width, g).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(train_x.shape[0], generator=g)
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            xb = train_x[idx]
            flip = (torch.rand(len(idx), generator=g) < 0.5).to(device)
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


@SET_METRICS.register("c2st", "two_sample")
class C2ST:
    """The classifier two-sample test as a set metric (the entry ``"c2st"`` of
    :data:`featstat.registry.SET_METRICS`): ``C2ST(**options)(pred, target)`` is ``c2st(real=target,
    fake=pred, **options)`` — ``pred`` the generated (translated) images, ``target`` the real target images
    (each a set: N×3×H×W or a list of images of one size; the two sets may differ in count and size).

    Options as :func:`c2st` (defaults: size 64, 20 epochs, batch 32, width 16, lr 1e-3, seed 0, at least 8
    images per set). Returns a :class:`C2STResult`; its :attr:`~C2STResult.value` is the test log-loss.
    """

    #: A higher log-loss means the generated set is harder to tell from the real one.
    higher_is_better = True

    def __init__(
        self,
        *,
        size: int = 64,
        epochs: int = 20,
        batch: int = 32,
        width: int = 16,
        lr: float = 1e-3,
        seed: int = 0,
        min_per_set: int = 8,
    ) -> None:
        _check_options(size, epochs, batch, width, lr, min_per_set)
        self.options: dict[str, Any] = {"size": size, "epochs": epochs, "batch": batch, "width": width,
                                        "lr": lr, "seed": seed, "min_per_set": min_per_set}  # fmt: skip

    def __call__(self, pred: Tensor | Sequence[Tensor], target: Tensor | Sequence[Tensor]) -> C2STResult:
        return c2st(target, pred, **self.options)

    def __repr__(self) -> str:
        return f"C2ST({', '.join(f'{k}={v!r}' for k, v in self.options.items())})"
