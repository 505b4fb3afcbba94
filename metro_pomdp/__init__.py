"""MetroPOMDP: the meta-RL environment family of "Learning Associative Inference Using Fast Weight
Memory" (Schlag, Munkhdalai & Schmidhuber, ICLR 2021), for Gymnasium.

``import metro_pomdp`` registers the environments::

    import gymnasium as gym
    import metro_pomdp  # noqa: F401

    env = gym.make("MetroPOMDP-v0")
    envs = gym.make_vec("MetroPOMDP-v0", num_envs=600)  # native MetroPOMDPVectorEnv
"""

from gymnasium.envs.registration import register, registry

from metro_pomdp.core import MetroConfig, MetroCore
from metro_pomdp.env import MetroPOMDPEnv, decode_observation
from metro_pomdp.graphs import (
    graph_set,
    sample_adjacency,
    shortest_path_actions,
    shortest_path_lengths,
    to_networkx,
    transition_table,
)
from metro_pomdp.vector_env import MetroPOMDPVectorEnv

__all__ = [
    "MetroConfig", "MetroCore", "MetroPOMDPEnv", "MetroPOMDPVectorEnv", "REGISTERED",
    "decode_observation", "graph_set", "registered_config", "sample_adjacency",
    "shortest_path_actions",
    "shortest_path_lengths", "to_networkx", "transition_table",
]

#: The registered family: id -> constructor kwargs.
REGISTERED: dict[str, dict] = {
    "MetroPOMDP-v0": {"graph_set": "train"},
    "MetroPOMDP-Test-v0": {"graph_set": "test"},
    "MetroPOMDP-Sample-v0": {"graph_set": "sample"},
    "MetroPOMDP-10x4-v0": {"graph_set": "train", "n_states": 10, "n_actions": 4},
    "MetroPOMDP-10x4-Test-v0": {"graph_set": "test", "n_states": 10, "n_actions": 4},
}

for _env_id, _kwargs in REGISTERED.items():
    if _env_id not in registry:
        register(
            id=_env_id,
            entry_point="metro_pomdp.env:MetroPOMDPEnv",
            vector_entry_point="metro_pomdp.vector_env:MetroPOMDPVectorEnv",
            kwargs=_kwargs,
            # the env truncates itself after episode_length steps (30 in every registered
            # configuration); the spec says so for tools that read it
            max_episode_steps=MetroConfig.episode_length,
        )


def registered_config(env_id: str) -> MetroConfig | None:
    """The :class:`MetroConfig` of a registered MetroPOMDP id (its sizes, graph set, number of
    graphs), None for any other id."""
    kwargs = REGISTERED.get(env_id)
    return None if kwargs is None else MetroConfig(**kwargs)
