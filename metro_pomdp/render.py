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
EDGE_COLOUR = "#d32f2f"  # the edge the last action took
INVALID_COLOUR = "#d32f2f"


def _sizes(n_states: int) -> dict:
    """Node, font and arrow sizes for a graph of ``n_states`` locations: the paper's 5 get
    figure 4's sizes; larger graphs (the 10x4 family) smaller nodes and labels, so that the
    labels of up to ``n_actions * n_states`` edges stay apart on the circle."""
    # ten locations: labels at the arcs' middles, where two arcs leaving a node side by side
    # are furthest apart (near the heads they crowd around the close neighbours)
    if n_states <= 6:
        return {"node_size": 700, "font_size": 11, "edge_font": 8, "arrowsize": 16,
                "label_pos": 0.35}
    return {"node_size": 420, "font_size": 10, "edge_font": 7, "arrowsize": 11,
            "label_pos": 0.5}


def draw_graph(adjacency: np.ndarray, agent: int | None = None, reward: int | None = None,
               ax=None, title: str | None = None, highlight: tuple[int, int] | None = None):
    """Draw one graph: locations as circles, the agent's green and the reward's yellow, each
    arrow labelled with the set of actions that take it (invalid actions are not drawn).

    Args:
        adjacency: 0/1 array ``[n_actions, n_states, n_states]``.
        agent: the agent's location, or None.
        reward: the reward location, or None.
        ax: a matplotlib ``Axes``; a new figure is made if None.
        title: axes title.
        highlight: an edge ``(from, to)`` drawn thick and red (the last action's).

    Returns:
        The ``Axes``.
    """
    import networkx as nx

    table = graphs.transition_table(adjacency)  # [A, S]
    n_actions, n_states = table.shape
    size = _sizes(n_states)
    if ax is None:
        import matplotlib.pyplot as plt

        side = 4 if n_states <= 6 else 6
        _, ax = plt.subplots(figsize=(side, side))
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
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=colours, node_size=size["node_size"],
                           edgecolors="black")
    nx.draw_networkx_labels(graph, pos, ax=ax, font_size=size["font_size"])
    plain = [e for e in labels if e != highlight]
    nx.draw_networkx_edges(graph, pos, edgelist=plain, ax=ax, connectionstyle=style,
                           arrowsize=size["arrowsize"], node_size=size["node_size"], width=1.2)
    if highlight is not None and highlight in labels:
        nx.draw_networkx_edges(graph, pos, edgelist=[highlight], ax=ax, connectionstyle=style,
                               arrowsize=size["arrowsize"] + 4, node_size=size["node_size"],
                               width=3.2, edge_color=EDGE_COLOUR)
    edge_labels = {e: "{" + ", ".join(map(str, acts)) + "}" for e, acts in labels.items()}
    nx.draw_networkx_edge_labels(graph, pos, edge_labels=edge_labels, ax=ax,
                                 connectionstyle=style, font_size=size["edge_font"],
                                 label_pos=size["label_pos"],
                                 bbox={"boxstyle": "round,pad=0.15", "fc": "white",
                                       "ec": "none", "alpha": 0.9})
    ax.set_axis_off()
    ax.set_aspect("equal")  # the circle stays round in any figure shape
    ax.margins(0.12 if n_states <= 6 else 0.06)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


#: What an arrow's label means, in every legend.
EDGE_LABEL_TEXT = "{0, 2} on an arrow: the actions that take it"


def legend_handles(last_move: bool = True) -> list:
    """Legend entries for :func:`draw_frame` and :func:`draw_graph_grid`: agent, reward, both,
    what an arrow's label means and (``last_move``) the last action's edge."""
    from matplotlib.lines import Line2D

    def dot(colour, label):
        return Line2D([], [], marker="o", linestyle="none", markersize=11,
                      markerfacecolor=colour, markeredgecolor="black", label=label)

    handles = [dot(AGENT_COLOUR, "agent"), dot(REWARD_COLOUR, "reward"),
               dot(BOTH_COLOUR, "agent on the reward"),
               Line2D([], [], color="black", linewidth=1.2, marker=">", markevery=[1],
                      label=EDGE_LABEL_TEXT)]
    if last_move:
        handles.append(Line2D([], [], color=EDGE_COLOUR, linewidth=3, label="last move"))
    return handles


