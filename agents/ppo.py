"""Recurrent PPO: the recurrent on-policy base's rollouts, policies, cores, callbacks and
checkpoints (:mod:`agents.on_policy`, as :class:`~agents.a2c.RecurrentA2C`'s), with PPO's
clipped update (Schulman et al., 2017) over minibatches of whole env
sequences.

A rollout of ``n_steps`` steps of every env is collected as for A2C, with the recurrent state
at its start. The update then runs ``n_epochs`` passes; each splits the envs at random into
minibatches of ``batch_size // n_steps`` envs and backpropagates through each env's whole
sequence from its stored start state, episode starts cutting the state inside it (the design
of CleanRL's ``ppo_atari_lstm``). There are no batch-to-sequence reshapes: a minibatch is a
slice of the rollout's env axis.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import FloatSchedule

from agents.on_policy import PAPER_N_ENVS, RecurrentOnPolicyAlgorithm
from agents.policies import RecurrentActorCriticPolicy
from training.atomic import interrupts_deferred
from training.distributed import any_process
from training.validation import check_positive_int

#: PPO's own settings for MetroPOMDP, on top of :data:`~agents.a2c.PAPER_PRESET` (the paper's
#: rollouts of one 30-step episode, discount, loss coefficients and learning rate):
#: 4 epochs of minibatches of 100 whole episodes, SB3's clip range and gradient clipping, and
#: the advantages as they are, as in the paper's A2C. Standardised advantages (SB3's default)
#: kept the FWM agent on the random policy's plateau for an hour in two seeds, where the raw
#: ones took it past 90 test reward in the same hour (entropy 0.03 and 0.3 respectively;
#: docs/results.md). ``scripts/train_agent.py --algo ppo`` uses these settings.
METRO_PRESET: dict[str, Any] = {
    "n_epochs": 4,
    "batch_size": 3000,
    "clip_range": 0.2,
    "normalize_advantage": False,
    "max_grad_norm": 0.5,
}


def _rows(state: tuple, idx: torch.Tensor) -> tuple:
    """The rows ``idx`` of a batch-first recurrent state, as the same kind of tuple."""
    rows = (s.index_select(0, idx) for s in state)
    return type(state)(*rows) if hasattr(state, "_fields") else tuple(rows)


class RecurrentPPO(RecurrentOnPolicyAlgorithm):
    """PPO with a recurrent policy (FWM, LSTM, GRU or a core of your own).

    Args:
        policy: as :class:`~agents.on_policy.RecurrentOnPolicyAlgorithm`.
        env: as :class:`~agents.on_policy.RecurrentOnPolicyAlgorithm`.
        n_steps: steps per env per rollout: the length of every training sequence.
        batch_size: env steps per minibatch, a multiple of ``n_steps`` (whole sequences) that
            divides ``n_steps * n_envs``; None: the whole rollout in one minibatch.
        n_epochs: passes over the rollout per update.
        clip_range: PPO's clipping of the probability ratio (a float or a schedule of the
            remaining progress, as in SB3).
        clip_range_vf: clipping of the value change around the rollout's values; None: none.
        target_kl: stop the epochs of an update early when the approximate KL divergence of a
            minibatch exceeds ``1.5 * target_kl``; None: never.
        normalize_advantage: standardise the advantages of each minibatch (SB3's default).

    The other arguments are :class:`~agents.on_policy.RecurrentOnPolicyAlgorithm`'s, with SB3
    PPO's defaults.
    """

    def __init__(self, policy: str | type[RecurrentActorCriticPolicy], env: GymEnv | str | None,
                 learning_rate: float | Schedule = 3e-4, n_steps: int = 128,
                 batch_size: int | None = None, n_epochs: int = 4, gamma: float = 0.99,
                 gae_lambda: float = 0.95, clip_range: float | Schedule = 0.2,
                 clip_range_vf: float | None = None, normalize_advantage: bool = True,
                 ent_coef: float = 0.0, vf_coef: float = 0.5,
                 max_grad_norm: float | None = 0.5, target_kl: float | None = None,
                 bootstrap_truncated: bool = True, n_envs: int = PAPER_N_ENVS,
                 stats_window_size: int = 100, tensorboard_log: str | None = None,
                 policy_kwargs: dict[str, Any] | None = None, verbose: int = 0,
                 seed: int | None = None, device: torch.device | str = "auto",
                 _init_setup_model: bool = True):
        check_positive_int("n_epochs", n_epochs)
        if not callable(clip_range) and not clip_range > 0:
            raise ValueError(f"clip_range must be positive, got {clip_range!r}")
        if clip_range_vf is not None and not clip_range_vf > 0:
            raise ValueError(f"clip_range_vf must be positive or None, got {clip_range_vf!r}")
        if target_kl is not None and not target_kl > 0:
            raise ValueError(f"target_kl must be positive or None, got {target_kl!r}")
        self.batch_size, self.n_epochs = batch_size, n_epochs
        self.clip_range, self.clip_range_vf, self.target_kl = clip_range, clip_range_vf, target_kl
        super().__init__(policy, env, learning_rate=learning_rate, n_steps=n_steps, gamma=gamma,
                         gae_lambda=gae_lambda, ent_coef=ent_coef, vf_coef=vf_coef,
                         max_grad_norm=max_grad_norm, normalize_advantage=normalize_advantage,
                         bootstrap_truncated=bootstrap_truncated, n_envs=n_envs,
                         stats_window_size=stats_window_size, tensorboard_log=tensorboard_log,
                         policy_kwargs=policy_kwargs, verbose=verbose, seed=seed, device=device,
                         _init_setup_model=_init_setup_model)

    def _setup_model(self) -> None:
        super()._setup_model()
        rollout = self.n_steps * self.n_envs
        if self.batch_size is None:
            self.batch_size = rollout
        if (not isinstance(self.batch_size, int) or self.batch_size < self.n_steps
                or self.batch_size % self.n_steps or rollout % self.batch_size):
            raise ValueError(f"batch_size must be a multiple of n_steps={self.n_steps} (whole "
                             f"env sequences) that divides n_steps * n_envs = {rollout}, got "
                             f"{self.batch_size!r}")
        self.clip_range = (self.clip_range if callable(self.clip_range)
                           else FloatSchedule(self.clip_range))

    def train(self) -> None:
        with interrupts_deferred():  # Ctrl-C: the epochs of an update finish together
            self._train_epochs()

    def _train_epochs(self) -> None:
        policy = self.policy
        policy.set_training_mode(True)
        self._update_learning_rate(policy.optimizer)
        clip = self.clip_range(self._current_progress_remaining)
        buf = self.rollout_buffer  # the rollout on the policy's device
        dev = self.device
        obs, actions = buf.observations, buf.actions  # (T, N, *obs_shape), (T, N, action_dim)
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.squeeze(-1).long()
        starts = buf.episode_starts.bool()  # (T, N)
        advantages, returns = buf.advantages, buf.returns  # (T, N)
        old_values, old_log_prob = buf.values, buf.log_probs
        per_batch = self.batch_size // self.n_steps  # envs per minibatch
        # the logged numbers stay on the device until the update's end: one host sync per
        # update, not several per minibatch (target_kl, a host decision, needs one each)
        losses: dict[str, list[torch.Tensor]] = {"policy": [], "value": [], "entropy": [],
                                                 "clip_fraction": [], "approx_kl": []}
        stopped_early = False
        for _ in range(self.n_epochs):
            for idx in torch.randperm(buf.n_envs, device=dev).split(per_batch):
                def cols(x: torch.Tensor) -> torch.Tensor:  # the minibatch's envs, (T, b, ...)
                    return x.index_select(1, idx)  # a few times faster than advanced indexing

                values, log_prob, entropy = policy.evaluate_actions(
                    cols(obs), cols(actions), _rows(self._rollout_state, idx), cols(starts))
                adv = cols(advantages)
                if self.normalize_advantage and adv.numel() > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                log_ratio = log_prob - cols(old_log_prob)
                ratio = log_ratio.exp()
                policy_loss = -torch.min(adv * ratio, adv * ratio.clamp(1 - clip, 1 + clip)).mean()
                if self.clip_range_vf is not None:  # the value moves at most that far per update
                    old = cols(old_values)
                    values = old + (values - old).clamp(-self.clip_range_vf, self.clip_range_vf)
                value_loss = F.mse_loss(cols(returns), values)
                entropy_loss = -(entropy.mean() if entropy is not None else -log_prob.mean())
                with torch.no_grad():  # http://joschu.net/blog/kl-approx.html, as SB3
                    approx_kl = ((ratio - 1) - log_ratio).mean()
                    losses["clip_fraction"].append(((ratio - 1).abs() > clip).float().mean())
                losses["approx_kl"].append(approx_kl)
                # (under torchrun every process stops the epochs together)
                if self.target_kl is not None and any_process(
                        approx_kl.item() > 1.5 * self.target_kl):
                    stopped_early = True
                    break
                self._optimizer_step(policy_loss, value_loss, entropy_loss, "minibatch")
                for name, loss in (("policy", policy_loss), ("value", value_loss),
                                   ("entropy", entropy_loss)):
                    losses[name].append(loss.detach())
            self._n_updates += 1  # SB3's PPO counts epochs
            if stopped_early:
                break

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip)
        # the float64 mean of the float32 values, as SB3's np.mean of their .item()s
        self._record_on_host({
            "train/explained_variance": buf.explained_variance(),
            **{f"train/{key}": torch.stack(losses[name]).double().mean() if losses[name] else None
               for name, key in (("policy", "policy_gradient_loss"), ("value", "value_loss"),
                                 ("entropy", "entropy_loss"), ("clip_fraction", "clip_fraction"),
                                 ("approx_kl", "approx_kl"))}})

    def learn(self, total_timesteps: int, callback=None, log_interval: int = 1,
              tb_log_name: str = "RecurrentPPO", reset_num_timesteps: bool = True,
              progress_bar: bool = False):
        return super().learn(total_timesteps=total_timesteps, callback=callback,
                             log_interval=log_interval, tb_log_name=tb_log_name,
                             reset_num_timesteps=reset_num_timesteps, progress_bar=progress_bar)
