"""The MetroPOMDP dynamics, written once and batched over ``num_envs`` (N below).

:class:`MetroCore` holds the state of N independent environments in flat arrays and implements
reset / step / observe on them. ``MetroPOMDPEnv`` is a core with N = 1 and
``MetroPOMDPVectorEnv`` a core with N = num_envs, so the single and the vector environment cannot
drift apart.

The arrays are numpy's on the host (``device=None``, the default) or torch tensors on a torch
device (``device="cuda"``; the vector env then returns tensors there). Both run the same code:
the rules below use only the operators, indexing and methods numpy arrays and torch tensors
share, plus the few creation functions of :class:`Arrays`. On numpy the core takes shortcuts
that need a host decision (skip a reset of no env, read a row instead of gathering when every
env is at the same step); on a torch device it never asks the device for a value, so a step
queues its kernels without waiting (the masked path computes the same: tests hold the two equal
step for step).

Randomness is counter-based: every environment has its own 64-bit key, and its k-th random draw
is ``splitmix64(key + k * golden)``. Each environment therefore sees the same random stream
whether it runs alone or inside a batch of 600, without a Python loop over environments. All
draws of an episode are made at its reset ([T + 2, n] at once), so a step does no hashing: a
placement after step k uses row k of the episode's draws. (If an env is stepped past the end of
its episode without a reset, which only ``AutoresetMode.DISABLED`` allows, the rows wrap around.)
The 64-bit arithmetic is done in int64 (torch has no uint64 arithmetic): products wrap the same
way, and the right shifts are made logical by a mask, so the bits are those of uint64.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np

from metro_pomdp import graphs as graphlib


def _int64(u: int) -> int:
    """A 64-bit constant as the int64 with the same bits."""
    return u - (1 << 64) if u >= 1 << 63 else u


_GOLDEN = _int64(0x9E3779B97F4A7C15)
_MIX1 = _int64(0xBF58476D1CE4E5B9)
_MIX2 = _int64(0x94D049BB133111EB)
#: environment keys are drawn from [0, KEY_HIGH): 63 bits
KEY_HIGH = (1 << 63) - 1


def _shift_right(z, bits: int):
    """The logical right shift of the 64-bit patterns in int64 ``z`` (``>>`` is arithmetic)."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def _splitmix64(z):
    """The splitmix64 finaliser on an int64 array (wrapping arithmetic on the uint64 bits)."""
    z = (z ^ _shift_right(z, 30)) * _MIX1
    z = (z ^ _shift_right(z, 27)) * _MIX2
    return z ^ _shift_right(z, 31)


def _below(u32, high: int):
    """Map uniform 32-bit integers (int64 in [0, 2**32)) to uniform integers in [0, high) by
    multiply-shift (bias < high / 2**32; the product stays below 2**63 for high < 2**31)."""
    return (u32 * high) >> 32