def describe_step(step) -> str:
    """One line for the action of a :class:`~metro_pomdp.core.Transition` row (ints): which
    action, the edge it took or that it was invalid, and the step reward."""
    if step is None:
        return "no action yet"
    a, s, s2 = int(step.action), int(step.agent), int(step.moved_to)
    move = f"action {a}: no edge from {s}, stays" if step.invalid else f"action {a}: {s} -> {s2}"
    return f"{move}   step reward {float(step.reward):+.2f}"


def draw_frame(fig, adjacency: np.ndarray, *, agent: int, reward: int, t: int,
               episode_length: int, total: float, step=None, event: str = "",
               title: str | None = None, show_edge: bool = True) -> None:
    """Draw one frame of an episode into ``fig`` (cleared first): the graph with agent and
    reward, the last action's edge (red) and a caption with t, the action, the step reward,
    the running total and what happened (``event``: arrival, timeout, placement).

    Args:
        fig: a matplotlib ``Figure``.
        adjacency: the graph, ``[n_actions, n_states, n_states]``.
        agent: the agent's location.
        reward: the reward location.
        t: steps taken in the episode.
        episode_length: the episode's length.
        total: the episode's reward so far.
        step: the last step (a :class:`~metro_pomdp.core.Transition` of ints), None at t = 0.
        event: a highlighted line under the caption ("" for none).
        title: a line above the graph.
        show_edge: draw the last action's edge (False once agent and reward were placed anew).
    """
    fig.clear()
    width, height = fig.get_size_inches()
    # fixed heights in inches, so that a larger figure (the 10x4 graphs) gives the graph all of
    # its extra room: title, legend, the graph, then the caption's three lines
    top = 1.0 - 0.32 / height
    legend_top = top if title else 1.0 - 0.05 / height
    graph_top = legend_top - 0.5 / height
    caption = 1.0 / height
    ax = fig.add_axes((0.0, caption, 1.0, graph_top - caption))
    edge = None
    if step is not None and show_edge and not step.invalid:
        edge = (int(step.agent), int(step.moved_to))
    draw_graph(adjacency, agent=agent, reward=reward, ax=ax, highlight=edge)
    if title:
        fig.text(0.5, 1.0 - 0.08 / height, title, ha="center", va="top", fontsize=10)
    invalid = step is not None and bool(step.invalid)
    line = 0.3 / height
    fig.text(0.04, caption - 0.28 / height, f"t = {t}/{episode_length}    total {total:.2f}",
             fontsize=10, family="monospace")
    # a placement frame draws the new positions: the action line is then the move before it
    action = describe_step(step) if show_edge or step is None else (
        f"before: {describe_step(step)}")
    fig.text(0.04, caption - 0.28 / height - line, action, fontsize=9, family="monospace",
             color=INVALID_COLOUR if invalid and show_edge else "black" if show_edge
             else "#757575")
    if event:
        fig.text(0.04, caption - 0.28 / height - 2 * line, event, fontsize=10, weight="bold",
                 color="#1565c0")
    markers = [h for h in legend_handles() if h.get_label() != EDGE_LABEL_TEXT]
    fig.legend(handles=markers, loc="upper center", fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, legend_top), handlelength=1.2, ncols=len(markers),
               borderaxespad=0.1)
    fig.text(0.5, legend_top - 0.24 / height, EDGE_LABEL_TEXT, ha="center", va="top",
             fontsize=8)


def _row(step, i: int):
    """Row ``i`` of a batched :class:`~metro_pomdp.core.Transition`, as Python scalars."""
    return type(step)(*(v[i].item() for v in step))


def start_frame(core, i: int = 0) -> dict:
    """:func:`draw_frame` keywords for env ``i`` of a ``MetroCore`` at the start of an episode
    (or its current state, ignoring the last step)."""
    return {"agent": int(core.agent[i]), "reward": int(core.goal[i]), "t": int(core.t[i]),
            "episode_length": core.config.episode_length,
            "total": float(core.reward_sum[i]), "step": None}


