"""Texture synthesis and style transfer (Gatys et al.; any statistic) and feed-forward texture / stylisation
generators (Texture Networks, Improved Texture Networks).

- :mod:`featstat.texture.synthesis` — optimise pixels: :func:`~featstat.texture.synthesis.synthesize_texture`,
  :func:`~featstat.texture.synthesis.transfer_style`, presets.
- :mod:`featstat.texture.training` — train generators: :func:`~featstat.texture.training.train_texture`,
  :func:`~featstat.texture.training.train_style`, :func:`~featstat.texture.training.load_generator`.
"""

from __future__ import annotations
