"""Two-alternative forced choice (2AFC) scoring of a distance against human judgements (BAPPS, Zhang et al.
2018).

A BAPPS 2AFC subset is a folder with four sub-folders of files sharing their names (stems)::

    <subset>/ref/000000.png     reference patch
    <subset>/p0/000000.png      distorted patch 0
    <subset>/p1/000000.png      distorted patch 1
    <subset>/judge/000000.npy   fraction of human raters who judged p1 closer to ref (in [0, 1])

For a distance d (lower = more similar; metrics where higher is better are negated), each triplet scores
``(d0 < d1)·(1 − h) + (d1 < d0)·h + (d0 = d1)·½`` with d0 = d(p0, ref), d1 = d(p1, ref), h the judgement: the
expected agreement with a random rater (the score of the reference code). A subset's score is the mean over
its triplets; the papers' tables then give, in %, each subset, the unweighted mean over the "distortions"
subsets (traditional, cnn), over the "real algorithms" subsets (superres, deblur, color, frameinterp), and
the mean over all subsets ("All").

``featstat twoafc ROOT --metrics ...`` runs this from the command line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..io import IMAGE_EXTENSIONS, read_image

__all__ = [
    "GROUPS",
    "SUBSET_LABELS",
    "TwoAFCResult",
    "find_subsets",
    "format_table",
    "list_triplets",
    "score_2afc",
    "twoafc_scores",
]

#: The BAPPS validation subsets, grouped as in the papers' tables.
GROUPS: dict[str, tuple[str, ...]] = {
    "Distortions": ("traditional", "cnn"),
    "Real algorithms": ("superres", "deblur", "color", "frameinterp"),
}
SUBSET_LABELS: dict[str, str] = {
    "traditional": "Traditional",
    "cnn": "CNN-based",
    "superres": "Super-res",
    "deblur": "Video deblur",
    "color": "Colorization",
    "frameinterp": "Frame interp",
}
_PARTS = ("ref", "p0", "p1", "judge")


def twoafc_scores(d0: Tensor, d1: Tensor, judge: Tensor) -> Tensor:
    """Per-triplet 2AFC score ``(d0 < d1)(1 − h) + (d1 < d0) h + (d0 = d1)/2`` (distances: lower = closer)."""
    d0, d1 = torch.as_tensor(d0, dtype=torch.float64), torch.as_tensor(d1, dtype=torch.float64)
    h = torch.as_tensor(judge, dtype=torch.float64).to(d0.device)
    if not (d0.shape == d1.shape == h.shape):
        raise ValueError(f"d0, d1 and judge must have the same shape, got {d0.shape}, {d1.shape}, {h.shape}")
    if bool(((h < 0) | (h > 1)).any()):
        raise ValueError("judge values must be fractions in [0, 1] (share of raters preferring p1)")
    return (d0 < d1).double() * (1 - h) + (d1 < d0).double() * h + (d0 == d1).double() * 0.5


def _is_subset(path: Path) -> bool:
    return all((path / part).is_dir() for part in _PARTS)


def find_subsets(root: str | Path) -> dict[str, Path]:
    """Subsets under ``root``: ``root`` itself if it has ref/p0/p1/judge, else its sub-folders that do.

    Returns {name: folder}, known BAPPS subsets first in the papers' order, then the others by name.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(
            f"root {str(root)!r} is not a directory; give a BAPPS 2AFC folder (e.g. dataset/2afc/val)"
        )
    if _is_subset(root):
        return {root.name: root}
    found = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and _is_subset(p)}
    if not found:
        raise ValueError(
            f"no 2AFC subset under {str(root)!r}: expected sub-folders ref/, p0/, p1/, judge/ in it or in "
            f"its sub-folders (BAPPS layout, e.g. dataset/2afc/val/traditional/ref/000000.png)"
        )
    order = [n for g in GROUPS.values() for n in g]
    return dict(
        sorted(found.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))
    )


