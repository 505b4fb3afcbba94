"""DDP under torchrun (gloo on CPU): two processes on half the batch each train exactly the
model that one process trains on the whole batch."""

import pathlib
import subprocess
import sys
import textwrap

import torch

from lm.model import LanguageModel, LMConfig
from lm.train import TrainConfig, train

ROOT = pathlib.Path(__file__).resolve().parents[2]
SETUP = """
import torch
from lm.model import LanguageModel, LMConfig
from lm.train import TrainConfig

def setup():
    torch.manual_seed(0)
    data = torch.randint(0, 16, (400,))
    model = LanguageModel(LMConfig(16, embedding_size=8, hidden_size=12, n_layers=2, d_fwm=4,
                                   memory="fwm", dropout=0, dropouth=0, dropouti=0,
                                   dropoute=0, wdrop=0)).double()
    config = TrainConfig(batch_size=4, bptt=10, lr=3e-3, epochs=2, asgd_epoch=1,
                         asgd_lr=0.5, eval_batch_size=2)
    return model, data, config
"""


def test_two_processes_equal_one(tmp_path):
    (tmp_path / "setup_tiny.py").write_text(SETUP)
    worker = tmp_path / "worker.py"
    worker.write_text(textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {str(tmp_path)!r})
        from setup_tiny import setup
        from agents.distributed import init_from_env, rank_and_world, shutdown
        from lm.train import train
        device = init_from_env("cpu")
        assert rank_and_world()[1] == 2
        model, data, config = setup()
        train(model, data, data, config, {str(tmp_path / "ddp")!r}, device=device,
              progress=False)
        if rank_and_world()[0] == 0:
            torch.save(model.state_dict(), {str(tmp_path / "ddp.pt")!r})
        shutdown()
        """))
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                             "2", "--standalone", str(worker)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600,
                            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    sys.path.insert(0, str(tmp_path))
    try:
        from setup_tiny import setup
    finally:
        sys.path.remove(str(tmp_path))
    model, data, config = setup()
    train(model, data, data, config, tmp_path / "single", progress=False)
    ddp = torch.load(tmp_path / "ddp.pt")
    for name, p in model.state_dict().items():
        torch.testing.assert_close(ddp[name], p, rtol=1e-9, atol=1e-11, msg=name)
    last = torch.load(tmp_path / "ddp" / "last.pt", weights_only=False)
    assert len(last["state"]) == 2 and last["optimizer_kind"] == "asgd"
    assert last["state"][0][0][0].shape == (2, 12)  # each process carried half the batch
    # a two-process checkpoint refuses a one-process resume
    model, data, config = setup()
    try:
        train(model, data, data, config, tmp_path / "ddp", progress=False)
    except ValueError as err:
        assert "written by 2 processes" in str(err)
    else:
        raise AssertionError("a 2-process checkpoint was resumed by 1 process")
