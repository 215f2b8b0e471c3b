"""Texture synthesis and style transfer (Gatys et al.; any statistic) and feed-forward texture / stylisation
generators (Texture Networks, Improved Texture Networks).

- :mod:`featstat.texture.synthesis` — optimise pixels: :func:`~featstat.texture.synthesis.synthesize_texture`,
  :func:`~featstat.texture.synthesis.transfer_style`; each pyramid level a Run of the one loop
  (:mod:`featstat.texture.pixel_runs`).
- :mod:`featstat.texture.presets` — presets as data: backbone specs and the objective specs they write.
- :mod:`featstat.texture.training` — train generators: :func:`~featstat.texture.training.train_texture`,
  :func:`~featstat.texture.training.train_style`, :func:`~featstat.texture.training.load_generator`
  (:class:`~featstat.texture.training.GeneratorTrainer` is a Run of the one loop).
"""

from __future__ import annotations
