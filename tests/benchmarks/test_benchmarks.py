"""The benchmarks (``benchmarks/``) run end to end with tiny budgets and print their tables;
the numbers they print are reported in docs/benchmarks.md, not checked here."""

import json
import pathlib
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_compare_recurrent_ppo(tmp_path, run_script):
    out = tmp_path / "cmp.json"
    run_script("benchmarks/compare_recurrent_ppo.py", "--timesteps", 60, "--n-envs", 2,
               "--eval-envs", 4, "--hidden", 8, "--out", out)
    results = json.loads(out.read_text())["results"]
    assert len(results) == 6  # sb3-contrib's two, our PPO with three cores, our A2C
    for r in results.values():
        assert r["timesteps"] >= 60 and r["env_steps_per_s"] > 0
    # --hidden sets the recurrent width of both libraries' LSTMs alike: with one shared LSTM,
    # sb3-contrib's policy and ours are the same network, parameter for parameter
    shared = results["RecurrentPPO MlpLstmPolicy, one LSTM 8 for actor and critic (sb3-contrib)"]
    assert shared["parameters"] == results["RecurrentPPO LSTM 8 (ours)"]["parameters"]


def test_compare_recurrent_ppo_heads_are_the_same_for_both_libraries(tmp_path, run_script):
    out = tmp_path / "cmp.json"
    run_script("benchmarks/compare_recurrent_ppo.py", "--timesteps", 60, "--n-envs", 2,
               "--eval-envs", 2, "--hidden", 8, "--net-arch", "--out", out,
               "--agents", "contrib-lstm-shared", "ppo-lstm")
    summary = json.loads(out.read_text())
    assert summary["net_arch"] == []
    shared, ours = summary["results"].values()
    # linear heads on an LSTM 8 with one-hot actions in MetroPOMDP's 17 observation features:
    # LSTM 4 * 8 * (17 + 8) + 2 * 4 * 8, actor 8 * 3 + 3, critic 8 + 1, in both libraries
    assert shared["parameters"] == ours["parameters"] == 4 * 8 * 25 + 64 + 27 + 9


def test_memory_task(tmp_path, run_script):
    out = tmp_path / "memory.json"
    run_script("benchmarks/memory_task.py", "--timesteps", 256, "--a2c-timesteps", 240,
               "--eval-episodes", 1, "--threads", 1, "--out", out)
    results = json.loads(out.read_text())["results"]
    assert [r["agent"] for r in results] == ["contrib-ppo-lstm", "ppo-lstm", "ppo-gru",
                                             "ppo-fwm", "a2c-lstm", "a2c-gru", "a2c-fwm"]
    for r in results:
        # PPO: one 8 x 32 rollout; A2C: six 8 x 5 ones
        assert r["timesteps"] == (240 if r["agent"].startswith("a2c") else 256)
        assert r["env_steps_per_s"] > 0
        assert 1 <= r["eval_reward_mean"] <= 500


def test_memory_task_hides_exactly_the_velocities():
    import importlib.util

    spec = importlib.util.spec_from_file_location("memory_task",
                                                  ROOT / "benchmarks" / "memory_task.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    env = module.masked_cartpole()
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        state = env.unwrapped.state  # x, x_dot, theta, theta_dot
        assert obs.shape == (2,) and obs.tolist() == np.float32([state[0], state[2]]).tolist()
        assert env.observation_space.contains(obs)
        obs, *_ = env.step(1)


def test_heads_check_runs(run_script):
    out = run_script("benchmarks/heads_check.py", "--updates", 1, "--n-envs", 2).stdout
    assert "linear heads" in out and "SB3 A2C" in out


def test_bench_a2c_prints_table(run_script):
    out = run_script("benchmarks/bench_a2c.py", "--n-envs", 4, "--updates", 1, "--warmup", 1,
                     "--lstm-sizes", 8).stdout
    for name in ("A2C MlpPolicy", "FWM-32-16", "LSTM-8"):
        assert name in out
    assert "matmul ms" not in out


def test_bench_a2c_kernels_column_is_a_part_of_each_update(run_script):
    """--kernels adds the profiled matrix-product time per update: more than nothing (every
    agent multiplies matrices) and less than the whole update."""
    out = run_script("benchmarks/bench_a2c.py", "--n-envs", 4, "--updates", 1, "--warmup", 1,
                     "--lstm-sizes", 8, "--kernels", 1).stdout
    assert "matmul ms" in out
    rows = [line.split() for line in out.splitlines()
            if line.startswith(("sb3 A2C", "RecurrentA2C"))]
    assert len(rows) == 3
    for row in rows:
        per_update, matmul = float(row[-2]), float(row[-1])
        assert 0 < matmul < per_update


def test_bench_env_prints_table(run_script):
    out = run_script("benchmarks/bench_env.py", "--num-envs", 8, "--steps", 20,
                     "--sync-steps", 5).stdout
    assert "SyncVectorEnv" in out and "native" in out and "BatchedVecMonitor" in out


def test_bench_lm_runs(run_script):
    out = run_script("benchmarks/bench_lm.py", "--size", "tiny", "--vocab", 50, "--batch-size",
                     2, "--bptt", 5, "--repeats", 1, "--threads", 1).stdout
    assert "AWD-LSTM" in out and "AWD-FWM" in out and "1.00x" in out
    out = run_script("benchmarks/bench_lm.py", "--size", "tiny", "--embedding-size", 6,
                     "--vocab", 50, "--batch-size", 2, "--bptt", 5, "--repeats", 1,
                     "--threads", 1).stdout
    assert "(embedding 6, hidden 8)" in out


@pytest.mark.slow  # ~14 s; its --help runs by default
def test_bench_fwm_runs(run_script):
    out = run_script("benchmarks/bench_fwm.py", "--batch", 2, "--bptt", 6, "--reference-steps",
                     2, "--repeats", 1, "--chunk-sizes", 4).stdout
    for row in ("fast path", "QA mode", "chunks of 4", "plain-loop reference", "agent cell",
                "agent cell, chunks of 4", "peak"):
        assert row in out


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "benchmarks").glob("*.py")))
def test_help(script, run_script):
    assert "usage" in run_script(f"benchmarks/{script}", "--help").stdout


def test_gpu_checks_help_and_a_machine_without_cuda():
    script = ROOT / "benchmarks" / "gpu_checks.sh"
    out = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "Usage: bash benchmarks/gpu_checks.sh" in out.stdout
    bad = subprocess.run(["bash", str(script), "--nope"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "unknown option --nope" in bad.stderr


def test_bench_cores_times_every_core_at_the_fwm_s_size(run_script, tmp_path):
    res = run_script("benchmarks/bench_cores.py", "--cores", "fwm", "delta-net", "--batch", 2,
                     "--bptt", 8, "--n-envs", 4, "--rounds", 1, "--threads", 1, "--json",
                     tmp_path / "cores.json")
    import json

    rows = json.loads((tmp_path / "cores.json").read_text())["rows"]
    fwm, delta = rows["fwm"], rows["delta-net"]
    # sized to the FWM's parameter count: within 10% for the catbAbI core and the agent
    assert abs(delta["core_parameters"] / fwm["core_parameters"] - 1) < 0.1
    assert abs(delta["agent_parameters"] / fwm["agent_parameters"] - 1) < 0.1
    assert "delta-net" in res.stdout and "x FWM" in res.stdout
