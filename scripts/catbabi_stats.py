"""Print the catbAbI dataset statistics (tokens, stories, questions per split) next to the
paper's table 3.

Example::

    FWM_DATA_DIR=data python scripts/catbabi_stats.py

Every story is kept, so valid and test have exactly 20 stories more than the paper (whose
preprocessing drops the last story of each of the 20 files), and their extra questions are
those of these 20 stories. A partial copy of a file fails its checksum, and the error says how
many stories it lacks; with ``--no-verify`` it is used (with a warning that says the same),
and train has that many stories fewer.
"""

from __future__ import annotations

import argparse

from qa.data import SPLITS, Vocabulary, format_statistics, load_split, statistics
from training.cli import HelpFormatter, add_data_options


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    add_data_options(p, "the bAbI files")
    args = p.parse_args(argv)
    try:
        stories = {split: load_split(split, args.data_dir, verify=not args.no_verify)
                   for split in SPLITS}
    except (FileNotFoundError, ValueError) as err:
        p.error(str(err))
    stats = statistics(stories)
    print(format_statistics(stats))
    vocab = Vocabulary.from_stories(*stories.values())
    print(f"vocabulary: {len(vocab)} words (incl. <pad>, <eos>)")
    return stats


if __name__ == "__main__":
    main()
