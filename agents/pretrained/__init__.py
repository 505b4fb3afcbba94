"""Trained agents shipped with the package, each a policy's weights with a model card.

::

    from agents import pretrained

    pretrained.available()             # {"fwm-32-16": "...", "lstm-64": "..."}
    model = pretrained.load("fwm-32-16")
    pretrained.card("fwm-32-16")       # command, commit, seed, wall time, machine, evaluation

An agent is two files: ``<name>.pt``, the policy's ``state_dict`` (tensors only, read with
``torch.load(weights_only=True)``, so loading runs no code from the file), and ``<name>.json``,
its model card: how the agent was trained (the exact command, the commit, the seed, the wall
time, the updates, the machine), the settings that rebuild it (``card["model"]``) and its
``scripts/evaluate_agent.py`` numbers (10 episodes on each of the 600 train and the 600 test
graphs, sampled and greedy actions, with standard errors). ``card["check"]`` is a cheaper
number (one sampled episode per test graph) that a test reproduces exactly on the CPU.
``scripts/make_model_card.py`` ships a train_agent.py run this way.
"""

from __future__ import annotations

import json
import pathlib

import torch

#: the folder of the shipped agents (package data)
DIRECTORY = pathlib.Path(__file__).resolve().parent


def names(directory: pathlib.Path = DIRECTORY) -> list[str]:
    """The names of the agents in ``directory`` (default: the shipped ones), sorted."""
    return sorted(p.stem for p in pathlib.Path(directory).glob("*.json")
                  if p.with_suffix(".pt").is_file())


def _path(name: str, directory: pathlib.Path, suffix: str) -> pathlib.Path:
    if name not in names(directory):
        raise ValueError(f"no agent named {name!r} in {directory}; there are "
                         f"{names(directory)} (agents.pretrained.available())")
    return pathlib.Path(directory) / f"{name}{suffix}"


def card(name: str, directory: pathlib.Path = DIRECTORY) -> dict:
    """The model card of an agent, as a dict."""
    return json.loads(_path(name, directory, ".json").read_text())


def available(directory: pathlib.Path = DIRECTORY) -> dict[str, str]:
    """``{name: one-line description}`` of every agent in ``directory``."""
    return {name: card(name, directory)["description"] for name in names(directory)}


def build(spec: dict, device: str = "cpu"):
    """An untrained :class:`~agents.a2c.RecurrentA2C` from a card's ``"model"`` settings
    (``env_id``, ``policy_kwargs``, ``preset``), on one env of ``env_id``."""
    from agents.a2c import RecurrentA2C

    return RecurrentA2C("RecurrentActorCriticPolicy", spec["env_id"], n_envs=1,
                        policy_kwargs=spec["policy_kwargs"], device=device, **spec["preset"])


def load(name: str, device: str = "cpu", directory: pathlib.Path = DIRECTORY):
    """An agent as a :class:`~agents.a2c.RecurrentA2C` with its trained policy, on one env of
    its training id (``model.set_env`` gives it others). The optimizer starts afresh: the card
    holds the policy, not the training state (resume a run from its ``model.zip`` for that).
    """
    spec = card(name, directory)["model"]
    weights = torch.load(_path(name, directory, ".pt"), map_location=device, weights_only=True)
    model = build(spec, device)
    model.policy.load_state_dict(weights)
    model.num_timesteps, model._n_updates = spec["timesteps"], spec["updates"]
    return model


def save(model, name: str, card_fields: dict, directory: pathlib.Path = DIRECTORY
         ) -> tuple[pathlib.Path, pathlib.Path]:
    """Write ``model``'s policy weights as ``<name>.pt`` and its card (``card_fields`` plus the
    ``"model"`` settings that :func:`load` rebuilds it from) as ``<name>.json``.

    Raises:
        TypeError: the model's ``policy_kwargs`` cannot be written as JSON.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    spec = {"env_id": card_fields["env_id"], "policy_kwargs": model.policy_kwargs,
            "preset": card_fields["preset"], "timesteps": model.num_timesteps,
            "updates": model._n_updates}
    try:
        text = json.dumps({**card_fields, "model": spec}, indent=2) + "\n"
    except TypeError as err:
        raise TypeError(f"the card of {name!r} must be JSON: {err} (policy_kwargs "
                        f"{model.policy_kwargs!r})") from None
    weights = {k: v.detach().cpu() for k, v in model.policy.state_dict().items()}
    torch.save(weights, directory / f"{name}.pt")
    (directory / f"{name}.json").write_text(text)
    return directory / f"{name}.pt", directory / f"{name}.json"
