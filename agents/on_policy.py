"""The one recurrent on-policy base of :class:`~agents.a2c.RecurrentA2C` and
:class:`~agents.ppo.RecurrentPPO`: rollout collection with the recurrent state carried (and
the state at the rollout's start remembered), truncation bootstrapping, the rollout on the
policy's device (:class:`~agents.rollout.RolloutStore`), the optimizer step and save/load, in
SB3's mould (``OnPolicyAlgorithm``: callbacks, logger, ``learn``). The algorithms write only
``train``.

One update per rollout of ``n_steps`` x ``n_envs``:

1. act for ``n_steps`` steps without gradients, carrying the recurrent state (zeroed at episode
   starts) and remembering the state at the rollout's start;
2. returns and advantages (GAE(lambda); lambda = 1 gives the discounted returns minus the
   values), bootstrapping from the value of the observation after the rollout and - with
   ``bootstrap_truncated`` - from the value of the last observation of an episode cut by a
   time limit;
3. the algorithm's ``train``: the policy over the rollout again, with gradients, from the
   remembered state (full backpropagation through time within the rollout, cut at episode
   starts and at the rollout's start), and its optimizer steps.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv

from agents.policies import FWMPolicy, GruPolicy, LstmPolicy, RecurrentActorCriticPolicy
from agents.rollout import RolloutStore
from agents.vec_env import (
    BatchedVecMonitor,
    DeviceVecEnv,
    GymnasiumVecEnv,
    make_vec_env,
)
from training.atomic import atomic_write
from training.distributed import any_process, average_gradients, rank_and_world
from training.validation import check_positive_int

#: Environments in the paper's setting (one per graph).
PAPER_N_ENVS = 600


class ThreadWarning(UserWarning):
    """Training on the CPU with more than one torch thread (see :func:`warn_threads`)."""


_threads_warned = False


def warn_threads(device: torch.device) -> None:
    """Warn once per process when an agent trains on the CPU with more than one torch thread.

    These agents' matrix products are small (a batch of 600 rows of width 32 to 64): on a
    2-core machine one thread ran ten A2C updates of the FWM agent at 65,992 env-steps/s and
    PyTorch's default of two at 2,745 while other work ran beside them, the threads waiting on
    each other. The library warns instead of calling ``torch.set_num_threads(1)`` itself: the
    thread count is the whole process's, and a user may have chosen it for other work; the
    warning is a ``ThreadWarning``, for ``warnings.filterwarnings`` to silence."""
    global _threads_warned
    threads = torch.get_num_threads()
    if _threads_warned or torch.device(device).type != "cpu" or threads == 1:
        return
    _threads_warned = True
    warnings.warn(f"training on the CPU with {threads} torch threads: these agents' small "
                  f"matrix products are fastest on one, and with more threads than free cores "
                  f"they run many times slower (24x was measured on a busy 2-core machine). "
                  f"Call torch.set_num_threads(1) first (or silence this with "
                  f"warnings.filterwarnings('ignore', category=agents.a2c.ThreadWarning))",
                  ThreadWarning, stacklevel=3)


class RecurrentOnPolicyAlgorithm(OnPolicyAlgorithm):
    """A recurrent on-policy algorithm; subclasses write ``train`` (see the module docstring).

    Args:
        policy: ``"FWMPolicy"``, ``"LstmPolicy"`` or a :class:`RecurrentActorCriticPolicy`
            subclass.
        env: an SB3 ``VecEnv``, a ``gymnasium.vector.VectorEnv`` in ``SAME_STEP`` autoreset mode
            (wrapped in :class:`~agents.vec_env.GymnasiumVecEnv` and
            :class:`~agents.vec_env.BatchedVecMonitor`), any registered Gymnasium id (``n_envs``
            envs by :func:`~agents.vec_env.make_vec_env`: natively batched for MetroPOMDP, SB3's
            ``make_vec_env`` otherwise) or a ``gymnasium.Env``.
        learning_rate: float or schedule.
        n_steps: steps per env per rollout (= truncated-BPTT length).
        gamma: discount.
        gae_lambda: GAE lambda (1: plain discounted returns).
        ent_coef: entropy coefficient of the loss.
        vf_coef: value-loss coefficient.
        max_grad_norm: clip the gradient norm; None: no clipping.
        normalize_advantage: standardise advantages per rollout.
        bootstrap_truncated: add ``gamma * V(last observation)`` to the reward at a time-limit
            truncation (SB3's convention); False treats truncation as the episode's end (the
            paper: returns to the episode end).
        n_envs: number of envs when ``env`` is an id string.

    The other arguments are SB3's ``A2C``'s.
    """

    policy_aliases: ClassVar[dict[str, type[RecurrentActorCriticPolicy]]] = {
        "FWMPolicy": FWMPolicy,
        "LstmPolicy": LstmPolicy,
        "GruPolicy": GruPolicy,
        "RecurrentActorCriticPolicy": RecurrentActorCriticPolicy,
    }
    policy: RecurrentActorCriticPolicy

    def __init__(self, policy: str | type[RecurrentActorCriticPolicy], env: GymEnv | str | None,
                 learning_rate: float | Schedule = 1e-3, n_steps: int = 30, gamma: float = 0.99,
                 gae_lambda: float = 1.0, ent_coef: float = 0.0, vf_coef: float = 0.5,
                 max_grad_norm: float | None = 0.5, normalize_advantage: bool = False,
                 bootstrap_truncated: bool = True, n_envs: int = PAPER_N_ENVS,
                 stats_window_size: int = 100, tensorboard_log: str | None = None,
                 policy_kwargs: dict[str, Any] | None = None, verbose: int = 0,
                 seed: int | None = None, device: torch.device | str = "auto",
                 _init_setup_model: bool = True):
        if isinstance(policy, str) and policy not in self.policy_aliases:
            raise ValueError(f"policy must be one of {sorted(self.policy_aliases)} or a "
                             f"RecurrentActorCriticPolicy subclass, got {policy!r}")
        if not isinstance(policy, str) and not (
                isinstance(policy, type) and issubclass(policy, RecurrentActorCriticPolicy)):
            raise TypeError(f"policy must be a RecurrentActorCriticPolicy subclass (a recurrent "
                            f"policy with a state), got {policy!r}")
        check_positive_int("n_steps", n_steps)
        if not callable(learning_rate) and not learning_rate >= 0:
            raise ValueError(f"learning_rate must be >= 0 (or a schedule), got "
                             f"{learning_rate!r}")
        for name, value in (("ent_coef", ent_coef), ("vf_coef", vf_coef)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if not 0.0 <= gae_lambda <= 1.0:
            raise ValueError(f"gae_lambda must be in [0, 1], got {gae_lambda!r}")
        if max_grad_norm is not None and not max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be positive or None, got {max_grad_norm!r}")
        env = self._as_sb3_env(env, n_envs)
        self.normalize_advantage = normalize_advantage
        self.bootstrap_truncated = bootstrap_truncated
        self._last_state: tuple[torch.Tensor, ...] | None = None
        self._rollout_state: tuple[torch.Tensor, ...] | None = None
        super().__init__(
            policy, env, learning_rate=learning_rate, n_steps=n_steps, gamma=gamma,
            gae_lambda=gae_lambda, ent_coef=ent_coef, vf_coef=vf_coef,
            max_grad_norm=max_grad_norm, use_sde=False, sde_sample_freq=-1,
            stats_window_size=stats_window_size, tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs, verbose=verbose, seed=seed, device=device,
            _init_setup_model=False,
            supported_action_spaces=(spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary,
                                     spaces.Box))
        if _init_setup_model:
            self._setup_model()

    @staticmethod
    def _as_sb3_env(env, n_envs: int):
        """Turn the accepted env forms into something SB3's constructor takes."""
        if isinstance(env, str):
            return make_vec_env(env, num_envs=n_envs)
        if isinstance(env, gym.vector.VectorEnv):
            if getattr(env, "device", None) is not None:  # a torch env: the rollout stays there
                return DeviceVecEnv(env)
            return BatchedVecMonitor(GymnasiumVecEnv(env))
        return env

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(self._as_sb3_env(env, self.n_envs), force_reset=force_reset)
        self._last_state = None

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.rollout_buffer = RolloutStore(self.n_steps, self.observation_space, self.action_space,
                                           device=self.device, gamma=self.gamma,
                                           gae_lambda=self.gae_lambda, n_envs=self.n_envs)
        self.policy = self.policy_class(self.observation_space, self.action_space,
                                        self.lr_schedule, **self.policy_kwargs)
        if not isinstance(self.policy, RecurrentActorCriticPolicy):
            raise TypeError(f"{type(self.policy).__name__} is not a RecurrentActorCriticPolicy")
        self.policy = self.policy.to(self.device)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_last_state", "_rollout_state"]

    # ----------------------------------------------------------------- rollouts
    def _obs_tensor(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        if isinstance(obs, torch.Tensor):  # a device env's
            return obs.to(self.device)
        return obs_as_tensor(obs, self.device)

    def collect_rollouts(self, env: VecEnv, callback: BaseCallback,
                         rollout_buffer: RolloutStore, n_rollout_steps: int) -> bool:
        assert self._last_obs is not None, "No previous observation was provided"
        policy = self.policy
        policy.set_training_mode(False)
        # a device env (DeviceVecEnv) takes the actions as they are and keeps its episode
        # statistics on the device until the rollout's end: no step waits for the device
        on_device = isinstance(env, DeviceVecEnv)
        if self._last_state is None or self._last_state[0].shape[0] != env.num_envs:
            self._last_state = policy.initial_state(env.num_envs)
        self._rollout_state = self._last_state  # the state before step 0, for train()
        n_steps = 0
        rollout_buffer.reset()
        callback.on_rollout_start()
        while n_steps < n_rollout_steps:
            with torch.no_grad():
                obs_tensor = self._obs_tensor(self._last_obs)
                starts = torch.as_tensor(self._last_episode_starts, dtype=torch.bool,
                                         device=self.device)
                action_tensor, values, log_probs, self._last_state = policy(
                    obs_tensor, self._last_state, starts)
            if on_device:
                clipped_actions = action_tensor
                if isinstance(self.action_space, spaces.Box):
                    clipped_actions = action_tensor.clamp(
                        torch.as_tensor(self.action_space.low, device=self.device),
                        torch.as_tensor(self.action_space.high, device=self.device))
            else:
                actions = action_tensor.cpu().numpy()
                clipped_actions = actions
                if isinstance(self.action_space, spaces.Box):
                    clipped_actions = np.clip(actions, self.action_space.low,
                                              self.action_space.high)
            new_obs, rewards, dones, infos = env.step(clipped_actions)
            self.num_timesteps += env.num_envs
            callback.update_locals(locals())
            if not callback.on_step():
                return False
            if not on_device and dones.any():  # VecMonitor's statistics come where one ended
                self._update_info_buffer(infos, dones)
            n_steps += 1
            if self.bootstrap_truncated:
                rewards = (self._bootstrap_truncated_on_device(env, rewards) if on_device
                           else self._bootstrap_truncated(rewards, dones, infos))
            rollout_buffer.add(self._last_obs, action_tensor, rewards, self._last_episode_starts,
                               values, log_probs)
            self._last_obs = new_obs
            self._last_episode_starts = dones
        with torch.no_grad():
            last_values = policy.predict_values(
                self._obs_tensor(new_obs), self._last_state,
                torch.as_tensor(dones, dtype=torch.bool, device=self.device))
        rollout_buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)
        if on_device:
            self.ep_info_buffer.extend(env.episodes())
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _bootstrap_truncated(self, rewards: np.ndarray, dones: np.ndarray,
                             infos: list[dict]) -> np.ndarray:
        """``rewards + gamma * V(terminal observation)`` for episodes cut by a time limit, the
        value computed from the state that the terminal observation continues."""
        idx = [i for i in np.flatnonzero(dones).tolist()
               if infos[i].get("TimeLimit.truncated", False)]
        if not idx:
            return rewards
        terminal = np.stack([infos[i]["terminal_observation"] for i in idx])
        rows = torch.as_tensor(idx, device=self.device)
        with torch.no_grad():
            state = tuple(s.index_select(0, rows) for s in self._last_state)
            values = self.policy.predict_values(obs_as_tensor(terminal, self.device), state)
        rewards = rewards.astype(np.float32, copy=True)
        rewards[idx] += self.gamma * values.cpu().numpy()
        return rewards

    def _bootstrap_truncated_on_device(self, env: DeviceVecEnv, rewards: torch.Tensor
                                       ) -> torch.Tensor:
        """:meth:`_bootstrap_truncated` for a device env: the values of every env's final
        observation, kept where a time limit cut the episode (masked, not selected: selecting
        would ask the device which envs)."""
        with torch.no_grad():
            values = self.policy.predict_values(env.final_obs.to(self.device), self._last_state)
        bonus = torch.where(env.truncated.to(self.device), self.gamma * values.reshape(-1), 0.0)
        return rewards.to(self.device, torch.float32) + bonus

    def train(self) -> None:
        """The algorithm's update from ``self.rollout_buffer`` (:class:`RolloutStore`) and the
        state at the rollout's start (``self._rollout_state``)."""
        raise NotImplementedError

    def _optimizer_step(self, policy_loss: torch.Tensor, value_loss: torch.Tensor,
                        entropy_loss: torch.Tensor, unit: str) -> torch.Tensor | None:
        """One optimizer step on the weighted sum of the three losses, with gradient clipping;
        returns the gradient norm before clipping (None without clipping).

        Raises:
            FloatingPointError: the loss is not finite; raised before the step, so the
                parameters stay those of the last good ``unit`` (update or minibatch).
        """
        loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
        if not self._finite(loss):
            rank, world = rank_and_world()
            where = "" if world == 1 else (
                f" on process {rank}" if not torch.isfinite(loss) else " on another process")
            raise FloatingPointError(
                f"{type(self).__name__}: non-finite loss at update {self._n_updates}{where} "
                f"(loss {loss.item()}, policy {policy_loss.item()}, value {value_loss.item()}, "
                f"entropy {entropy_loss.item()}); stopping before the optimizer step so the "
                f"parameters stay those of the last good {unit}")
        optimizer = self.policy.optimizer
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # under torchrun each process acted in its own envs: the update is the one of all of
        # them together (equal numbers of envs per process)
        average_gradients(self.policy.parameters())
        grad_norm = None
        if self.max_grad_norm is not None:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(),
                                                       self.max_grad_norm)
        optimizer.step()
        return grad_norm

    def _finite(self, loss: torch.Tensor) -> bool:
        """Whether ``loss`` is finite on every process: the one host decision of an optimizer
        step (every process stops together: one left waiting in the gradient average would
        hang)."""
        return not any_process(not bool(torch.isfinite(loss)))

    def _record_on_host(self, values: dict[str, torch.Tensor | None]) -> None:
        """Log the 0-d tensors of ``values`` (None: not logged) with one copy to the host: the
        one wait for the device of an update's logging."""
        names = [k for k, v in values.items() if v is not None]
        if not names:
            return
        host = torch.stack([values[k].detach().double().reshape(()) for k in names]).cpu()
        for name, value in zip(names, host.tolist()):
            self.logger.record(name, value)

    def learn(self, total_timesteps: int, callback=None, log_interval: int = 1,
              tb_log_name: str | None = None, reset_num_timesteps: bool = True,
              progress_bar: bool = False):
        warn_threads(self.device)
        tb_log_name = tb_log_name or type(self).__name__
        return super().learn(total_timesteps=total_timesteps, callback=callback,
                             log_interval=log_interval, tb_log_name=tb_log_name,
                             reset_num_timesteps=reset_num_timesteps, progress_bar=progress_bar)

    # --------------------------------------------------------------- save/load
    def save_atomic(self, path: str | os.PathLike) -> None:
        """``save`` to a temporary file next to ``path``, then rename it over ``path``: an
        interrupted save never leaves a broken checkpoint behind."""
        path = os.fspath(path)
        if not path.endswith(".zip"):
            path += ".zip"
        atomic_write(path, self.save, suffix=".zip")

    @classmethod
    def load(cls, path, env: GymEnv | None = None, device: torch.device | str = "auto",
             custom_objects: dict[str, Any] | None = None, print_system_info: bool = False,
             force_reset: bool = True, **kwargs):
        """SB3's ``load``, after checking that the checkpoint holds a recurrent policy of this
        project (a checkpoint of another algorithm raises a ``ValueError`` naming its policy
        class).

        Trusted input only: SB3's zip format unpickles parts of its data, so a crafted file
        runs code when it is opened. Share agents with :func:`agents.pretrained.save`, whose
        :func:`agents.pretrained.load` unpickles no code."""
        data, _, _ = load_from_zip_file(path, device=device, custom_objects=custom_objects)
        policy_class = (data or {}).get("policy_class")
        if not (isinstance(policy_class, type)
                and issubclass(policy_class, RecurrentActorCriticPolicy)):
            raise ValueError(f"{path}: not a {cls.__name__} checkpoint (its policy class is "
                             f"{policy_class!r}, expected a RecurrentActorCriticPolicy)")
        if env is not None:
            env = cls._as_sb3_env(env, data.get("n_envs", PAPER_N_ENVS))
        return super().load(path, env=env, device=device, custom_objects=custom_objects,
                            print_system_info=print_system_info, force_reset=force_reset,
                            **kwargs)
