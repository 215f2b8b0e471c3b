"""``featstat weights ...``: list, locate and import pretrained backbone weights (no network needed)."""

from __future__ import annotations

import json

import click

from .features.weights import get_entry, import_weights, list_weights, resolve_weights


@click.group()
def weights() -> None:
    """Pretrained backbone weights: list the registry, locate files, import downloaded files.

    Files are looked up in $FEATSTAT_WEIGHTS, then in the torch hub cache (torch.hub.get_dir()/checkpoints).

    \b
    Examples:
      featstat weights list
      featstat weights path vgg19
      featstat weights import ~/Downloads/vgg19-dcbb9e9d.pth
      FEATSTAT_WEIGHTS=/data/weights featstat weights list
    """


@weights.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
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
def path_command(name: str, download: bool) -> None:
    """Print the local path of weights NAME (a registry name or file name), or how to get the file.

    Exits with status 1 when the file is not available. Does not download unless --download is given.

    \b
    Examples:
      featstat weights path vgg19
      featstat weights path vgg19-caffe-normalised-to-relu3_1
      featstat weights path vgg16 --download
    """
    try:
        get_entry(name)
        click.echo(str(resolve_weights(name, download=download)))
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc


@weights.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default=None, help="Registry name to check the file against (default: by hash).")
def import_command(file: str, name: str | None) -> None:
    """Copy a downloaded weights FILE into $FEATSTAT_WEIGHTS (default: the torch hub cache).

    The file is identified by its sha256 (or checked against --name) and stored under its registry file
    name, atomically. Prints the destination.

    \b
    Examples:
      featstat weights import ~/Downloads/vgg19-dcbb9e9d.pth
      featstat weights import weights.pth --name vgg19-caffe
      FEATSTAT_WEIGHTS=/data/weights featstat weights import vgg16-397923af.pth
    """
    try:
        dest = import_weights(file, name=name)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(dest))
