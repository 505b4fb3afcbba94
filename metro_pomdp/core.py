"""The MetroPOMDP dynamics, written once and batched over ``num_envs`` (N below).

:class:`MetroCore` holds the state of N independent environments in flat arrays and implements
reset / step / observe on them with numpy. ``MetroPOMDPEnv`` is a core with N = 1 and
``MetroPOMDPVectorEnv`` a core with N = num_envs, so the single and the vector environment cannot
drift apart.

Randomness is counter-based: every environment has its own 64-bit key, and its k-th random draw
is ``splitmix64(key + k * golden)``. Each environment therefore sees the same random stream
whether it runs alone or inside a batch of 600, without a Python loop over environments. All
draws of an episode are made at its reset ([T + 2, n] at once), so a step does no hashing: a
placement after step k uses row k of the episode's draws. (If an env is stepped past the end of
its episode without a reset, which only ``AutoresetMode.DISABLED`` allows, the rows wrap around.)
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from metro_pomdp import graphs as graphlib

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
#: environment keys are drawn from [0, KEY_HIGH): 63 bits
KEY_HIGH = (1 << 63) - 1


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _below(u32: np.ndarray, high: int) -> np.ndarray:
    """Map uniform 32-bit integers (in uint64) to uniform integers in [0, high) by multiply-shift
    (bias < high / 2**32)."""
    return ((u32 * np.uint64(high)) >> np.uint64(32)).astype(np.int64)


def key_from_seed(seed_rng: np.random.Generator) -> int:
    """An environment's 63-bit random key, drawn from its Gymnasium ``np_random``."""
    return int(seed_rng.integers(0, KEY_HIGH, dtype=np.int64))


class Transition(NamedTuple):
    """The last step of each env, as ``[N]`` arrays (:attr:`MetroCore.last_step`): what a
    picture of the step shows before agent and reward are placed anew."""

    agent: np.ndarray  #: where the agent was
    action: np.ndarray
    moved_to: np.ndarray  #: where the action took it (``agent`` after an invalid action)
    invalid: np.ndarray  #: the action was not an edge: the agent stayed, ``-penalty``
    reached: np.ndarray  #: ``moved_to`` is the reward location: ``+reward``
    placed: np.ndarray  #: agent and reward were then placed anew (arrival or timeout)
    reward: np.ndarray  #: the step's reward
    reward_location: np.ndarray  #: the reward location during the step


