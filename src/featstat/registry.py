"""The one registry type: names → things (losses, metrics, extractors, networks, recipes, presets, weights).

A :class:`Registry` maps canonical names to objects and accepts aliases wherever a name is. Every kind of
named thing in featstat has one instance here (:data:`LOSSES`, :data:`METRICS`, :data:`SET_METRICS`,
:data:`EXTRACTORS`, :data:`NETWORKS`, :data:`RECIPES`, :data:`PRESETS`, :data:`WEIGHTS`; :func:`get_registry`
by kind). Modules fill them where the things are defined::

    from featstat.registry import LOSSES

    @LOSSES.register("frechet", "fd")
    class FrechetLoss(FeatureLoss):
        distribution_statistic = True      # facts live on the class; the registry filters on them
        ...

    LOSSES.get("fd")                        # FrechetLoss
    LOSSES.names(distribution_statistic=True)
    LOSSES.build({"name": "cx", "bandwidth": 0.2})   # ContextualLoss(bandwidth=0.2)

**Lazy discovery**: a registry may name a package (``package="featstat.losses"``). On the first lookup that
needs every entry (an unknown name, :meth:`Registry.names`, iteration) it imports each module of that
package once (:mod:`pkgutil`), so a new file in ``featstat/losses/`` that registers a class is found with no
other file touched. This module imports nothing of featstat (it is the bottom layer).

A registry is a :class:`~collections.abc.Mapping` of its canonical names (``reg["gram"]``, ``list(reg)``,
``len(reg)``); ``name in reg`` also accepts aliases; ``reg[name] = obj`` and ``del reg[name]`` register and
unregister, as the dict tables it replaces allowed. Errors are ``ValueError`` naming the
kind, the closest names and the choices: ``unknown loss 'cx2'; did you mean 'cx'? choose one of ...``.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Generic, TypeVar

__all__ = [
    "EXTRACTORS",
    "LOSSES",
    "METRICS",
    "NETWORKS",
    "PRESETS",
    "RECIPES",
    "SET_METRICS",
    "WEIGHTS",
    "AliasView",
    "NamesView",
    "Registry",
    "RegistryView",
    "get_registry",
]

T = TypeVar("T")

_MISSING = object()


class Registry(Mapping[str, T], Generic[T]):
    """Canonical name → object, with aliases, did-you-mean errors, fact filters and lazy discovery.

    Args:
        kind: what the entries are, singular ("loss", "metric"); used in error messages.
        package: dotted name of a package whose modules register entries when imported (or a tuple of
            them); imported (every module, once) on the first lookup that needs all entries.
        builder: ``builder(entry, **options)`` makes an instance for :meth:`build` (default: call the entry).
        derived: ``derived()`` → a mapping of extra name → entry computed from other registries (for example,
            metrics derived from distribution losses). Consulted after the registered names, so a registered
            name always wins. ``derived_aliases()`` → alias → derived name.
    """

    def __init__(
        self,
        kind: str,
        *,
        package: str | tuple[str, ...] | None = None,
        builder: Callable[..., Any] | None = None,
        derived: Callable[[], Mapping[str, T]] | None = None,
        derived_aliases: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self.kind = kind
        self.package = package
        self._builder = builder
        self._derived = derived
        self._derived_aliases = derived_aliases
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._discovered = package is None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------------------------------ filling

    def register(self, name: str, *aliases: str, overwrite: bool = False) -> Callable[[T], T]:
        """Decorator registering a class or function under ``name`` and ``aliases``; returns it unchanged.

        ``overwrite=True`` replaces an existing entry of that name (otherwise a ``ValueError``).
        """

        def decorate(obj: T) -> T:
            self.register_value(name, obj, *aliases, overwrite=overwrite)
            return obj

        return decorate

    def register_value(self, name: str, obj: T, *aliases: str, overwrite: bool = False) -> T:
        """Register a data value (a weights entry, a recipe dict, a preset) under ``name`` and ``aliases``."""
        for n in (name, *aliases):
            if not isinstance(n, str) or not n:
                raise ValueError(f"{self.kind} names must be non-empty strings, got {n!r}")
        with self._lock:
            if not overwrite:
                if name in self._entries or name in self._aliases:
                    raise ValueError(f"{self.kind} {name!r} is already registered; pass overwrite=True")
                for a in aliases:
                    if a in self._entries or self._aliases.get(a, name) != name:
                        raise ValueError(f"{self.kind} alias {a!r} is already taken")
            self._aliases.pop(name, None)
            self._entries[name] = obj
            for a in aliases:
                self._aliases[a] = name
        return obj

    def alias(self, alias: str, name: str) -> None:
        """Add ``alias`` for the registered ``name``."""
        with self._lock:
            if alias in self._entries:
                raise ValueError(f"{self.kind} alias {alias!r} is a registered name")
            self._aliases[alias] = name

    def set_derived(
        self,
        derived: Callable[[], Mapping[str, T]] | None,
        derived_aliases: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        """Set the functions giving derived entries and their aliases (see the class docstring)."""
        self._derived, self._derived_aliases = derived, derived_aliases

    def registered_names(self) -> list[str]:
        """Names registered so far (no discovery, no derived names)."""
        return list(self._entries)

    def registered_aliases(self) -> list[str]:
        """Aliases registered so far (no discovery, no derived aliases)."""
        return list(self._aliases)

    def unregister(self, name: str) -> T:
        """Remove ``name`` and its aliases; returns the entry (tests use this to undo a registration)."""
        with self._lock:
            obj = self._entries.pop(name)
            for a in [a for a, n in self._aliases.items() if n == name]:
                del self._aliases[a]
        return obj

    # ----------------------------------------------------------------------------------------- discovery

    def discover(self) -> None:
        """Import every module of :attr:`package` once so that their registrations run."""
        if self._discovered:
            return
        with self._lock:
            if self._discovered:
                return
            self._discovered = True  # set first: modules imported here look names up in this registry
            packages = (self.package,) if isinstance(self.package, str) else tuple(self.package or ())
            for package in packages:
                pkg = importlib.import_module(package)
                for info in pkgutil.iter_modules(getattr(pkg, "__path__", [])):
                    if not info.name.startswith("_"):
                        importlib.import_module(f"{package}.{info.name}")

    def _derived_entries(self) -> Mapping[str, T]:
        return self._derived() if self._derived is not None else {}

    # ------------------------------------------------------------------------------------------- lookups

    def canonical(self, name: str) -> str:
        """The canonical name of ``name`` (a name or an alias); a did-you-mean ``ValueError`` if unknown."""
        if not isinstance(name, str):
            raise ValueError(f"a {self.kind} name must be a string, got {type(name).__name__} {name!r}")
        for attempt in range(2):
            key = self._aliases.get(name, name)
            if key in self._entries:
                return key
            if attempt == 0 and not self._discovered:
                self.discover()
                continue
            break
        derived = self._derived_entries()
        if name in derived:
            return name
        if self._derived_aliases is not None and self._derived_aliases().get(name) in derived:
            return self._derived_aliases()[name]
        choices = self.names()
        close = difflib.get_close_matches(name, [*choices, *self.aliases], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown {self.kind} {name!r}{hint} choose one of {', '.join(choices)}")

    def get(self, name: str, default: Any = _MISSING) -> T:  # type: ignore[override]
        """The entry registered under ``name`` or an alias. Unknown: ``default`` when given, else a
        ``ValueError`` naming the kind, the closest name and the choices."""
        try:
            key = self.canonical(name)
        except ValueError:
            if default is not _MISSING:
                return default
            raise
        entry = self._entries.get(key, _MISSING)
        return self._derived_entries()[key] if entry is _MISSING else entry  # type: ignore[return-value]

    def names(self, **facts: Any) -> list[str]:
        """Canonical names in registration order (then derived names). Keyword filters keep the entries
        whose attribute equals the value: ``LOSSES.names(distribution_statistic=True)``."""
        self.discover()
        items = dict(self._entries)
        for k, v in self._derived_entries().items():
            items.setdefault(k, v)
        return [
            n for n, obj in items.items() if all(getattr(obj, f, _MISSING) == v for f, v in facts.items())
        ]

    def subset(self, **facts: Any) -> RegistryView[T]:
        """A live, read-only mapping of the entries with these facts
        (``NETWORKS.subset(family="hourglass")``): per-module tables such as
        ``featstat.nets.hourglass.NETWORKS`` are such views."""
        return RegistryView(self, facts)

    def hint(self, name: str, candidates: Iterator[str] | list[str] | None = None) -> str:
        """``"; did you mean 'x'?"`` for the closest of ``candidates`` (default: all names), or ``""``."""
        pool = list(candidates) if candidates is not None else [*self.names(), *self.aliases]
        close = difflib.get_close_matches(str(name), pool, n=1)
        return f"; did you mean {close[0]!r}?" if close else ""

    def view(self, **facts: Any) -> NamesView:
        """A live, read-only sequence of :meth:`names` with these facts (entries registered later appear):
        for module constants such as ``STATISTICS`` and CLI choices."""
        return NamesView(self, facts)

    @property
    def aliases(self) -> Mapping[str, str]:
        """Alias → canonical name, derived aliases included (read-only)."""
        self.discover()
        if self._derived_aliases is None:
            return MappingProxyType(self._aliases)
        return MappingProxyType({**self._derived_aliases(), **self._aliases})

    def aliases_of(self, name: str) -> list[str]:
        """The aliases of a canonical name."""
        key = self.canonical(name)
        return [a for a, n in self.aliases.items() if n == key]

    def build(self, spec: str | Mapping[str, Any], **options: Any) -> Any:
        """An instance from a spec: a name, or ``{"name": NAME, **options}``; ``options`` add to (and
        override) the spec's. Constructor ``TypeError``s become ``ValueError`` naming the entry."""
        if isinstance(spec, Mapping):
            if "name" not in spec:
                raise ValueError(f"a {self.kind} spec must have a 'name', got {dict(spec)!r}")
            spec = dict(spec)
            name = spec.pop("name")
            options = {**spec, **options}
        else:
            name = spec
        entry = self.get(name)
        make = self._builder or (lambda obj, **kw: obj(**kw))
        try:
            return make(entry, **options)
        except TypeError as exc:
            raise ValueError(f"{self.kind} {name!r}: {exc}") from exc

    # ----------------------------------------------------------------------------------- Mapping protocol

    def __getitem__(self, name: str) -> T:
        try:
            return self.get(name)
        except ValueError as exc:
            raise KeyError(name) from exc

    def __setitem__(self, name: str, obj: T) -> None:
        """``reg[name] = obj`` registers (replacing) ``name``: what the old dict tables allowed."""
        self.register_value(name, obj, overwrite=True)

    def __delitem__(self, name: str) -> None:
        self.unregister(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name in self._entries or name in self._aliases:
            return True
        self.discover()
        return name in self._entries or name in self.aliases or name in self._derived_entries()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries, package={self.package!r})"


