"""catbAbI preprocessing (paper section 4.1, appendix D): bAbI v1.2 ``en-valid-10k`` stories as
word sequences with answers in line.

Per story: lower-cased words; "." and "?" are tokens of their own; the supporting-fact ids are
dropped; each question is followed by its answer as ONE token (comma answers such as ``n,w``
stay one token); the story ends with the end-of-story token :data:`EOS`. Every token carries the
story's task id (1-20) and a flag that marks answers. Unlike the authors' script, every story of
every file is kept (theirs drops the last story of each file) and the vocabulary is built
deterministically (sorted), without task ids in it.

The data directory is never hard-coded: pass ``data_dir`` or set ``FWM_DATA_DIR``; the bAbI files
are expected under ``<data_dir>/babi-v1.2/en-valid-10k/qa{1..20}_{train,valid,test}.txt``.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np

SPLITS = ("train", "valid", "test")
TASKS = tuple(range(1, 21))
PAD, EOS = "<pad>", "<eos>"
SPECIALS = (PAD, EOS)
#: The paper's table 3 (its preprocessing drops the last story of each of the 20 files).
PAPER_TABLE_3 = {"train": {"stories": 56_376, "questions": 179_909},
                 "valid": {"stories": 6_245, "questions": 19_907},
                 "test": {"stories": 6_247, "questions": 19_910}}
DATA_ENV = "FWM_DATA_DIR"


def babi_dir(data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """The ``en-valid-10k`` folder under ``data_dir`` (default: ``$FWM_DATA_DIR``)."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV)
        if not data_dir:
            raise FileNotFoundError(f"no data directory: pass data_dir or set {DATA_ENV}")
    path = pathlib.Path(data_dir) / "babi-v1.2" / "en-valid-10k"
    if not path.is_dir():
        raise FileNotFoundError(f"bAbI folder not found: {path} (expected "
                                f"<data_dir>/babi-v1.2/en-valid-10k/qa{{1..20}}_{{split}}.txt)")
    return path


@dataclasses.dataclass(frozen=True)
class Story:
    """One preprocessed story: ``words`` (ending with :data:`EOS`) and, per word, whether it is
    an answer."""

    task: int
    words: tuple[str, ...]
    is_answer: tuple[bool, ...]

    @property
    def n_questions(self) -> int:
        return sum(self.is_answer)


def tokenize(text: str) -> list[str]:
    """Lower-case, split on white space, "." and "?" as separate tokens."""
    return text.lower().replace(".", " . ").replace("?", " ? ").split()


def parse_babi(path: str | os.PathLike, task: int) -> list[Story]:
    """All stories of one bAbI file (a story starts at line id 1)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"bAbI file not found: {path}")
    stories: list[Story] = []
    words: list[str] = []
    answers: list[bool] = []

    def close():
        if words:
            stories.append(Story(task, (*words, EOS), (*answers, False)))

    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            head, _, text = line.partition(" ")
            if not head.isdigit():
                raise ValueError(f"{path}:{lineno}: expected 'ID text', got {line[:60]!r}")
            if int(head) == 1:
                close()
                words, answers = [], []
            parts = text.split("\t")
            sentence = tokenize(parts[0])
            words += sentence
            answers += [False] * len(sentence)
            if len(parts) > 1:  # a question: "text?\tanswer\tsupporting ids"
                if not sentence or sentence[-1] != "?":
                    raise ValueError(f"{path}:{lineno}: a question line must end with '?'")
                answer = parts[1].strip().lower()
                if not answer or " " in answer:
                    raise ValueError(f"{path}:{lineno}: answer must be one token, got "
                                     f"{parts[1]!r}")
                words.append(answer)
                answers.append(True)
    close()
    if not stories:
        raise ValueError(f"{path}: no stories")
    return stories


def load_split(split: str, data_dir: str | os.PathLike | None = None,
               tasks: tuple[int, ...] = TASKS) -> list[Story]:
    """All stories of ``split`` for ``tasks``, in file order (task 1 first)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = babi_dir(data_dir)
    stories: list[Story] = []
    for task in tasks:
        if task not in TASKS:
            raise ValueError(f"tasks must be in 1..20, got {task!r}")
        stories += parse_babi(folder / f"qa{task}_{split}.txt", task)
    return stories


class Vocabulary:
    """Word <-> id. Ids 0 and 1 are :data:`PAD` and :data:`EOS`; the other words follow in
    sorted order, so the ids depend only on the set of words."""

    def __init__(self, words):
        words = sorted(set(words) - set(SPECIALS))
        self.itos: list[str] = [*SPECIALS, *words]
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def from_stories(cls, *story_lists: list[Story]) -> Vocabulary:
        return cls(w for stories in story_lists for s in stories for w in s.words)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, words) -> np.ndarray:
        try:
            return np.array([self.stoi[w] for w in words], dtype=np.int64)
        except KeyError as err:
            raise KeyError(f"word {err.args[0]!r} is not in the vocabulary "
                           f"({len(self)} words)") from None

    def decode(self, ids) -> list[str]:
        return [self.itos[int(i)] for i in ids]


