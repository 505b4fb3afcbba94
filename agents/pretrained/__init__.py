"""Trained agents shipped with the package, each a RecurrentA2C checkpoint with a model card.

::

    from agents import pretrained

    pretrained.available()             # {"fwm-32-16": "...", "lstm-64": "..."}
    model = pretrained.load("fwm-32-16")
    pretrained.card("fwm-32-16")       # command, commit, seed, wall time, machine, evaluation

Each card (``<name>.json`` beside ``<name>.zip``) records how the agent was trained (the exact
command, the commit, the seed, the wall time, the updates, the machine) and its
``scripts/evaluate_agent.py`` numbers: 10 episodes on each of the 600 train and the 600 test
graphs, sampled and greedy actions, with standard errors. ``card["check"]`` is a cheaper
number (one sampled episode per test graph) that a test reproduces exactly on the CPU.
``scripts/make_model_card.py`` writes a card for a run folder.
"""

from __future__ import annotations

import json
import pathlib

#: the folder of the shipped checkpoints and cards (package data)
DIRECTORY = pathlib.Path(__file__).resolve().parent


def names() -> list[str]:
    """The names of the shipped agents, sorted."""
    return sorted(p.stem for p in DIRECTORY.glob("*.json") if (DIRECTORY / f"{p.stem}.zip")
                  .is_file())


def _check(name: str) -> None:
    if name not in names():
        raise ValueError(f"no shipped agent named {name!r}; the shipped agents are "
                         f"{names()} (agents.pretrained.available())")


def card(name: str) -> dict:
    """The model card of a shipped agent, as a dict."""
    _check(name)
    return json.loads((DIRECTORY / f"{name}.json").read_text())


def available() -> dict[str, str]:
    """``{name: one-line description}`` of every shipped agent."""
    return {name: card(name)["description"] for name in names()}


def checkpoint(name: str) -> pathlib.Path:
    """The path of a shipped agent's checkpoint (``RecurrentA2C.load`` reads it)."""
    _check(name)
    return DIRECTORY / f"{name}.zip"


def load(name: str, device: str = "cpu", **kwargs):
    """A shipped agent as a :class:`~agents.a2c.RecurrentA2C` (no env attached; pass ``env=``
    to continue training it). ``kwargs`` go to ``RecurrentA2C.load``."""
    from agents.a2c import RecurrentA2C

    return RecurrentA2C.load(checkpoint(name), device=device, **kwargs)