class NamesView(Sequence[str]):
    """``registry.names(**facts)`` read at each access (see :meth:`Registry.view`); compares equal to a tuple
    or list of the same names and prints like a tuple."""

    def __init__(self, registry: Registry[Any], facts: Mapping[str, Any]) -> None:
        self._registry, self._facts = registry, dict(facts)

    def _names(self) -> tuple[str, ...]:
        return tuple(self._registry.names(**self._facts))

    def __getitem__(self, index: Any) -> Any:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (tuple, list, NamesView)) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._names())


class RegistryView(Mapping[str, T], Generic[T]):
    """The entries of a registry with some facts, read at each access (see :meth:`Registry.subset`).
    Names and aliases of other entries are not in the view (``KeyError``; :meth:`hint` suggests)."""

    def __init__(self, registry: Registry[T], facts: Mapping[str, Any]) -> None:
        self.registry, self.facts = registry, dict(facts)

    def _keep(self, obj: Any) -> bool:
        return all(getattr(obj, f, _MISSING) == v for f, v in self.facts.items())

    def __getitem__(self, name: str) -> T:
        try:
            obj = self.registry.get(name)
        except ValueError:
            raise KeyError(name) from None
        if not self._keep(obj):
            raise KeyError(name)
        return obj

    def __contains__(self, name: object) -> bool:
        try:
            self[name]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.registry.names(**self.facts))

    def __len__(self) -> int:
        return len(self.registry.names(**self.facts))

    def hint(self, name: str) -> str:
        """``"; did you mean 'x'?"`` among this view's names, or ``""``."""
        return self.registry.hint(name, list(self))

    def __repr__(self) -> str:
        return f"RegistryView({self.registry.kind!r}, {self.facts}, {list(self)})"


