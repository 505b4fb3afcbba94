"""RecurrentA2C on any registered Gymnasium id; clear errors for what the recurrent policies
cannot do; checkpoints with ordinary file modes; Ctrl-C between updates, not inside one;
devices checked; a readable terminal."""

import os
import signal
import stat

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.a2c import RecurrentA2C
from agents.callbacks import EveryNth, WallClockLimit
from agents.policies import FWMPolicy, LstmPolicy
from agents.vec_env import GymnasiumVecEnv, has_native_same_step, make_vec_env
from training.atomic import interrupts_deferred
from training.distributed import resolve_device


@pytest.mark.parametrize("env_id,core", [("CartPole-v1", "LstmPolicy"),
                                         ("Pendulum-v1", "FWMPolicy"),
                                         ("FrozenLake-v1", "LstmPolicy")])
def test_any_registered_id_trains_and_evaluates(env_id, core):
    model = RecurrentA2C(core, env_id, n_envs=4, n_steps=8, seed=0,
                         policy_kwargs={"hidden_size": 8})
    assert isinstance(model.env, DummyVecEnv) and model.env.num_envs == 4
    model.learn(64)
    assert model.num_timesteps == 64 and model._n_updates == 2
    mean, _ = evaluate_policy(model, model.env, n_eval_episodes=2, deterministic=False)
    assert np.isfinite(mean)


def test_native_vector_env_where_it_takes_the_autoreset_mode():
    assert has_native_same_step("MetroPOMDP-10x4-v0")
    assert not has_native_same_step("CartPole-v1")  # CartPoleVectorEnv has a fixed mode
    env = make_vec_env("MetroPOMDP-10x4-v0", 3)
    assert isinstance(env.venv, GymnasiumVecEnv) and env.observation_space.shape == (28,)


def test_feed_forward_algorithms_and_sb3_contrib_say_which_algorithm_to_use():
    from sb3_contrib import RecurrentPPO
    from stable_baselines3 import A2C, PPO

    for algorithm in (PPO, A2C):
        with pytest.raises(TypeError, match="train it with agents.a2c.RecurrentA2C"):
            algorithm(FWMPolicy, "CartPole-v1", n_steps=8).learn(16)
    with pytest.raises(AttributeError, match="FWMPolicy is a recurrent policy"):
        RecurrentPPO(FWMPolicy, "CartPole-v1", n_steps=8)


def test_a_policy_alias_keeps_its_core():
    with pytest.raises(ValueError, match="FWMPolicy has the 'fwm' core, got core='lstm'"):
        RecurrentA2C("FWMPolicy", "CartPole-v1", n_envs=2, policy_kwargs={"core": "lstm"})
    with pytest.raises(ValueError, match="LstmPolicy has the 'lstm' core, got core='fwm'"):
        RecurrentA2C(LstmPolicy, "CartPole-v1", n_envs=2, policy_kwargs={"core": "fwm"})


def test_checkpoints_get_the_mode_of_a_plain_open(tmp_path):
    old = os.umask(0o027)
    try:
        model = RecurrentA2C("LstmPolicy", "CartPole-v1", n_envs=2, n_steps=4,
                             policy_kwargs={"hidden_size": 4})
        model.save_atomic(tmp_path / "model.zip")
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    mode = stat.S_IMODE(os.stat(tmp_path / "model.zip").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode) == 0o640


def test_ctrl_c_inside_a_deferred_block_comes_at_its_end():
    finished = []
    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        signal.raise_signal(signal.SIGINT)
        finished.append(True)
    assert finished == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with interrupts_deferred():  # no Ctrl-C: nothing raised
        pass


