"""Supervised restoration: degradations (:mod:`featstat.restoration.degrade`), data
(:mod:`featstat.restoration.data`), the trainer (:mod:`featstat.restoration.trainer`) and the papers' recipes
(:mod:`featstat.restoration.recipes`)."""

from __future__ import annotations
