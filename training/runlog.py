"""One metrics row at a time to ``progress.csv``, TensorBoard and stdout: the logger of the
supervised trainers (``qa``, ``lm``). A resumed run appends to the same CSV."""

from __future__ import annotations

import csv
import os


class RunLogger:
    """Callable ``logger(row)``: ``row`` maps names to numbers and must contain ``"step"`` (the
    TensorBoard x axis). Columns are fixed by the first row written to the file."""

    def __init__(self, run_dir: str | os.PathLike, tensorboard: bool = True, echo: bool = True):
        os.makedirs(run_dir, exist_ok=True)
        self.csv_path = os.path.join(run_dir, "progress.csv")
        self.echo = echo
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(os.path.join(run_dir, "tb"))

    def __call__(self, row: dict) -> None:
        if "step" not in row:
            raise ValueError(f"a log row needs a 'step', got keys {sorted(row)}")
        if self.writer is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, row["step"])
            self.writer.flush()
        new = not os.path.exists(self.csv_path)
        with open(self.csv_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self.echo:
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in row.items()), flush=True)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
