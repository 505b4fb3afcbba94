"""Word-level corpora (Penn Treebank, WikiText-2) and AWD-LSTM-style batching.

Shapes: N tokens, T time (BPTT length), B batch. Token streams are 1-D int64 ``[N]``; batched
streams are time-major ``[N // B, B]``, column b holding the b-th contiguous slice of the
corpus (Merity et al.'s ``batchify``).

Files: ``<data_dir>/ptb/ptb.{train,valid,test}.txt`` and
``<data_dir>/wikitext-2/wiki.{train,valid,test}.tokens`` (``data_dir`` is an argument or
``$FWM_DATA_DIR``; ``scripts/download_data.py`` fetches them). Every line becomes its words
followed by ``<eos>``. Each file is checked against its published SHA-256 before use, so a
truncated or edited file is named instead of silently giving other perplexities.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Sequence

import numpy as np
import torch

from training.checksums import data_root, fingerprint, sha256_of
from training.validation import check_positive_int

EOS = "<eos>"
SPLITS = ("train", "valid", "test")


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
    """Where a corpus lives under the data directory, and what its files must be."""

    folder: str
    files: dict[str, str]  # split -> file name
    sha256: dict[str, str]  # split -> checksum of the file
    tokens: dict[str, int]  # split -> tokens including one <eos> per line
    vocab_size: int


#: The standard files (their published checksums and token counts).
CORPORA = {
    "ptb": CorpusSpec(
        "ptb", {s: f"ptb.{s}.txt" for s in SPLITS},
        {"train": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
         "valid": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
         "test": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"},
        {"train": 929_589, "valid": 73_760, "test": 82_430}, 10_000),
    "wt2": CorpusSpec(
        "wikitext-2", {s: f"wiki.{s}.tokens" for s in SPLITS},
        {"train": "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f",
         "valid": "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8",
         "test": "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0"},
        {"train": 2_088_628, "valid": 217_646, "test": 245_569}, 33_278),
}


def corpus_files(name: str, data_dir: str | os.PathLike | None = None,
                 verify: bool = True) -> dict[str, pathlib.Path]:
    """The three files of corpus ``name`` ("ptb" or "wt2") under ``data_dir`` (default
    ``$FWM_DATA_DIR``), each checked against its SHA-256 when ``verify``.

    Raises:
        ValueError: unknown ``name``, or a file whose checksum differs (named, with the
            expected checksum).
        FileNotFoundError: no data directory, or a missing file (named).
    """
    if name not in CORPORA:
        raise ValueError(f"corpus must be one of {sorted(CORPORA)}, got {name!r}")
    spec = CORPORA[name]
    folder = data_root(data_dir, f"scripts/download_data.py {name} --data-dir DIR") / spec.folder
    paths = {split: folder / spec.files[split] for split in SPLITS}
    for split, path in paths.items():
        if not path.is_file():
            raise FileNotFoundError(f"{name} {split} file not found: {path} "
                                    f"(scripts/download_data.py {name} fetches it)")
        if verify and (digest := sha256_of(path)) != spec.sha256[split]:
            raise ValueError(f"{path}: sha256 {digest}, expected the published "
                             f"{spec.sha256[split]}; the file is corrupt or a different version: "
                             f"fetch it again with scripts/download_data.py {name} --force, or "
                             f"pass --no-verify (verify=False) for a corpus of your own")
    return paths


def read_words(path: str | os.PathLike) -> list[str]:
    """Whitespace-separated words of every line, each line followed by :data:`EOS`."""
    words: list[str] = []
    with open(path, encoding="utf-8") as f:
        try:
            for line in f:
                words.extend(line.split())
                words.append(EOS)
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not UTF-8 text (byte {err.start} of a block near line "
                             f"{words.count(EOS) + 1}: {err.reason}); the file is corrupt or "
                             f"binary: fetch it again (scripts/download_data.py --force) or "
                             f"check it without --no-verify") from None
    return words


class Dictionary:
    """Word <-> id, ids in order of first appearance in the training split (AWD-LSTM's
    convention, so ids are deterministic)."""

    def __init__(self, words: list[str] | None = None):
        self.idx2word: list[str] = []
        self.word2idx: dict[str, int] = {}
        for w in words or ():
            if w not in self.word2idx:
                self.word2idx[w] = len(self.idx2word)
                self.idx2word.append(w)

    def __len__(self) -> int:
        return len(self.idx2word)

    def fingerprint(self) -> str:
        """A short hash of the id -> word table (checkpoints record it, so a run cannot be
        resumed on another vocabulary of the same size)."""
        return fingerprint(self.idx2word)

    def encode(self, words: list[str], where: str = "input") -> torch.Tensor:
        """``[N]`` int64 ids. Raises ValueError naming the first out-of-vocabulary word (the
        standard corpora map rare words to ``<unk>`` themselves, so an unknown word means the
        wrong file or vocabulary)."""
        try:
            return torch.tensor([self.word2idx[w] for w in words], dtype=torch.long)
        except KeyError as err:
            raise ValueError(f"{where}: word {err.args[0]!r} is not in the {len(self)}-word "
                             f"vocabulary") from None


@dataclasses.dataclass
class Corpus:
    """A corpus as three token streams over one training vocabulary."""

    dictionary: Dictionary
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor

    def split(self, name: str) -> torch.Tensor:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)


def load_corpus(name: str, data_dir: str | os.PathLike | None = None,
                verify: bool = True) -> Corpus:
    """Read, check and encode corpus ``name`` ("ptb" or "wt2")."""
    paths = corpus_files(name, data_dir, verify)
    words = {split: read_words(paths[split]) for split in SPLITS}
    dictionary = Dictionary(words["train"])
    return Corpus(dictionary, *(dictionary.encode(words[s], str(paths[s])) for s in SPLITS))


def batchify(data: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``[N]`` -> ``[N // B, B]``: B contiguous slices side by side (the remainder is dropped,
    as in AWD-LSTM)."""
    check_positive_int("batch_size", batch_size)
    if data.dim() != 1:
        raise ValueError(f"data must be a 1-D token stream, got shape {tuple(data.shape)}")
    steps = data.numel() // batch_size
    if steps < 2:
        raise ValueError(f"{data.numel()} tokens are too few for batch_size {batch_size}")
    return data[:steps * batch_size].view(batch_size, steps).t().contiguous()  # (N/B, B)


