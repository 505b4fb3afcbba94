"""Reference policies for the MetroPOMDP: uniformly random, and shortest paths on a known graph.

The shortest-path "oracle" cheats: it reads the graph (``envs.adjacency``) that the agents
cannot see. It bounds what a memory-based agent can hope for; the random policy is the floor.
"""

from __future__ import annotations

import functools

import numpy as np

from metro_pomdp.graphs import shortest_path_actions
from metro_pomdp.vector_env import MetroPOMDPVectorEnv

POLICIES = ("random", "shortest_path")
#: The protocol of the reference values everything in the project shows (:func:`reference_returns`):
#: this many episodes on each graph of a set, environments and random policy seeded with
#: :data:`REFERENCE_SEED`.
REFERENCE_EPISODES = 10
REFERENCE_SEED = 0


def oracle_tables(adjacency: np.ndarray) -> np.ndarray:
    """``[N, S, S]``: the first action of a shortest path from ``s`` to ``goal`` on each graph of
    ``adjacency [N, A, S, S]`` (-1 where ``s == goal``)."""
    return np.stack([shortest_path_actions(a) for a in adjacency])


def evaluate_policy_returns(policy: str, graph_set: str = "train", episodes: int = 1,
                            seed: int = 0, num_envs: int = 600, **env_kwargs) -> np.ndarray:
    """Episode returns of a reference policy on a batch of environments.

    Args:
        policy: ``"random"`` or ``"shortest_path"``.
        graph_set: ``"train"``, ``"test"`` or ``"sample"``.
        episodes: episodes per environment.
        seed: seed of the environments and of the random policy.
        num_envs: parallel environments (600: one per graph of the paper's sets).
        **env_kwargs: further ``MetroPOMDPVectorEnv`` arguments (``device=`` included: the
            policies act on the host, the env steps on its device).

    Returns:
        ``float64 [episodes, num_envs]`` episode returns.
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    envs = MetroPOMDPVectorEnv(num_envs=num_envs, graph_set=graph_set, autoreset_mode="SameStep",
                               **env_kwargs)
    rng = np.random.default_rng(seed)
    rows = np.arange(num_envs)
    _, info = envs.reset(seed=seed)
    n_actions = envs.single_action_space.n
    returns = np.zeros((episodes, num_envs))
    table = graphs = None
    host = envs._core.arrays.to_numpy
    for episode in range(episodes):
        if policy == "shortest_path" and (graphs is None
                                          or not np.array_equal(graphs, envs.adjacency)):
            graphs = envs.adjacency  # recompute only when the graphs changed (sampling)
            table = oracle_tables(graphs)
        for _ in range(envs.config.episode_length):
            if table is None:
                actions = rng.integers(n_actions, size=num_envs)
            else:
                actions = table[rows, host(info["agent"]), host(info["reward_location"])]
            _, reward, _, truncated, info = envs.step(actions)
            returns[episode] += host(reward)
        assert host(truncated).all()
    return returns


@functools.lru_cache(maxsize=32)
def reference_returns(graph_set: str = "test", n_states: int = 5, n_actions: int = 3
                      ) -> dict[str, float]:
    """Mean episode return of each reference policy on a fixed graph set: the one source of the
    random floor and the shortest-path ceiling that plots, scripts and the README show.

    Measured, not stored: :data:`REFERENCE_EPISODES` episodes on every graph of the set, seed
    :data:`REFERENCE_SEED` (under a second for the paper's 600 graphs), and cached.

    Returns:
        ``{"random": mean, "shortest_path": mean}``.
    """
    return {policy: float(evaluate_policy_returns(
        policy, graph_set, episodes=REFERENCE_EPISODES, seed=REFERENCE_SEED,
        n_states=n_states, n_actions=n_actions).mean()) for policy in POLICIES}
