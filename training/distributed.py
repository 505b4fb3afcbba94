"""Data-parallel training with ``torch.distributed`` (DDP), for the supervised trainers and the
RL algorithms.

Launch any training script with ``torchrun --nproc_per_node N scripts/...``: torchrun sets
``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` and :func:`init_from_env` joins the process group
(NCCL on CUDA, one GPU per process; gloo on CPU). Without those variables everything runs as a
single process and these helpers are no-ops.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def resolve_device(device: str) -> str:
    """A ``--device`` value checked against this machine: ``"auto"`` becomes ``"cuda"`` where
    CUDA is available and ``"cpu"`` elsewhere; anything else must be a device torch knows and
    can use here.

    Raises:
        ValueError: an unknown device name, or a CUDA device on a machine or torch build
            without CUDA (rather than training on the CPU without saying so).
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ValueError(f"--device {device!r} is not a device name; use 'cpu', 'cuda', "
                         f"'cuda:N' or 'auto'") from None
    if kind == "cuda" and not torch.cuda.is_available():
        build = (f"built for CUDA {torch.version.cuda}, but no GPU is visible"
                 if torch.version.cuda else "a CPU-only build")
        raise ValueError(f"--device {device!r}: CUDA is not available (torch "
                         f"{torch.__version__} is {build}); use --device cpu, or --device auto "
                         f"to take a GPU only where there is one")
    return device


def parse_device(parser, device: str) -> str:
    """:func:`resolve_device` for a script: a bad value exits through ``parser.error`` with
    the one-line reason."""
    try:
        return resolve_device(device)
    except ValueError as err:
        parser.error(str(err))


def init_from_env(device: str) -> str:
    """Join the process group if launched by torchrun; returns the device this process should
    use (``cuda:LOCAL_RANK`` for a CUDA device, else ``device`` unchanged)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    cuda = str(device).startswith("cuda")
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return device


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def local_slice(batch_size: int) -> slice:
    """This process's share ``[r B/W, (r+1) B/W)`` of a global batch of ``batch_size`` B.

    Raises:
        ValueError: B is not divisible by the number of processes W.
    """
    rank, world = rank_and_world()
    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} must be divisible by the {world} processes")
    share = batch_size // world
    return slice(rank * share, (rank + 1) * share)


def wrap(model: torch.nn.Module, device, find_unused_parameters: bool = False):
    """``model`` in DistributedDataParallel inside a process group, else ``model`` itself."""
    if rank_and_world()[1] == 1:
        return model
    cuda = str(device).startswith("cuda")
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[torch.device(device).index] if cuda else None,
        find_unused_parameters=find_unused_parameters)


def gather(obj) -> list:
    """Every process's ``obj`` (picklable), in rank order, on every process."""
    rank, world = rank_and_world()
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def this_process(entries: list, path) -> object:
    """This process's entry of a per-process list saved in the checkpoint ``path`` (one entry
    per process, see :func:`gather`).

    Raises:
        ValueError: the checkpoint was written by another number of processes.
    """
    rank, world = rank_and_world()
    if len(entries) != world:
        raise ValueError(f"{path} was written by {len(entries)} processes; resume it with as "
                         f"many, not {world}")
    return entries[rank]


def any_process(flag: bool) -> bool:
    """True on every process if ``flag`` is True on any (for decisions that must agree, such
    as a wall-clock stop)."""
    if rank_and_world()[1] == 1:
        return flag
    t = torch.tensor([int(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def average_gradients(parameters) -> None:
    """Each parameter's gradient replaced by its mean over the processes (a parameter without
    one counts as a zero gradient); a no-op in one process. With the same number of samples
    on every process, the mean of the per-process mean losses' gradients is the gradient of
    the mean loss over all of them: the one-process update on the union of the data."""
    world = rank_and_world()[1]
    if world == 1:
        return
    parameters = [p for p in parameters if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    for p, g in zip(parameters, flat.split([g.numel() for g in grads]), strict=True):
        p.grad = g.view_as(p).clone()


def global_mean_std(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) standard deviation of ``x`` over every process's ``x`` together;
    ``x.mean(), x.std()`` in one process."""
    if rank_and_world()[1] == 1:
        return x.mean(), x.std()
    stats = torch.stack([x.sum(), x.pow(2).sum(), torch.tensor(float(x.numel()),
                                                                 dtype=x.dtype, device=x.device)])
    dist.all_reduce(stats)
    total, total_sq, n = stats
    mean = total / n
    return mean, ((total_sq - n * mean ** 2) / (n - 1)).clamp_min(0).sqrt()


def rng_states(device) -> dict:
    """The torch random-number states that drive dropout on ``device`` (for checkpoints)."""
    states = {"cpu": torch.get_rng_state()}
    if str(device).startswith("cuda"):
        states["cuda"] = torch.cuda.get_rng_state(device).cpu()
    return states


def set_rng_states(states: dict, device) -> None:
    torch.set_rng_state(states["cpu"].cpu())
    if "cuda" in states and str(device).startswith("cuda"):
        torch.cuda.set_rng_state(states["cuda"].cpu(), device)


def barrier() -> None:
    if rank_and_world()[1] > 1:
        dist.barrier()


def shutdown() -> None:
    """Leave the process group, all processes together: a barrier first, so that no process
    tears its connections down while another is still inside a collective (gloo then aborts
    that process, "terminate called without an active exception"). Every process must call
    it, at the same point."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
