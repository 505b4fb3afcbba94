"""Recurrent actor-critic policies with Stable-Baselines3's interface.

One policy class, :class:`RecurrentActorCriticPolicy`, with a pluggable recurrent core:

* ``"fwm"``: :class:`~memory.fwm.FWMCell`, LSTM + Fast Weight Memory (paper section 4.2: LSTM 32,
  d_FWM 16, output ``h + W_o n``, write-strength bias 1, update scaled by 1 / d_FWM);
* ``"lstm"``, ``"gru"``: a plain LSTM or GRU of any width (the paper's baselines: LSTMs of
  512 ... 4096);
* ``"linear-transformer"``, ``"delta-net"``, ``"gated-delta-net"``: the FWM's successors;
* any other core of :mod:`memory`, or a class of your own with the interface of
  :class:`memory.MemoryCore`.

The cores map observations ``[T, B, I]`` to features ``[T, B, H]`` with a state that is a tuple
of batch-first tensors and a per-step reset mask (SB3's ``episode_starts``: the state of that
row is zeroed before the step), and have a one-step ``step`` for acting (the FWM's carries its
memory in low-rank form, :class:`~memory.fwm.FWMStepState`) and ``state_from_tuple``. Linear
actor and critic heads (optionally after SB3-style MLPs, ``net_arch``) read the features.

``predict(observation, state, episode_start, deterministic)`` has SB3's recurrent signature
(numpy in, numpy out; ``state`` is a tuple of ``[n_envs, ...]`` arrays, None for the zero
state), so ``stable_baselines3.common.evaluation.evaluate_policy`` works unchanged.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import (
    CategoricalDistribution,
    DiagGaussianDistribution,
    Distribution,
    make_proba_distribution,
)
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import FlattenExtractor, MlpExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

import memory
from memory import core_names
from memory.functional import tanh

RecurrentState = tuple[torch.Tensor, ...]

#: What a recurrent policy of this project says to an algorithm that does not thread its state.
OTHER_ALGORITHM = (
    "{name} is a recurrent policy: train it with agents.a2c.RecurrentA2C or "
    "agents.ppo.RecurrentPPO. Stable-Baselines3's "
    "PPO and A2C call policy(obs) without a recurrent state, and sb3-contrib's RecurrentPPO "
    "needs its own LSTM policy (it reads policy.lstm_actor); neither can run {name}")
#: Attributes that sb3-contrib's RecurrentPPO reads from its own policies.
_SB3_CONTRIB_ATTRIBUTES = ("lstm_actor", "lstm_critic", "lstm_output_dim")
_OBSERVATION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
#: ``forward``'s default for the arguments that every recurrent caller passes.
_NOT_GIVEN: Any = object()


class Tanh(nn.Module):
    """``nn.Tanh`` through :func:`memory.functional.tanh` (``2 sigmoid(2x) - 1``, the same
    function, several times faster on CPUs whose ``torch.tanh`` kernel is slow): the default
    activation of the actor and critic MLPs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return tanh(x)


#: The registered cores (:mod:`memory`), by name.
CORES = core_names()


def make_core(core, input_size: int, hidden_size: int, d_fwm: int = 16,
              **core_kwargs) -> nn.Module:
    """A memory core for a policy: :func:`memory.make_core` with the agents' FWM defaults.

    Args:
        core: a registered name (:data:`CORES`: ``"fwm"``, ``"lstm"``, ``"gru"``,
            ``"linear-transformer"``, ``"delta-net"``, ``"gated-delta-net"``), or a class (any
            callable) ``core(input_size, hidden_size, **core_kwargs)`` returning a
            :class:`memory.MemoryCore`.
        input_size: observation features per step.
        hidden_size: the core's width (the FWM's d_LSTM).
        d_fwm: FWM size (``"fwm"`` only).
        **core_kwargs: the core's options. For ``"fwm"``, ``settings``, a name of
            :data:`memory.fwm.SETTINGS` (default here ``"authors-write"``: the authors'
            write-strength bias 1 and update scale 1 / d_fwm with the paper's squashed read
            keys; ``"authors-rl"`` is the authors' RL cell, ``"paper"`` the paper's
            equations), and further :class:`~memory.fwm.FWMConfig` fields (``n_reads``,
            ``zero_init_output``, ...); for the fast-weight cores
            :class:`~memory.FastWeightConfig` fields (``n_heads``, ``d_head``, ...).
    """
    if core == "fwm":
        core_kwargs = {"settings": "authors-write", "d_fwm": d_fwm, **core_kwargs}
    return memory.make_core(core, input_size, hidden_size, **core_kwargs)


