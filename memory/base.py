"""What a memory core is (:class:`MemoryCore`), and the registry that names them.

A core maps a sequence ``x [T, B, I]`` to features ``[T, B, output_size]`` with a carried state
(a ``NamedTuple`` of batch-first tensors) and a per-step reset (an episode start: the row's
state is emptied before that step), and has a one-step form for acting. The registry maps a
name to the core's config dataclass, its factory and its state types; every benchmark builds
its core through :func:`make_core`, and checkpoint loading allows exactly the registered state
types (:func:`state_types`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class MemoryCore(Protocol):
    """The interface every core provides (``torch.nn.Module`` subclasses all)."""

    #: features per step of the output
    output_size: int

    def initial_state(self, batch_size: int, device=None, dtype=None) -> tuple:
        """The empty state: a tuple (a ``NamedTuple``) of batch-first tensors ``[B, ...]``."""

    def forward(self, x: torch.Tensor, state: tuple | None = None,
                reset: torch.Tensor | None = None, final_state: bool = True
                ) -> tuple[torch.Tensor, tuple | None]:
        """``x [T, B, I]``, ``reset [T, B]`` (or None) -> ``(out [T, B, output_size], the
        state after step T-1, or None with final_state=False)``; ``state=None`` is empty."""

    def step(self, x: torch.Tensor, state: tuple | None = None,
             reset: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple]:
        """One step, for acting: ``x [B, I]``, ``reset [B]`` -> ``(out [B, output_size],
        state)``."""

    def state_from_tuple(self, tensors: tuple[torch.Tensor, ...]) -> tuple:
        """The state from a plain tuple of its tensors (SB3's ``predict`` carries states as
        tuples of arrays)."""


#: The members of :class:`MemoryCore`, for the message that names what a core lacks.
INTERFACE = ("output_size", "initial_state", "forward", "step", "state_from_tuple")


@dataclasses.dataclass(frozen=True)
class CoreSpec:
    """A registered core.

    Attributes:
        name: its name in every script (``--core``, ``--model``, ``LMConfig.memory``).
        factory: ``factory(input_size, hidden_size, **options) -> MemoryCore``.
        state_types: the ``NamedTuple`` types of its states (checkpoints may hold them).
        config: its config dataclass (None: sizes only).
        summary: one line for ``--help`` and the docs.
    """

    name: str
    factory: Callable[..., nn.Module]
    state_types: tuple[type, ...]
    config: type | None = None
    summary: str = ""


_REGISTRY: dict[str, CoreSpec] = {}


def register_core(spec: CoreSpec) -> CoreSpec:
    """Add ``spec`` to the registry (a name can be registered once)."""
    if spec.name in _REGISTRY and _REGISTRY[spec.name] != spec:
        raise ValueError(f"a core named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def core_names() -> tuple[str, ...]:
    """The registered names, in registration order."""
    return tuple(_REGISTRY)


def core_spec(name: str) -> CoreSpec:
    """The :class:`CoreSpec` of ``name``.

    Raises:
        ValueError: no core of that name (the message lists the names)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"no memory core named {name!r}; the registered ones are "
                         f"{core_names()}") from None


def state_types() -> tuple[type, ...]:
    """Every registered core's state types (what a checkpoint may unpickle)."""
    return tuple(dict.fromkeys(t for spec in _REGISTRY.values() for t in spec.state_types))


def make_core(core: str | Callable[..., nn.Module], input_size: int, hidden_size: int,
              **options: Any) -> nn.Module:
    """A core by registered name, or a user's: a class (any callable)
    ``core(input_size, hidden_size, **options)`` that returns a :class:`MemoryCore`.

    Raises:
        ValueError: an unknown name.
        TypeError: a user's core lacks part of the interface (named).
    """
    if isinstance(core, str):
        return core_spec(core).factory(input_size, hidden_size, **options)
    if not callable(core):
        raise ValueError(f"core must be a registered name {core_names()} or a class that "
                         f"builds a memory core, got {core!r}")
    module = core(input_size, hidden_size, **options)
    missing = [name for name in INTERFACE if not hasattr(module, name)]
    if missing:
        raise TypeError(f"core {core!r} built a {type(module).__name__} without "
                        f"{', '.join(missing)}: a memory core provides {', '.join(INTERFACE)} "
                        f"(memory.MemoryCore)")
    return module


def parameter_count(module: nn.Module) -> int:
    """Trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def nearest_width(count: Callable[[int], int], budget: int, low: int = 1,
                  high: int = 4096) -> int:
    """The width in ``[low, high]`` whose ``count(width)`` (a parameter count that grows with
    the width) is nearest ``budget``, by bisection.

    Raises:
        ValueError: the budget is below ``count(low)`` or above ``count(high)``."""
    if not count(low) <= budget <= count(high):
        raise ValueError(f"budget {budget:,} is outside [{count(low):,}, {count(high):,}], the "
                         f"counts at widths {low} and {high}")
    while high - low > 1:
        mid = (low + high) // 2
        if count(mid) <= budget:
            low = mid
        else:
            high = mid
    return low if budget - count(low) <= count(high) - budget else high


def size_for_budget(core: str | Callable[..., nn.Module], input_size: int, budget: int,
                    extra: Callable[[int], int] | None = None, low: int = 1,
                    high: int = 4096, **options: Any) -> int:
    """The ``hidden_size`` whose core (plus ``extra(hidden_size)`` parameters around it, e.g.
    a policy's heads) comes closest to ``budget`` parameters (:func:`nearest_width`), for
    comparing memories at equal size.

    Raises:
        ValueError: the budget is below the smallest core's count or above the largest's."""
    def count(hidden: int) -> int:
        return parameter_count(make_core(core, input_size, hidden, **options)) + (
            extra(hidden) if extra is not None else 0)

    return nearest_width(count, budget, low, high)
