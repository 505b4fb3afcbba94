"""The pictures explain themselves: what an edge label means and what the colours are, a title
on every frame, a placement frame that does not read as a move, error bars that are stated,
learning curves whose axis shows the learning, and a warning where a curve cannot be drawn."""

import csv
import json

import gymnasium as gym
import matplotlib
import numpy as np
import pytest

import metro_pomdp  # noqa: F401
from metro_pomdp import render

matplotlib.use("Agg")


def texts(fig) -> list[str]:
    """Every text of a figure: its texts, axes titles and legend entries."""
    out = [t.get_text() for t in fig.texts]
    for legend in fig.legends:
        out += [t.get_text() for t in legend.get_texts()]
    for ax in fig.axes:
        out.append(ax.get_title())
        if ax.get_legend() is not None:
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    return out


@pytest.mark.parametrize("env_id", ["MetroPOMDP-v0", "MetroPOMDP-10x4-v0"])
def test_a_frame_has_a_title_and_explains_its_labels_and_colours(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(0)
    env.render()
    found = texts(env.unwrapped._renderer.fig)
    graph = env.unwrapped._core.graph_index[0]
    assert f"{env_id}, graph {graph}" in found
    assert render.EDGE_LABEL_TEXT in found
    assert {"agent", "reward", "agent on the reward", "last move"} <= set(found)
    env.close()


def test_the_graph_grid_explains_its_labels_and_colours(tmp_path):
    import matplotlib.pyplot as plt

    envs = metro_pomdp.MetroPOMDPVectorEnv(num_envs=4)
    _, info = envs.reset(seed=0)
    fig = render.draw_graph_grid(envs.adjacency, agents=info["agent"],
                                 rewards=info["reward_location"])
    assert {"agent", "reward", render.EDGE_LABEL_TEXT} <= set(texts(fig))
    plt.close(fig)


def test_a_placement_frame_names_the_move_before_it():
    env = metro_pomdp.MetroPOMDPVectorEnv(num_envs=1)
    env.reset(seed=3)
    for _ in range(30):  # until agent and reward are placed anew
        _, _, _, _, info = env.step(np.zeros(1, dtype=np.int64))
        frames = render.step_frames(env._core, 0)
        if len(frames) == 2:
            break
    moved, placed = frames
    assert placed["event"] == (f"agent and reward placed anew: agent at {placed['agent']}, "
                               f"reward at {placed['reward']}")
    fig = render.agg_figure(render.frame_size(5))
    render.draw_frame(fig, env.adjacency[0], **placed)
    assert any(t.startswith("before: action") for t in texts(fig))
    render.draw_frame(fig, env.adjacency[0], **moved)
    assert not any(t.startswith("before:") for t in texts(fig))


def test_train_vs_test_states_its_error_bars_and_parameter_counts(tmp_path):
    from matplotlib.figure import Figure

    from agents.plots import plot_train_vs_test

    figures = []
    original = Figure.savefig
    Figure.savefig = lambda self, *a, **k: (figures.append(self), original(self, *a, **k))
    try:
        plot_train_vs_test({"fwm": {"train": (104.8, 0.33), "test": (101.6, 0.35)}},
                           str(tmp_path / "bars.png"), note="one standard error over 6,000",
                           labels={"fwm": "fwm\n23,460 params"})
    finally:
        Figure.savefig = original
    (fig,) = figures
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fwm\n23,460 params"]
    bar_labels = [t.get_text() for t in ax.texts]
    assert "104.8\n± 0.33" in bar_labels and "101.6\n± 0.35" in bar_labels
    assert "one standard error over 6,000" in texts(fig)


def _progress(run_dir, rewards):
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"env_id": "MetroPOMDP-v0"}))
    with open(run_dir / "progress.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["eval/updates", "eval/train_reward", "eval/test_reward"])
        for i, r in enumerate(rewards):
            writer.writerow([i * 50, r, r - 1])


def test_a_curve_near_the_random_level_is_not_squashed_under_the_shortest_path(tmp_path):
    """Early learning (45 -> 60) fills the axis; the shortest-path level (171) is named
    instead of stretching it. A curve that comes close to that level gets it on the axis."""
    from matplotlib.figure import Figure

    from agents.plots import plot_runs

    figures = []
    original = Figure.savefig
    Figure.savefig = lambda self, *a, **k: (figures.append(self), original(self, *a, **k))
    try:
        _progress(tmp_path / "early", np.linspace(45, 60, 20))
        plot_runs([str(tmp_path / "early")], str(tmp_path / "early.png"))
        _progress(tmp_path / "late", np.linspace(45, 150, 20))
        plot_runs([str(tmp_path / "late")], str(tmp_path / "late.png"))
    finally:
        Figure.savefig = original
    early, late = figures
    assert early.axes[0].get_ylim()[1] < 70 and early._suptitle.get_text() == "early"
    assert any("shortest path (171.3) is above this axis" in t.get_text()
               for t in early.axes[1].texts)
    assert late.axes[0].get_ylim()[1] > 171


def test_catbabi_curves_of_one_validation_warn_and_draw_dots(tmp_path):
    from qa.plots import plot_learning_curves

    path = tmp_path / "progress.csv"
    path.write_text("step,train_accuracy,valid_accuracy\n1000,0.5,0.4\n")
    with pytest.warns(UserWarning, match="one validation \\(step 1000\\).*a dot, not a curve"):
        plot_learning_curves({"run": path}, tmp_path / "curves.png")
