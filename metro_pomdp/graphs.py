"""Metro-map graphs: the sampler of the paper's Listing 1 (appendix I), fixed graph sets, helpers.

A graph is a 0/1 adjacency array ``A`` of shape ``[n_actions, n_states, n_states]``:
``A[a, s, s'] == 1`` means that action ``a`` taken in state ``s`` moves the agent to ``s'``.
Transitions are deterministic, so every ``(a, s)`` row holds at most one 1; an all-zero row means
that ``a`` is not a valid action in ``s`` (the agent stays and pays a penalty).

The same graphs as a transition table ``T[a, s] = s'`` (``-1`` where invalid) drive the dynamics
in :mod:`metro_pomdp.core`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # networkx is only needed for `to_networkx`
    import networkx as nx

RNG = np.random.Generator | np.random.RandomState

#: The paper's data seed for the fixed graph sets (the authors' code).
DATA_SEED = 666
#: The paper's number of train and of test graphs (one per parallel agent).
N_GRAPHS = 600
#: The largest fixed set :func:`graph_set` makes. Listing 1 costs about 0.2 ms a graph, so this
#: is about a minute of sampling; larger sets are refused rather than left to run for hours.
MAX_GRAPHS = 100_000
#: From this many graphs on, :func:`graph_set` shows a progress bar while it samples.
PROGRESS_FROM = 10_000


def validate_sizes(n_states: int, n_actions: int) -> None:
    """Raise ``ValueError`` unless Listing 1 can produce graphs of this size.

    With no self-loops a 2-state graph is a 2-cycle, which is periodic and always rejected by
    Listing 1's test, so at least 3 states are needed; the first half of Listing 1 uses one
    (action, state) pair per state and the second half needs further free pairs, so at least 2
    actions are needed.
    """
    if not isinstance(n_states, (int, np.integer)) or isinstance(n_states, bool) or n_states < 3:
        raise ValueError(f"n_states must be an integer >= 3 (a 2-state graph has period 2 and "
                         f"Listing 1 rejects it forever), got {n_states!r}")
    if not isinstance(n_actions, (int, np.integer)) or isinstance(n_actions, bool) or n_actions < 2:
        raise ValueError(f"n_actions must be an integer >= 2 (Listing 1 needs a second action per "
                         f"state to make every state reachable), got {n_actions!r}")


def _randint(rng: RNG, high: int) -> int:
    """One integer in [0, high) with the call Listing 1 makes (``randint``) on either RNG type."""
    if isinstance(rng, np.random.RandomState):
        return int(rng.randint(0, high))
    return int(rng.integers(0, high))


def is_primitive(adjacency: np.ndarray) -> bool:
    """Listing 1's acceptance test, computed exactly with booleans.

    Listing 1 squares the (float) state-to-state matrix ``n_states`` times and accepts when no
    entry is zero, i.e. when there is a walk of length exactly ``2**n_states`` between every pair
    of states. For every ``n >= 1``, ``2**n >= (n-1)**2 + 1`` (Wielandt's bound), so this holds
    exactly when the graph is strongly connected AND aperiodic (a primitive matrix). Boolean
    squaring gives the same answer as the float version for 5 states and cannot overflow for
    larger graphs (the float walk counts reach ``n**(2**n)``).
    """
    q = adjacency.any(axis=0)  # [S, S] bool: some action leads s -> s'
    for _ in range(q.shape[0]):
        q = (q.astype(np.int64) @ q.astype(np.int64)) > 0
    return bool(q.all())


def is_strongly_connected(adjacency: np.ndarray) -> bool:
    """Whether every location of one graph ``[A, S, S]`` can be reached from every other."""
    return bool((shortest_path_lengths(adjacency) >= 0).all())


def sample_adjacency(n_states: int, n_actions: int, rng: RNG) -> np.ndarray:
    """Sample one graph with the paper's Listing 1.

    For a ``np.random.RandomState`` the random calls are exactly those of Listing 1, so
    ``RandomState(seed)`` reproduces the authors' graphs. The only changes: the connectivity test
    is exact boolean reachability (:func:`is_primitive`), and a draw whose second phase finds no
    free (action, state) pair is rejected and retried (this cannot happen for the paper's 5
    states and 3 actions, where Listing 1 as printed would crash instead).

    Args:
        n_states: number of locations (>= 3).
        n_actions: number of actions (>= 2).
        rng: a ``np.random.Generator`` or ``np.random.RandomState``.

    Returns:
        ``uint8`` array ``[n_actions, n_states, n_states]``.
    """
    validate_sizes(n_states, n_actions)
    while True:
        adj = np.zeros((n_actions, n_states, n_states), dtype=np.uint8)
        # every state has to be leavable by at least one action
        for from_state in range(n_states):
            to_state = rng.choice([i for i in range(n_states) if i != from_state])
            action = _randint(rng, n_actions)
            adj[action, from_state, to_state] = 1
        # every state has to be reachable from one or more states
        stuck = False
        for to_state in range(n_states):
            # (action, from_state) pairs that do not lead anywhere yet, excluding self-loops
            action_list, from_list = np.where(adj.sum(2) == 0)
            options = [(f, a) for f, a in zip(from_list, action_list) if f != to_state]
            if not options:
                stuck = True
                break
            from_state, action = options[rng.choice(np.arange(len(options)))]
            adj[action, from_state, to_state] = 1
        if not stuck and is_primitive(adj):
            return adj


def max_distinct_graphs(n_states: int, n_actions: int) -> int:
    """An upper bound on the number of distinct graphs: each (action, state) row is empty or
    points to one of the ``n_states - 1`` other states."""
    return n_states ** (n_states * n_actions)


@functools.lru_cache(maxsize=16)
def _graph_sets(n_states: int, n_actions: int, n_graphs: int, data_seed: int
                ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(data_seed)
    bar = None
    if n_graphs >= PROGRESS_FROM:
        from tqdm.auto import tqdm

        bar = tqdm(total=2 * n_graphs, unit="graph",
                   desc=f"sampling {n_states}x{n_actions} graph sets (data seed {data_seed})")

    def sample():
        if bar is not None:
            bar.update(1)
        return sample_adjacency(n_states, n_actions, rng)

    test = np.stack([sample() for _ in range(n_graphs)])
    test_keys = {g.tobytes() for g in test}
    train = []
    rejected_in_a_row = 0
    while len(train) < n_graphs:
        g = sample()
        if g.tobytes() in test_keys:
            rejected_in_a_row += 1
            if rejected_in_a_row > 100_000:
                raise ValueError(f"could not draw {n_graphs} train graphs distinct from the test "
                                 f"graphs for n_states={n_states}, n_actions={n_actions}: the "
                                 f"graph space is too small for n_graphs={n_graphs}")
            continue
        rejected_in_a_row = 0
        train.append(g)
    if bar is not None:
        bar.close()
    train_arr, test_arr = np.stack(train), test
    train_arr.flags.writeable = False
    test_arr.flags.writeable = False
    return train_arr, test_arr


def graph_set(split: str, n_states: int = 5, n_actions: int = 3, n_graphs: int = N_GRAPHS,
              data_seed: int = DATA_SEED) -> np.ndarray:
    """The paper's fixed graph sets: identical for every user, train and test disjoint.

    ``n_graphs`` test graphs are drawn first from ``RandomState(data_seed)``, then ``n_graphs``
    train graphs from the same stream, each rejected if it equals a test graph (as in the authors'
    code).
    The result is cached and read-only. Sets of :data:`PROGRESS_FROM` graphs or more show a
    progress bar; more than :data:`MAX_GRAPHS` are refused.

    Args:
        split: ``"train"`` or ``"test"``.
        n_states: locations per graph.
        n_actions: actions per location.
        n_graphs: graphs per split.
        data_seed: seed of the data-generating stream.

    Returns:
        ``uint8`` array ``[n_graphs, n_actions, n_states, n_states]``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    validate_sizes(n_states, n_actions)
    if not isinstance(n_graphs, (int, np.integer)) or isinstance(n_graphs, bool) \
            or not 1 <= n_graphs <= MAX_GRAPHS:
        raise ValueError(f"n_graphs must be an integer in [1, {MAX_GRAPHS:,}] (sampling takes "
                         f"about 0.2 ms a graph, twice n_graphs of them), got {n_graphs!r}")
    if 2 * n_graphs > max_distinct_graphs(n_states, n_actions):
        raise ValueError(f"n_graphs={n_graphs} is impossible: at most "
                         f"{max_distinct_graphs(n_states, n_actions)} distinct graphs exist with "
                         f"n_states={n_states}, n_actions={n_actions}, and the train and test "
                         f"sets need {2 * n_graphs}")
    train, test = _graph_sets(int(n_states), int(n_actions), int(n_graphs), int(data_seed))
    return train if split == "train" else test


def transition_table(adjacency: np.ndarray) -> np.ndarray:
    """``T[..., a, s] = s'`` where ``A[..., a, s, s'] == 1``, and ``-1`` where ``(a, s)`` is invalid.

    Accepts one graph ``[A, S, S]`` or a stack ``[..., A, S, S]``.

    Raises:
        ValueError: if the array is not 0/1 or some (action, state) has more than one target.
    """
    adjacency = np.asarray(adjacency)
    if adjacency.ndim < 3 or adjacency.shape[-1] != adjacency.shape[-2]:
        raise ValueError(f"adjacency must have shape [..., n_actions, n_states, n_states], "
                         f"got {adjacency.shape}")
    if not np.isin(adjacency, (0, 1)).all():
        raise ValueError("adjacency must contain only 0 and 1")
    out_degree = adjacency.sum(-1)
    if (out_degree > 1).any():
        raise ValueError("adjacency is not deterministic: some (action, state) has two targets")
    return np.where(out_degree > 0, adjacency.argmax(-1), -1).astype(np.int64)


def shortest_path_lengths(adjacency: np.ndarray) -> np.ndarray:
    """All-pairs shortest path lengths (in steps) of one graph ``[A, S, S]``.

    Returns:
        ``int64`` array ``[S, S]`` with ``D[s, s'] = `` fewest actions from ``s`` to ``s'``
        (0 on the diagonal, ``-1`` if unreachable).
    """
    reach = np.asarray(adjacency).any(axis=0)  # [S, S]
    n = reach.shape[0]
    dist = np.full((n, n), -1, dtype=np.int64)
    np.fill_diagonal(dist, 0)
    frontier = np.eye(n, dtype=bool)
    for d in range(1, n):
        frontier = (frontier.astype(np.int64) @ reach.astype(np.int64)) > 0
        new = frontier & (dist < 0)
        dist[new] = d
    return dist


def shortest_path_actions(adjacency: np.ndarray) -> np.ndarray:
    """The first action of a shortest path, for a policy that knows the graph.

    Returns:
        ``int64`` array ``[S, S]``: ``P[s, goal]`` is the lowest-numbered action that moves ``s``
        one step closer to ``goal`` (``-1`` on the diagonal and where ``goal`` is unreachable).
    """
    table = transition_table(adjacency)  # [A, S]
    dist = shortest_path_lengths(adjacency)  # [S, S]
    n_actions, n_states = table.shape
    policy = np.full((n_states, n_states), -1, dtype=np.int64)
    for s in range(n_states):
        for goal in range(n_states):
            if s == goal or dist[s, goal] < 0:
                continue
            for a in range(n_actions):
                nxt = table[a, s]
                if nxt >= 0 and dist[nxt, goal] == dist[s, goal] - 1:
                    policy[s, goal] = a
                    break
    return policy


def to_networkx(adjacency: np.ndarray) -> nx.MultiDiGraph:
    """A ``networkx.MultiDiGraph`` with one edge per (action, state) pair, ``action`` as its key
    and as an edge attribute."""
    import networkx as nx

    table = transition_table(adjacency)
    n_actions, n_states = table.shape
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(range(n_states))
    for a in range(n_actions):
        for s in range(n_states):
            if table[a, s] >= 0:
                graph.add_edge(s, int(table[a, s]), key=a, action=a)
    return graph