def _by_stem(folder: Path, suffixes: Iterable[str]) -> dict[str, Path]:
    suffixes = set(suffixes)
    out: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in suffixes:
            if f.stem in out:
                raise ValueError(f"two files named {f.stem!r} in {folder}: {out[f.stem].name} and {f.name}")
            out[f.stem] = f
    return out


def list_triplets(subset: str | Path) -> list[tuple[Path, Path, Path, Path]]:
    """(ref, p0, p1, judge) file paths of a subset folder, matched by file stem; ``ValueError`` on
    mismatches."""
    subset = Path(subset)
    if not _is_subset(subset):
        raise ValueError(f"{str(subset)!r} is not a 2AFC subset: it needs sub-folders {', '.join(_PARTS)}")
    files = {p: _by_stem(subset / p, IMAGE_EXTENSIONS if p != "judge" else (".npy",)) for p in _PARTS}
    stems = set().union(*(set(f) for f in files.values()))
    problems = [
        f"{stem}: missing in {', '.join(p for p in _PARTS if stem not in files[p])}"
        for stem in sorted(stems)
        if any(stem not in files[p] for p in _PARTS)
    ]
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise ValueError(f"unmatched files in {subset}: {'; '.join(problems[:10])}{more}")
    if not stems:
        raise ValueError(f"subset {subset} holds no triplets")
    return [tuple(files[p][s] for p in _PARTS) for s in sorted(stems)]  # type: ignore[misc]


def _read_judge(path: Path) -> float:
    try:
        value = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise ValueError(f"cannot read judgement file {path}: {exc}") from exc
    value = np.asarray(value, dtype=np.float64).ravel()
    if value.size != 1 or not (0.0 <= value[0] <= 1.0):
        raise ValueError(f"judgement file {path} must hold one fraction in [0, 1], got {value[:4]}")
    return float(value[0])


@dataclass
class TwoAFCResult:
    """2AFC scores of one distance: per subset (fractions in [0, 1]) and counts of triplets."""

    name: str
    scores: dict[str, float]
    counts: dict[str, int]
    per_triplet: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def group_score(self, group: str) -> float:
        """Unweighted mean of the group's subsets present here (NaN if none)."""
        vals = [self.scores[s] for s in GROUPS[group] if s in self.scores]
        return float(np.mean(vals)) if vals else math.nan

    @property
    def overall(self) -> float:
        """Unweighted mean over all subsets (the papers' last "All" column)."""
        return float(np.mean(list(self.scores.values())))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "scores": self.scores,
            "counts": self.counts,
            "groups": {g: self.group_score(g) for g in GROUPS},
            "overall": self.overall,
        }


