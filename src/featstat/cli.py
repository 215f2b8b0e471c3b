"""The ``featstat`` command line: ``featstat <verb> ...``.

Each verb group lives in its own module (``cli_weights.py``, ``cli_metrics.py``, ...) and is registered here
with ``main.add_command``, so adding a verb touches one new module and one line below.
"""

from __future__ import annotations

import click

from .cli_metrics import compare_command, eval_command, spectrum_command, twoafc_command
from .cli_prior import prior
from .cli_restore import add_recipe_commands, degrade_command, restore_command
from .cli_synthesis import COMMANDS as SYNTHESIS_COMMANDS
from .cli_synthesis import train
from .cli_weights import weights


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


main.add_command(weights)
for command in SYNTHESIS_COMMANDS:  # texture, style, train (group), sample, stylize
    main.add_command(command)
add_recipe_commands(train)  # featstat train <recipe> for the supervised restoration recipes
main.add_command(restore_command)
main.add_command(degrade_command)
main.add_command(prior)
main.add_command(eval_command)
main.add_command(compare_command)
main.add_command(spectrum_command)
main.add_command(twoafc_command)