def get_batch(source: torch.Tensor, i: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``source[i : i+T]`` and targets ``source[i+1 : i+1+T]``, ``T = min(seq_len,
    len - 1 - i)``; both ``[T, B]``."""
    seq_len = min(seq_len, len(source) - 1 - i)
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len]


def sample_seq_len(bptt: int, rng: np.random.Generator) -> int:
    """AWD-LSTM's variable BPTT length for one training batch: the base length is ``bptt`` with
    probability 0.95 and ``bptt / 2`` otherwise, the length is drawn from N(base, 5) and clipped
    to [5, bptt + 40] (``max_seq_len_delta``). The trainer rescales the learning rate by
    ``seq_len / bptt`` so that long and short batches weigh the same."""
    base = bptt if rng.random() < 0.95 else bptt / 2
    return min(max(5, int(rng.normal(base, 5))), bptt + 40)


def recurs_within(ids: Sequence[int], window: int) -> np.ndarray:
    """Whether each token of ``ids`` already occurred among the ``window`` tokens before it:
    bool ``[len(ids)]`` (the paper's figure 6 reads the FWM's gain on recurring words; PTB has
    no document boundaries, so a window stands for "earlier in the same text")."""
    check_positive_int("window", window)
    last: dict[int, int] = {}
    out = np.zeros(len(ids), dtype=bool)
    for t, token in enumerate(ids):
        previous = last.get(token)
        out[t] = previous is not None and t - previous <= window
        last[token] = t
    return out


def rare_repeat_stretch(ids: Sequence[int], train_counts: np.ndarray, length: int,
                        max_count: int = 20) -> int:
    """The start of the ``length``-token stretch of ``ids`` with the most repeats of rare words
    (seen at most ``max_count`` times in training: names and the like; ``<unk>`` is frequent
    and never counts): where
    the paper's figure 6 looks. Chosen from the text alone, not from any model's losses."""
    check_positive_int("length", length)
    ids = np.asarray(ids)
    if len(ids) <= length:
        raise ValueError(f"length {length} must be below the {len(ids)} tokens")
    rare = train_counts[ids] <= max_count
    repeat = rare & recurs_within(ids.tolist(), length)
    sums = np.convolve(repeat.astype(np.int64), np.ones(length, dtype=np.int64), "valid")
    return int(np.argmax(sums[:len(ids) - length]))
