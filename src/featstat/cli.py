"""The ``featstat`` command line: ``featstat <verb> ...``.

Each verb group lives in its own module (``cli_weights.py``, ...) and is registered here with
``main.add_command``, so adding a verb touches one new module and one line below.
"""

from __future__ import annotations

import click

from .cli_metrics import compare_command, eval_command, spectrum_command, twoafc_command
from .cli_weights import weights


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="featstat")
def main() -> None:
    """featstat: losses, metrics and engines that compare the internal statistics of images.

    \b
    Examples:
      featstat weights list                 # known pretrained weights and where they are
      featstat weights import vgg19-dcbb9e9d.pth
      featstat COMMAND --help               # help and examples for one command
    """


main.add_command(weights)
main.add_command(eval_command)
main.add_command(compare_command)
main.add_command(spectrum_command)
main.add_command(twoafc_command)