def step_frames(core, i: int = 0) -> list[dict]:
    """:func:`draw_frame` keywords for the step env ``i`` of a ``MetroCore`` just took: the move
    (the agent where the action took it, the reward where it was, the edge, an arrival or a
    timeout), then, if agent and reward were placed anew, the new placement. At t = 0 (no step
    yet, or a reset since), the start frame alone."""
    if core.t[i] == 0 or core.last_step is None:
        return [start_frame(core, i)]
    step = _row(core.last_step, i)
    c = core.config
    base = {"t": int(core.t[i]), "episode_length": c.episode_length,
            "total": float(core.reward_sum[i]), "step": step}
    if step.reached:
        event = f"reached the reward: +{c.reward:g}"
    elif step.placed:
        event = f"{c.reset_after} steps without the reward"
    else:  # an invalid action is in the caption's action line, in red
        event = ""
    moved = {**base, "agent": step.moved_to, "reward": step.reward_location, "event": event}
    if not step.placed:
        return [moved]
    placed = {**base, "agent": int(core.agent[i]), "reward": int(core.goal[i]),
              "event": f"agent and reward placed anew: agent at {int(core.agent[i])}, "
                       f"reward at {int(core.goal[i])}", "show_edge": False}
    return [moved, placed]


def frame_size(n_states: int) -> tuple[float, float]:
    """Figure size (inches) of a :func:`draw_frame` picture: larger for larger graphs."""
    return (5.6, 6.4) if n_states <= 6 else (8.0, 8.8)


def to_rgb(fig) -> np.ndarray:
    """An Agg-backed ``Figure`` drawn as an ``[H, W, 3]`` uint8 array."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()


def agg_figure(figsize: tuple[float, float], dpi: int = 100):
    """A ``Figure`` on the Agg canvas, without pyplot (no window, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_animation(frames: Sequence[np.ndarray], path, fps: float = 2.0,
                   hold_last: int = 3):
    """Write RGB frames ``[H, W, 3]`` as an animated GIF (Pillow) or, for a ``.mp4`` path, an
    MP4 with matplotlib's ffmpeg writer. The last frame is held ``hold_last`` frame times.
    Returns the path as a ``pathlib.Path``.

    Raises:
        ValueError: no frames, or a suffix other than ``.gif`` / ``.mp4``.
        RuntimeError: ``.mp4`` without an ffmpeg executable.
    """
    import pathlib

    path = pathlib.Path(path)
    if len(frames) == 0:
        raise ValueError("frames is empty: nothing to write")
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"{path}: the animation must be a .gif or .mp4 file")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        durations = [round(1000 / fps)] * len(images)
        durations[-1] *= 1 + hold_last
        images[0].save(path, save_all=True, append_images=images[1:], duration=durations,
                       loop=0, optimize=True)  # about half the size
        return path
    from matplotlib import animation

    if not animation.writers.is_available("ffmpeg"):
        raise RuntimeError(f"{path}: writing MP4 needs ffmpeg on the PATH; write a .gif "
                           f"instead (Pillow)")
    height, width = frames[0].shape[:2]
    fig = agg_figure((width / 100, height / 100))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    image = ax.imshow(frames[0])
    writer = animation.FFMpegWriter(fps=fps)
    with writer.saving(fig, str(path), dpi=100):
        for f in list(frames) + [frames[-1]] * hold_last:
            image.set_data(f)
            writer.grab_frame()
    return path


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
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.2 * nrows + 0.5),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_axis_off()
            continue
        draw_graph(adjacencies[i], agent=None if agents is None else agents[i],
                   reward=None if rewards is None else rewards[i], ax=ax,
                   title=None if titles is None else titles[i])
    handles = legend_handles(last_move=False)
    if agents is None and rewards is None:
        handles = handles[3:]  # what the arrows' labels mean
    fig.legend(handles=handles, loc="upper center", fontsize=9, frameon=False,
               ncols=len(handles), handlelength=1.6)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_size_inches()[1]))
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
    (``"human"``), each a :func:`draw_frame` picture of the current state."""

    def __init__(self, n_states: int, render_mode: str):
        import matplotlib

        if render_mode == "rgb_array":
            self.fig = agg_figure(frame_size(n_states))
        else:
            import matplotlib.pyplot as plt

            if matplotlib.get_backend().lower() == "agg":
                from gymnasium import logger
                logger.warn("render_mode='human' with matplotlib's non-interactive Agg "
                            "backend: no window will appear")
            plt.ion()
            self.fig = plt.figure(figsize=frame_size(n_states))
        self.render_mode = render_mode

    def draw(self, adjacency: np.ndarray, **frame):
        """Draw the :func:`draw_frame` picture with keyword arguments ``frame``."""
        draw_frame(self.fig, adjacency, **frame)
        if self.render_mode == "rgb_array":
            return to_rgb(self.fig)
        import matplotlib.pyplot as plt

        self.fig.canvas.draw()
        plt.pause(0.001)
        return None

    def close(self):
        if self.render_mode == "human":
            import matplotlib.pyplot as plt

            plt.close(self.fig)