@dataclasses.dataclass(frozen=True)
class MetroConfig:
    """The knobs of the environment family (constructor kwargs of both environments).

    Attributes:
        n_states: locations per graph (the paper: 5).
        n_actions: actions (the paper: 3).
        episode_length: steps per episode; the episode is truncated after it (the paper: 30).
        reward: reward for arriving at the reward location (the paper: 10).
        penalty: cost of an action that is not an edge; the agent stays (the paper: 0.05).
        reset_after: steps without reaching the reward after which agent and reward are placed
            anew (the paper: 6).
        graph_set: ``"train"`` or ``"test"`` (the fixed sets of the paper) or ``"sample"`` (a
            fresh Listing-1 graph every episode).
        n_graphs: graphs in each fixed set (the paper: 600).
        data_seed: seed of the fixed graph sets (the paper: 666).
    """

    n_states: int = 5
    n_actions: int = 3
    episode_length: int = 30
    reward: float = 10.0
    penalty: float = 0.05
    reset_after: int = 6
    graph_set: str = "train"
    n_graphs: int = graphlib.N_GRAPHS
    data_seed: int = graphlib.DATA_SEED

    def __post_init__(self):
        graphlib.validate_sizes(self.n_states, self.n_actions)
        if not isinstance(self.data_seed, (int, np.integer)) or isinstance(self.data_seed, bool) \
                or self.data_seed < 0:
            raise ValueError(f"data_seed must be a non-negative integer (numpy's seeds are), "
                             f"got {self.data_seed!r}")
        for name in ("episode_length", "reset_after", "n_graphs"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not np.isfinite(self.reward) or self.reward <= 0:
            raise ValueError(f"reward must be a positive finite number, got {self.reward!r}")
        if not np.isfinite(self.penalty) or self.penalty < 0:
            raise ValueError(f"penalty must be a non-negative finite number, got {self.penalty!r}")
        if self.graph_set not in ("train", "test", "sample"):
            raise ValueError(f"graph_set must be 'train', 'test' or 'sample', "
                             f"got {self.graph_set!r}")

    @property
    def obs_dim(self) -> int:
        """2 * n_states + (n_actions + 1) + 3: 17 for the paper's 5 states and 3 actions."""
        return 2 * self.n_states + self.n_actions + 1 + 3

    def graphs(self) -> np.ndarray | None:
        """The fixed graph set ``[n_graphs, A, S, S]``, or None when sampling."""
        if self.graph_set == "sample":
            return None
        return graphlib.graph_set(self.graph_set, self.n_states, self.n_actions, self.n_graphs,
                                self.data_seed)


def check_graph_index(index, n_graphs: int | None, name: str, optional: bool = False) -> None:
    """Check an index into a fixed set of ``n_graphs`` graphs (None: the graphs are sampled,
    and no index means anything).

    Args:
        index: the value given.
        n_graphs: graphs in the set, or None when sampling.
        name: the argument's name, for the message.
        optional: whether None is also allowed (the message says so; None itself is never
            passed here).

    Raises:
        ValueError: naming ``name``, the valid range and the value.
    """
    if n_graphs is None:
        raise ValueError(f"{name}={index!r} has no meaning with graph_set='sample' (a fresh "
                         f"graph every episode); "
                         + (f"pass {name}=None, or graph_set='train' or 'test'" if optional
                            else "leave it at 0"))
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool) \
            or not 0 <= index < n_graphs:
        raise ValueError(f"{name} must be {'None or ' if optional else ''}an integer in "
                         f"[0, {n_graphs}) (the set has {n_graphs} graphs), got {index!r}")


def _check_graphs(adjacency: np.ndarray, config: MetroConfig) -> np.ndarray:
    """Check a custom graph set against the config and the family's promises (0/1, one target
    per (action, location), no self-loops, strongly connected); return it as a read-only uint8
    array.

    Raises:
        ValueError: naming the first graph that breaks a rule, and the rule.
    """
    adjacency = np.asarray(adjacency)
    if adjacency.ndim == 3:
        adjacency = adjacency[None]
    expected = (config.n_actions, config.n_states, config.n_states)
    if adjacency.ndim != 4 or adjacency.shape[1:] != expected or len(adjacency) == 0:
        raise ValueError(f"graphs must have shape [n_graphs, {', '.join(map(str, expected))}] "
                         f"(n_actions, n_states, n_states), got {adjacency.shape}")
    graphlib.transition_table(adjacency)  # 0/1 and deterministic, or a ValueError
    loops = np.flatnonzero(np.trace(adjacency, axis1=-2, axis2=-1).sum(-1))
    if loops.size:
        raise ValueError(f"graphs[{loops[0]}] has a self-loop (an action that leads from a "
                         f"location to itself); metro maps have none")
    for i, graph in enumerate(adjacency):
        if not graphlib.is_strongly_connected(graph):
            raise ValueError(f"graphs[{i}] is not strongly connected (some location cannot be "
                             f"reached from another, e.g. a graph without edges); every "
                             f"location must be reachable from every other")
    out = adjacency.astype(np.uint8)
    out.flags.writeable = False
    return out


