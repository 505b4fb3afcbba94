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
import warnings

import numpy as np

from training.checksums import data_root, fingerprint, sha256_of
from training.validation import check_positive_int

SPLITS = ("train", "valid", "test")
TASKS = tuple(range(1, 21))
PAD, EOS = "<pad>", "<eos>"
SPECIALS = (PAD, EOS)
#: The paper's table 3 (its preprocessing drops the last story of each of the 20 files).
PAPER_TABLE_3 = {"train": {"stories": 56_376, "questions": 179_909},
                 "valid": {"stories": 6_245, "questions": 19_907},
                 "test": {"stories": 6_247, "questions": 19_910}}
#: SHA-256 of the official ``en-valid-10k`` files (``tasks_1-20_v1-2.tar.gz``), checked by
#: ``scripts/download_data.py`` (the full files' values).
BABI_SHA256 = {
    "qa1_train": "6f3dad60b5001427caf740404d6106aaea7257dc8e75a73afd4289475bed705a",
    "qa1_valid": "a7a41a89ca009b00cd5869bb949f47bb21c3b5c4df424cd1795a5e6067f0562e",
    "qa1_test": "55acf66cef2f6d798e2aa1d056e1ec8f24e910ea9215b639450574321132959b",
    "qa2_train": "e074f5119e67bca02338882e5fc50616a271d824dfde977f9c643fd3fa8748c5",
    "qa2_valid": "cf3cb2877eada0bff7e84fe0cbbcc70fb45ea855c583fe963c6eb25c426726cc",
    "qa2_test": "eff93fb9cd81ba02eb765772cf7cc269769ed44ec71cbbbc19cfb16ee5eba0f6",
    "qa3_train": "c1994f75f434f58115bcbfedfa728917c748e80f2191ffbf21e56cd52851304a",
    "qa3_valid": "8da018e1b079299c25b34c62a509cde6b9820735c398357e69d1d72a1cc54537",
    "qa3_test": "17795c977100baf8188f386522ae301b62d6c1a13efc01b3aea781e588b4d57f",
    "qa4_train": "2cf269f9ccfe792e50ac4c364f9ea9f6dabf23c64b8826e25c884b2e4ca2a678",
    "qa4_valid": "6864535aa47280f2486d93d0f5e209c0e720a97cdcdd0ed406e63929c7c28845",
    "qa4_test": "07f0ca18ddeea9eed4ba6d59e162adcb0ce44815721114b3540d92825509331e",
    "qa5_train": "998903406d464de7cfe622549bc7040403211da8e09891a9538d8de4858edf44",
    "qa5_valid": "db165e176ce585ee745fb797386fc9c28512eb28060fde810c77b76ac530cbe2",
    "qa5_test": "ec825c1c8a76e63a31f0d7a7763cd63740e98332fa9bdf246a19068949bd5f97",
    "qa6_train": "d3c276fd8041efb264e8589edea4f8f90488464b5ddf04fa163264711836636d",
    "qa6_valid": "58b488903ec1a1f1bf98f003a383d78976cebff02fef9a3f4d7a5ece442c3105",
    "qa6_test": "b108b16f1eccbd1c24df6dca2649079a7b2f10af7fd12d4c45a3393802de59e3",
    "qa7_train": "3c1cfb0290981d2d4abeb37376522f3c21e51ffa310d19093a1a8efb7ee77223",
    "qa7_valid": "f8fe1ebb0707269e059f6c874024d896e96eb4b3d03a001d9589487cdb6e51dd",
    "qa7_test": "a74d1f2b91329b2bae814d41cdac2fbdfdf0328562b7d8afa9a0fa576d461e27",
    "qa8_train": "4da116c3265b9ba97f3dc9cb97f463632f21f7e5e752a6a3deeb364cb683b7ae",
    "qa8_valid": "03d2192ae6603df0841d250a9619f25ce1e6c70ade67c8d4c3dcdcda56af9632",
    "qa8_test": "362a653c821a580fa315a85243b4f03bfa06fa7e0269b6f8e596f8fe6911646a",
    "qa9_train": "186733a0526ff52c6761642bc57092fcbde75b408dc33c6521d8ccecff53b147",
    "qa9_valid": "62c8156c69a2f399db0e4454ef174328d2b70ad7dab4a6ef834dfc312862e700",
    "qa9_test": "63590aff3f89993db409f0e9a9eb39c2a5b9d5efff99b255d800a891b0044d9f",
    "qa10_train": "3c4285c3f6e45fd85ba3944ca58b860c91ed44f1ed394723c7e268048e2f251c",
    "qa10_valid": "df0a8d20028b11700862faec7dda64956d84a36e590e0eb2ea6188271bcf464b",
    "qa10_test": "fde8f20ed0b3ba979058ed391a566af34653f23baab5b2793ee37f87ef4e88b7",
    "qa11_train": "8217e55886155843be48d06b53c8e990b876cd99c6fce048e33b55f1f9a159f0",
    "qa11_valid": "4b7c481dddd99bce8015425463cf9bac68cc55d19537b72cd1dca0910512ab61",
    "qa11_test": "46f3290d0158ce1285a40cd2d793f5a65f86ae5000226e165cbc85a3dfeb2f6f",
    "qa12_train": "d470857a0b3e0d4d92da39bc656053b35c990e14a1fa60761b707aa19eefb2c6",
    "qa12_valid": "985abac1f0d2a166c29984dad03c170b93e671c5e99c5628a80271f782bbf157",
    "qa12_test": "6437718f8f9801ce345869e910b896836cdc6fd2d01dc7b4d2df49730703b4b1",
    "qa13_train": "93b8ea332cdc791f74520d8f6f456a90dec5e216c6e73f065d11bfbbd9673827",
    "qa13_valid": "8bcc1a09ad8bc7dbba32cc241879045a0a58daee0fd90082b57105bb5a6e0e50",
    "qa13_test": "76a25b684f23c9cc473d8cd1465506168b9a1ec8891cfc59d0bbd87e6a064990",
    "qa14_train": "2eb60c0c728d9888f78d641322848b8ca2359272e1b8c2b974e9e51b15f7246e",
    "qa14_valid": "00169215f1f0bf995c556611b55d344a1a1d3f502ed71ff7c881e2da7e703afc",
    "qa14_test": "e3f0b19858ffbec3ed1e49076cc4d1295a89ce146c50318b862f13f202b3caf2",
    "qa15_train": "1aa31d576e196ad37f3802d1e6639c61417c31d720e8289353b145fb6af2db9d",
    "qa15_valid": "6fa344c75562d126fb56438ce993a8dbc630cd9e199a007d6ede4b005e6234e4",
    "qa15_test": "32b77e117fe9acf5f94906684e3b5206de0108e646c76e1da3e022896ec7ee94",
    "qa16_train": "5e6cbdcf78706889d066e7d4ef606a9eb9ad7e1d1fc33c4b406222f3f98aad4a",
    "qa16_valid": "014ad9bb6f5f4a0141553f0e707a9a4e13fa617208888f15ea65f3ff9195b6d5",
    "qa16_test": "4a11e55366f2a5a859b5a81f683ee23801bdbe71ef984e51adb976bd053e8dcf",
    "qa17_train": "523425b8627312b9e169af60e46289f67e33358fe8f8a1efe2a365d06ad6ad1d",
    "qa17_valid": "0f391eeb822e60d5a187b8456c58f2d75481a4c37bbf36047809b4f5ca824350",
    "qa17_test": "9e1e0250ed4ec1831757fab26c04138f81ea557ebf6976a220db879cbed04bac",
    "qa18_train": "29901ebd6831d8e19f452d98aec10f8ad0c40488ff56f8153a77cedbeeb1da23",
    "qa18_valid": "a41d67b4056c373247fbb03840688e4ff199a04b32d6f28fe684118a7d8381e8",
    "qa18_test": "d34f70eb7228a276fcb3a7854174fe562c5634f4fb454a39fc3d1ad9934be3ef",
    "qa19_train": "59854cc0f60642e16f5c8d887dd4d4b1a44b072e2499f1605119f0f88309097d",
    "qa19_valid": "b188a6a68134cc3662e8b4efa1e0d8d1e594400063c69b4f090f9a5825593719",
    "qa19_test": "023e391f0d7f79c9e6ae1c46c093e2d0dbd50ab8fbd8965e037a75e3614c20e5",
    "qa20_train": "d3176fc7c5f2c337e1d74e69dd17954d85f4c19585c5687d5963a9733ddd36da",
    "qa20_valid": "ee57599d71919d00b2e864537c104cacb09432aa35a2a483e9ead323c6511ac4",
    "qa20_test": "bd3bde3788ac14ba0ae095078f7b820fbd2bfa6a34dba9d1d46a34afde9c2729",
}


