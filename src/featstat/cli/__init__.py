"""The ``featstat`` command line: ``featstat <verb> ...``.

Each product's verbs live in one module of this package (``texture.py``, ``prior.py``, ``restoration.py``,
``metrics.py``, ``weights.py``) and are listed in :data:`VERBS` below, so adding a verb touches its module and
one line here. What the verbs share (the error mapping, ``--device``, the run options, the one ``--set``
grammar, logging) is in :mod:`featstat.cli._common`.
"""

from __future__ import annotations

import importlib
from typing import ClassVar

import click

from ._common import FeatstatGroup, short_help

#: verb → (module, attribute, the start of its help). Verbs are imported when used, so that
#: ``featstat --help`` does not load torch; tests/test_cli_main.py checks the help lines against the verbs.
VERBS: dict[str, tuple[str, str, str]] = {
    "texture": ("featstat.cli.texture", "texture_command",
                "Synthesise a texture like EXAMPLE by optimising pixels (Gatys et al.; any statistic)."),
    "style": ("featstat.cli.texture", "style_command",
              "Paint CONTENT in the style of STYLE by optimising pixels (Gatys et al. 2016; any statistic)."),
    "train": ("featstat.cli.texture", "train",
              "Train feed-forward generators (texture networks, stylisation networks, restoration recipes)."),
    "sample": ("featstat.cli.texture", "sample_command",
               "Draw textures of any size from a texture generator trained with `featstat train texture`."),
    "stylize": ("featstat.cli.texture", "stylize_command",
                "Stylise IMAGES (files or folders, any size) with a network trained by"),
    "restore": ("featstat.cli.restoration", "restore_command",
                "Restore IMAGES (files or folders) with a trained network "),
    "degrade": ("featstat.cli.restoration", "degrade_command",
                "Degrade IMAGES (files or folders) as a training task does"),
    "prior": ("featstat.cli.prior", "prior",
              "Deep Image Prior: restore one photo by fitting a random network to it (no training data)."),
    "eval": ("featstat.cli.metrics", "eval_command",
             "Score the images of PRED_DIR against those of REF_DIR with the same names."),
    "compare": ("featstat.cli.metrics", "compare_command",
                "Put IMAGES side by side with zoomed crops and their metrics against a reference."),
    "spectrum": ("featstat.cli.metrics", "spectrum_command",
                 "Plot the mean radial power spectrum of each INPUT (a folder of images or one image file)."),
    "twoafc": ("featstat.cli.metrics", "twoafc_command",
               "Score metrics against human 2AFC judgements on a BAPPS-layout folder"),
    "weights": ("featstat.cli.weights", "weights",
                "Pretrained backbone weights: list the registry, locate files, import downloaded files."),
    "translate": ("featstat.cli.adversarial", "translate_command",
                  "Translate IMAGES (files or folders, any size) with a generator trained by"),
    "age": ("featstat.cli.adversarial", "age",
            "Use a trained AGE: draw samples, reconstruct images, colourise, transfer colours."),
}  # fmt: skip


class _LazyMain(FeatstatGroup):
    """Imports a verb's module only when that verb runs (or its help is shown)."""

    _loaded: ClassVar[dict[str, click.Command]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(VERBS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in VERBS:
            return None
        if name not in self._loaded:
            module, attr, _ = VERBS[name]
            command = getattr(importlib.import_module(module), attr)
            if name == "train":  # featstat train <recipe> for the supervised restoration recipes
                from .adversarial import add_train_commands
                from .restoration import add_recipe_commands

                add_recipe_commands(command)
                add_train_commands(command)  # featstat train translate / train age
            self._loaded[name] = command
        return self._loaded[name]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(n) for n in VERBS)
        rows = []
        for name in self.list_commands(ctx):
            rows.append((name, short_help(VERBS[name][2], limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyMain, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="featstat")
def main() -> None:
    """featstat: losses, metrics and engines that compare the internal statistics of images.

    \b
    Examples:
      featstat texture pebbles.jpg -o out/pebbles.png     # texture synthesis by optimisation
      featstat style photo.jpg starry_night.jpg -o out/     # style transfer
      featstat prior denoise                                # Deep Image Prior on a built-in sample
      featstat train cx-sr --data photos/ --task sr4        # train a restoration network
      featstat eval results/ ground_truth/ --metrics psnr,ssim,lpips
      featstat weights list                                 # known pretrained weights and where they are
      featstat COMMAND --help                               # help and examples for one command
    """