@pytest.mark.parametrize("algorithm", ["a2c", "ppo"])
def test_ctrl_c_during_an_update_stops_after_it(algorithm, ctrl_c_after_optimizer_step):
    """Ctrl-C right after the first optimizer step of the second update (PPO: 2 epochs of 2
    minibatches each) stops learn() once that update is whole: the parameters and the update
    count are those of two finished updates."""
    from agents.ppo import RecurrentPPO

    def model():
        kwargs = {"n_envs": 4, "n_steps": 8, "seed": 0, "policy_kwargs": {"hidden_size": 8}}
        if algorithm == "ppo":
            return RecurrentPPO("LstmPolicy", "CartPole-v1", batch_size=16, n_epochs=2, **kwargs)
        return RecurrentA2C("LstmPolicy", "CartPole-v1", **kwargs)

    straight = model()
    straight.learn(64)  # two updates
    interrupted = model()
    ctrl_c_after_optimizer_step(2 if algorithm == "a2c" else 5)
    with pytest.raises(KeyboardInterrupt):
        interrupted.learn(10_000)
    assert interrupted._n_updates == straight._n_updates
    for p, q in zip(straight.policy.parameters(), interrupted.policy.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_a_cuda_device_without_cuda_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="--device 'cuda': CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="not a device name"):
        resolve_device("gpu0")


def test_every_nth_dump_reaches_the_terminal():
    class Recorder:
        def __init__(self):
            self.steps = []

        def write(self, key_values, key_excluded, step=0):
            self.steps.append(step)

        def close(self):
            pass

    recorder = Recorder()
    thinned = EveryNth(recorder, 3)
    for step in range(1, 10):
        thinned.write({}, {}, step)
    assert recorder.steps == [3, 6, 9]


def test_the_wall_clock_bar_counts_minutes(capsys):
    model = RecurrentA2C("LstmPolicy", "CartPole-v1", n_envs=2, n_steps=4,
                         policy_kwargs={"hidden_size": 4})
    model.learn(16, callback=WallClockLimit(120, progress=True))
    bar = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert "/2.0 min" in bar and "steps/s" in bar and "s/s" not in bar.replace("steps/s", "")


def test_batched_vec_monitor_gives_vec_monitors_infos_and_results_file(tmp_path):
    """BatchedVecMonitor is SB3's VecMonitor without the per-env loop: over envs whose episodes
    end at different steps, the same infos (episode return, length, info keywords), episode
    count and results-file rows (all but the wall times)."""
    import csv

    from gymnasium.vector import AutoresetMode
    from stable_baselines3.common.vec_env import VecMonitor

    from agents.vec_env import BatchedVecMonitor

    def monitored(cls, name):
        venv = gym.make_vec("CartPole-v1", num_envs=6, vectorization_mode="sync",
                            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})
        env = cls(GymnasiumVecEnv(venv), filename=str(tmp_path / name),
                  info_keywords=("TimeLimit.truncated",))
        env.seed(3)
        env.reset()
        return env

    ours, sb3 = monitored(BatchedVecMonitor, "ours"), monitored(VecMonitor, "sb3")
    actions = np.random.default_rng(0).integers(0, 2, size=(200, 6))
    ended, partial_steps = 0, 0
    for step_actions in actions:
        a, b = ours.step(step_actions), sb3.step(step_actions)
        partial_steps += 0 < a[2].sum() < 6  # some envs' episodes end, not all
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[2], b[2])
        for info_a, info_b in zip(a[3], b[3], strict=True):
            assert info_a.keys() == info_b.keys()
            if "episode" in info_b:
                ended += 1
                episode_a, episode_b = dict(info_a["episode"]), dict(info_b["episode"])
                assert abs(episode_a.pop("t") - episode_b.pop("t")) < 1.0
                assert episode_a == episode_b
    assert 20 < ended == ours.episode_count == sb3.episode_count
    assert partial_steps > 10
    ours.close(), sb3.close()

    def rows(name):
        with open(tmp_path / f"{name}.monitor.csv") as f:
            next(f)  # the JSON header line (with a start time)
            return [{k: v for k, v in row.items() if k != "t"} for row in csv.DictReader(f)]

    assert rows("ours") == rows("sb3") and len(rows("ours")) == ended
