"""``GymnasiumVecEnv``: any ``gymnasium.vector.VectorEnv`` as a Stable-Baselines3 ``VecEnv``.

SB3 steps a batch of environments through its own ``VecEnv`` API (``step`` returns ``obs,
rewards, dones, infos`` with ``dones = terminated | truncated`` and a list of per-env info
dicts); Gymnasium's vector envs (``gym.make_vec``, our native
:class:`~metro_pomdp.MetroPOMDPVectorEnv`) return batched arrays and batched info dicts. This
adapter keeps the env batched - one ``step`` of the wrapped env per SB3 step, no per-env Python
loop except over the envs whose episode just ended - and keeps SB3's episode-end contract:

* the observation returned at an episode end is already the first one of the next episode, the
  last one is in ``infos[i]["terminal_observation"]`` (Gymnasium's ``SAME_STEP`` autoreset
  mode gives exactly this, so the wrapped env must use it);
* ``infos[i]["TimeLimit.truncated"]`` is True when the episode was cut by a time limit rather
  than terminated.

It works under ``VecMonitor`` (episode return and length statistics; :class:`BatchedVecMonitor`
gives the same without a loop over every env at every step) and
``stable_baselines3.common.evaluation.evaluate_policy``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from training.validation import check_positive_int


class BatchedVecMonitor(VecMonitor):
    """SB3's ``VecMonitor`` (the same statistics, infos and results file) without its Python
    loop over every env at every step: the per-env work is done only for the envs whose episode
    ended, found with one ``np.flatnonzero``, and the counters are reset together."""

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        self.episode_returns += rewards
        self.episode_lengths += 1
        ended = np.flatnonzero(dones)
        if ended.size:
            infos = list(infos)
            elapsed = round(time.time() - self.t_start, 6)
            for i in ended.tolist():
                info = infos[i].copy()
                episode = {"r": self.episode_returns[i], "l": self.episode_lengths[i],
                           "t": elapsed}
                for key in self.info_keywords:
                    episode[key] = info[key]
                info["episode"] = episode
                if self.results_writer:
                    self.results_writer.write_row(episode)
                infos[i] = info
            self.episode_count += ended.size
            self.episode_returns[ended] = 0
            self.episode_lengths[ended] = 0
        return obs, rewards, dones, infos


def _autoreset_mode(env: VectorEnv) -> AutoresetMode | None:
    mode = env.metadata.get("autoreset_mode", getattr(env, "autoreset_mode", None))
    try:
        return AutoresetMode(mode) if mode is not None else None
    except ValueError:
        return None


class GymnasiumVecEnv(VecEnv):
    """Wrap ``env``, a ``gymnasium.vector.VectorEnv`` in ``SAME_STEP`` autoreset mode.

    Args:
        env: e.g. ``gym.make_vec("MetroPOMDP-v0", num_envs=600, autoreset_mode="SameStep")``
            (see :func:`make_metro_vec_env`).

    Raises:
        TypeError: ``env`` is not a Gymnasium vector env.
        ValueError: its autoreset mode is not ``SAME_STEP``. In the other modes the step after
            an episode end (``NEXT_STEP``) or no step (``DISABLED``) resets, which SB3's
            algorithms and any recurrent policy's episode-start bookkeeping would misread.
    """

    def __init__(self, env: VectorEnv):
        if not isinstance(env, VectorEnv):
            raise TypeError(f"env must be a gymnasium.vector.VectorEnv, got {type(env).__name__}")
        mode = _autoreset_mode(env)
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                f"env must use autoreset_mode=AutoresetMode.SAME_STEP (SB3 expects the episode's "
                f"last observation in info['terminal_observation'] and the next episode's first "
                f"observation returned by the same step), got {mode!r}; e.g. "
                f"gym.make_vec('MetroPOMDP-v0', num_envs=n, autoreset_mode='SameStep')")
        self.venv = env
        self._actions: np.ndarray | None = None
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)

    # ----------------------------------------------------------------- stepping
    def reset(self) -> np.ndarray:
        seeds = self._seeds
        seed: int | list[int] | None = None
        if seeds[0] is not None:
            consecutive = seeds == list(range(seeds[0], seeds[0] + self.num_envs))
            seed = int(seeds[0]) if consecutive else [int(s) for s in seeds]
        options = self._options[0]
        if any(o != options for o in self._options):
            raise ValueError("GymnasiumVecEnv: per-env reset options differ; a batched env "
                             "takes one options dict for all envs")
        obs, info = self.venv.reset(seed=seed, options=options or None)
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        self._actions = None
        dones = np.logical_or(terminated, truncated)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        ended = np.flatnonzero(dones)
        if ended.size:
            if "final_obs" not in info:
                raise RuntimeError("the wrapped env ended an episode without info['final_obs']; "
                                   "is it really in SAME_STEP autoreset mode?")
            final_obs = info["final_obs"]
            for i in ended.tolist():  # only the envs whose episode ended
                infos[i]["terminal_observation"] = np.asarray(final_obs[i])
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, np.asarray(rewards, dtype=np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    # ---------------------------------------------------------------- attributes
    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        """The attribute of the wrapped vector env, once per requested index (the envs of a
        batched env share their attributes)."""
        value = getattr(self.venv, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        if indices is not None and len(list(self._get_indices(indices))) != self.num_envs:
            raise ValueError("a batched env can only set an attribute for all envs at once")
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs
                   ) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices=None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [self.venv.render()]


class DeviceVecEnv(GymnasiumVecEnv):
    """Wrap ``env``, a Gymnasium vector env in ``SAME_STEP`` mode whose arrays are torch tensors
    on a device (``gym.make_vec("MetroPOMDP-v0", num_envs=n, autoreset_mode="SameStep",
    device="cuda")``), as an SB3 ``VecEnv`` whose ``step`` returns those tensors: observations,
    float32 rewards and dones stay on the device, and actions may be given as tensors there.

    What ``VecMonitor`` would record is kept on the device too: the running return and length
    of every env, and at every step the returns and lengths of the episodes that ended.
    :meth:`episodes` hands them over (one copy to the host) as ``VecMonitor``'s ``{"r", "l",
    "t"}`` dicts; the recurrent algorithms call it once per rollout (stepping the env yourself,
    call it now and then: the record grows by three ``[N]`` tensors a step until then). The
    step's ``infos`` are empty dicts; the last step's final observations and time-limit
    truncations are the tensors :attr:`final_obs` and :attr:`truncated`, for bootstrapping on
    the device.

    Raises:
        TypeError / ValueError: as :class:`GymnasiumVecEnv`, and ``env`` has no torch device
            (``env.device`` None: a numpy env, for :class:`GymnasiumVecEnv`).
    """

    def __init__(self, env: VectorEnv):
        super().__init__(env)
        self.device = getattr(env, "device", None)
        if self.device is None:
            raise ValueError("env has no torch device (env.device is None): wrap a numpy env "
                             "in GymnasiumVecEnv, or make it with device='cuda' (or 'cpu')")
        import torch

        n = self.num_envs
        # float32, as VecMonitor's sums, so the statistics are the same to the bit
        self._returns = torch.zeros(n, dtype=torch.float32, device=self.device)
        self._lengths = torch.zeros(n, dtype=torch.int64, device=self.device)
        self._ended: list[tuple] = []  # per step: (dones, returns, lengths), on the device
        self.t_start = time.time()
        self.episode_count = 0
        self.final_obs = self.truncated = None

    def reset(self):
        obs = super().reset()
        self._returns.zero_()
        self._lengths.zero_()
        return obs

    def step_wait(self):
        import torch

        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        self._actions = None
        dones = terminated | truncated
        rewards = rewards.to(torch.float32)
        self._returns += rewards
        self._lengths += 1
        self._ended.append((dones, self._returns, self._lengths))
        self._returns = torch.where(dones, 0.0, self._returns)
        self._lengths = torch.where(dones, 0, self._lengths)
        self.final_obs, self.truncated = info.get("final_obs"), truncated & ~terminated
        return obs, rewards, dones, [{} for _ in range(self.num_envs)]

    def episodes(self) -> list[dict[str, Any]]:
        """The episodes that ended since the last call, in order, as ``VecMonitor``'s info
        dicts (``"t"``: seconds since the env was made, at this call)."""
        import torch

        if not self._ended:
            return []
        dones, returns, lengths = (torch.stack(x).cpu() for x in zip(*self._ended))
        self._ended.clear()
        elapsed = round(time.time() - self.t_start, 6)
        steps, envs = torch.nonzero(dones, as_tuple=True)
        self.episode_count += len(steps)
        return [{"r": r, "l": n, "t": elapsed}
                for r, n in zip(returns[steps, envs].tolist(), lengths[steps, envs].tolist())]


def has_native_same_step(env_id: str) -> bool:
    """Whether ``env_id`` registers a vector entry point that takes ``autoreset_mode`` (so that
    ``gym.make_vec`` can give SB3 the ``SAME_STEP`` contract natively, as MetroPOMDP does;
    Gymnasium's ``CartPoleVectorEnv``, for one, has a fixed mode)."""
    import inspect

    from gymnasium.envs.registration import load_env_creator

    spec = gym.spec(env_id)
    if spec.vector_entry_point is None:
        return False
    creator = load_env_creator(spec.vector_entry_point)
    return "autoreset_mode" in inspect.signature(creator).parameters


def make_vec_env(env_id: str, num_envs: int, monitor: bool = True, **env_kwargs) -> VecEnv:
    """Any registered Gymnasium id as an SB3 ``VecEnv`` of ``num_envs`` envs.

    Where the id has a native vector env that accepts ``autoreset_mode`` (the MetroPOMDP
    family), that env in ``SAME_STEP`` mode, wrapped in :class:`GymnasiumVecEnv` and
    (``monitor=True``) :class:`BatchedVecMonitor`: one batched step per SB3 step; with a
    ``device=`` argument, in :class:`DeviceVecEnv` (which keeps the statistics itself). Otherwise
    SB3's own ``make_vec_env`` (a ``DummyVecEnv`` of ``Monitor``-wrapped single envs, whatever
    ``monitor`` says), as an SB3 user would build it.

    Raises:
        gymnasium.error.Error: ``env_id`` is not registered (Gymnasium's message names it).
    """
    import metro_pomdp  # noqa: F401  (registers the ids)

    check_positive_int("num_envs", num_envs)
    if has_native_same_step(env_id):
        venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                            autoreset_mode=AutoresetMode.SAME_STEP, **env_kwargs)
        if env_kwargs.get("device") is not None:
            return DeviceVecEnv(venv)
        env = GymnasiumVecEnv(venv)
        return BatchedVecMonitor(env) if monitor else env
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    return sb3_make_vec_env(env_id, n_envs=num_envs, env_kwargs=env_kwargs or None)


def make_metro_vec_env(env_id: str = "MetroPOMDP-v0", num_envs: int = 600, monitor: bool = True,
                       **env_kwargs) -> VecEnv:
    """A batched MetroPOMDP env ready for SB3 (:func:`make_vec_env` with the paper's defaults):
    the native vector env in ``SAME_STEP`` mode, wrapped in :class:`GymnasiumVecEnv` and
    (``monitor=True``) :class:`BatchedVecMonitor`."""
    return make_vec_env(env_id, num_envs, monitor, **env_kwargs)
