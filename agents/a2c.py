"""``RecurrentA2C``: synchronous advantage actor-critic for recurrent policies, in SB3's mould.

Stable-Baselines3's ``A2C`` has no recurrent support and sb3-contrib's ``RecurrentPPO`` is tied to
an LSTM ``(h, c)`` state; this algorithm takes any :class:`~agents.policies.
RecurrentActorCriticPolicy` (any memory core) and keeps SB3's names, logger, callbacks,
``learn``/``save``/``load``. Rollouts, returns and the optimizer step are the recurrent
on-policy base's (:mod:`agents.on_policy`); A2C's update is one optimizer step on
``policy_loss + ent_coef * entropy_loss + vf_coef * value_loss`` over the whole rollout.

The paper's meta-RL setting (section 4.2, appendix I) is :data:`PAPER_PRESET`: 600 envs, one
30-step episode per rollout, gamma 0.9, value coefficient 0.1, entropy coefficient 0.03, Adam lr
1e-3 (eps 1e-4), returns to the episode end (no bootstrap).
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from gymnasium import spaces

from agents.on_policy import (
    PAPER_N_ENVS,
    RecurrentOnPolicyAlgorithm,
    ThreadWarning,
    warn_threads,
)
from training.atomic import interrupts_deferred
from training.distributed import global_mean_std

__all__ = ["PAPER_N_ENVS", "PAPER_PRESET", "RecurrentA2C", "ThreadWarning", "warn_threads"]

#: The paper's meta-RL hyperparameters (keyword arguments of :class:`RecurrentA2C`).
PAPER_PRESET: dict[str, Any] = {
    "n_steps": 30,
    "gamma": 0.9,
    "gae_lambda": 1.0,
    "ent_coef": 0.03,
    "vf_coef": 0.1,
    "learning_rate": 1e-3,
    "max_grad_norm": None,
    "bootstrap_truncated": False,
    "stats_window_size": 600,
}


class RecurrentA2C(RecurrentOnPolicyAlgorithm):
    """Advantage actor-critic with a recurrent policy; the arguments are
    :class:`~agents.on_policy.RecurrentOnPolicyAlgorithm`'s (SB3's ``A2C``'s, with
    ``normalize_advantage``, ``bootstrap_truncated`` and ``n_envs``)."""

    # -------------------------------------------------------------------- train
    def train(self) -> None:
        policy = self.policy
        policy.set_training_mode(True)
        self._update_learning_rate(policy.optimizer)
        buf = self.rollout_buffer  # the rollout on the policy's device
        obs, actions = buf.observations, buf.actions  # (T, N, *obs_shape), (T, N, action_dim)
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.squeeze(-1).long()
        starts = buf.episode_starts.bool()  # (T, N)
        advantages, returns = buf.advantages, buf.returns
        if self.normalize_advantage:  # (over every process's rollout under torchrun)
            mean, std = global_mean_std(advantages)
            advantages = (advantages - mean) / (std + 1e-8)

        values, log_prob, entropy = policy.evaluate_actions(obs, actions, self._rollout_state,
                                                            starts)
        policy_loss = -(advantages * log_prob).mean()
        value_loss = F.mse_loss(returns, values)
        entropy_loss = -(entropy.mean() if entropy is not None else -log_prob.mean())
        with interrupts_deferred():  # Ctrl-C: parameters, moments and count change together
            grad_norm = self._optimizer_step(policy_loss, value_loss, entropy_loss, "update")
            self._n_updates += 1

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", self.ent_coef)
        self._record_on_host({"train/explained_variance": buf.explained_variance(),
                              "train/entropy_loss": entropy_loss,
                              "train/policy_loss": policy_loss, "train/value_loss": value_loss,
                              "train/grad_norm": grad_norm})