#: Stories in each official ``en-valid-10k`` file, (train, valid, test) per task (the train
#: counts add up to table 3's 56,376 plus the 20 last stories it drops). A copy with fewer
#: stories is reported as partial, from the data itself.
BABI_STORIES = {1: (1800, 200, 200), 2: (1800, 200, 200), 3: (1800, 200, 200),
                4: (9000, 1000, 1000), 5: (1800, 200, 200), 6: (1800, 200, 200),
                7: (1800, 200, 200), 8: (1800, 200, 200), 9: (1800, 200, 200),
                10: (1800, 200, 200), 11: (1800, 200, 200), 12: (1800, 200, 200),
                13: (1800, 200, 200), 14: (1800, 200, 200), 15: (2250, 250, 250),
                16: (9000, 1000, 1000), 17: (1125, 125, 125), 18: (1781, 197, 199),
                19: (9000, 1000, 1000), 20: (840, 93, 93)}


def partial_copy(stories: list[Story], path: pathlib.Path, task: int, split: str) -> str | None:
    """What is missing when ``stories`` (parsed from ``path``) are fewer than the official
    file's (:data:`BABI_STORIES`), as a sentence naming the file; None when none are."""
    official = BABI_STORIES[task][SPLITS.index(split)]
    if len(stories) >= official:
        return None
    return (f"{path} holds {len(stories):,} of the {official:,} stories of the official "
            f"qa{task}_{split}: a partial copy (scripts/download_data.py babi --force fetches "
            f"the full file)")


