"""Checksums shared by the data loaders (``qa``, ``lm``) and ``scripts/download_data.py``."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable


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
