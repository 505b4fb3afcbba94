"""Shared test helpers."""

import importlib
import importlib.util
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def run_script():
    """``run(script, *args, expect=0)``: run ``scripts/<script>`` in a fresh interpreter from
    the repository root and check its exit status; returns the completed process."""

    def run(script, *args, expect=0):
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / script),
                                 *map(str, args)], capture_output=True, text=True, timeout=600,
                                cwd=ROOT)
        assert result.returncode == expect, result.stderr[-3000:]
        return result

    return run


@pytest.fixture
def train_two_processes(tmp_path):
    """``run(setup_source, trainer)``: ``setup_source`` defines ``setup() -> (model, data,
    config)``; the model is trained with ``<trainer>.train(model, data, data, config, ...)`` by
    two gloo processes under torchrun (run directory ``tmp_path / "ddp"``) and by one process,
    and the two final models must be equal (1e-9). Returns the ``setup`` function."""

    def run(setup_source: str, trainer: str):
        (tmp_path / "setup_case.py").write_text(setup_source)
        worker = tmp_path / "worker.py"
        worker.write_text(textwrap.dedent(f"""
            import sys, torch
            sys.path.insert(0, {str(tmp_path)!r})
            from setup_case import setup
            from agents.distributed import init_from_env, rank_and_world, shutdown
            from {trainer} import train
            device = init_from_env("cpu")
            assert rank_and_world()[1] == 2
            model, data, config = setup()
            train(model, data, data, config, {str(tmp_path / "ddp")!r}, device=device,
                  progress=False)
            if rank_and_world()[0] == 0:
                torch.save(model.state_dict(), {str(tmp_path / "ddp.pt")!r})
            shutdown()
            """))
        # no retry: an intermittent failure of the distributed run is a failure
        result = subprocess.run([sys.executable, "-m", "torch.distributed.run",
                                 "--standalone", "--nproc_per_node", "2", str(worker)],
                                cwd=ROOT, capture_output=True, text=True, timeout=600,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr[-3000:]
        spec = importlib.util.spec_from_file_location("setup_case", tmp_path / "setup_case.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        import torch

        model, data, config = module.setup()
        importlib.import_module(trainer).train(model, data, data, config, tmp_path / "single",
                                               progress=False)
        ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
        for name, p in model.state_dict().items():
            torch.testing.assert_close(ddp[name], p, rtol=1e-9, atol=1e-11, msg=name)
        return module.setup

    return run


@pytest.fixture
def nan_on_one_process(tmp_path):
    """``run(setup_source, trainer) -> list[str]``: two gloo processes under torchrun train as
    in ``train_two_processes``, but process 1's cross-entropy returns NaN. Returns, per
    process, the error each one stopped with (the run must end well within its timeout: a
    process left waiting in a collective would hang)."""

    def run(setup_source: str, trainer: str) -> list[str]:
        (tmp_path / "setup_case.py").write_text(setup_source)
        worker = tmp_path / "worker.py"
        worker.write_text(textwrap.dedent(f"""
            import pathlib, sys, torch
            sys.path.insert(0, {str(tmp_path)!r})
            from setup_case import setup
            from agents.distributed import init_from_env, rank_and_world, shutdown
            from {trainer} import train
            device = init_from_env("cpu")
            rank = rank_and_world()[0]
            if rank == 1:
                ce = torch.nn.functional.cross_entropy
                torch.nn.functional.cross_entropy = lambda *a, **k: ce(*a, **k) * float("nan")
            model, data, config = setup()
            try:
                train(model, data, data, config, {str(tmp_path / "ddp")!r}, device=device,
                      progress=False)
                outcome = "finished"
            except FloatingPointError as error:
                outcome = f"FloatingPointError: {{error}}"
            pathlib.Path({str(tmp_path)!r}, f"outcome{{rank}}.txt").write_text(outcome)
            shutdown()
            """))
        result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                 "--nproc_per_node", "2", str(worker)], cwd=ROOT,
                                capture_output=True, text=True, timeout=300,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr[-3000:]
        return [(tmp_path / f"outcome{r}.txt").read_text() for r in range(2)]

    return run


class _Payload:
    """Unpickling this runs ``pathlib.Path(path).touch()``: a stand-in for code hidden in a
    checkpoint."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


@pytest.fixture
def pickled_payload(tmp_path):
    """``(payload, marker)``: an object whose unpickling creates the file ``marker``."""
    marker = tmp_path / "payload-ran"
    return _Payload(marker), marker
