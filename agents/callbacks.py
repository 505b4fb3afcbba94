"""Callbacks and logging for training runs: held-out evaluation, a wall-clock budget, atomic
periodic checkpoints, and a CSV log that a resumed run appends to."""

from __future__ import annotations

import os
import time

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import CSVOutputFormat, KVWriter
from stable_baselines3.common.vec_env import VecEnv
from tqdm.auto import tqdm

from training.distributed import any_process
from training.validation import check_positive_int

#: Seed of the evaluation envs: every evaluation sees the same episodes.
EVAL_SEED = 12345


def episode_rewards(model, eval_envs: dict[str, VecEnv], n_episodes: int | None = None,
                    deterministic: bool = False, seed: int = EVAL_SEED) -> dict[str, np.ndarray]:
    """``{name: reward of each episode}`` of ``model`` on each env set, with SB3's
    ``evaluate_policy``; each env is reseeded with ``seed`` first (same episodes every time)
    and runs ``n_episodes`` episodes (default: one per env; SB3 spreads them evenly)."""
    out = {}
    for name, env in eval_envs.items():
        env.seed(seed)
        rewards, _ = evaluate_policy(model, env, n_eval_episodes=n_episodes or env.num_envs,
                                     deterministic=deterministic, return_episode_rewards=True,
                                     warn=False)
        out[name] = np.asarray(rewards, dtype=np.float64)
    return out


def mean_episode_rewards(model, eval_envs: dict[str, VecEnv], n_episodes: int | None = None,
                         deterministic: bool = False, seed: int = EVAL_SEED) -> dict[str, float]:
    """``{name: mean episode reward}``; arguments as :func:`episode_rewards`."""
    return {name: float(rewards.mean()) for name, rewards in
            episode_rewards(model, eval_envs, n_episodes, deterministic, seed).items()}


class HeldOutEvalCallback(BaseCallback):
    """Every ``eval_every`` updates, evaluate the policy on one or more fixed env sets (e.g. the
    600 training graphs and the 600 held-out test graphs) with SB3's ``evaluate_policy`` and log
    ``eval/<name>_reward`` side by side.

    Args:
        eval_envs: name -> SB3 ``VecEnv`` (e.g. from :func:`agents.vec_env.make_metro_vec_env`).
        eval_every: updates (rollouts) between evaluations; the first is at update 0.
        n_episodes: episodes per evaluation and env set (default: one per env).
        deterministic: greedy actions instead of sampled ones.
        seed: the eval envs are reseeded with it before every evaluation, so every evaluation
            sees the same episodes (reward and start placements).
    """

    def __init__(self, eval_envs: dict[str, VecEnv], eval_every: int = 50,
                 n_episodes: int | None = None, deterministic: bool = False,
                 seed: int = EVAL_SEED,
                 verbose: int = 0):
        super().__init__(verbose)
        if not eval_envs:
            raise ValueError("eval_envs must name at least one env set")
        check_positive_int("eval_every", eval_every)
        self.eval_envs, self.eval_every = eval_envs, eval_every
        self.n_episodes, self.deterministic, self.seed = n_episodes, deterministic, seed
        self.last: dict[str, float] = {}
        self._rollouts = 0

    def _on_rollout_start(self) -> None:
        if self._rollouts % self.eval_every == 0:
            self.evaluate()
        self._rollouts += 1

    def _on_step(self) -> bool:
        return True

    def evaluate(self) -> dict[str, float]:
        """Run the evaluation now, record it and return ``{name: mean episode reward}``."""
        self.last = mean_episode_rewards(self.model, self.eval_envs, self.n_episodes,
                                         self.deterministic, self.seed)
        for name, reward in self.last.items():
            self.logger.record(f"eval/{name}_reward", reward)
        self.logger.record("eval/updates", self.model._n_updates)
        self.logger.record("eval/timesteps", self.num_timesteps)
        if self.verbose:
            parts = "  ".join(f"{k} {v:.2f}" for k, v in self.last.items())
            print(f"[eval] update {self.model._n_updates}  steps {self.num_timesteps}  {parts}",
                  flush=True)
        return dict(self.last)


