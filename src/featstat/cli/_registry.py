"""Command-line help text and choices generated from the registries (:mod:`featstat.registry`).

Options whose values are registered names (statistics, losses, metrics, recipes, presets, networks) list
them from the registry when the help is shown or the value is parsed, never from a copy of the names, so a
newly registered loss or metric appears in ``--help`` and is accepted with no CLI change. Nothing here runs
at import time: ``featstat --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import click

from ..registry import get_registry

__all__ = ["RegistryChoice", "RegistryHelpOption", "names_help"]


def names_help(kind: str, *, aliases: bool = True, **facts: Any) -> str:
    """``"gram (texture), contextual (cx), chamfer"``: the registry's names with these facts and their
    aliases."""
    reg = get_registry(kind)
    names = reg.names(**facts)
    if not aliases:
        return ", ".join(names)
    by_name: dict[str, list[str]] = {}
    for alias, name in reg.aliases.items():
        by_name.setdefault(name, []).append(alias)
    return ", ".join(f"{n} ({', '.join(by_name[n])})" if n in by_name else n for n in names)


class RegistryHelpOption(click.Option):
    """A click option whose help is ``help_fn()``, computed when the help is shown
    (``@click.option(..., cls=RegistryHelpOption, help_fn=lambda: ...)``)."""

    def __init__(self, *args: Any, help_fn: Callable[[], str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._help_fn = help_fn

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = self._help_fn()
        return super().get_help_record(ctx)


class RegistryChoice(click.Choice):
    """``click.Choice`` over the names (and aliases) of a registry, read when used; ``facts`` filter the
    names (``RegistryChoice("network", family="texture")``). Values are returned as given."""

    def __init__(
        self, kind: str, *, aliases: bool = False, case_sensitive: bool = True, **facts: Any
    ) -> None:
        self._kind, self._aliases, self._facts = kind, aliases, facts
        super().__init__([], case_sensitive=case_sensitive)

    @property  # type: ignore[override]
    def choices(self) -> list[str]:
        reg = get_registry(self._kind)
        names = reg.names(**self._facts)
        if self._aliases:
            names += [a for a, n in reg.aliases.items() if n in names]
        return names

    @choices.setter
    def choices(self, value: Any) -> None:  # click.Choice.__init__ assigns; the registry is the source
        pass

    def to_info_dict(self) -> Mapping[str, Any]:  # pragma: no cover - click's introspection
        return {**super().to_info_dict(), "registry": self._kind}
