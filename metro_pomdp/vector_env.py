"""``MetroPOMDPVectorEnv``: N metro-map POMDPs stepped together as numpy arrays, or as torch
tensors on a device."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from metro_pomdp.core import KEY_HIGH, MetroConfig, MetroCore, key_from_seed
from metro_pomdp.env import observation_space


def _with_masks(info: dict[str, Any], arrays) -> dict[str, Any]:
    """Add Gymnasium's ``_key`` masks (every env has every key), arrays of ``arrays``'s
    backend."""
    every_env = arrays.full(len(info["agent"]), True, arrays.bool)
    return {**info, **{f"_{k}": every_env for k in info}}


class MetroPOMDPVectorEnv(VectorEnv):
    """``num_envs`` independent :class:`~metro_pomdp.env.MetroPOMDPEnv` s, batched natively.

    The dynamics are those of the single environment (both run :class:`MetroCore`), and env
    ``i`` behaves exactly like ``MetroPOMDPEnv(graph_index=(graph_offset + i) % n_graphs)``
    seeded with ``seed + i``, i.e. like ``gymnasium.vector.SyncVectorEnv`` over such envs, only
    ~100 times faster. A test asserts this step for step.

    Args:
        num_envs: number of parallel environments (the paper: 600, one graph each).
        autoreset_mode: ``AutoresetMode.NEXT_STEP`` (Gymnasium's default: the step after an
            episode end resets), ``SAME_STEP`` (the step that ends an episode returns the first
            observation of the next one and puts the last one in ``info["final_obs"]``, as
            Stable-Baselines3 expects) or ``DISABLED`` (reset with
            ``options={"reset_mask": mask}``). May be given as the enum or its string value.
        graph_offset: env ``i`` uses graph ``(graph_offset + i) % n_graphs`` of the fixed set.
        random_graph: draw each episode's graph uniformly from the fixed set instead.
        graphs: a custom fixed set of graphs ``[n_graphs, n_actions, n_states, n_states]``.
        render_mode: ``"rgb_array"`` renders env 0.
        device: None (numpy arrays, the default) or a torch device (``"cuda"``, ``"cpu"``):
            observations, rewards, flags and infos are then torch tensors there, actions may be
            given as integer tensors there (or as numpy arrays, copied there), and a step waits
            for the device only with ``graph_set="sample"`` (Listing 1 draws graphs on the
            host). The dynamics are the same code as numpy's (:mod:`metro_pomdp.core`); with
            the same seeds both give the same trajectories step for step.
        dtype: the float dtype of a device env's observations and rewards: torch.float32
            (default) or torch.float64.
        max_episode_steps: what ``gym.make_vec`` passes from the registered spec (30); it must
            equal ``episode_length``, since the env truncates itself after that many steps
            (``gym.make_vec(id, episode_length=50, max_episode_steps=50)``).
        **kwargs: the environment arguments of :class:`~metro_pomdp.env.MetroPOMDPEnv`
            (``n_states``, ``n_actions``, ``episode_length``, ``reward``, ``penalty``,
            ``reset_after``, ``graph_set``, ``n_graphs``, ``data_seed``).
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 600, autoreset_mode: AutoresetMode | str =
                 AutoresetMode.NEXT_STEP, graph_offset: int = 0, random_graph: bool = False,
                 graphs: np.ndarray | None = None, render_mode: str | None = None,
                 max_episode_steps: int | None = None, device: Any = None, dtype: Any = None,
                 **kwargs):
        try:
            autoreset_mode = AutoresetMode(autoreset_mode)
        except ValueError:
            raise ValueError(f"autoreset_mode must be one of "
                             f"{[m.value for m in AutoresetMode]}, got {autoreset_mode!r}") from None
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or "
                             f"None, got {render_mode!r}")
        unknown = set(kwargs) - set(MetroConfig.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown MetroPOMDP arguments: {sorted(unknown)}")
        self.config = MetroConfig(**kwargs)
        if max_episode_steps is not None and max_episode_steps != self.config.episode_length:
            raise ValueError(f"max_episode_steps={max_episode_steps!r} differs from "
                             f"episode_length={self.config.episode_length!r}: the env truncates "
                             f"itself after episode_length steps, so pass the same value for "
                             f"both (max_episode_steps is the spec's, 30 unless given)")
        self._core = MetroCore(self.config, num_envs, graph_offset=graph_offset,
                               random_graph=random_graph, graphs=graphs, device=device,
                               dtype=dtype)
        self.device = self._core.device
        self.num_envs = self._core.num_envs
        self.metadata = {**self.metadata, "autoreset_mode": autoreset_mode}
        self.autoreset_mode = autoreset_mode
        self.single_observation_space = observation_space(self.config)
        self.single_action_space = gym.spaces.Discrete(self.config.n_actions)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = render_mode
        self._renderer = None
        a = self._core.arrays
        self._needs_reset = a.zeros(self.num_envs, a.bool)  # NEXT_STEP bookkeeping

    @property
    def adjacency(self) -> np.ndarray:
        """The current graph of every env, 0/1 ``uint8 [num_envs, n_actions, n_states,
        n_states]``."""
        return self._core.adjacency()

    def reset(self, *, seed: int | list[int] | None = None,
              options: dict[str, Any] | None = None):
        """Reset all envs (or those in ``options["reset_mask"]``).

        ``seed`` may be an int (env ``i`` gets ``seed + i``, as in ``SyncVectorEnv``) or a list
        of ``num_envs`` seeds.
        """
        core = self._core
        if seed is not None:
            seeds = (list(range(seed, seed + self.num_envs)) if isinstance(seed, (int, np.integer))
                     else list(seed))
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed must be an int or a list of {self.num_envs} seeds, "
                                 f"got a list of {len(seeds)}")
            super().reset(seed=int(seeds[0]))
            core.seed([key_from_seed(np.random.default_rng(s)) for s in seeds])
        elif not core.has_reset:
            core.seed(self.np_random.integers(0, KEY_HIGH, size=self.num_envs, dtype=np.int64))
        mask = None
        if options is not None and "reset_mask" in options:
            a = core.arrays
            mask = a.asarray(options["reset_mask"])
            if tuple(mask.shape) != (self.num_envs,) or mask.dtype != a.bool:
                raise ValueError(f"options['reset_mask'] must be a bool array of shape "
                                 f"({self.num_envs},), got {mask.dtype} {tuple(mask.shape)}")
        core.reset(mask)
        self._needs_reset = (self._needs_reset & ~mask if mask is not None
                             else core.arrays.zeros(self.num_envs, core.arrays.bool))
        return core.observe(), _with_masks(core.info(), core.arrays)

    def step(self, actions):
        core = self._core
        a = core.arrays
        xp = a.xp
        reward, truncated, invalid, success = core.step(actions)
        resetting = self._needs_reset
        # (on numpy the masked updates are skipped when no env takes part; a device env always
        # computes them, which costs less than asking the device whether any env does)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP and (not a.host or resetting.any()):
            # These envs ended last step: this step only resets them (their actions are
            # ignored). Stepping them first is harmless: a step draws no randomness (reset drew
            # the episode's) and reset overwrites all their state.
            core.reset(resetting)
            reward = xp.where(resetting, 0.0, reward)
            truncated = truncated & ~resetting
            invalid = invalid & ~resetting
            success = success & ~resetting
        terminated = a.zeros(self.num_envs, a.bool)
        info = core.info(invalid, success)
        if self.autoreset_mode == AutoresetMode.SAME_STEP and (not a.host or truncated.any()):
            final_obs = core.observe()
            final_info = _with_masks(info, a)
            core.reset(truncated)
            info = core.info(invalid & ~truncated, success & ~truncated)
            info = _with_masks(info, a)
            info.update(final_obs=final_obs, _final_obs=a.copy(truncated),
                        final_info=final_info, _final_info=a.copy(truncated))
        else:
            info = _with_masks(info, a)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._needs_reset = truncated | terminated
        return core.observe(), a.cast(reward, a.reward_dtype), terminated, truncated, info

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode")
            return None
        from metro_pomdp import render

        if self._renderer is None:
            self._renderer = render.Renderer(self.config.n_states, self.render_mode)
        c = self._core
        # the current state: after an arrival or a timeout, the new placement
        graph = int(c.graph_index[0])
        name = self.spec.id if self.spec is not None else "MetroPOMDP"
        return self._renderer.draw(
            self.adjacency[0], **render.step_frames(c, 0)[-1],
            title=f"{name}, env 0 of {self.num_envs}, "
                  + (f"graph {graph}" if c.graph_set is not None and graph >= 0
                     else "a sampled graph"))

    def close_extras(self, **kwargs):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
