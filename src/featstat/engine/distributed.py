"""Data-parallel training under ``torchrun``: the one place where a training Run finds its process group.

``torchrun --nproc_per_node W …`` starts W processes with ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` set;
:func:`distributed` joins them (NCCL with CUDA, gloo otherwise) or reuses a group the caller initialised
(tests do: ``dist.init_process_group("gloo", init_method="file://…")``). Restoration training
(:mod:`featstat.restoration.trainer`) and unaligned translation (:mod:`featstat.adversarial.translation`)
both use it, so a run behaves the same under ``torchrun`` whichever product it is.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["distributed"]


def distributed() -> tuple[int, int, int, bool]:
    """(rank, world size, local rank, whether this call created the process group).

    An initialised process group is used as it is; otherwise ``WORLD_SIZE`` > 1 (set by ``torchrun``)
    initialises one from the environment (backend ``nccl`` when CUDA is available, else ``gloo``); otherwise
    the process is alone: ``(0, 1, 0, False)``. The caller that created the group destroys it when done.
    """
    if dist.is_available() and dist.is_initialized():
        return (
            dist.get_rank(),
            dist.get_world_size(),
            int(os.environ.get("LOCAL_RANK", dist.get_rank())),
            False,
        )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        if not dist.is_available():
            raise RuntimeError("WORLD_SIZE > 1 but torch.distributed is not available in this build")
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), True
    return 0, 1, 0, False
