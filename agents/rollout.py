"""The rollout of the recurrent on-policy algorithms as torch tensors on the policy's device.

SB3's ``RolloutBuffer`` keeps the rollout in numpy arrays on the host: every step's values
and log-probabilities go device -> host, and every update copies the whole rollout back. Here
the rollout lives where the policy is: the policy's outputs stay on the device, an env on the
CPU sends its observations, rewards and episode starts over once per step, and the update
reads the tensors as they are. The arithmetic is SB3's, operation for operation, so the
numbers are the same (tests hold them equal to SB3's buffer).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_action_dim, get_obs_shape


class RolloutStore:
    """``n_steps`` steps of ``n_envs`` envs: ``observations [T, N, *obs_shape]``, ``actions
    [T, N, action_dim]`` (float32, as SB3 stores them), ``rewards``, ``episode_starts``,
    ``values``, ``log_probs``, ``advantages``, ``returns`` ``[T, N]``, all float32 on
    ``device``."""

    def __init__(self, n_steps: int, observation_space: spaces.Space,
                 action_space: spaces.Space, device: torch.device | str, gamma: float,
                 gae_lambda: float, n_envs: int):
        self.buffer_size, self.n_envs = n_steps, n_envs
        self.observation_space, self.action_space = observation_space, action_space
        self.obs_shape = get_obs_shape(observation_space)
        self.action_dim = get_action_dim(action_space)
        self.device = torch.device(device)
        self.gamma, self.gae_lambda = gamma, gae_lambda
        self.reset()

    def reset(self) -> None:
        T, N = self.buffer_size, self.n_envs

        def zeros(*shape):
            return torch.zeros(T, N, *shape, dtype=torch.float32, device=self.device)

        self.observations = zeros(*self.obs_shape)
        self.actions = zeros(self.action_dim)
        self.rewards, self.episode_starts, self.values = zeros(), zeros(), zeros()
        self.log_probs, self.advantages, self.returns = zeros(), zeros(), zeros()
        self.pos, self.full = 0, False

    def _from_env(self, array: np.ndarray | torch.Tensor, shape: tuple[int, ...]
                  ) -> torch.Tensor:
        """A step's env array as float32 on the device: a host array is copied over, a tensor
        of a device env is already there."""
        if isinstance(array, torch.Tensor):
            return array.reshape(shape).to(self.device, torch.float32)
        return torch.as_tensor(np.asarray(array).reshape(shape), dtype=torch.float32,
                               device=self.device)

    def add(self, obs: np.ndarray | torch.Tensor, action: torch.Tensor,
            reward: np.ndarray | torch.Tensor, episode_start: np.ndarray | torch.Tensor,
            value: torch.Tensor, log_prob: torch.Tensor) -> None:
        """One step: the env's arrays (``obs``, ``reward``, ``episode_start``: numpy, or
        tensors of a device env) and the policy's tensors (``action``, ``value``,
        ``log_prob``), the latter without leaving the device."""
        N = self.n_envs
        self.observations[self.pos] = self._from_env(obs, (N, *self.obs_shape))
        self.actions[self.pos] = action.reshape(N, self.action_dim)
        self.rewards[self.pos] = self._from_env(reward, (N,))
        self.episode_starts[self.pos] = self._from_env(episode_start, (N,))
        self.values[self.pos] = value.reshape(N)
        self.log_probs[self.pos] = log_prob.reshape(N)
        self.pos += 1
        self.full = self.pos == self.buffer_size

    def compute_returns_and_advantage(self, last_values: torch.Tensor,
                                      dones: np.ndarray | torch.Tensor) -> None:
        """GAE(lambda) advantages and the returns ``advantages + values``, as SB3's
        ``RolloutBuffer.compute_returns_and_advantage``, on the device."""
        last_values = last_values.reshape(self.n_envs).to(torch.float32)
        dones = self._from_env(dones, (self.n_envs,))
        last_gae_lam = torch.zeros(self.n_envs, dtype=torch.float32, device=self.device)
        for step in reversed(range(self.buffer_size)):
            if step == self.buffer_size - 1:
                next_non_terminal = 1.0 - dones
                next_values = last_values
            else:
                next_non_terminal = 1.0 - self.episode_starts[step + 1]
                next_values = self.values[step + 1]
            delta = self.rewards[step] + self.gamma * next_values * next_non_terminal \
                - self.values[step]
            last_gae_lam = delta + self.gamma * self.gae_lambda * next_non_terminal * last_gae_lam
            self.advantages[step] = last_gae_lam
        self.returns = self.advantages + self.values

    _TENSORS = ("observations", "actions", "rewards", "episode_starts", "values", "log_probs",
                "advantages", "returns")

    def to(self, device: torch.device | str) -> RolloutStore:
        """A copy of the store with its tensors on ``device``."""
        other = copy.copy(self)
        other.device = torch.device(device)
        for name in self._TENSORS:
            setattr(other, name, getattr(self, name).to(device, copy=True))
        return other

    def explained_variance(self) -> torch.Tensor:
        """SB3's ``explained_variance(values, returns)``: ``1 - Var[returns - values] /
        Var[returns]`` (population variances; NaN where the returns do not vary), a 0-d
        tensor on the device."""
        var_y = self.returns.var(correction=0)
        ev = 1 - (self.returns - self.values).var(correction=0) / var_y
        return torch.where(var_y == 0, torch.full_like(ev, float("nan")), ev)
