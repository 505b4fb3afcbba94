"""RecurrentA2C under torchrun: two processes, each acting in its own envs, make the update one
process makes on the union of their envs."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from agents.a2c import RecurrentA2C
from agents.vec_env import make_vec_env

SETTINGS = dict(n_steps=10, seed=0, device="cpu", normalize_advantage=True, max_grad_norm=0.5,
                ent_coef=0.01, policy_kwargs={"core": "fwm",
                                              "core_kwargs": {"zero_init_output": False}})
FIELDS = ("observations", "actions", "episode_starts", "advantages", "returns", "values")


def run_two_processes(tmp_path, nan_on_process_1: bool = False):
    """One update of 8 envs in this process, then the same update by 2 gloo processes of 4 envs
    each from the same parameters and rollout halves (acting draws from each process's own
    random stream, so the rollout is shared, not drawn twice). Returns this process's model,
    the initial and the two-process parameters (None if they stopped) and each process's
    outcome."""
    model = RecurrentA2C("RecurrentActorCriticPolicy", make_vec_env("MetroPOMDP-v0", 8),
                         **SETTINGS)
    torch.save(model.policy.state_dict(), tmp_path / "init.pt")
    model.learn(8 * 10)  # one rollout, one update
    buf = model.rollout_buffer
    for rank in range(2):
        rows = slice(4 * rank, 4 * rank + 4)
        torch.save({"buffer": {f: torch.as_tensor(getattr(buf, f)[:, rows]) for f in FIELDS},
                    "state": [s[rows].clone() for s in model._rollout_state],
                    "progress": model._current_progress_remaining}, tmp_path / f"half{rank}.pt")
    worker = tmp_path / "worker.py"
    worker.write_text(textwrap.dedent(f"""
        import pathlib
        import torch
        from stable_baselines3.common.logger import configure
        from agents.a2c import RecurrentA2C
        from agents.vec_env import make_vec_env
        from training.distributed import init_from_env, rank_and_world, shutdown
        init_from_env("cpu")
        rank = rank_and_world()[0]
        model = RecurrentA2C("RecurrentActorCriticPolicy", make_vec_env("MetroPOMDP-v0", 4),
                             **{SETTINGS!r})
        model.policy.load_state_dict(torch.load({str(tmp_path / "init.pt")!r}))
        half = torch.load(f"{tmp_path}/half{{rank}}.pt")
        for name, value in half["buffer"].items():
            setattr(model.rollout_buffer, name, value)
        model._rollout_state = tuple(half["state"])
        model._current_progress_remaining = half["progress"]
        model.set_logger(configure(None, []))
        if rank == 1 and {nan_on_process_1!r}:
            model.vf_coef = float("nan")
        try:
            model.train()
            outcome = "finished"
        except FloatingPointError as error:
            outcome = str(error)
        pathlib.Path(f"{tmp_path}/outcome{{rank}}.txt").write_text(outcome)
        if rank == 0 and outcome == "finished":
            torch.save(model.policy.state_dict(), {str(tmp_path / "ddp.pt")!r})
        shutdown()
        """))
    # no retry: an intermittent failure of the distributed run is a failure
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             "--nproc_per_node", "2", str(worker)], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    ddp = torch.load(tmp_path / "ddp.pt") if (tmp_path / "ddp.pt").exists() else None
    outcomes = [(tmp_path / f"outcome{r}.txt").read_text() for r in range(2)]
    return model, torch.load(tmp_path / "init.pt"), ddp, outcomes


def test_two_processes_make_the_one_process_update_on_the_union_of_their_envs(tmp_path):
    """The gradients are averaged, the advantages normalised over both processes and the norm
    clipped after the average: the parameters after the step agree with the one-process
    update (1e-6), and differ from the initial ones."""
    model, init, ddp, outcomes = run_two_processes(tmp_path)
    assert outcomes == ["finished", "finished"]
    for name, p in model.policy.state_dict().items():
        torch.testing.assert_close(ddp[name], p, rtol=0, atol=1e-6, msg=name)
    assert any(not torch.equal(init[name], p) for name, p in model.policy.state_dict().items())


@pytest.mark.slow  # a torchrun launch, ~11 s
def test_a_non_finite_loss_on_one_process_stops_every_process(tmp_path):
    """Process 1's loss is NaN: both processes stop before the optimizer step, each saying
    where the loss was not finite (a process left waiting in the gradient average would
    hang)."""
    _, _, ddp, outcomes = run_two_processes(tmp_path, nan_on_process_1=True)
    assert ddp is None
    assert "non-finite loss at update 0 on another process" in outcomes[0], outcomes
    assert "non-finite loss at update 0 on process 1" in outcomes[1], outcomes