def statistics(stories_by_split: dict[str, list[Story]]) -> dict[str, dict[str, int]]:
    """Tokens, stories and questions per split."""
    return {split: {"tokens": sum(len(s.words) for s in stories), "stories": len(stories),
                    "questions": sum(s.n_questions for s in stories)}
            for split, stories in stories_by_split.items()}


def format_statistics(stats: dict[str, dict[str, int]]) -> str:
    """A table of :func:`statistics` next to the paper's table 3."""
    lines = [f"{'split':<7}{'tokens':>11}{'stories':>9}{'(paper)':>9}{'questions':>11}"
             f"{'(paper)':>9}"]
    for split, s in stats.items():
        paper = PAPER_TABLE_3.get(split, {})
        lines.append(f"{split:<7}{s['tokens']:>11,}{s['stories']:>9,}"
                     f"{paper.get('stories', 0):>9,}{s['questions']:>11,}"
                     f"{paper.get('questions', 0):>9,}")
    return "\n".join(lines)


@dataclasses.dataclass
class Batch:
    """One truncated-BPTT segment, time-major ``[T, B]`` int64 / bool arrays.

    ``inputs[t]`` is followed by ``targets[t]``. ``answer`` marks targets that are answers (where
    accuracy and perplexity are measured, and the only loss positions in QA mode); ``valid``
    marks non-padding targets (the loss positions in LM mode); ``task`` is the task id of each
    target (0 for padding)."""

    inputs: np.ndarray
    targets: np.ndarray
    answer: np.ndarray
    valid: np.ndarray
    task: np.ndarray


class EncodedStories:
    """Stories as flat id arrays: ``ids``, ``answer`` and ``task`` per token, ``offsets`` of the
    story starts (``len(stories) + 1`` entries)."""

    def __init__(self, stories: list[Story], vocab: Vocabulary):
        if not stories:
            raise ValueError("no stories to encode")
        self.ids = vocab.encode(w for s in stories for w in s.words)
        self.answer = np.fromiter((a for s in stories for a in s.is_answer), dtype=bool,
                                  count=len(self.ids))
        lengths = np.array([len(s.words) for s in stories])
        self.task = np.repeat(np.array([s.task for s in stories]), lengths)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])
        self.eos = vocab.stoi[EOS]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def rows(self, order: np.ndarray, batch_size: int) -> list[np.ndarray]:
        """Deal the stories in ``order`` to ``batch_size`` rows (each story to the row that is
        currently shortest) and return, per row, the token indices of its stories."""
        lengths = np.diff(self.offsets)
        rows: list[list[np.ndarray]] = [[] for _ in range(batch_size)]
        filled = np.zeros(batch_size, dtype=np.int64)
        for story in order.tolist():
            r = int(np.argmin(filled))
            rows[r].append(np.arange(self.offsets[story], self.offsets[story + 1]))
            filled[r] += lengths[story]
        return [np.concatenate(r) if r else np.zeros(0, np.int64) for r in rows]


def segments(data: EncodedStories, order: np.ndarray, batch_size: int, bptt: int):
    """Yield :class:`Batch` es of one pass over the stories in ``order`` dealt to
    ``batch_size`` rows. Each row starts with :data:`EOS` as input (the previous story ended),
    so every word of every story is a target; rows are padded at the end."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(bptt, int) or bptt < 1:
        raise ValueError(f"bptt must be a positive integer, got {bptt!r}")
    rows = data.rows(order, batch_size)
    length = max(len(r) for r in rows)
    ids = np.zeros((length + 1, batch_size), np.int64)  # PAD = 0
    answer = np.zeros((length + 1, batch_size), bool)
    valid = np.zeros((length + 1, batch_size), bool)
    task = np.zeros((length + 1, batch_size), np.int64)
    ids[0] = data.eos
    for b, r in enumerate(rows):
        ids[1:len(r) + 1, b] = data.ids[r]
        answer[1:len(r) + 1, b] = data.answer[r]
        valid[1:len(r) + 1, b] = True
        task[1:len(r) + 1, b] = data.task[r]
    for t0 in range(0, length, bptt):
        t1 = min(t0 + bptt, length)
        yield Batch(ids[t0:t1], ids[t0 + 1:t1 + 1], answer[t0 + 1:t1 + 1],
                    valid[t0 + 1:t1 + 1], task[t0 + 1:t1 + 1])


def train_stream(data: EncodedStories, batch_size: int, bptt: int = 200, seed: int = 0):
    """Endless training stream: every epoch the stories are drawn uniformly without
    replacement (a fresh permutation from ``seed``) into ``batch_size`` rows; yields
    ``(epoch, Batch)``. The model's state is meant to be carried across all batches and
    epochs."""
    rng = np.random.default_rng(seed)
    epoch = 0
    while True:
        for batch in segments(data, rng.permutation(len(data)), batch_size, bptt):
            yield epoch, batch
        epoch += 1


def eval_segments(data: EncodedStories, batch_size: int = 1, bptt: int = 200, seed: int = 1234):
    """The validation / test stream: ONE fixed shuffled story order (from ``seed``, the same for
    every model), dealt to ``batch_size`` rows (the paper tests at batch size 1)."""
    order = np.random.default_rng(seed).permutation(len(data))
    return segments(data, order, batch_size, bptt)