def score_2afc(
    distance: Callable[[Tensor, Tensor], Tensor],
    root: str | Path,
    *,
    name: str = "distance",
    higher_is_better: bool = False,
    subsets: Sequence[str] | None = None,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    progress: Callable[[int], None] | None = None,
) -> TwoAFCResult:
    """Score ``distance`` on the BAPPS-layout 2AFC folder ``root``.

    Args:
        distance: ``distance(pred, target)`` → one value per image (N), e.g. a metric module with
            ``reduction="none"`` (``featstat.metrics.LPIPS("alex", reduction="none")``, built once on
            ``device``: it caches the reference's features between p0 and p1); called with pred = p0 or p1 and
            target = ref, batches of N×3×H×W in [0, 1].
        root: a subset folder or a folder of subsets (see :func:`find_subsets`).
        name: label of the result.
        higher_is_better: True for similarities (PSNR, SSIM): they are negated to act as distances.
        subsets: names to score (default: all found).
        batch_size: triplets per call (images of one batch must share a size; mixed sizes are split).
        device: where images are put (default CPU).
        progress: called with the number of triplets done after each batch.
    """
    found = find_subsets(root)
    if subsets is not None:
        missing = [s for s in subsets if s not in found]
        if missing:
            raise ValueError(f"subsets {missing} not found under {root}; available: {list(found)}")
        found = {s: found[s] for s in subsets}
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    sign = -1.0 if higher_is_better else 1.0
    scores: dict[str, float] = {}
    counts: dict[str, int] = {}
    per: dict[str, list[float]] = {}
    for subset, folder in found.items():
        triplets = list_triplets(folder)
        values: list[float] = []
        for start in range(0, len(triplets), batch_size):
            chunk = triplets[start : start + batch_size]
            imgs = [[read_image(path, device=device) for path in t[:3]] for t in chunk]
            judges = [_read_judge(t[3]) for t in chunk]
            # group by size so that each call gets one tensor
            groups: dict[tuple, list[int]] = {}
            for i, (ref, p0, p1) in enumerate(imgs):
                if not (ref.shape == p0.shape == p1.shape):
                    raise ValueError(
                        f"triplet {chunk[i][0].stem} in {folder}: ref, p0, p1 sizes differ "
                        f"({tuple(ref.shape[2:])}, {tuple(p0.shape[2:])}, {tuple(p1.shape[2:])})"
                    )
                groups.setdefault(tuple(ref.shape), []).append(i)
            d0 = torch.empty(len(chunk), dtype=torch.float64)
            d1 = torch.empty(len(chunk), dtype=torch.float64)
            with torch.no_grad():
                for idx in groups.values():
                    ref = torch.cat([imgs[i][0] for i in idx])
                    d0[idx] = sign * _as_values(distance(torch.cat([imgs[i][1] for i in idx]), ref), len(idx))
                    d1[idx] = sign * _as_values(distance(torch.cat([imgs[i][2] for i in idx]), ref), len(idx))
            values += twoafc_scores(d0, d1, torch.tensor(judges)).tolist()
            if progress is not None:
                progress(len(chunk))
        scores[subset] = float(np.mean(values))
        counts[subset] = len(values)
        per[subset] = values
    return TwoAFCResult(name, scores, counts, per)


def _as_values(v: Tensor, n: int) -> Tensor:
    v = torch.as_tensor(v).detach().double().cpu().reshape(-1)
    if v.numel() != n:
        raise ValueError(
            f"distance must return one value per image ({n}), got shape {tuple(v.shape)}; use "
            f"reduction='none'"
        )
    return v


def format_table(results: Sequence[TwoAFCResult]) -> str:
    """The papers' 2AFC table (scores in %, higher is better) for one or more results, as plain text."""
    if not results:
        raise ValueError("results is empty")
    present = [s for r in results for s in r.scores]
    known = [s for g in GROUPS.values() for s in g]
    others = sorted({s for s in present if s not in known})
    columns: list[tuple[str, str, Callable[[TwoAFCResult], float]]] = []  # (group, label, value)
    for group, members in GROUPS.items():
        subs = [s for s in members if s in present]
        if not subs:
            continue
        for s in subs:
            columns.append((group, SUBSET_LABELS[s], lambda r, s=s: r.scores.get(s, math.nan)))
        columns.append((group, "All", lambda r, g=group: r.group_score(g)))
    for s in others:
        columns.append(("Other", s, lambda r, s=s: r.scores.get(s, math.nan)))
    columns.append(("", "All", lambda r: r.overall))
    name_w = max(6, *(len(r.name) for r in results))
    widths = [max(6, len(label)) for _, label, _ in columns]
    # group header line
    header1 = " " * name_w
    i = 0
    while i < len(columns):
        group = columns[i][0]
        j = i
        while j < len(columns) and columns[j][0] == group:
            j += 1
        span = sum(widths[i:j]) + 2 * (j - i)
        header1 += "  " + group.center(span - 2)
        i = j
    header2 = "metric".ljust(name_w) + "".join(
        "  " + label.rjust(w) for (_, label, _), w in zip(columns, widths, strict=True)
    )
    lines = [header1.rstrip(), header2, "-" * len(header2)]
    for r in results:
        cells = []
        for (_, _, fn), w in zip(columns, widths, strict=True):
            v = fn(r)
            cells.append("  " + ("-" if math.isnan(v) else f"{100 * v:.1f}").rjust(w))
        lines.append(r.name.ljust(name_w) + "".join(cells))
    return "\n".join(lines)
