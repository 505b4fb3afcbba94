"""``MetroPOMDPEnv``: one metro-map POMDP (a :class:`~metro_pomdp.core.MetroCore` with N = 1)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from metro_pomdp import graphs as graphlib
from metro_pomdp.core import MetroConfig, MetroCore, check_graph_index, key_from_seed


def observation_space(config: MetroConfig) -> gym.spaces.Box:
    """The observation ``Box`` of one environment (layout in ``MetroPOMDPEnv``'s docstring)."""
    low = np.zeros(config.obs_dim, dtype=np.float32)
    low[-1] = -1.0  # reward signal: penalties can make it negative
    return gym.spaces.Box(low=low, high=np.ones(config.obs_dim, dtype=np.float32),
                          dtype=np.float32)


def decode_observation(obs: np.ndarray, n_states: int = 5, n_actions: int = 3
                       ) -> dict[str, np.ndarray]:
    """Invert the observation layout: reward and agent locations, previous action (``n_actions``
    means none), step fraction and reward signal, for one observation or a batch ``[..., D]``."""
    obs = np.asarray(obs)
    s, a = n_states, n_actions
    return {
        "reward_location": obs[..., :s].argmax(-1),
        "agent": obs[..., s:2 * s].argmax(-1),
        "prev_action": obs[..., 2 * s:2 * s + a + 1].argmax(-1),
        "constant": obs[..., 2 * s + a + 1],
        "time_fraction": obs[..., 2 * s + a + 2],
        "reward_signal": obs[..., 2 * s + a + 3],
    }


class MetroPOMDPEnv(gym.Env):
    """A random metro map: reach the reward location on a graph you cannot see.

    ## Description

    The meta-reinforcement-learning task of Schlag, Munkhdalai & Schmidhuber, "Learning
    Associative Inference Using Fast Weight Memory" (ICLR 2021), section 4.2 and appendix I. The
    environment is a directed graph of ``n_states`` locations whose edges are labelled with the
    actions that take them (figure 4 of the paper); the graph is sampled by the paper's Listing 1
    so that transitions are deterministic, there are no self-loops, not every action is valid
    everywhere, and every location can be reached from every other. The agent sees where it is
    and where the reward is, but not the graph: to collect reward quickly it must remember what
    its actions did earlier in the episode.

    ## Action Space

    ``Discrete(n_actions)``. Action ``a`` in location ``s`` follows the edge labelled ``a`` out of
    ``s``; if there is none, the agent stays and pays the penalty.

    ## Observation Space

    ``Box(-1, 1, (2 * n_states + n_actions + 4,), float32)``: 17 values for the paper's 5 states
    and 3 actions.

    | index (5 states, 3 actions) | general index            | meaning                                   |
    |-----------------------------|--------------------------|-------------------------------------------|
    | 0-4                         | ``[0, S)``               | reward location, one-hot                  |
    | 5-9                         | ``[S, 2S)``              | agent location, one-hot                   |
    | 10-12                       | ``[2S, 2S + A)``         | previous action, one-hot                  |
    | 13                          | ``2S + A``               | 1 if there is no previous action (t = 0)  |
    | 14                          | ``2S + A + 1``           | constant 1                                |
    | 15                          | ``2S + A + 2``           | t / episode_length, in [0, 1]             |
    | 16                          | ``2S + A + 3``           | reward signal (below)                     |

    The paper gives the last entry as "the reward received so far". Here it is the episode's
    summed reward divided by ``reward * episode_length`` (the most an episode can earn, since
    reaching the reward takes at least one step): it lies in ``[-penalty / reward, 1]``, starts at
    0, rises by ``1 / episode_length`` on every arrival and falls by
    ``penalty / (reward * episode_length)`` on every invalid action. (The authors' code feeds a
    constant 0 here and lets the previous-action bits collide with the constant bit: both are bugs
    that this environment does not copy.) :func:`decode_observation` inverts the layout.

    ## Rewards

    ``+reward`` (10) on arriving at the reward location; ``-penalty`` (0.05) for an action that is
    not an edge of the current location. Random play earns about 45 per 30-step episode, a policy
    that knows the graph and walks shortest paths about 171
    (:func:`metro_pomdp.baselines.reference_returns`).

    ## Starting State

    At the start of every episode the reward is placed uniformly at random and the agent
    uniformly among the other locations. On arrival at the reward, both are placed anew (the new
    reward location differs from the old one; the agent is never placed on the reward) and the
    reset timer restarts. After ``reset_after`` (6) steps without reaching the reward, both are
    placed anew by the same rule: the new reward location is never the old one, after a success
    and after a timeout alike. The graph stays the same for the whole episode, and so does the
    previous-action entry of the observation: a placement does not reset it to "none" (only an
    episode's first step has no previous action).

    ## Episode End

    * Termination: never.
    * Truncation: after ``episode_length`` (30) steps. The environment truncates by itself;
      the registered ``max_episode_steps`` is the same 30, so the ``TimeLimit`` wrapper that
      ``gym.make`` adds ends episodes at the same step. To change the length through
      ``gym.make``, pass both: ``gym.make(id, episode_length=50, max_episode_steps=50)``
      (``gym.make_vec`` refuses a mismatch; ``gym.make`` cannot see it, and its ``TimeLimit``
      would cut at ``max_episode_steps``). ``max_episode_steps=-1`` is Gymnasium's way to leave
      the ``TimeLimit`` out; episodes still end after ``episode_length`` steps.

    There is no ``reward_threshold`` (``gym.spec(id).reward_threshold`` is None): the task has
    no "solved" level. The graph-knowing shortest-path policy earns about 171 per episode
    (:func:`metro_pomdp.baselines.reference_returns`), an upper reference rather than a goal.

    ## Arguments

    ``gym.make("MetroPOMDP-v0", **kwargs)`` with any of:

    * ``n_states=5``, ``n_actions=3``: graph size (>= 3 states, >= 2 actions).
    * ``episode_length=30``, ``reward=10.0``, ``penalty=0.05``, ``reset_after=6``.
    * ``graph_set="train"``: ``"train"`` or ``"test"`` (the paper's fixed, disjoint sets of
      ``n_graphs=600`` graphs drawn from ``data_seed=666``) or ``"sample"`` (a fresh Listing-1
      graph every episode).
    * ``graph_index=None``: which graph of the set to use; ``None`` draws one uniformly at
      every reset.
    * ``graphs=None``: a custom fixed set ``[n_graphs, n_actions, n_states, n_states]`` of 0/1
      adjacency arrays, used instead of ``graph_set``.
    * ``render_mode``: ``"rgb_array"`` or ``"human"``.

    ``env.unwrapped.adjacency`` is the current graph as a 0/1 array ``[n_actions, n_states,
    n_states]``. ``info`` holds ``agent``, ``reward_location``, ``graph_index`` (-1 when
    sampling), ``reset_timer``, ``invalid_action`` and ``reached_reward``.

    ## Vectorized environment

    ``gym.make_vec("MetroPOMDP-v0", num_envs=600)`` returns the natively batched
    :class:`~metro_pomdp.vector_env.MetroPOMDPVectorEnv`, in which env ``i`` uses graph
    ``i mod n_graphs`` (the paper's batch of 600 agents, one graph each).

    ## Registered Configurations

    * ``MetroPOMDP-v0``: the paper's 600 train graphs.
    * ``MetroPOMDP-Test-v0``: the 600 held-out test graphs.
    * ``MetroPOMDP-Sample-v0``: a fresh graph every episode.
    * ``MetroPOMDP-10x4-v0`` / ``MetroPOMDP-10x4-Test-v0``: 10 locations, 4 actions.

    ## Version History

    * v0: initial version. Before its first release, the placement after a timeout was changed
      to exclude the old reward location, as the placement after a success always did (it was
      drawn over all locations, so the reward stayed put in about a fifth of the timeouts).
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 4}

    def __init__(self, n_states: int = 5, n_actions: int = 3, episode_length: int = 30,
                 reward: float = 10.0, penalty: float = 0.05, reset_after: int = 6,
                 graph_set: str = "train", n_graphs: int = graphlib.N_GRAPHS,
                 data_seed: int = graphlib.DATA_SEED,
                 graph_index: int | None = None, graphs: np.ndarray | None = None,
                 render_mode: str | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or "
                             f"None, got {render_mode!r}")
        self.config = MetroConfig(n_states, n_actions, episode_length, reward, penalty,
                                  reset_after, graph_set, n_graphs, data_seed)
        self._core = MetroCore(self.config, 1, random_graph=graph_index is None, graphs=graphs)
        if graph_index is not None:  # checked against the set the core holds (custom or fixed)
            core = self._core
            check_graph_index(graph_index, None if core.graph_set is None else core.n_graphs,
                              "graph_index", optional=True)
            core.graph_index[:] = graph_index
        self.observation_space = observation_space(self.config)
        self.action_space = gym.spaces.Discrete(n_actions)
        self.render_mode = render_mode
        self._renderer = None

    @property
    def adjacency(self) -> np.ndarray:
        """The current graph, 0/1 ``uint8 [n_actions, n_states, n_states]``."""
        return self._core.adjacency()[0]

    def _info(self, invalid=None, success=None) -> dict[str, Any]:
        return {k: v[0].item() for k, v in self._core.info(invalid, success).items()}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None or not self._core.has_reset:
            self._core.seed([key_from_seed(self.np_random)])
        self._core.reset()
        if self.render_mode == "human":
            self.render()
        return self._core.observe()[0], self._info()

    def step(self, action):
        a = np.asarray(action)
        if a.shape != ():
            raise ValueError(f"action must be a scalar in [0, {self.config.n_actions}), got "
                             f"{action!r} with shape {a.shape}")
        reward, truncated, invalid, success = self._core.step(a.reshape(1))
        if self.render_mode == "human":
            self.render()
        return (self._core.observe()[0], float(reward[0]), False, bool(truncated[0]),
                self._info(invalid, success))

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode="
                            "'rgb_array' or 'human' to gym.make")
            return None
        from metro_pomdp import render

        if self._renderer is None:
            self._renderer = render.Renderer(self.config.n_states, self.render_mode)
        c = self._core
        name = self.spec.id if self.spec is not None else "MetroPOMDP"
        graph = int(c.graph_index[0])
        title = f"{name}, " + (f"graph {graph}" if c.graph_set is not None and graph >= 0
                               else "a sampled graph")
        # the current state: after an arrival or a timeout, the new placement
        return self._renderer.draw(self.adjacency, **render.step_frames(c, 0)[-1],
                                   title=title)

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
