"""The settings of a ``scripts/train_agent.py`` run, as its ``config.json`` holds them."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import pickle
import zipfile
from typing import Any

from agents.a2c import RecurrentA2C
from agents.on_policy import RecurrentOnPolicyAlgorithm
from agents.ppo import RecurrentPPO

#: ``algo`` -> the algorithm class.
ALGORITHMS: dict[str, type[RecurrentOnPolicyAlgorithm]] = {"a2c": RecurrentA2C,
                                                           "ppo": RecurrentPPO}


@dataclasses.dataclass
class RunConfig:
    """What a run is: its agent, its envs, its seed and its algorithm settings. ``--resume``
    reads it back, so a resumed run keeps every one of them.

    Attributes:
        core: ``"fwm"``, ``"lstm"`` or ``"gru"``; ``hidden`` its width.
        d_fwm: d_FWM of the FWM core (unused by the others).
        net_arch: hidden layers of the policy and value heads ([]: linear heads).
        read_init: ``"zeros"`` starts the FWM's output projection at zero, ``"default"`` not.
        fwm_settings: the FWM's named settings (:func:`memory.fwm.settings_options`).
        n_envs, random_graph, env_id, test_env_id: the training envs and the held-out id.
        seed: the model's and the envs' seed.
        algo: ``"a2c"`` or ``"ppo"`` (:data:`ALGORITHMS`; runs from before PPO: ``"a2c"``).
        preset: the algorithm's keyword arguments.
        ent_schedule: :class:`~agents.callbacks.EntropySchedule`'s arguments, or None.
    """

    core: str
    hidden: int
    d_fwm: int
    net_arch: list[int]
    read_init: str
    fwm_settings: str
    n_envs: int
    random_graph: bool
    env_id: str
    test_env_id: str
    seed: int
    preset: dict[str, Any]
    ent_schedule: dict[str, float] | None = None
    algo: str = "a2c"

    def __post_init__(self):
        if self.algo not in ALGORITHMS:
            raise ValueError(f"algo must be one of {sorted(ALGORITHMS)}, got {self.algo!r}")

    @property
    def algorithm(self) -> type[RecurrentOnPolicyAlgorithm]:
        """The run's algorithm class (``load`` reads its checkpoints)."""
        return ALGORITHMS[self.algo]

    def policy_kwargs(self) -> dict[str, Any]:
        """The recurrent policy's keyword arguments."""
        kwargs: dict[str, Any] = {"core": self.core, "hidden_size": self.hidden,
                                  "net_arch": self.net_arch}
        if self.core == "fwm":
            kwargs["d_fwm"] = self.d_fwm
            kwargs["core_kwargs"] = {"zero_init_output": self.read_init == "zeros",
                                     "settings": self.fwm_settings}
        return kwargs

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``ent_schedule`` only where there is one, ``algo`` only for PPO, so
        an A2C run's file is what it was before PPO existed)."""
        out = dataclasses.asdict(self)
        if out["ent_schedule"] is None:
            del out["ent_schedule"]
        if out["algo"] == "a2c":
            del out["algo"]
        return out

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunConfig:
        """A run's ``config.json``. Runs from before ``read_init`` and ``fwm_settings``
        existed get the values they were trained with (``"default"``, ``"authors-write"``).

        Raises:
            ValueError: the file lacks a setting or holds an unknown one (both named).
        """
        with open(path) as f:
            try:
                saved = json.load(f)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path} is not valid JSON ({err}): the file is damaged; "
                                 f"restore it from a copy (its settings cannot be guessed)"
                                 ) from None
        if not isinstance(saved, dict):
            raise ValueError(f"{path}: not a train_agent.py run config (a JSON "
                             f"{type(saved).__name__}, not an object)")
        saved = {"read_init": "default", "fwm_settings": "authors-write", **saved}
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING}
        missing, unknown = sorted(required - set(saved)), sorted(set(saved) - names)
        if missing or unknown:
            raise ValueError(f"{path}: not a train_agent.py run config ("
                             + "; ".join(part for part in (
                                 f"missing {', '.join(missing)}" if missing else "",
                                 f"unknown {', '.join(unknown)}" if unknown else "") if part)
                             + ")")
        return cls(**saved)


def load_model(config: RunConfig, path: str | os.PathLike, **kwargs):
    """``config.algorithm.load(path, **kwargs)``, a damaged checkpoint named.

    Raises:
        ValueError: ``path`` is not a readable checkpoint of the run's algorithm (truncated,
            corrupt, or another kind of file), with what to do about it.
    """
    try:
        return config.algorithm.load(path, **kwargs)
    except (ValueError, zipfile.BadZipFile, EOFError, KeyError, RuntimeError,
            pickle.UnpicklingError) as err:
        raise ValueError(f"{path} cannot be loaded ({type(err).__name__}: {err}); the file is "
                         f"truncated or damaged: restore it from a copy, or train the run again"
                         ) from None


def load_run(run_dir: str | os.PathLike, **kwargs) -> tuple[RunConfig, Any]:
    """``(config, model)`` of a ``scripts/train_agent.py`` run folder (``config.json`` and
    ``model.zip``); ``kwargs`` go to the algorithm's ``load`` (``env``, ``device``).

    Raises:
        FileNotFoundError: a file is missing (named).
        ValueError: a file is damaged (named, with what to do).
    """
    run_dir = pathlib.Path(run_dir)
    for name in ("model.zip", "config.json"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir / name} not found: {run_dir} is not a "
                                    f"train_agent.py run folder (config.json and model.zip)")
    config = RunConfig.load(run_dir / "config.json")
    return config, load_model(config, run_dir / "model.zip", **kwargs)