def babi_dir(data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """The ``en-valid-10k`` folder under ``data_dir`` (default: ``$FWM_DATA_DIR``)."""
    data_dir = data_root(data_dir, "scripts/download_data.py babi --data-dir DIR")
    path = data_dir / "babi-v1.2" / "en-valid-10k"
    if not path.is_dir():
        raise FileNotFoundError(f"bAbI folder not found: {path} (expected "
                                f"<data_dir>/babi-v1.2/en-valid-10k/qa{{1..20}}_{{split}}.txt; "
                                f"scripts/download_data.py babi --data-dir {data_dir} fetches "
                                f"them)")
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


def verify_file(path: pathlib.Path, name: str) -> None:
    """Check one bAbI file against :data:`BABI_SHA256` (``name`` like ``"qa3_train"``).

    Raises:
        ValueError: the checksum differs (the file and the expected checksum are named, and
            how many stories are missing when the file holds fewer than the official one).
    """
    digest = sha256_of(path)
    if digest == BABI_SHA256[name]:
        return
    task, split = int(name[2:name.index("_")]), name[name.index("_") + 1:]
    try:
        partial = partial_copy(parse_babi(path, task), path, task, split)
    except ValueError:  # not even well-formed: the checksum says enough
        partial = None
    raise ValueError(f"{path}: sha256 {digest}, expected the official {BABI_SHA256[name]}; "
                     + (f"it {partial.split(' ', 1)[1]}; " if partial else
                        "the file is corrupt or another version: fetch it again with "
                        "scripts/download_data.py babi --force; ")
                     + "or pass --no-verify (verify=False) to use it as it is")


def load_split(split: str, data_dir: str | os.PathLike | None = None,
               tasks: tuple[int, ...] = TASKS, verify: bool = True) -> list[Story]:
    """All stories of ``split`` for ``tasks``, in file order (task 1 first); with ``verify``
    every file is first checked against its official SHA-256 (:func:`verify_file`). Without,
    a file with fewer stories than the official one is used with a warning that says so."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = babi_dir(data_dir)
    stories: list[Story] = []
    for task in tasks:
        if task not in TASKS:
            raise ValueError(f"tasks must be in 1..20, got {task!r}")
        path = folder / f"qa{task}_{split}.txt"
        if verify and path.is_file():
            verify_file(path, f"qa{task}_{split}")
        file_stories = parse_babi(path, task)
        partial = partial_copy(file_stories, path, task, split)
        if partial:  # (unverified: verify_file refuses it)
            warnings.warn(partial, stacklevel=2)
        stories += file_stories
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

    def fingerprint(self) -> str:
        """A short hash of the id -> word table (checkpoints record it, so a run cannot be
        resumed on another vocabulary)."""
        return fingerprint(self.itos)

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

    def deal(self, order: np.ndarray, batch_size: int) -> tuple[list[list[int]], np.ndarray]:
        """Deal the stories in ``order`` to ``batch_size`` rows, each story to the row that is
        currently shortest: per row the story indices, and every row's length in tokens."""
        lengths = np.diff(self.offsets)
        rows: list[list[int]] = [[] for _ in range(batch_size)]
        filled = np.zeros(batch_size, dtype=np.int64)
        for story in order.tolist():
            r = int(np.argmin(filled))
            rows[r].append(story)
            filled[r] += lengths[story]
        return rows, filled

    def rows(self, order: np.ndarray, batch_size: int) -> list[np.ndarray]:
        """The rows of :meth:`deal`: per row the token indices of its stories."""
        stories, _ = self.deal(order, batch_size)
        return [np.concatenate([np.arange(self.offsets[s], self.offsets[s + 1]) for s in row])
                if row else np.zeros(0, np.int64) for row in stories]


def segments(data: EncodedStories, order: np.ndarray, batch_size: int, bptt: int):
    """Yield :class:`Batch` es of one pass over the stories in ``order`` dealt to
    ``batch_size`` rows. Each row starts with :data:`EOS` as input (the previous story ended),
    so every word of every story is a target; rows are padded at the end."""
    check_positive_int("batch_size", batch_size)
    check_positive_int("bptt", bptt)
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


#: the seed of the one fixed order in which every model is validated and tested
EVAL_SEED = 1234


def eval_segments(data: EncodedStories, batch_size: int = 1, bptt: int = 200,
                  seed: int = EVAL_SEED):
    """The validation / test stream: ONE fixed shuffled story order (from ``seed``, the same for
    every model), dealt to ``batch_size`` rows (the paper tests at batch size 1)."""
    order = np.random.default_rng(seed).permutation(len(data))
    return segments(data, order, batch_size, bptt)


def evaluation_batches(data: EncodedStories, batch_size: int, bptt: int,
                       seed: int = EVAL_SEED) -> int:
    """The number of segments :func:`eval_segments` yields: its longest row in segments."""
    check_positive_int("batch_size", batch_size)
    _, filled = data.deal(np.random.default_rng(seed).permutation(len(data)), batch_size)
    return -(-int(filled.max()) // bptt)