class EntropySchedule(BaseCallback):
    """Anneal the entropy coefficient linearly with the number of updates: ``start`` up to update
    ``begin``, ``end`` from update ``finish`` on, a straight line between. Set before each update
    from the model's update count, so a resumed run continues the same schedule
    (:class:`~agents.a2c.RecurrentA2C` logs the value each update used as ``train/ent_coef``).

    Raises:
        ValueError: a coefficient is negative, or ``begin`` is not below ``finish``.
    """

    def __init__(self, start: float, end: float, begin: int, finish: int, verbose: int = 0):
        super().__init__(verbose)
        if not (start >= 0 and end >= 0):
            raise ValueError(f"entropy coefficients must be non-negative, got start={start!r}, "
                             f"end={end!r}")
        if not 0 <= begin < finish:
            raise ValueError(f"the schedule needs 0 <= begin < finish updates, got "
                             f"begin={begin!r}, finish={finish!r}")
        self.start, self.end, self.begin, self.finish = start, end, begin, finish

    def value(self, updates: int) -> float:
        """The coefficient for the update that follows ``updates`` updates."""
        fraction = min(max((updates - self.begin) / (self.finish - self.begin), 0.0), 1.0)
        return self.start + fraction * (self.end - self.start)

    def _on_rollout_end(self) -> None:  # before the update that uses this rollout
        self.model.ent_coef = self.value(self.model._n_updates)

    def _on_step(self) -> bool:
        return True


class WallClockLimit(BaseCallback):
    """Stop training after ``seconds`` of wall time (checked every step); with ``progress``, a
    tqdm bar over the minutes of the budget shows the updates and env steps done and their
    rate."""

    def __init__(self, seconds: float, progress: bool = False, verbose: int = 0):
        super().__init__(verbose)
        if not seconds > 0:
            raise ValueError(f"seconds must be positive, got {seconds!r}")
        self.seconds, self.progress = seconds, progress
        self.start = None
        self._bar = None

    def _on_training_start(self) -> None:
        self.start = time.monotonic()
        self._start_steps = self.num_timesteps
        if self.progress:
            # the bar counts minutes of the budget; tqdm's own rate would read "min/s", so the
            # format shows the clock and the training rates instead
            self._bar = tqdm(total=self.seconds / 60, dynamic_ncols=True,
                             bar_format="{percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} min "
                                        "[{elapsed}<{remaining}{postfix}]")

    def _on_rollout_end(self) -> None:
        if self._bar is not None:
            elapsed = time.monotonic() - self.start
            self._bar.n = min(elapsed / 60, self._bar.total)
            steps = self.num_timesteps - self._start_steps
            self._bar.set_postfix_str(f"update {self.model._n_updates + 1:,}, "
                                      f"{self.num_timesteps:,} steps, "
                                      f"{steps / max(elapsed, 1e-9):,.0f} steps/s")

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def _on_step(self) -> bool:
        # under torchrun every process stops at the same step (one left waiting in the
        # gradient average would hang)
        if any_process(time.monotonic() - self.start >= self.seconds):
            if self.verbose:
                print(f"[wall clock] {self.seconds:.0f} s reached, stopping", flush=True)
            return False
        return True


class AtomicCheckpoint(BaseCallback):
    """Save ``model.save_atomic(path)`` every ``every`` updates (one file, overwritten
    atomically: the last good checkpoint always survives an interruption)."""

    def __init__(self, path: str, every: int = 100, verbose: int = 0):
        super().__init__(verbose)
        check_positive_int("every", every)
        self.path, self.every = path, every
        self._rollouts = 0

    def _on_rollout_end(self) -> None:
        self._rollouts += 1
        if self._rollouts % self.every == 0:
            self.model.save_atomic(self.path)

    def _on_step(self) -> bool:
        return True


class AppendingCSVOutputFormat(CSVOutputFormat):
    """SB3's CSV log, but an existing file is continued (a resumed run extends its curve)
    instead of truncated."""

    def __init__(self, filename: str):
        if not os.path.exists(filename):
            super().__init__(filename)
            return
        self.file = open(filename, "r+")
        header = self.file.readline().rstrip("\n")
        self.keys = header.split(",") if header else []
        self.separator, self.quotechar = ",", '"'
        self.file.seek(0, os.SEEK_END)


class TqdmStream:
    """A text stream that prints through ``tqdm.write``, so that SB3's stdout tables
    (``HumanOutputFormat(TqdmStream())``) appear above a running progress bar instead of
    breaking it."""

    def write(self, text: str) -> int:
        # nolock: no tqdm lock to be left held if Ctrl-C lands inside the write (one thread
        # writes here)
        tqdm.write(text, end="", nolock=True)
        return len(text)

    def flush(self) -> None:
        pass


class EveryNth(KVWriter):
    """Pass every ``n``-th dump of SB3's logger on to ``writer`` (e.g. the terminal table, at a
    cadence a person can read, while the CSV log gets every dump)."""

    def __init__(self, writer: KVWriter, n: int):
        check_positive_int("n", n)
        self.writer, self.n, self._dumps = writer, n, 0

    def write(self, key_values, key_excluded, step: int = 0) -> None:
        self._dumps += 1
        if self._dumps % self.n == 0:
            self.writer.write(key_values, key_excluded, step)

    def close(self) -> None:
        self.writer.close()
