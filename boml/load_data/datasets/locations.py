"""Where boml looks for each dataset, and what it says when a dataset is not there.

The datasets folder is ``$DATASETS_FOLDER`` (read at call time), else ``~/.boml/datasets``. Each dataset
has sub-folders there (see :func:`locate_dataset`); ``python -m boml data fetch`` writes to the first one.
A missing dataset raises :class:`~boml.errors.MissingDataError` naming every place looked at and the
command that gets the data. Nothing here imports TensorFlow.
"""
import os
from typing import Optional

from boml.errors import InvalidArgumentError, MissingDataError
from boml.load_data.datasets.archives import is_archive_name

__all__ = [
    "DATASETS_FOLDER_ENV",
    "DATASET_NAMES",
    "FETCHABLE",
    "OMNIGLOT_ARCHIVES",
    "MNIST_NAMES",
    "default_datasets_folder",
    "dataset_folder",
    "fetch_command",
    "find_mnist_file",
    "locate_dataset",
    "check_dataset_name",
]

#: Environment variable naming the datasets folder.
DATASETS_FOLDER_ENV = "DATASETS_FOLDER"

#: Datasets :func:`locate_dataset` knows.
DATASET_NAMES = ("omniglot", "mnist", "miniimagenet")

#: What ``python -m boml data fetch`` accepts ("splits": the Mini-ImageNet split CSVs).
FETCHABLE = ("omniglot", "mnist", "splits")

#: The official Omniglot archives (what ``data fetch omniglot`` downloads).
OMNIGLOT_ARCHIVES = ("images_background.zip", "images_evaluation.zip")

#: The sub-folders of the datasets folder that holds each dataset, then the other names it is found under.
_SUBFOLDERS = {
    "omniglot": ("omniglot", "omniglot_resized", "omniglot_resized.tar.gz"),
    "mnist": ("mnist", "mnist_data"),
    "miniimagenet": ("miniimagenet", os.path.join("imagenet", "mini_v3")),
}
_FETCH_SUBFOLDER = {"omniglot": "omniglot", "mnist": "mnist", "splits": "miniimagenet"}

#: MNIST file names: the standard hyphenated ones, then the dotted ones some copies use.
MNIST_NAMES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}

_MINI_LAYOUT = (
    "train/<wnid>/*.jpg, val/<wnid>/*.jpg and test/<wnid>/*.jpg (84x84 images, one folder per class); or the "
    "Ravi & Larochelle train.csv/val.csv/test.csv (`python -m boml data fetch splits` downloads them) with the "
    "images in an images/ folder beside them; or mini-imagenet-cache-<split>.pkl / <split>.npz caches"
)


# ============================================================================ folders
def default_datasets_folder() -> str:
    """The datasets folder: ``$DATASETS_FOLDER`` if set, else ``~/.boml/datasets``."""
    return os.environ.get(DATASETS_FOLDER_ENV) or os.path.join(os.path.expanduser("~"), ".boml", "datasets")


def dataset_folder(name: str, root: Optional[str] = None) -> str:
    """The folder ``python -m boml data fetch NAME`` writes to: ``<root>/<sub-folder of NAME>``.

    Args:
        name: ``"omniglot"``, ``"mnist"``, ``"miniimagenet"`` or ``"splits"`` (the Mini-ImageNet CSVs).
        root: the datasets folder (default :func:`default_datasets_folder`).
    """
    sub = _FETCH_SUBFOLDER.get(name) or _SUBFOLDERS[check_dataset_name(name, DATASET_NAMES + ("splits",))][0]
    return os.path.join(root or default_datasets_folder(), sub)


def fetch_command(name: str) -> str:
    """The command line that downloads ``name``."""
    return f"python -m boml data fetch {name}"


def check_dataset_name(name, allowed):
    """Returns ``name`` if it is in ``allowed``; raises ``InvalidArgumentError`` naming them otherwise."""
    if name not in allowed:
        raise InvalidArgumentError(f"Unknown dataset {name!r}; allowed: {', '.join(allowed)}.")
    return name


# ============================================================================ presence probes
def find_mnist_file(folder: str, key: str) -> Optional[str]:
    """The path of MNIST's ``key`` file (see ``MNIST_NAMES``) in ``folder``, ``.gz`` or not, or None."""
    for base in MNIST_NAMES[key]:
        for file_name in (base + ".gz", base):
            path = os.path.join(folder, file_name)
            if os.path.isfile(path):
                return path
    return None


def _missing_mnist(folder):
    return [MNIST_NAMES[k][0] + ".gz" for k in MNIST_NAMES if find_mnist_file(folder, k) is None]


def _looks_like_alphabets(folder):
    """True if ``folder`` holds ``<Alphabet>/<characterNN>/*.png`` (the first few entries are checked)."""
    for alphabet in sorted(os.listdir(folder))[:3]:
        a_dir = os.path.join(folder, alphabet)
        if not os.path.isdir(a_dir):
            continue
        for char in sorted(os.listdir(a_dir))[:3]:
            c_dir = os.path.join(a_dir, char)
            if os.path.isdir(c_dir) and any(f.lower().endswith(".png") for f in os.listdir(c_dir)):
                return True
    return False


