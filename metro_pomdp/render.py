"""Pictures of metro maps in the style of the paper's figure 4 (networkx + matplotlib).

Imported lazily by the environments, so ``import metro_pomdp`` needs neither library.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from metro_pomdp import graphs

AGENT_COLOUR = "#4caf50"  # green, as in figure 4
REWARD_COLOUR = "#ffd54f"  # yellow
BOTH_COLOUR = "#aed581"
NODE_COLOUR = "#e0e0e0"


def draw_graph(adjacency: np.ndarray, agent: int | None = None, reward: int | None = None,
               ax=None, title: str | None = None):
    """Draw one graph: locations as circles, the agent's green and the reward's yellow, each
    arrow labelled with the set of actions that take it (invalid actions are not drawn).

    Args:
        adjacency: 0/1 array ``[n_actions, n_states, n_states]``.
        agent: the agent's location, or None.
        reward: the reward location, or None.
        ax: a matplotlib ``Axes``; a new figure is made if None.
        title: axes title.

    Returns:
        The ``Axes``.
    """
    import matplotlib.pyplot as plt
    import networkx as nx

    table = graphs.transition_table(adjacency)  # [A, S]
    n_actions, n_states = table.shape
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    labels: dict[tuple[int, int], list[int]] = {}
    for a in range(n_actions):
        for s in range(n_states):
            if table[a, s] >= 0:
                labels.setdefault((s, int(table[a, s])), []).append(a)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n_states))
    graph.add_edges_from(labels)
    pos = nx.circular_layout(graph)
    colours = []
    for s in range(n_states):
        colours.append(BOTH_COLOUR if s == agent == reward else AGENT_COLOUR if s == agent
                       else REWARD_COLOUR if s == reward else NODE_COLOUR)
    style = "arc3,rad=0.18"  # curve, so that s -> s' and s' -> s do not overlap
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=colours, node_size=700,
                           edgecolors="black")
    nx.draw_networkx_labels(graph, pos, ax=ax, font_size=11)
    nx.draw_networkx_edges(graph, pos, ax=ax, connectionstyle=style, arrowsize=16,
                           node_size=700, width=1.2)
    edge_labels = {e: "{" + ", ".join(map(str, acts)) + "}" for e, acts in labels.items()}
    nx.draw_networkx_edge_labels(graph, pos, edge_labels=edge_labels, ax=ax,
                                 connectionstyle=style, font_size=8, label_pos=0.35,
                                 bbox={"boxstyle": "round,pad=0.15", "fc": "white",
                                       "ec": "none", "alpha": 0.9})
    ax.set_axis_off()
    ax.margins(0.12)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def draw_graph_grid(adjacencies: Sequence[np.ndarray], titles: Sequence[str] | None = None,
                    ncols: int = 4, agents: Sequence[int] | None = None,
                    rewards: Sequence[int] | None = None):
    """A figure with one :func:`draw_graph` panel per graph. Returns the ``Figure``."""
    import matplotlib.pyplot as plt

    n = len(adjacencies)
    if n == 0:
        raise ValueError("adjacencies is empty: nothing to draw")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.2 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_axis_off()
            continue
        draw_graph(adjacencies[i], agent=None if agents is None else agents[i],
                   reward=None if rewards is None else rewards[i], ax=ax,
                   title=None if titles is None else titles[i])
    fig.tight_layout()
    return fig


def save_graph_grid(split: str, n: int, out, seed: int = 0, n_states: int = 5,
                    n_actions: int = 3, dpi: int = 110):
    """Draw the first ``n`` graphs of ``split`` (``"sample"``: ``n`` fresh ones), each with the
    agent and reward placed as at the start of an episode, and save them to the PNG ``out``.
    Returns ``out`` as a ``pathlib.Path``."""
    import pathlib

    import matplotlib.pyplot as plt

    from metro_pomdp.vector_env import MetroPOMDPVectorEnv

    envs = MetroPOMDPVectorEnv(num_envs=n, graph_set=split, n_states=n_states,
                               n_actions=n_actions)
    _, info = envs.reset(seed=seed)
    titles = [f"{split} graph {g}" if g >= 0 else f"sampled graph {i}"
              for i, g in enumerate(info["graph_index"])]
    fig = draw_graph_grid(envs.adjacency, titles=titles, agents=info["agent"],
                          rewards=info["reward_location"])
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


class Renderer:
    """Frames for ``render()``: an ``[H, W, 3]`` uint8 array (``"rgb_array"``) or a window
    (``"human"``)."""

    def __init__(self, n_states: int, render_mode: str):
        import matplotlib

        if render_mode == "rgb_array":
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            self.fig = Figure(figsize=(4, 4), dpi=100)
            FigureCanvasAgg(self.fig)
        else:
            import matplotlib.pyplot as plt

            if matplotlib.get_backend().lower() == "agg":
                from gymnasium import logger
                logger.warn("render_mode='human' with matplotlib's non-interactive Agg "
                            "backend: no window will appear")
            plt.ion()
            self.fig = plt.figure(figsize=(4, 4))
        self.render_mode = render_mode

    def draw(self, adjacency: np.ndarray, agent: int, reward: int, title: str):
        self.fig.clear()
        ax = self.fig.add_subplot(1, 1, 1)
        draw_graph(adjacency, agent=agent, reward=reward, ax=ax, title=title)
        self.fig.canvas.draw()
        if self.render_mode == "rgb_array":
            return np.asarray(self.fig.canvas.buffer_rgba())[:, :, :3].copy()
        import matplotlib.pyplot as plt

        plt.pause(0.001)
        return None

    def close(self):
        if self.render_mode == "human":
            import matplotlib.pyplot as plt

            plt.close(self.fig)