class Arrays:
    """Where a core's arrays live: numpy on the host (``device=None``) or torch on ``device``,
    with float outputs (observations, rewards) of ``dtype``.

    Raises:
        ValueError: ``device`` is not a torch device (or CUDA is not available for a CUDA
            device), or ``dtype`` is not a float dtype of the backend (or is given without a
            device: numpy's outputs are float32 observations and float64 rewards).
    """

    def __init__(self, device: Any = None, dtype: Any = None):
        if device is None:
            if dtype is not None:
                raise ValueError(f"dtype={dtype!r} needs a torch device: the numpy env returns "
                                 f"float32 observations and float64 rewards; pass device='cpu' "
                                 f"or 'cuda' for torch tensors of that dtype")
            self.xp, self.device, self.host = np, None, True
            self.obs_dtype, self.reward_dtype = np.float32, np.float64
            return
        import torch

        try:
            device = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device must be None (numpy arrays) or a torch device such as "
                             f"'cpu', 'cuda' or 'cuda:1', got {device!r}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={str(device)!r}, but this torch ({torch.__version__}) "
                             f"sees no CUDA device: pass device=None (numpy) or 'cpu'")
        dtype = torch.float32 if dtype is None else dtype
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64 (the observations' "
                             f"and rewards' dtype), got {dtype!r}")
        self.xp, self.device, self.host = torch, device, False
        self.obs_dtype = self.reward_dtype = dtype

    def zeros(self, shape, dtype):
        shape = (shape,) if isinstance(shape, int) else shape
        if self.host:
            return np.zeros(shape, dtype=dtype)
        return self.xp.zeros(shape, dtype=dtype, device=self.device)

    def full(self, shape, value, dtype):
        shape = (shape,) if isinstance(shape, int) else shape
        if self.host:
            return np.full(shape, value, dtype=dtype)
        return self.xp.full(shape, value, dtype=dtype, device=self.device)

    def arange(self, n: int):
        if self.host:
            return np.arange(n)
        return self.xp.arange(n, device=self.device)

    def asarray(self, x, dtype=None):
        """``x`` (a list, a numpy array or a tensor) as an array of this backend."""
        if self.host:
            return np.asarray(x, dtype=dtype)
        return self.xp.as_tensor(x, dtype=dtype, device=self.device)

    def copy(self, x):
        return x.copy() if self.host else x.clone()

    def cast(self, x, dtype):
        return x.astype(dtype, copy=False) if self.host else x.to(dtype)

    def to_numpy(self, x) -> np.ndarray:
        """``x`` on the host (a device array is copied there: for pictures and checks only)."""
        return x if self.host else x.cpu().numpy()

    @property
    def int64(self):
        return self.xp.int64

    @property
    def bool(self):
        return np.bool_ if self.host else self.xp.bool


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
        device: None for numpy arrays, or a torch device for tensors there (see
            :class:`Arrays`). Sampled graphs (``graph_set="sample"``) are drawn on the host
            at each reset, the one place where a device core waits for the host.
        dtype: the torch float dtype of observations and rewards (default float32); only
            with a device.
    """

    def __init__(self, config: MetroConfig, num_envs: int, graph_offset: int = 0,
                 random_graph: bool = False, graphs: np.ndarray | None = None,
                 device: Any = None, dtype: Any = None):
        if not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, bool) \
                or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.arrays = a = Arrays(device, dtype)
        self.device = a.device
        self.config = c = config
        self.num_envs = n = int(num_envs)
        self.graph_set = config.graphs() if graphs is None else _check_graphs(graphs, config)
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
        i64 = a.int64
        self._tables = (None if self.graph_set is None  # [G, A, S]; validates
                        else a.asarray(graphlib.transition_table(self.graph_set), i64))
        self.graph_index = a.asarray((graph_offset + np.arange(n)) % n_graphs, i64)  # [N]
        # per-env state, all [N, ...]
        self.table = a.full((n, c.n_actions, c.n_states), -1, i64)  # T[a, s] = s'
        self.agent = a.zeros(n, i64)
        self.goal = a.zeros(n, i64)
        self.timer = a.zeros(n, i64)  # steps since agent and reward were placed
        self.t = a.zeros(n, i64)  # steps since the episode began
        self.prev_action = a.full(n, c.n_actions, i64)  # n_actions = "none"
        # float64 on every backend: the observation's return feature is the same to the bit
        self.reward_sum = a.zeros(n, a.xp.float64)
        self.key = a.zeros(n, i64)  # the uint64 keys' bits
        self.counter = a.zeros(n, i64)
        self.has_reset = False
        self.last_step: Transition | None = None  # set by every step(); t == 0 after a reset
        self._synced_t = a.host  # all envs at the same step: draws are rows, not gathers
        t_len = c.episode_length
        # [T, N] per-step draws, as the shift 1 + offset that a placement adds to a location
        self._goal_shift = a.full((t_len, n), 1, i64)
        self._agent_shift = a.full((t_len, n), 1, i64)
        self._rows = a.arange(n)
        self._all = a.full(n, True, a.bool)
        self._table_start = self._rows * (c.n_actions * c.n_states)  # row offsets into table
        # the step's reward values, as arrays: a product with them has their float dtype
        self._reward = a.asarray(c.reward, a.xp.float64)
        self._penalty = a.asarray(-c.penalty, a.xp.float64)
        self._per_step = a.asarray(1.0 / c.episode_length, a.xp.float64)
        self._per_return = a.asarray(1.0 / (c.reward * c.episode_length), a.xp.float64)
        # flat offsets of the three one-hots of every row (goal, agent, previous action), and
        # an observation with the constant feature set, copied by observe()
        s, na = c.n_states, c.n_actions
        self._obs_start3 = a.xp.concatenate([self._rows * c.obs_dim + off
                                             for off in (0, s, 2 * s)])
        self._obs_blank = a.zeros((n, c.obs_dim), a.obs_dtype)
        self._obs_blank[:, 2 * s + na + 1] = 1.0
        self._adjacency: np.ndarray | None = None  # sampled graphs [N, A, S, S] in sample mode

    # ----------------------------------------------------------------------------- randomness
    def seed(self, keys) -> None:
        """Set each env's random key (``[N]`` integers below 2**63) and restart its random
        stream."""
        self.key[:] = self.arrays.asarray(np.asarray(keys, dtype=np.int64), self.arrays.int64)
        self.counter[:] = 0

    def _draw(self, count: int):
        """``count`` 64-bit draws for every env, each split into two uniform 32-bit integers:
        two int64 arrays ``[count, N]`` (the counters are advanced by the caller)."""
        steps = self.arrays.arange(count)[:, None]  # [count, 1]
        z = _splitmix64(self.key + (self.counter + steps) * _GOLDEN)  # [count, N]
        return _shift_right(z, 32), z & 0xFFFFFFFF

    def reset(self, mask=None) -> None:
        """Start a new episode in the envs where ``mask`` (``[N]`` bool; all envs if None).

        All the randomness of an episode is drawn here, in one vectorised call: row 0 for the
        graph, row 1 for the first placement, row ``1 + k`` for a placement after step ``k``.
        Every env's draws are computed and only those of the envs in ``mask`` kept, so a device
        core resets without asking which envs reset.
        """
        c, a = self.config, self.arrays
        xp = a.xp
        if mask is None:
            mask = self._all
        elif a.host and not mask.any():
            return
        count = c.episode_length + 2
        hi, lo = self._draw(count)  # [T + 2, N] each
        self.counter = xp.where(mask, self.counter + count, self.counter)
        if self.graph_set is None:
            self._sample_graphs(mask, hi[0])
        else:
            if self.random_graph:
                self.graph_index = xp.where(mask, _below(hi[0], self.n_graphs),
                                            self.graph_index)
            self.table = xp.where(mask[:, None, None], self._tables[self.graph_index],
                                  self.table)
        goal = _below(hi[1], c.n_states)
        self.goal = xp.where(mask, goal, self.goal)
        self.agent = xp.where(mask, (goal + 1 + _below(lo[1], c.n_states - 1)) % c.n_states,
                              self.agent)
        # placements after steps 1..T: offsets from the old reward location and from the new one
        self._goal_shift = xp.where(mask, 1 + _below(hi[2:], c.n_states - 1), self._goal_shift)
        self._agent_shift = xp.where(mask, 1 + _below(lo[2:], c.n_states - 1),
                                     self._agent_shift)
        self.timer = xp.where(mask, 0, self.timer)
        self.t = xp.where(mask, 0, self.t)
        self.prev_action = xp.where(mask, c.n_actions, self.prev_action)
        self.reward_sum = xp.where(mask, 0.0, self.reward_sum)
        if a.host:
            self._synced_t = bool((self.t == self.t[0]).all())
        self.has_reset = True

    def _sample_graphs(self, mask, seeds) -> None:
        """A fresh Listing-1 graph for each env in ``mask``, from ``RandomState(seed)`` (on the
        host: Listing 1 is a numpy loop)."""
        c, a = self.config, self.arrays
        if self._adjacency is None:
            self._adjacency = np.zeros((self.num_envs, c.n_actions, c.n_states, c.n_states),
                                       dtype=np.uint8)
        idx = np.flatnonzero(a.to_numpy(mask))
        for i, seed in zip(idx, a.to_numpy(seeds)[idx]):
            self._adjacency[i] = graphlib.sample_adjacency(c.n_states, c.n_actions,
                                                           np.random.RandomState(seed))
        rows = a.asarray(idx, a.int64)
        self.table[rows] = a.asarray(graphlib.transition_table(self._adjacency[idx]), a.int64)

    def check_actions(self, actions):
        """Validate a batch of actions; return them as an int64 ``[N]`` array of the core's
        backend (a numpy array given to a device core is copied there).

        On a CUDA device the range is checked asynchronously (``torch._assert_async``: a bad
        action stops the device with that message, at the next synchronisation), so that a
        step never waits for the device.

        Raises:
            ValueError: wrong shape, non-integer values or values outside ``[0, n_actions)``.
        """
        a = self.arrays
        if not a.host:
            return self._check_tensor_actions(actions)
        x = np.asarray(actions)
        if x.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), got {x.shape}")
        if x.dtype != np.int64:  # (int64, what agents pass, needs no dtype inspection)
            if np.issubdtype(x.dtype, np.integer):
                if (x.astype(np.uint64, copy=False) >= self.config.n_actions).any():
                    self._raise_out_of_range(x)  # (before int64 could wrap a large uint64)
            elif not (np.issubdtype(x.dtype, np.floating) and np.all(x == np.round(x))):
                raise ValueError(f"actions must be integers, got dtype {x.dtype} ({x!r})")
            x = x.astype(np.int64)
        if (x.view(np.uint64) >= self.config.n_actions).any():  # negatives wrap
            self._raise_out_of_range(x)
        return x

    def _check_tensor_actions(self, actions):
        import torch

        a = self.arrays
        x = torch.as_tensor(actions, device=a.device)
        if x.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), got "
                             f"{tuple(x.shape)}")
        if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
            raise ValueError(f"actions must be an integer tensor, got dtype {x.dtype}")
        x = x.to(torch.int64)
        valid = ((x >= 0) & (x < self.config.n_actions)).all()
        if a.device.type == "cpu":
            if not bool(valid):
                self._raise_out_of_range(x.numpy())
        else:
            torch._assert_async(valid, f"MetroPOMDP: actions must lie in "
                                       f"[0, {self.config.n_actions})")
        return x

    def _raise_out_of_range(self, a: np.ndarray):
        bad = np.flatnonzero((a < 0) | (a >= self.config.n_actions))
        raise ValueError(f"actions must lie in [0, {self.config.n_actions}), got "
                         f"{a[bad[:5]].tolist()} at env indices {bad[:5].tolist()}"
                         f"{' ...' if bad.size > 5 else ''}")

    def step(self, actions):
        """Advance every env by one step.

        Returns:
            ``(reward [N] float64, truncated [N] bool, invalid [N] bool, success [N] bool)``.
            There is no termination: every episode lasts ``episode_length`` steps.
        """
        c = self.config
        xp = self.arrays.xp
        if not self.has_reset:
            from gymnasium.error import ResetNeeded
            raise ResetNeeded("reset() must be called before step()")
        a = self.check_actions(actions)
        # deterministic transition T[n, a, agent], -1 if there is no such edge
        nxt = self.table.reshape(-1).take(self._table_start + a * c.n_states + self.agent)
        invalid = nxt < 0
        before = self.agent
        self.agent = xp.where(invalid, before, nxt)
        success = self.agent == self.goal
        # (an invalid action never reaches the reward: the agent stays, and no placement puts
        # it on the reward)
        reward = xp.where(invalid, self._penalty, success * self._reward)
        self.timer = self.timer + 1
        replace = success | (self.timer >= c.reset_after)
        # what a picture of this step shows, before the placement below moves agent and reward
        self.last_step = Transition(before, a, self.agent, invalid, success, replace, reward,
                                    self.goal)
        # Place reward and agent anew where needed (appendix I), with this step's draws, by one
        # rule after a success and after a timeout: the reward anywhere but its old location,
        # the agent anywhere but on the new reward.
        if self._synced_t:
            k = int(self.t[0]) % c.episode_length
            goal_shift, agent_shift = self._goal_shift[k], self._agent_shift[k]
        else:
            k = self.t % c.episode_length
            goal_shift = self._goal_shift[k, self._rows]
            agent_shift = self._agent_shift[k, self._rows]
        self.goal = xp.where(replace, (self.goal + goal_shift) % c.n_states, self.goal)
        self.agent = xp.where(replace, (self.goal + agent_shift) % c.n_states, self.agent)
        self.timer = xp.where(replace, 0, self.timer)  # the timer restarts with every placement
        self.t = self.t + 1
        self.prev_action = self.arrays.copy(a)  # never keep a reference to the caller's array
        self.reward_sum = self.reward_sum + reward
        truncated = self.t >= c.episode_length
        return reward, truncated, invalid, success

    def observe(self):
        """Observations ``[N, obs_dim]`` (float32 on numpy; layout in ``MetroPOMDPEnv``'s
        docstring)."""
        c = self.config
        s, na = c.n_states, c.n_actions
        obs = self.arrays.copy(self._obs_blank)  # zeros, and the constant feature
        hot = self.arrays.xp.concatenate((self.goal, self.agent, self.prev_action))
        hot += self._obs_start3
        obs.reshape(-1)[hot] = 1.0  # the three one-hots
        # (products in float64, rounded once to the observation's dtype)
        obs[:, 2 * s + na + 2] = self.t * self._per_step
        obs[:, 2 * s + na + 3] = self.reward_sum * self._per_return
        return obs

    def adjacency(self) -> np.ndarray:
        """The current graph of every env, ``uint8 [N, A, S, S]`` (numpy, on every backend)."""
        if self.graph_set is None:
            if self._adjacency is None:
                from gymnasium.error import ResetNeeded
                raise ResetNeeded("reset() must be called before the graph is sampled")
            return self._adjacency.copy()
        return self.graph_set[self.arrays.to_numpy(self.graph_index)]

    def info(self, invalid=None, success=None) -> dict[str, Any]:
        """What a user debugging a policy wants to see, as ``[N]`` arrays of the backend."""
        a = self.arrays
        n = self.num_envs
        return {
            "agent": a.copy(self.agent),
            "reward_location": a.copy(self.goal),
            "graph_index": (a.copy(self.graph_index) if self.graph_set is not None
                            else a.full(n, -1, a.int64)),
            "reset_timer": a.copy(self.timer),
            "invalid_action": a.zeros(n, a.bool) if invalid is None else invalid,
            "reached_reward": a.zeros(n, a.bool) if success is None else success,
        }