def _missing_omniglot(path):
    """What is missing for ``path`` to hold Omniglot: ``[]`` if present, else a list of what is expected."""
    if os.path.isfile(path):
        return [] if is_archive_name(path) else ["an Omniglot archive (.zip or .tar.gz)"]
    if not os.path.isdir(path):
        return ["the folder itself"]
    entries = os.listdir(path)
    official = list(OMNIGLOT_ARCHIVES)
    present_official = [f for f in official if f in entries]
    if present_official:  # the download target: both official archives are needed
        return [f for f in official if f not in entries]
    if ("omniglot_resized" in entries or any(e.startswith("omniglot_resized") and is_archive_name(e) for e in entries)
            or any(e.startswith(("images_background", "images_evaluation")) for e in entries)
            or _looks_like_alphabets(path)):
        return []
    return ["images_background.zip + images_evaluation.zip, omniglot_resized/ (or omniglot_resized.tar.gz), "
            "or <Alphabet>/<characterNN>/*.png folders"]


def _missing_miniimagenet(path):
    if not os.path.isdir(path):
        return ["the folder itself"]
    entries = set(os.listdir(path))
    missing = []
    for split in ("train", "val", "test"):
        candidates = (split, f"{split}.csv", f"{split}.pkl", f"{split}.npz", f"{split}.h5",
                      f"mini-imagenet-cache-{split}.pkl")
        if not entries.intersection(candidates):
            missing.append(f"the {split} split")
    return missing


def _missing(name, path):
    if name == "omniglot":
        return _missing_omniglot(path)
    if name == "mnist":
        return ["the folder itself"] if not os.path.isdir(path) else _missing_mnist(path)
    return _missing_miniimagenet(path)


# ============================================================================ locate
def _not_found_message(name, looked, root):
    places = "; ".join(f"{p} ({', '.join(m)} missing)" if m != ["the folder itself"] else f"{p} (does not exist)"
                       for p, m in looked)
    label = {"omniglot": "Omniglot", "mnist": "MNIST", "miniimagenet": "Mini-ImageNet"}[name]
    if name == "miniimagenet":
        return (f"{label} not found; looked in: {places}. boml cannot download Mini-ImageNet (its images have no "
                f"official direct download: they come from ImageNet, under ImageNet's terms). Put in "
                f"{dataset_folder('miniimagenet', root)} one of: {_MINI_LAYOUT}. Or pass --data_folder DIR (folder= in "
                "Python) naming the folder that holds them.")
    return (f"{label} not found; looked in: {places}. Download it into {dataset_folder(name, root)} with the command "
            f"below, or pass --data_folder DIR (folder= in Python) naming your copy, or --download "
            f"(download=True) to fetch it now. Run: {fetch_command(name)}")


def locate_dataset(name: str, folder: Optional[str] = None, download: bool = False, log=print,
                   root: Optional[str] = None) -> str:
    """The path of dataset ``name`` that its loader accepts.

    With ``folder``: that folder or archive, if it exists (its content is the loader's business), else
    it is where the download goes. Without: the first of the dataset's sub-folders of
    :func:`default_datasets_folder` that holds the dataset (``omniglot``, ``omniglot_resized``,
    ``omniglot_resized.tar.gz``; ``mnist``, ``mnist_data``; ``miniimagenet``, ``imagenet/mini_v3``).

    Args:
        name: ``"omniglot"``, ``"mnist"`` or ``"miniimagenet"``.
        folder: an explicit folder or archive.
        download: fetch the dataset (Omniglot, MNIST) when it is not there.
        log: called with progress messages.
        root: the datasets folder searched without ``folder`` (default :func:`default_datasets_folder`).

    Returns:
        The folder or archive path.

    Raises:
        MissingDataError: the data is not there and ``download`` is false (or the dataset cannot be
            downloaded); the message says where boml looked and the command that gets the data.
        DownloadError: ``download`` is true and the download failed.
    """
    check_dataset_name(name, DATASET_NAMES)
    if folder is not None:
        folder = os.path.expanduser(str(folder))
        missing = _missing(name, folder)
        if os.path.exists(folder) and (not download or not missing or name == "miniimagenet"):
            return folder
        candidates = [folder]
    else:
        root = root or default_datasets_folder()
        candidates = [os.path.join(root, sub) for sub in _SUBFOLDERS[name]]
        for path in candidates:
            if not _missing(name, path):
                return path
    if download and name != "miniimagenet":
        target = folder if folder is not None else dataset_folder(name, root)
        if folder is not None and os.path.isfile(folder):
            raise MissingDataError(f"Cannot download {name} into {folder}: it is a file, not a folder. "
                                   "Pass a folder.")
        from boml.load_data.datasets.downloads import fetch  # downloads imports this module

        fetch(name, folder=target, log=log)
        return target
    raise MissingDataError(_not_found_message(name, [(p, _missing(name, p)) for p in candidates], root))
