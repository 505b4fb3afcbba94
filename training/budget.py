"""A wall-clock budget for a whole command: training, the validations it needs and the final
evaluation share one ``--minutes``.

A budgeted run must end when its budget says, not when its last phase happens to finish: the
trainer stops early enough to leave room for the validation that ends it (its time is measured
by a short probe before the first one and by each one after), and the script skips a final
evaluation that does not fit in what is left, saying how long it would take and the command
that runs it later.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class Budget:
    """``seconds`` of wall time from ``start`` (``time.monotonic()``; default: now), or no limit
    (``seconds=None``).

    Raises:
        ValueError: ``seconds`` is not a positive number.
    """

    def __init__(self, seconds: float | None, start: float | None = None):
        if seconds is not None and not (isinstance(seconds, (int, float))
                                        and math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"a time budget must be a positive number of seconds, got "
                             f"{seconds!r}")
        self.seconds = seconds
        self.start = time.monotonic() if start is None else start

    @classmethod
    def from_minutes(cls, minutes: float | None, start: float | None = None) -> Budget:
        return cls(None if minutes is None else minutes * 60, start)

    @property
    def limited(self) -> bool:
        return self.seconds is not None

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        """Seconds left (``inf`` without a limit; negative once it is spent)."""
        return math.inf if self.seconds is None else self.seconds - self.elapsed()

    def fits(self, seconds: float) -> bool:
        """Whether ``seconds`` more work ends within the budget."""
        return seconds <= self.left()


def estimate_seconds(run: Callable[[int], object], probe: int, total: int) -> float:
    """The time of ``total`` batches of some work, from the time of ``run(probe)`` (which does
    the first ``probe`` of them) scaled by ``total / probe``. Used for evaluations, whose
    batches all cost about the same."""
    probe = max(1, min(probe, total))
    t0 = time.monotonic()
    run(probe)
    return (time.monotonic() - t0) * total / probe


def minutes_text(seconds: float) -> str:
    """``seconds`` as people read a duration: "4.2 s", "40 s", "3.5 min", "2.1 h"."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
