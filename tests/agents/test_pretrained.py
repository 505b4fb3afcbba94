"""The shipped agents: they load in a fresh process, reproduce their cards' numbers exactly, and
the FWM agent generalises to the test graphs better than the LSTM agent; watching one writes
the frames its episode needs."""

import json
import subprocess
import sys

import numpy as np
import pytest

from agents import pretrained
from agents.watch import record_episodes, render_episodes
from metro_pomdp import render
from metro_pomdp.env import MetroPOMDPEnv

SHIPPED = ("fwm-32-16", "lstm-64")


def test_the_shipped_agents_are_listed_with_cards_and_stay_small():
    assert set(SHIPPED) <= set(pretrained.available())
    for name in SHIPPED:
        card = pretrained.card(name)
        for key in ("command", "commit", "seed", "wall_minutes", "updates", "machine",
                    "evaluation", "check"):
            assert key in card, (name, key)
        for key in ("sampled/train", "sampled/test", "greedy/train", "greedy/test"):
            assert card["evaluation"][key]["stderr"] > 0, (name, key)
        assert (pretrained.DIRECTORY / f"{name}.pt").stat().st_size < 1_000_000


def test_an_unknown_name_is_refused_with_the_list():
    with pytest.raises(ValueError, match="fwm-32-16"):
        pretrained.load("fwm-1024")


def test_loading_an_agent_runs_no_code_from_its_file(tmp_path, pickled_payload):
    """A weights file carrying a pickled callable is refused, and the callable never runs."""
    import pickle
    import shutil

    import torch

    payload, marker = pickled_payload
    shutil.copyfile(pretrained.DIRECTORY / "lstm-64.json", tmp_path / "evil.json")
    torch.save({"weights": payload}, tmp_path / "evil.pt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        pretrained.load("evil", directory=tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_agent_reproduces_its_card_in_a_fresh_process(name):
    code = (
        "import json, torch; torch.set_num_threads(1)\n"
        "from agents import pretrained\n"
        "from agents.evaluation import evaluate_splits\n"
        f"card = pretrained.card({name!r}); check = card['check']\n"
        "r = evaluate_splits(pretrained.load(card['name']), {'test': card['test_env_id']},\n"
        "                    check['episodes_per_graph'], modes=('sampled',), seed=check['seed'])\n"
        "print(json.dumps(r['sampled/test']['mean']))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == pretrained.card(name)["check"]["mean"]


def test_the_fwm_card_beats_the_lstm_card_on_the_test_graphs():
    fwm, lstm = (pretrained.card(n)["evaluation"]["sampled/test"] for n in SHIPPED)
    assert fwm["mean"] - lstm["mean"] > 2 * (fwm["stderr"] + lstm["stderr"]), (fwm, lstm)


def test_watching_gives_a_frame_per_step_and_one_per_placement(tmp_path):
    from PIL import Image

    model = pretrained.load("fwm-32-16")
    graphs = [0, 1]
    episodes = record_episodes(model, "MetroPOMDP-Test-v0", graphs, episodes=2, seed=3)
    assert len(episodes) == 4
    for episode in episodes:
        moves = [f for f in episode.frames if f.get("show_edge", True)]
        assert len(moves) == 31  # the start and one frame per step
        placed = sum(f.get("event", "").startswith("agent and reward placed anew")
                     for f in episode.frames)
        arrivals = [i for i, f in enumerate(episode.frames) if f.get("event", "").startswith(
            "reached")]
        assert len(arrivals) == episode.arrivals > 0
        assert placed >= episode.arrivals
        for i in arrivals:  # the arrival frame: the agent on the reward, then placed anew
            assert episode.frames[i]["agent"] == episode.frames[i]["reward"]
            nxt = episode.frames[i + 1]
            assert nxt["event"] == (f"agent and reward placed anew: agent at {nxt['agent']}, "
                                    f"reward at {nxt['reward']}")
            assert nxt["t"] == episode.frames[i]["t"]
            assert nxt["reward"] != episode.frames[i]["reward"]
        totals = [f["total"] for f in moves]
        assert totals[-1] == pytest.approx(episode.total)
    images = render_episodes(episodes[:1], dpi=40)
    gif = render.save_animation(images, tmp_path / "a.gif")
    with Image.open(gif) as im:
        assert im.n_frames == len(episodes[0].frames)


def test_watch_threads_the_state_as_training_does():
    """Acting step by step through record_episodes equals the policy run on the whole
    episode at once from a zero state: the state is passed on and reset between episodes."""
    import torch

    model = pretrained.load("fwm-32-16")
    episodes = record_episodes(model, "MetroPOMDP-Test-v0", [5], episodes=2, deterministic=True)
    env = MetroPOMDPEnv(graph_set="test", graph_index=5)
    obs, _ = env.reset(seed=0)
    for episode in episodes:
        if env._core.t[0]:
            obs, _ = env.reset()
        observations = []
        done = False
        while not done:
            observations.append(obs)
            with torch.no_grad():
                seq = torch.as_tensor(np.stack(observations))[:, None]  # [t, 1, obs]
                latent = model.policy._run_core(seq, None, None)[-1]  # [1, H], zero state
                action = int(model.policy._distribution(latent).get_actions(deterministic=True))
            obs, _, _, done, _ = env.step(action)
        assert env._core.reward_sum[0] == pytest.approx(episode.total)
