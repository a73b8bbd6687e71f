"""``python -m boml data``: download the datasets and check what is installed.

    python -m boml data fetch omniglot            # the official Omniglot archives (~15 MB)
    python -m boml data fetch mnist splits        # MNIST and the Mini-ImageNet split CSVs
    python -m boml data check                     # what is present, verified, missing
    python -m boml data check omniglot --folder D # exit status 1 if Omniglot is missing or corrupt

``--folder`` is the datasets folder (default ``$DATASETS_FOLDER``, else ``~/.boml/datasets``); each
dataset goes to its own sub-folder (``omniglot``, ``mnist``, ``miniimagenet``), where the loaders
and ``boml train`` find it when ``DATASETS_FOLDER`` names the same folder.

This module imports no TensorFlow, so the command answers at once.
"""
import argparse
import os
import sys

from boml.errors import BOMLError

__all__ = ["add_data_parser", "run_data_command", "check_report"]

_LABELS = {"omniglot": "Omniglot", "mnist": "MNIST", "miniimagenet": "Mini-ImageNet", "splits": "split definitions"}


def _checkable(text):
    from boml.load_data.datasets.downloads import DATASET_NAMES

    allowed = DATASET_NAMES + ("splits",)
    if text not in allowed:
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(allowed)})")
    return text


def add_data_parser(subparsers):
    """Adds the ``data`` command (with ``fetch`` and ``check``) to an ``argparse`` sub-parser set.

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers``.

    Returns:
        The ``data`` parser.
    """
    from boml.load_data.datasets.downloads import DATASET_NAMES, FETCHABLE

    data = subparsers.add_parser(
        "data", allow_abbrev=False, help="download datasets and check what is installed",
        description="Downloads the datasets boml can fetch (sha256-verified, resumable) and reports which "
                    "datasets are installed. Default folder: $DATASETS_FOLDER, else ~/.boml/datasets.")
    actions = data.add_subparsers(dest="data_action", metavar="{fetch,check}")
    actions.required = True
    fetch = actions.add_parser("fetch", allow_abbrev=False, help="download datasets",
                               description="Downloads the official files into <folder>/<dataset>. 'splits' are "
                                           "the Ravi & Larochelle Mini-ImageNet CSVs (the Omniglot splits are "
                                           "shipped with boml); Mini-ImageNet's images cannot be downloaded.")
    fetch.add_argument("names", nargs="+", choices=FETCHABLE, metavar="{" + ",".join(FETCHABLE) + "}",
                       help="what to download")
    check = actions.add_parser("check", allow_abbrev=False, help="report which datasets are present",
                               description="Lists every dataset with where it was found, whether the downloaded "
                                           "files have their published sha256, and how to get what is missing. "
                                           "Exit status 1 if a named dataset is missing or a file is corrupt.")
    check.add_argument("names", nargs="*", type=_checkable, metavar="NAME",
                       help=f"datasets to check (default: all of {', '.join(DATASET_NAMES + ('splits',))})")
    for sub in (fetch, check):
        sub.add_argument("--folder", default=None,
                         help="the datasets folder (default: $DATASETS_FOLDER, else ~/.boml/datasets)")
    fetch.add_argument("--timeout", type=float, default=60.0, help="seconds of network silence before giving up")
    fetch.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    return data


def check_report(names=None, root=None):
    """What ``data check`` prints: ``(lines, ok)``; ``ok`` is False if a named dataset is missing or corrupt.

    Args:
        names: datasets to report (default: every dataset and the split definitions; then only corrupt
            files make ``ok`` false).
        root: the datasets folder.
    """
    from boml.load_data.datasets import downloads
    from boml.load_data.datasets.splits import packaged_split_folder

    explicit = bool(names)
    names = list(names) if names else list(downloads.DATASET_NAMES) + ["splits"]
    root = root or downloads.default_datasets_folder()
    lines, ok = [f"datasets folder: {root}"], True
    for name in names:
        label = _LABELS[name]
        if name == "splits":
            lines.append(f"{label}: Omniglot Vinyals split shipped with boml in {packaged_split_folder()}")
            folder = downloads.dataset_folder("splits", root)
            status = downloads.verify_files("splits", folder)
            bad = [f"{n} {s}" for n, s in status if s.startswith("corrupt")]
            if bad:
                ok = False
            present = [n for n, s in status if s == "ok"]
            lines.append(f"  Mini-ImageNet split CSVs in {folder}: "
                         + (", ".join(present) + " verified" if present else "missing")
                         + (f"; {'; '.join(bad)}" if bad else "")
                         + ("" if len(present) == len(status) else f" (get them: {downloads.fetch_command('splits')})"))
            continue
        try:
            path = downloads.locate_dataset(name, root=root)
        except BOMLError as error:
            hint = f"get it: {downloads.fetch_command(name)}" if name in downloads.FETCHABLE else (
                f"cannot be downloaded; put its images in {downloads.dataset_folder(name, root)}")
            lines.append(f"{label}: MISSING ({hint})")
            lines.append(f"  {error}")
            ok = ok and not explicit
            continue
        lines.append(f"{label}: present at {path}")
        if name in downloads.FETCHABLE and os.path.isdir(path):
            for file_name, status in downloads.verify_files(name, path):
                if status != "missing":
                    lines.append(f"  {file_name}: {status}")
                    ok = ok and not status.startswith("corrupt")
    return lines, ok


def run_data_command(args) -> int:
    """Runs ``data fetch`` or ``data check`` from parsed arguments; returns the exit status.

    Errors (no network, checksum mismatch, unknown folder) are printed on stderr as one message with
    the manual steps; the status is then 1.
    """
    from boml.load_data.datasets import downloads

    try:
        if args.data_action == "fetch":
            root = args.folder or downloads.default_datasets_folder()
            for name in dict.fromkeys(args.names):
                folder = downloads.fetch(name, root=root, timeout=args.timeout, progress=args.progress)
                print(f"{_LABELS[name]}: ready in {folder}")
            if os.path.abspath(root) != os.path.abspath(downloads.default_datasets_folder()):
                print(f"boml finds the data when DATASETS_FOLDER={root} (the default is "
                      f"~/.boml/datasets), or pass --data_folder to `boml train`.")
            return 0
        lines, ok = check_report(args.names, args.folder)
        print("\n".join(lines))
        return 0 if ok else 1
    except BOMLError as error:
        sys.stderr.write(f"boml data: error: {type(error).__name__}: {error}\n")
        return 1
