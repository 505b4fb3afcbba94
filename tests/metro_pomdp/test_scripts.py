"""The environment scripts run end to end with a tiny budget."""

import json

import pytest


def test_evaluate_baselines(tmp_path, run_script):
    out = run_script("evaluate_baselines.py", "--episodes", 1, "--out", tmp_path).stdout
    results = json.loads((tmp_path / "results.json").read_text())
    from metro_pomdp.baselines import POLICIES, evaluate_policy_returns

    for policy in POLICIES:  # the library's protocol, seed 0, one episode on each graph
        for split in ("train", "test"):
            returns = evaluate_policy_returns(policy, split, episodes=1, seed=0)
            assert results[f"{policy}/{split}"]["mean"] == float(returns.mean())
            assert results[f"{policy}/{split}"]["episodes"] == 600
    assert results["shortest_path/test"]["mean"] > results["random/test"]["mean"] + 100
    assert (tmp_path / "graphs.png").stat().st_size > 10_000
    assert "shortest_path" in out


def test_plot_graphs(tmp_path, run_script):
    run_script("plot_graphs.py", "--split", "sample", "--n", 3, "--out", tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"



@pytest.mark.parametrize("script", ["evaluate_baselines.py", "plot_graphs.py"])
def test_help(script, run_script):
    assert "usage" in run_script(script, "--help").stdout