class RecurrentActorCriticPolicy(BasePolicy):
    """Recurrent core -> (optional actor and critic MLPs) -> linear actor and critic heads.

    Args:
        observation_space: a ``Box`` (flattened per step), or a ``Discrete``,
            ``MultiDiscrete`` or ``MultiBinary`` space (one-hot encoded, as SB3 does).
        action_space: ``Discrete``, ``MultiDiscrete``, ``MultiBinary`` or ``Box``.
        lr_schedule: learning-rate schedule (SB3 passes it; the optimizer starts at
            ``lr_schedule(1)``).
        core: a registered memory core (:data:`CORES`) or a class of your own (see
            :func:`make_core`).
        hidden_size: the core's width (d_LSTM of the FWM).
        d_fwm: FWM size (``core="fwm"``).
        core_kwargs: further options of the core (:func:`make_core`).
        net_arch: SB3's ``net_arch`` for actor and critic MLPs on the core's output (a list of
            widths, or ``dict(pi=[...], vf=[...])``); None or ``[]``: linear heads (the paper).
        activation_fn: activation of those MLPs (default :class:`Tanh`, tanh as in SB3).
        ortho_init: SB3's orthogonal initialisation of the MLPs and heads.
        log_std_init: initial log standard deviation for ``Box`` actions.
        optimizer_class: the optimizer (default Adam, the paper's RL setting).
        optimizer_kwargs: its arguments (default ``eps=1e-4``, the paper's RL setting).
        use_sde: must be False (kept for SB3's call signature).
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space,
                 lr_schedule: Schedule, core: str | type[nn.Module] = "fwm",
                 hidden_size: int = 32,
                 d_fwm: int = 16, core_kwargs: dict[str, Any] | None = None,
                 net_arch: list[int] | dict[str, list[int]] | None = None,
                 activation_fn: type[nn.Module] = Tanh, ortho_init: bool = True,
                 log_std_init: float = 0.0, normalize_images: bool = True,
                 optimizer_class: type[torch.optim.Optimizer] = torch.optim.Adam,
                 optimizer_kwargs: dict[str, Any] | None = None, use_sde: bool = False):
        if not isinstance(observation_space, _OBSERVATION_SPACES):
            raise ValueError(f"observation_space must be a Box, Discrete, MultiDiscrete or "
                             f"MultiBinary space (a recurrent policy over flat observations; "
                             f"discrete ones are one-hot encoded, as in SB3), got "
                             f"{observation_space}")
        if not isinstance(action_space, (spaces.Discrete, spaces.MultiDiscrete,
                                         spaces.MultiBinary, spaces.Box)):
            raise ValueError(f"action_space must be Discrete, MultiDiscrete, MultiBinary or Box, "
                             f"got {action_space}")
        if use_sde:
            raise ValueError("use_sde=True is not supported by RecurrentActorCriticPolicy")
        if optimizer_kwargs is None:
            optimizer_kwargs = {"eps": 1e-4} if optimizer_class is torch.optim.Adam else {}
        super().__init__(observation_space, action_space, features_extractor_class=FlattenExtractor,
                         normalize_images=normalize_images, optimizer_class=optimizer_class,
                         optimizer_kwargs=optimizer_kwargs)
        self.core_name, self.hidden_size, self.d_fwm = core, hidden_size, d_fwm
        self.core_kwargs = dict(core_kwargs or {})
        self.log_std_init = log_std_init
        self.net_arch, self.activation_fn, self.ortho_init = net_arch, activation_fn, ortho_init
        self.features_extractor = self.make_features_extractor()
        self.core = make_core(core, self.features_extractor.features_dim, hidden_size, d_fwm,
                              **self.core_kwargs)
        # SB3's actor and critic MLPs on the core's output (net_arch=[] or None: linear heads)
        self.mlp_extractor = MlpExtractor(self.core.output_size, net_arch or [], activation_fn,
                                          device="cpu")
        self.action_dist = make_proba_distribution(action_space)
        latent_pi, latent_vf = self.mlp_extractor.latent_dim_pi, self.mlp_extractor.latent_dim_vf
        if isinstance(self.action_dist, DiagGaussianDistribution):
            self.action_net, self.log_std = self.action_dist.proba_distribution_net(
                latent_dim=latent_pi, log_std_init=log_std_init)
        else:
            self.action_net = self.action_dist.proba_distribution_net(latent_dim=latent_pi)
        self.value_net = nn.Linear(latent_vf, 1)
        if ortho_init:  # SB3's ActorCriticPolicy initialisation of the MLPs and heads
            for module, gain in ((self.mlp_extractor, np.sqrt(2)), (self.action_net, 0.01),
                                 (self.value_net, 1.0)):
                module.apply(partial(self.init_weights, gain=gain))
        kwargs = dict(self.optimizer_kwargs)
        if self.optimizer_class is torch.optim.Adam and not {"foreach", "fused"} & set(kwargs):
            # torch's multi-tensor Adam: on a CPU its default is the per-parameter loop, which
            # gives the same numbers a few times slower (a PPO minibatch is an optimizer step)
            kwargs["foreach"] = True
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(core=self.core_name, hidden_size=self.hidden_size, d_fwm=self.d_fwm,
                    core_kwargs=self.core_kwargs, net_arch=self.net_arch,
                    activation_fn=self.activation_fn, ortho_init=self.ortho_init,
                    log_std_init=self.log_std_init,
                    lr_schedule=self._dummy_schedule, optimizer_class=self.optimizer_class,
                    optimizer_kwargs=self.optimizer_kwargs)
        return data

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)  # nn.Module's lookup of parameters and submodules
        except AttributeError:
            if name in _SB3_CONTRIB_ATTRIBUTES:
                raise AttributeError(OTHER_ALGORITHM.format(name=type(self).__name__)) from None
            raise

    # ------------------------------------------------------------------ tensors
    def initial_state(self, n_envs: int) -> RecurrentState:
        """The zero state for ``n_envs`` environments (a tuple of batch-first tensors)."""
        return tuple(self.core.initial_state(n_envs, device=self.device))

    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs [T, B, *obs_shape]`` -> ``[T, B, features]``."""
        steps, batch = obs.shape[:2]
        flat = self.extract_features(obs.reshape(steps * batch, *obs.shape[2:]),
                                     self.features_extractor)
        return flat.reshape(steps, batch, -1).to(self.value_net.weight.dtype)

    def _value(self, latent: torch.Tensor) -> torch.Tensor:
        """Core output ``[..., H]`` -> values ``[...]``."""
        return self.value_net(self.mlp_extractor.forward_critic(latent)).squeeze(-1)

    def _action_logits(self, latent: torch.Tensor) -> torch.Tensor:
        """Core output ``[..., H]`` -> the action head's output (logits or Gaussian means)."""
        return self.action_net(self.mlp_extractor.forward_actor(latent))

    def _distribution(self, latent: torch.Tensor) -> Distribution:
        mean_actions = self._action_logits(latent)
        if isinstance(self.action_dist, DiagGaussianDistribution):
            return self.action_dist.proba_distribution(mean_actions, self.log_std)
        if isinstance(self.action_dist, CategoricalDistribution):
            # SB3's, without torch's argument checks (about ten small ops per env step while
            # acting): the logits are our own layer's, the actions our own samples, and a NaN
            # stops both torch.multinomial and RecurrentA2C.train with an error anyway
            self.action_dist.distribution = torch.distributions.Categorical(
                logits=mean_actions, validate_args=False)
            return self.action_dist
        return self.action_dist.proba_distribution(action_logits=mean_actions)

    def _run_core(self, obs: torch.Tensor, state: RecurrentState | None,
                  episode_starts: torch.Tensor | None) -> torch.Tensor:
        """``obs [T, B, ...]``, ``episode_starts [T, B]`` -> ``latent [T, B, H]`` (the final
        state is not formed: an update over a rollout does not use it)."""
        if state is not None:
            state = self.core.state_from_tuple(tuple(state))
        reset = None if episode_starts is None else episode_starts.to(torch.bool)
        latent, _ = self.core(self._features(obs), state, reset, final_state=False)
        return latent

    def _step_core(self, obs: torch.Tensor, state: RecurrentState | None,
                   episode_starts: torch.Tensor | None) -> tuple[torch.Tensor, RecurrentState]:
        """One step, ``obs [B, ...]``, ``episode_starts [B]`` -> ``(latent [B, H], state)``,
        through the core's per-step path (the FWM's keeps its memory in low-rank form)."""
        if state is not None:
            state = self.core.state_from_tuple(tuple(state))
        reset = None if episode_starts is None else episode_starts.to(torch.bool)
        latent, state = self.core.step(self._features(obs[None])[0], state, reset)
        return latent, tuple(state)

    def forward(self, obs: torch.Tensor, state: RecurrentState | None = _NOT_GIVEN,
                episode_starts: torch.Tensor | None = _NOT_GIVEN, deterministic: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, RecurrentState]:
        """One step for ``B`` environments: ``obs [B, ...]``, the state from the previous step
        (None: the zero state) and ``episode_starts [B]`` (None: no resets) -> ``(actions,
        values [B], log_prob [B], new state)``.

        Raises:
            TypeError: called as ``policy(obs)``, as feed-forward algorithms (SB3's PPO, A2C)
                call their policies: the recurrent state would be dropped every step.
        """
        if state is _NOT_GIVEN or episode_starts is _NOT_GIVEN:
            raise TypeError(OTHER_ALGORITHM.format(name=type(self).__name__))
        latent, state = self._step_core(obs, state, episode_starts)
        if isinstance(self.action_dist, CategoricalDistribution):
            actions, log_prob = self._sample_categorical(latent, deterministic)
        else:
            dist = self._distribution(latent)
            actions = dist.get_actions(deterministic=deterministic)
            log_prob = dist.log_prob(actions)
        return actions, self._value(latent), log_prob, state

    def _sample_categorical(self, latent: torch.Tensor, deterministic: bool
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions ``[B]`` and their log-probabilities from ``latent [B, H]``, draw for draw
        those of SB3's ``CategoricalDistribution`` (torch's ``Categorical``: the same
        normalised logits, softmax and ``multinomial`` call; the mode is the argmax of the
        probabilities) without building the distribution objects, a few small ops fewer per
        env step while acting."""
        logits = self._action_logits(latent)
        logits = logits - logits.logsumexp(-1, keepdim=True)
        probs = logits.softmax(-1)
        if deterministic:
            actions = probs.argmax(-1)
        else:
            actions = torch.multinomial(probs, 1, True).squeeze(1)
        return actions, logits.gather(-1, actions[:, None]).squeeze(-1)

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor,
                         state: RecurrentState | None, episode_starts: torch.Tensor | None
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """A whole rollout, with gradients: ``obs [T, B, ...]``, ``actions [T, B, ...]``, the
        state before step 0 and ``episode_starts [T, B]`` -> ``(values, log_prob, entropy)``,
        each ``[T, B]``."""
        latent = self._run_core(obs, state, episode_starts)
        steps, batch = latent.shape[:2]
        dist = self._distribution(latent.reshape(steps * batch, -1))
        flat_actions = actions.reshape(steps * batch, *actions.shape[2:])
        log_prob = dist.log_prob(flat_actions).reshape(steps, batch)
        entropy = dist.entropy()
        entropy = None if entropy is None else entropy.reshape(steps, batch)
        return self._value(latent), log_prob, entropy

    def predict_values(self, obs: torch.Tensor, state: RecurrentState | None = None,
                       episode_starts: torch.Tensor | None = None) -> torch.Tensor:
        """Values ``[B]`` of one step of observations ``[B, ...]`` from ``state``."""
        latent, _ = self._step_core(obs, state, episode_starts)
        return self._value(latent)

    def _predict(self, observation: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Actions from the zero state (SB3's stateless hook; use :meth:`predict` with a
        state to act over an episode)."""
        return self(observation, None, None, deterministic)[0]

    # -------------------------------------------------------------------- numpy
    def predict(self, observation: np.ndarray, state: tuple[np.ndarray, ...] | None = None,
                episode_start: np.ndarray | None = None, deterministic: bool = False
                ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """SB3's recurrent ``predict``: observations ``[n_envs, ...]`` (or one unbatched
        observation), the state returned by the previous call (None: zero state) and
        ``episode_start [n_envs]`` (True: zero that env's state first) -> ``(actions,
        new state)``."""
        self.set_training_mode(False)
        obs, vectorized = self.obs_to_tensor(observation)
        n_envs = obs.shape[0]
        if state is not None:
            state = tuple(torch.as_tensor(np.asarray(s), device=self.device) for s in state)
            self.core.state_from_tuple(state)  # a ValueError names what is wrong
            if any(s.shape[0] != n_envs for s in state):
                raise ValueError(f"state arrays must have {n_envs} rows (one per env), got "
                                 f"{[tuple(s.shape) for s in state]}")
        starts = None
        if episode_start is not None:
            starts = torch.as_tensor(np.asarray(episode_start).reshape(n_envs), dtype=torch.bool,
                                     device=self.device)
        with torch.no_grad():
            actions, _, _, new_state = self(obs, state, starts, deterministic)
        actions = actions.cpu().numpy().reshape((-1, *self.action_space.shape))
        if isinstance(self.action_space, spaces.Box):
            actions = np.clip(actions, self.action_space.low, self.action_space.high)
        if not vectorized:
            actions = actions.squeeze(axis=0)
        return actions, tuple(s.cpu().numpy() for s in new_state)


def _fixed_core(cls: type, kwargs: dict[str, Any], core: str) -> None:
    """Set ``kwargs["core"]`` to the core a policy alias stands for, refusing another one."""
    given = kwargs.setdefault("core", core)
    if given != core:
        raise ValueError(f"{cls.__name__} has the {core!r} core, got core={given!r} in "
                         f"policy_kwargs; use \"RecurrentActorCriticPolicy\" with "
                         f"core={given!r}, or the alias of that core")


class FWMPolicy(RecurrentActorCriticPolicy):
    """The paper's FWM agent: LSTM 32 + FWM 16 (``core="fwm"``)."""

    def __init__(self, *args, **kwargs):
        _fixed_core(type(self), kwargs, "fwm")
        super().__init__(*args, **kwargs)


class LstmPolicy(RecurrentActorCriticPolicy):
    """An LSTM agent (``core="lstm"``); the paper's baselines have 512 ... 4096 units."""

    def __init__(self, *args, **kwargs):
        _fixed_core(type(self), kwargs, "lstm")
        kwargs.setdefault("hidden_size", 512)
        super().__init__(*args, **kwargs)


class GruPolicy(RecurrentActorCriticPolicy):
    """A GRU agent (``core="gru"``)."""

    def __init__(self, *args, **kwargs):
        _fixed_core(type(self), kwargs, "gru")
        super().__init__(*args, **kwargs)
