"""Atomic file writes and atomic training steps: a checkpoint is either the old one or the
complete new one, never half written (an interrupt or a crash during the write leaves the old
file in place), and Ctrl-C never lands inside a training step (so the checkpoint written on
Ctrl-C holds parameters, optimizer and counters of one and the same step)."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def torch_save_atomic(obj, path: str | os.PathLike) -> None:
    """``torch.save(obj)`` to ``path`` through :func:`atomic_write`."""
    import torch

    atomic_write(path, lambda tmp: torch.save(obj, tmp), suffix=".pt")


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], suffix: str = "") -> None:
    """Call ``write(tmp)`` on a temporary file in ``path``'s folder (created if needed), then
    rename it over ``path``; the temporary file is removed if ``write`` fails."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=suffix, dir=folder)
    os.close(fd)
    # mkstemp makes the file 0600; give it the mode a plain open() would (0666 less the umask)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def torch_load_checkpoint(path: str | os.PathLike, map_location=None):
    """A checkpoint written by :func:`torch_save_atomic`, read with ``weights_only=True``: the
    file may hold tensors, containers, numbers, strings and the state tuples of the registered
    memory cores (:func:`memory.state_types`), and nothing that runs code when unpickled.

    Raises:
        pickle.UnpicklingError: the file holds anything else (torch's message names it).
    """
    import torch

    from memory import state_types

    with torch.serialization.safe_globals(list(state_types())):
        return torch.load(path, map_location=map_location, weights_only=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises ``KeyboardInterrupt`` (see
    :func:`sigterm_as_interrupt`). A subclass, so that every path that saves a resumable
    checkpoint on Ctrl-C does the same on SIGTERM, and the exit code can still tell the two
    apart (130 for SIGINT, 143 for SIGTERM)."""


#: The signals a training step finishes before it stops for (:func:`interrupts_deferred`).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _raise_terminated(signum, frame):
    raise Terminated(f"signal {signum} (SIGTERM)")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``) instead
    of killing the process: cluster schedulers (Slurm, Kubernetes) send SIGTERM some seconds
    before they kill a job, and a run should then stop as it does on Ctrl-C, after its step,
    with a resumable checkpoint. Outside the main thread the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Run the block to its end on Ctrl-C or SIGTERM: a SIGINT or SIGTERM that arrives inside
    it is handed to the previous handler (Python's for SIGINT: ``KeyboardInterrupt``; under
    :func:`sigterm_as_interrupt` for SIGTERM: :class:`Terminated`) when the block exits.

    A training step changes the parameters, the optimizer's moments, the learning rate it
    scales for one step, the carried state and the counters one after the other; an interrupt
    between two of those would checkpoint a step that is half done, and the resumed run would
    then differ from an uninterrupted one. Outside the main thread, where Python cannot set
    signal handlers, the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
                for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for sig in dict.fromkeys(received):  # each signal once, in the order they came
        handler = previous[sig]
        if callable(handler):
            handler(sig, None)
        elif handler == signal.SIG_DFL:
            signal.raise_signal(sig)
