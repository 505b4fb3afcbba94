"""Shared test helpers."""

import contextlib
import importlib
import importlib.util
import io
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import traceback

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

ROOT = pathlib.Path(__file__).resolve().parents[1]

# A suite started in the background of a non-interactive shell (`nohup pytest &`) inherits
# SIGINT ignored, and Python then installs no KeyboardInterrupt handler; the tests of Ctrl-C
# need the handler a terminal's run has.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _exit_code(exit_: SystemExit) -> int:
    """The status a ``SystemExit`` gives the shell: ``None`` 0, an int itself, a message 1."""
    if exit_.code is None or isinstance(exit_.code, int):
        return exit_.code or 0
    print(exit_.code, file=sys.stderr)
    return 1


@pytest.fixture
def no_device_sync():
    """``no_device_sync(device)``: a context in which a CUDA device raises at any call that
    makes the host wait for it (``torch.cuda.set_sync_debug_mode("error")``); on another
    device (the meta device, where any read of a value raises anyway) it changes nothing."""

    @contextlib.contextmanager
    def no_sync(device: str):
        if device != "cuda":
            yield
            return
        torch.cuda.set_sync_debug_mode("error")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode("default")

    return no_sync


@pytest.fixture
def toy_babi(tmp_path):
    """A data directory (``tmp_path/data``) with a bAbI folder of 20 tasks, two copies of one
    three-line story per file (``--no-verify``: it fails the checksums)."""
    root = tmp_path / "data"
    folder = root / "babi-v1.2" / "en-valid-10k"
    folder.mkdir(parents=True)
    text = ("1 Mary moved to the bathroom.\n2 John went to the hallway.\n"
            "3 Where is Mary? \tbathroom\t1\n")
    for task in range(1, 21):
        for split in ("train", "valid", "test"):
            (folder / f"qa{task}_{split}.txt").write_text(text * 2)
    return root


@pytest.fixture
def run_script(monkeypatch):
    """``run(script, *args, expect=0)``: call ``scripts/<script>``'s (or, for a path such as
    ``benchmarks/bench_env.py``, that file's) ``main(argv)`` in this process, as
    ``python scripts/<script> ARGS`` would run it from the repository root, and
    check its exit status (``SystemExit`` codes as the shell sees them; an uncaught exception
    is status 1 with its traceback on stderr). Returns a ``CompletedProcess`` with the captured
    stdout and stderr. The process-wide settings a script may change (torch's thread count,
    glibc's malloc thresholds, matplotlib figures) are restored or left alone; the tests that
    need a real process (Ctrl-C, torchrun, a fresh interpreter) use ``subprocess`` themselves.
    """
    from training import allocator

    def run(script, *args, expect=0):
        argv = [str(a) for a in args]
        path = ROOT / script if "/" in script else ROOT / "scripts" / script
        spec = importlib.util.spec_from_file_location(f"_script_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        out, err = io.StringIO(), io.StringIO()
        threads = torch.get_num_threads()
        with monkeypatch.context() as patch:
            patch.chdir(ROOT)
            patch.setattr(sys, "argv", [str(path), *argv])
            patch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
            # the allocator has its own test in a fresh process; here it would change the
            # malloc thresholds of the whole test session
            patch.setattr(allocator, "keep_freed_memory", lambda limit=0: False)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    spec.loader.exec_module(module)
                    module.main(argv)
                    code = 0
                except SystemExit as exit_:
                    code = _exit_code(exit_)
                except Exception:  # noqa: BLE001 - what the interpreter would do: status 1
                    traceback.print_exc()
                    code = 1
                finally:
                    torch.set_num_threads(threads)
                    if "matplotlib.pyplot" in sys.modules:
                        sys.modules["matplotlib.pyplot"].close("all")
        result = subprocess.CompletedProcess([str(path), *argv], code, out.getvalue(),
                                             err.getvalue())
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
            from training.distributed import init_from_env, rank_and_world, shutdown
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
            from training.distributed import init_from_env, rank_and_world, shutdown
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


@pytest.fixture
def ctrl_c_after_optimizer_step():
    """``arm(k, sig=SIGINT)``: Ctrl-C (a real SIGINT, to this process; or ``sig``, e.g. a
    cluster scheduler's SIGTERM) arrives right after the k-th optimizer step from now, of any
    torch optimizer: the point where a training step is most half done (the parameters have
    moved, the counters and the carried state not yet)."""
    handles = []

    def arm(k: int, sig: int = signal.SIGINT) -> None:
        steps = 0

        def hook(optimizer, args, kwargs):
            nonlocal steps
            steps += 1
            if steps == k:
                signal.raise_signal(sig)

        handles.append(register_optimizer_step_post_hook(hook))

    yield arm
    for handle in handles:
        handle.remove()

