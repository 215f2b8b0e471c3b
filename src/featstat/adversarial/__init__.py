"""Adversarial learning with deep-feature statistics (thesis chapters 4 and 5): perceptual discriminators and
the chapter's baseline discriminators (:mod:`featstat.adversarial.discriminators`)."""

from __future__ import annotations

from .discriminators import (
    ImageDiscriminator,
    ImagePyramid,
    PerceptualDiscriminator,
    SeparateMultiScaleDiscriminator,
    discriminator_head_loss,
    generator_head_loss,
    ms_image_discriminator,
    rand_ms_discriminator,
    vgg_star_,
)

__all__ = [
    "ImageDiscriminator",
    "ImagePyramid",
    "PerceptualDiscriminator",
    "SeparateMultiScaleDiscriminator",
    "discriminator_head_loss",
    "generator_head_loss",
    "ms_image_discriminator",
    "rand_ms_discriminator",
    "vgg_star_",
]
