"""What the data loaders (``qa``, ``lm``) and ``scripts/download_data.py`` share: the data
directory, checksums, and the resume check built on the vocabulary fingerprint."""

from __future__ import annotations

import hashlib
import os
import pathlib
from collections.abc import Iterable

#: The environment variable that names the data directory when no ``data_dir`` is passed.
DATA_ENV = "FWM_DATA_DIR"


def data_root(data_dir: str | os.PathLike | None, fetch: str) -> pathlib.Path:
    """``data_dir``, or ``$FWM_DATA_DIR`` where it is None.

    Raises:
        FileNotFoundError: neither is given; the message names both and ``fetch``, the
            command that downloads the files.
    """
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV)
        if not data_dir:
            raise FileNotFoundError(f"no data directory: pass data_dir (--data-dir) or set "
                                    f"{DATA_ENV}; {fetch} fetches the files")
    return pathlib.Path(data_dir)


def sha256_of(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(words: Iterable[str]) -> str:
    """A short hash of an ordered word list (a vocabulary's id -> word table), recorded in
    checkpoints so that a run cannot be resumed on another vocabulary."""
    return hashlib.sha256("\n".join(words).encode()).hexdigest()[:16]


def refuse_unresumable(path: str | os.PathLike, problems: list[str],
                       saved_vocabulary: str | None, vocabulary: str | None) -> None:
    """Raise unless the checkpoint ``path`` can be resumed: ``problems`` lists the settings that
    differ (each as ``name value (now value)``); a vocabulary :func:`fingerprint` other than the
    checkpoint's is one more.

    Raises:
        ValueError: naming the checkpoint and every difference.
    """
    if saved_vocabulary != vocabulary:
        problems = [*problems, f"vocabulary {saved_vocabulary} (now {vocabulary})"]
    if problems:
        raise ValueError(f"{os.fspath(path)} cannot be resumed with these settings; it was "
                         f"trained with {'; '.join(problems)}. Use the run's own settings, or "
                         f"another run dir")