class AliasView(Mapping[str, str]):
    """alias → canonical name of a registry, read at each access (aliases registered later appear; nothing
    is discovered before the first access, so modules may create one while their package imports)."""

    def __init__(self, registry: Registry[Any]) -> None:
        self._registry = registry

    def __getitem__(self, key: str) -> str:
        return self._registry.aliases[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry.aliases)

    def __len__(self) -> int:
        return len(self._registry.aliases)


#: Loss classes (:class:`featstat.losses.FeatureLoss` subclasses); facts: ``distribution_statistic``,
#: ``needs_target``, ``pointwise``.
LOSSES: Registry[Any] = Registry("loss", package="featstat.losses")
#: Metrics (``MetricInfo(function, module, higher_is_better)``; the direction is the class's fact).
METRICS: Registry[Any] = Registry(
    "metric", package="featstat.metrics", builder=lambda info, **kw: info.module(**kw)
)
#: Set-level metrics: compare two *sets* of images, unpaired (one result for the sets, not one value per
#: image), e.g. the classifier two-sample test; entries are classes with the fact ``higher_is_better``.
SET_METRICS: Registry[Any] = Registry("set metric", package="featstat.metrics")
#: Feature extractors for objectives (``arch`` in a config): backbones, raw patches, random filters.
EXTRACTORS: Registry[Any] = Registry("extractor", package="featstat.features")
#: Network builders (featstat.nets): restoration nets, hourglass (DIP) nets, texture generators.
NETWORKS: Registry[Any] = Registry("network", package="featstat.nets")
#: Restoration recipes (dicts; :mod:`featstat.restoration.recipes`).
RECIPES: Registry[Any] = Registry("recipe", package="featstat.restoration")
#: Presets, with the fact ``product``: texture synthesis presets ("texture"), DIP network presets ("prior").
PRESETS: Registry[Any] = Registry("preset", package=("featstat.texture", "featstat.prior"))
#: Pretrained weight files (:class:`featstat.features.weights.WeightEntry`); the module registers them.
WEIGHTS: Registry[Any] = Registry("weights", package="featstat.features.weights")

_BY_KIND: dict[str, Registry[Any]] = {
    "loss": LOSSES,
    "metric": METRICS,
    "set_metric": SET_METRICS,
    "extractor": EXTRACTORS,
    "network": NETWORKS,
    "recipe": RECIPES,
    "preset": PRESETS,
    "weights": WEIGHTS,
}


def get_registry(kind: str) -> Registry[Any]:
    """The registry of a kind: "loss", "metric", "set_metric", "extractor", "network", "recipe", "preset",
    "weights" (plurals accepted)."""
    key = {"losses": "loss", "metrics": "metric", "set_metrics": "set_metric", "extractors": "extractor",
           "networks": "network", "recipes": "recipe", "presets": "preset"}.get(kind, kind)  # fmt: skip
    if key not in _BY_KIND:
        raise ValueError(f"unknown registry kind {kind!r}; choose one of {', '.join(_BY_KIND)}")
    return _BY_KIND[key]
