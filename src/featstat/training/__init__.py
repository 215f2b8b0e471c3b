"""Training engines: optimise a generator on data.

- :mod:`featstat.training.texture` — feed-forward texture and stylisation generators (Texture Networks,
  Improved Texture Networks): :func:`~featstat.training.texture.train_texture`,
  :func:`~featstat.training.texture.train_style`, :class:`~featstat.training.texture.GeneratorTrainer`,
  :func:`~featstat.training.texture.load_generator`.
- Supervised restoration training (recipes, data, trainer) lives in its own submodules; import them from
  there (``featstat.training.trainer``, ``featstat.training.recipes``, ``featstat.training.data``).

Submodules are imported on use, so importing one engine never pulls in another.
"""

from __future__ import annotations
