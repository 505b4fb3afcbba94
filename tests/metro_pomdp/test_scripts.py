"""The environment scripts run end to end with a tiny budget."""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(script, *args):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *map(str, args)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_evaluate_baselines(tmp_path):
    out = run("evaluate_baselines.py", "--episodes", 1, "--out", tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert 35 < results["random/test"]["mean"] < 55
    assert 160 < results["shortest_path/test"]["mean"] < 180
    assert (tmp_path / "graphs.png").stat().st_size > 10_000
    assert "shortest_path" in out


def test_plot_graphs(tmp_path):
    run("plot_graphs.py", "--split", "sample", "--n", 3, "--out", tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_env_prints_table():
    out = run("bench_env.py", "--num-envs", 8, "--steps", 20, "--sync-steps", 5)
    assert "SyncVectorEnv" in out and "native" in out


@pytest.mark.parametrize("script", ["evaluate_baselines.py", "plot_graphs.py", "bench_env.py"])
def test_help(script):
    assert "usage" in run(script, "--help")