class MetroCore:
    """State and dynamics of ``num_envs`` MetroPOMDP environments.

    Env ``i`` of a core uses graph ``graph_offset + i`` (mod ``n_graphs``; more envs than the
    graphs of a registered set are refused, so none is played twice) of the fixed set, or a
    fresh Listing-1 graph every episode when ``config.graph_set == "sample"``.

    Args:
        config: environment parameters.
        num_envs: N.
        graph_offset: index of the graph of env 0 (a single env built for slot ``i`` of a batch
            passes ``i``).
        random_graph: draw each episode's graph uniformly from the fixed set instead.
        graphs: a custom fixed set ``[n_graphs, n_actions, n_states, n_states]`` used instead of
            ``config.graph_set`` (e.g. hand-made graphs).
    """

    def __init__(self, config: MetroConfig, num_envs: int, graph_offset: int = 0,
                 random_graph: bool = False, graphs: np.ndarray | None = None):
        if not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, bool) \
                or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.config = c = config
        self.num_envs = n = int(num_envs)
        self.graph_set = config.graphs() if graphs is None else _check_graphs(graphs, config)
        self._tables = (None if self.graph_set is None
                        else graphlib.transition_table(self.graph_set))  # [G, A, S]; validates
        n_graphs = 1 if self.graph_set is None else len(self.graph_set)
        if self.graph_set is not None or graph_offset != 0:  # sampling: only the default 0
            check_graph_index(graph_offset, None if self.graph_set is None else n_graphs,
                              "graph_offset")
        self.n_graphs = n_graphs
        self.random_graph = random_graph and self.graph_set is not None
        # a set of the user's own (graphs=...) may be replayed on purpose (env i plays graph
        # i mod n_graphs, e.g. every env on one graph); a registered set is not
        if graphs is None and self.graph_set is not None and not self.random_graph \
                and n > n_graphs:
            raise ValueError(f"num_envs={n} envs on a fixed set of {n_graphs} graphs: env i "
                             f"plays graph i, so envs {n_graphs} and up would replay graphs "
                             f"0, 1, ... Use at most {n_graphs} envs, or random_graph=True "
                             f"(each episode draws its graph from the whole set)")
        self.graph_index = (graph_offset + np.arange(n)) % n_graphs  # [N]
        # per-env state, all [N, ...]
        self.table = np.full((n, c.n_actions, c.n_states), -1, dtype=np.int64)  # T[a, s] = s'
        self.agent = np.zeros(n, dtype=np.int64)
        self.goal = np.zeros(n, dtype=np.int64)
        self.timer = np.zeros(n, dtype=np.int64)  # steps since agent and reward were placed
        self.t = np.zeros(n, dtype=np.int64)  # steps since the episode began
        self.prev_action = np.full(n, c.n_actions, dtype=np.int64)  # n_actions = "none"
        self.reward_sum = np.zeros(n, dtype=np.float64)
        self.key = np.zeros(n, dtype=np.uint64)
        self.counter = np.zeros(n, dtype=np.uint64)
        self.has_reset = False
        self.last_step: Transition | None = None  # set by every step(); t == 0 after a reset
        self._synced_t = True  # all envs at the same step: draws are rows, not gathers
        t_len = c.episode_length
        # [T, N] per-step draws, as the shift 1 + offset that a placement adds to a location
        self._goal_shift = np.ones((t_len, n), dtype=np.int64)
        self._agent_shift = np.ones((t_len, n), dtype=np.int64)
        self._rows = np.arange(n)
        self._table_start = self._rows * (c.n_actions * c.n_states)  # row offsets into table
        self._flat_table = self.table.reshape(-1)  # a view: reset writes table in place
        # flat offsets of the three one-hots of every row (goal, agent, previous action), and
        # an observation with the constant feature set, copied by observe()
        s, na = c.n_states, c.n_actions
        self._obs_start3 = np.concatenate([self._rows * c.obs_dim + off
                                           for off in (0, s, 2 * s)])
        self._obs_blank = np.zeros((n, c.obs_dim), dtype=np.float32)
        self._obs_blank[:, 2 * s + na + 1] = 1.0
        self._adjacency: np.ndarray | None = None  # sampled graphs [N, A, S, S] in sample mode

    # ----------------------------------------------------------------------------- randomness
    def seed(self, keys: np.ndarray) -> None:
        """Set each env's random key (``[N]`` integers) and restart its random stream."""
        self.key[:] = np.asarray(keys, dtype=np.uint64)
        self.counter[:] = 0

    def _draw(self, idx: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` 64-bit draws for each env in ``idx``, each split into two uniform 32-bit
        integers: two uint64 arrays ``[count, len(idx)]``. Advances those envs' counters."""
        steps = np.arange(count, dtype=np.uint64)[:, None]  # [count, 1]
        z = _splitmix64(self.key[idx] + (self.counter[idx] + steps) * _GOLDEN)  # [count, n]
        self.counter[idx] += np.uint64(count)
        return z >> np.uint64(32), z & np.uint64(0xFFFFFFFF)

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start a new episode in the envs where ``mask`` (all envs if None).

        All the randomness of an episode is drawn here, in one vectorised call: row 0 for the
        graph, row 1 for the first placement, row ``1 + k`` for a placement after step ``k``.
        """
        c = self.config
        idx = self._rows if mask is None else np.flatnonzero(mask)
        if idx.size == 0:
            return
        hi, lo = self._draw(idx, c.episode_length + 2)  # [T + 2, n] each
        if self.graph_set is None:
            self._sample_graphs(idx, hi[0])
        else:
            if self.random_graph:
                self.graph_index[idx] = _below(hi[0], self.n_graphs)
            self.table[idx] = self._tables[self.graph_index[idx]]
        goal = _below(hi[1], c.n_states)
        self.goal[idx] = goal
        self.agent[idx] = (goal + 1 + _below(lo[1], c.n_states - 1)) % c.n_states
        # placements after steps 1..T: offsets from the old reward location and from the new one
        self._goal_shift[:, idx] = 1 + _below(hi[2:], c.n_states - 1)
        self._agent_shift[:, idx] = 1 + _below(lo[2:], c.n_states - 1)
        self.timer[idx] = 0
        self.t[idx] = 0
        self.prev_action[idx] = c.n_actions
        self.reward_sum[idx] = 0.0
        self._synced_t = bool((self.t == self.t[0]).all())
        self.has_reset = True

    def _sample_graphs(self, idx: np.ndarray, seeds: np.ndarray) -> None:
        """A fresh Listing-1 graph for each env in ``idx``, from ``RandomState(seed)``."""
        c = self.config
        if self._adjacency is None:
            self._adjacency = np.zeros((self.num_envs, c.n_actions, c.n_states, c.n_states),
                                       dtype=np.uint8)
        for i, seed in zip(idx, seeds.astype(np.int64)):
            adj = graphlib.sample_adjacency(c.n_states, c.n_actions, np.random.RandomState(seed))
            self._adjacency[i] = adj
            self.table[i] = graphlib.transition_table(adj)

    def check_actions(self, actions) -> np.ndarray:
        """Validate a batch of actions; return them as ``int64 [N]``.

        Raises:
            ValueError: wrong shape, non-integer values or values outside ``[0, n_actions)``.
        """
        a = np.asarray(actions)
        if a.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), got {a.shape}")
        if a.dtype != np.int64:  # (int64, what agents pass, needs no dtype inspection)
            if np.issubdtype(a.dtype, np.integer):
                if (a.astype(np.uint64, copy=False) >= self.config.n_actions).any():
                    self._raise_out_of_range(a)  # (before int64 could wrap a large uint64)
            elif not (np.issubdtype(a.dtype, np.floating) and np.all(a == np.round(a))):
                raise ValueError(f"actions must be integers, got dtype {a.dtype} ({a!r})")
            a = a.astype(np.int64)
        if (a.view(np.uint64) >= self.config.n_actions).any():  # negatives wrap
            self._raise_out_of_range(a)
        return a

    def _raise_out_of_range(self, a: np.ndarray):
        bad = np.flatnonzero((a < 0) | (a >= self.config.n_actions))
        raise ValueError(f"actions must lie in [0, {self.config.n_actions}), got "
                         f"{a[bad[:5]].tolist()} at env indices {bad[:5].tolist()}"
                         f"{' ...' if bad.size > 5 else ''}")

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Advance every env by one step.

        Returns:
            ``(reward [N] float64, truncated [N] bool, invalid [N] bool, success [N] bool)``.
            There is no termination: every episode lasts ``episode_length`` steps.
        """
        c = self.config
        if not self.has_reset:
            from gymnasium.error import ResetNeeded
            raise ResetNeeded("reset() must be called before step()")
        a = self.check_actions(actions)
        # deterministic transition T[n, a, agent], -1 if there is no such edge
        nxt = self._flat_table.take(self._table_start + a * c.n_states + self.agent)
        invalid = nxt < 0
        before = self.agent
        self.agent = np.where(invalid, before, nxt)
        success = self.agent == self.goal
        # (an invalid action never reaches the reward: the agent stays, and no placement puts
        # it on the reward)
        reward = np.where(invalid, -c.penalty, success * c.reward)
        self.timer += 1
        replace = success | (self.timer >= c.reset_after)
        # what a picture of this step shows, before the placement below moves agent and reward
        self.last_step = Transition(before, a, self.agent, invalid, success, replace, reward,
                                    self.goal)
        # Place reward and agent anew where needed (appendix I), with this step's draws, by one
        # rule after a success and after a timeout: the reward anywhere but its old location,
        # the agent anywhere but on the new reward.
        if self._synced_t:
            k = self.t[0] % c.episode_length
            goal_shift, agent_shift = self._goal_shift[k], self._agent_shift[k]
        else:
            k = self.t % c.episode_length
            goal_shift = self._goal_shift[k, self._rows]
            agent_shift = self._agent_shift[k, self._rows]
        self.goal = np.where(replace, (self.goal + goal_shift) % c.n_states, self.goal)
        self.agent = np.where(replace, (self.goal + agent_shift) % c.n_states, self.agent)
        self.timer = np.where(replace, 0, self.timer)  # the timer restarts with every placement
        self.t += 1
        self.prev_action[:] = a  # copy: never keep a reference to the caller's array
        self.reward_sum += reward
        truncated = self.t >= c.episode_length
        return reward, truncated, invalid, success

    def observe(self) -> np.ndarray:
        """Observations ``float32 [N, obs_dim]`` (layout in ``MetroPOMDPEnv``'s docstring)."""
        c = self.config
        s, na = c.n_states, c.n_actions
        obs = self._obs_blank.copy()  # zeros, and the constant feature
        hot = np.concatenate((self.goal, self.agent, self.prev_action))
        hot += self._obs_start3
        obs.reshape(-1)[hot] = 1.0  # the three one-hots
        np.multiply(self.t, 1.0 / c.episode_length, out=obs[:, 2 * s + na + 2],
                    casting="unsafe")
        np.multiply(self.reward_sum, 1.0 / (c.reward * c.episode_length),
                    out=obs[:, 2 * s + na + 3], casting="unsafe")
        return obs

    def adjacency(self) -> np.ndarray:
        """The current graph of every env, ``uint8 [N, A, S, S]``."""
        if self.graph_set is None:
            if self._adjacency is None:
                from gymnasium.error import ResetNeeded
                raise ResetNeeded("reset() must be called before the graph is sampled")
            return self._adjacency.copy()
        return self.graph_set[self.graph_index]

    def info(self, invalid: np.ndarray | None = None, success: np.ndarray | None = None
             ) -> dict[str, np.ndarray]:
        """What a user debugging a policy wants to see, as ``[N]`` arrays."""
        n = self.num_envs
        return {
            "agent": self.agent.copy(),
            "reward_location": self.goal.copy(),
            "graph_index": (self.graph_index.copy() if self.graph_set is not None
                            else np.full(n, -1, dtype=np.int64)),
            "reset_timer": self.timer.copy(),
            "invalid_action": np.zeros(n, bool) if invalid is None else invalid,
            "reached_reward": np.zeros(n, bool) if success is None else success,
        }
