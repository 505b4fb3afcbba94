"""Watch a trained agent play MetroPOMDP episodes: frames for an animated GIF or MP4.

The agent acts with SB3's recurrent ``predict``: the state it returns is passed back at the
next step and ``episode_start`` is True at each episode's first step, so the memory is carried
through an episode and cleared between episodes, as in training. Each step gives one frame
(the move: the edge taken, an invalid action, the step reward), and a second one when agent
and reward are then placed anew (after an arrival or a timeout), so that the arrival is seen
before the placement.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

import metro_pomdp
from metro_pomdp import render
from metro_pomdp.env import MetroPOMDPEnv


@dataclasses.dataclass
class Episode:
    """One recorded episode: its graph, its frames (:func:`metro_pomdp.render.draw_frame`
    keywords) and what it earned."""

    env_id: str
    graph_index: int
    adjacency: np.ndarray  # [A, S, S]
    frames: list[dict]
    total: float
    arrivals: int


def metro_env(env_id: str, graph_index: int) -> MetroPOMDPEnv:
    """The single MetroPOMDP env of a registered id, fixed on one graph of its set.

    Raises:
        ValueError: ``env_id`` is not a registered MetroPOMDP id, or it samples its graphs.
    """
    kwargs = metro_pomdp.REGISTERED.get(env_id)
    if kwargs is None:
        raise ValueError(f"env_id must be a registered MetroPOMDP id "
                         f"({', '.join(metro_pomdp.REGISTERED)}), got {env_id!r}")
    if kwargs["graph_set"] == "sample":
        raise ValueError(f"{env_id} draws a new graph every episode; watch the agent on a "
                         f"fixed set (MetroPOMDP-v0 or MetroPOMDP-Test-v0)")
    return MetroPOMDPEnv(**kwargs, graph_index=graph_index)


def record_episodes(model, env_id: str = "MetroPOMDP-Test-v0", graphs: Sequence[int] = (0,),
                    episodes: int = 1, deterministic: bool = False,
                    seed: int = 0) -> list[Episode]:
    """Let ``model`` (a :class:`~agents.a2c.RecurrentA2C`) play ``episodes`` episodes on each
    graph of ``graphs`` of the set of ``env_id``.

    Args:
        model: the agent; its observation space must be the env's.
        env_id: a registered MetroPOMDP id with a fixed graph set.
        graphs: graph indices of that set.
        episodes: episodes per graph.
        deterministic: greedy actions instead of sampled ones.
        seed: seed of the action sampling (``torch.manual_seed``) and of each graph's env.

    Returns:
        The episodes, graph by graph.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if len(graphs) == 0:
        raise ValueError("graphs is empty: give at least one graph index")
    torch.manual_seed(seed)
    out = []
    for g in graphs:
        env = metro_env(env_id, int(g))
        if env.observation_space.shape != model.observation_space.shape:
            raise ValueError(f"the agent takes observations of shape "
                             f"{model.observation_space.shape}; {env_id} gives "
                             f"{env.observation_space.shape}")
        core = env._core
        obs, _ = env.reset(seed=seed)
        for _ in range(episodes):
            if core.t[0] != 0:
                obs, _ = env.reset()
            frames = render.step_frames(core)
            state, start, done, arrivals = None, True, False, 0
            while not done:
                action, state = model.predict(obs[None], state=state,
                                              episode_start=np.array([start]),
                                              deterministic=deterministic)
                obs, _, _, done, info = env.step(int(action[0]))
                start = False
                arrivals += info["reached_reward"]
                frames += render.step_frames(core)
            out.append(Episode(env_id, int(g), env.adjacency.copy(), frames,
                               float(core.reward_sum[0]), int(arrivals)))
        env.close()
    return out


def render_episodes(episodes: Sequence[Episode], dpi: int = 80) -> list[np.ndarray]:
    """Every frame of ``episodes`` as an ``[H, W, 3]`` uint8 array, each titled with its env,
    graph and episode."""
    if not episodes:
        return []
    n_states = episodes[0].adjacency.shape[-1]
    fig = render.agg_figure(render.frame_size(n_states), dpi=dpi)
    images = []
    for k, episode in enumerate(episodes):
        title = (f"{episode.env_id}, graph {episode.graph_index} (episode {k + 1} of "
                 f"{len(episodes)})")
        for frame in episode.frames:
            render.draw_frame(fig, episode.adjacency, title=title, **frame)
            images.append(render.to_rgb(fig))
    return images
