"""Where the datasets live, and how boml fetches the ones that can be downloaded.

The datasets folder is ``$DATASETS_FOLDER`` (read at call time), else ``~/.boml/datasets``. Each dataset
has a sub-folder there: ``omniglot`` (the official ``images_background.zip`` and ``images_evaluation.zip``),
``mnist`` (the four IDX ``.gz`` files) and ``miniimagenet`` (never downloaded: its images have no
official direct source).

Downloads use only the standard library: every file goes to ``<name>.part`` first, an interrupted
download resumes with an HTTP ``Range`` request, the sha256 is checked before the file is renamed to its
final name, a progress bar goes to stderr and every network call has a timeout. When a file cannot be
fetched the error names the URLs and the folder, so the files can be put there by hand.

Nothing here imports TensorFlow (the ``data`` command of the CLI relies on it).
"""
import gzip
import hashlib
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Optional, Tuple

from boml.errors import ChecksumMismatchError, DataError, DownloadError, InvalidArgumentError, MissingDataError

__all__ = [
    "DATASETS_FOLDER_ENV",
    "DATASET_NAMES",
    "FETCHABLE",
    "RemoteFile",
    "OMNIGLOT_FILES",
    "MNIST_FILES",
    "MINIIMAGENET_SPLIT_FILES",
    "default_datasets_folder",
    "dataset_folder",
    "download_file",
    "fetch",
    "locate_dataset",
    "find_mnist_file",
    "fetch_command",
]

#: Environment variable naming the datasets folder.
DATASETS_FOLDER_ENV = "DATASETS_FOLDER"

#: Datasets :func:`locate_dataset` knows.
DATASET_NAMES = ("omniglot", "mnist", "miniimagenet")

#: What ``python -m boml data fetch`` accepts ("splits": the Mini-ImageNet split CSVs).
FETCHABLE = ("omniglot", "mnist", "splits")

_PROGRESS_INTERVAL = 0.2  # seconds between two redraws of the progress bar


@dataclass(frozen=True)
class RemoteFile:
    """A file boml can download.

    Attributes:
        name: its file name on disk.
        urls: mirrors, tried in order.
        sha256: hex digest of the file as served (checked before it is kept).
        size: its size in bytes.
        content_sha256: for a ``.gz``, the digest of the decompressed bytes (the published MNIST checksums);
            a file whose compressed digest differs is still accepted when its content matches (a mirror
            that re-compressed it).
    """

    name: str
    urls: Tuple[str, ...]
    sha256: str
    size: int
    content_sha256: Optional[str] = None


_OMNIGLOT_URL = "https://github.com/brendenlake/omniglot/raw/master/python/"
# sha256 and sizes: tensorflow/datasets url_checksums/omniglot.txt (the small sets' digests there equal
# those of the copies checked locally, which corroborates the table).
OMNIGLOT_FILES = (
    RemoteFile("images_background.zip", (_OMNIGLOT_URL + "images_background.zip",),
               "ad41ab679c8b5d90b271ef46be6987cc81211774a695c29dcc5367b2b26ee640", 9464212),
    RemoteFile("images_evaluation.zip", (_OMNIGLOT_URL + "images_evaluation.zip",),
               "1f61a8f3366785b057fc117d9228e78a16e3d976c8953b2a10fcc74cf0609cee", 6462886),
)

_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")


def _mnist_file(name, sha256, size, content_sha256):
    return RemoteFile(name, tuple(m + name for m in _MNIST_MIRRORS), sha256, size, content_sha256)


# The LeCun .gz files (sizes and sha256 as published by torchvision's and TFDS's checksum tables) and the
# sha256 of their decompressed content (the widely published MNIST checksums).
MNIST_FILES = (
    _mnist_file("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                9912422, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    _mnist_file("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                28881, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    _mnist_file("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                1648877, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    _mnist_file("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                4542, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
)

_RAVI_URL = ("https://raw.githubusercontent.com/twitter-research/meta-learning-lstm/"
             "0cffa2481619ce643d0951bd637bf05b23ef827a/data/miniImagenet/")
#: The Ravi & Larochelle (2017) Mini-ImageNet split CSVs (``filename,label``; labels only, no images).
MINIIMAGENET_SPLIT_FILES = (
    RemoteFile("train.csv", (_RAVI_URL + "train.csv",),
               "498519cd8e49ce97ed26a4a3638966698ae41ab35e9c68538319fc9b46ba7d2f", 1228815),
    RemoteFile("val.csv", (_RAVI_URL + "val.csv",),
               "5658a59921ca027ee76af92949869c5d6f41d77592ff3b18db325a9d10c893b9", 307215),
    RemoteFile("test.csv", (_RAVI_URL + "test.csv",),
               "2b7cfa78342995761a572a8158e539bc4e0a80f9bbd7d00c1e17a460fbbb93fa", 384015),
)

#: The sub-folder of the datasets folder that holds each dataset, then the other names it is found under.
_SUBFOLDERS = {
    "omniglot": ("omniglot", "omniglot_resized", "omniglot_resized.tar.gz"),
    "mnist": ("mnist", "mnist_data"),
    "miniimagenet": ("miniimagenet", os.path.join("imagenet", "mini_v3")),
}
_FETCH_FILES = {"omniglot": OMNIGLOT_FILES, "mnist": MNIST_FILES, "splits": MINIIMAGENET_SPLIT_FILES}
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
    sub = _FETCH_SUBFOLDER.get(name) or _SUBFOLDERS[_check_name(name, DATASET_NAMES + ("splits",))][0]
    return os.path.join(root or default_datasets_folder(), sub)


def fetch_command(name: str) -> str:
    """The command line that downloads ``name``."""
    return f"python -m boml data fetch {name}"


def _check_name(name, allowed):
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


def _is_archive(path):
    return path.lower().endswith((".zip", ".tar", ".tar.gz", ".tgz"))


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
        return [] if _is_archive(path) else ["an Omniglot archive (.zip or .tar.gz)"]
    if not os.path.isdir(path):
        return ["the folder itself"]
    entries = os.listdir(path)
    official = [f.name for f in OMNIGLOT_FILES]
    present_official = [f for f in official if f in entries]
    if present_official:  # the download target: both official archives are needed
        return [f for f in official if f not in entries]
    if ("omniglot_resized" in entries or any(e.startswith("omniglot_resized") and _is_archive(e) for e in entries)
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
    _check_name(name, DATASET_NAMES)
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
        fetch(name, folder=target, log=log)
        return target
    raise MissingDataError(_not_found_message(name, [(p, _missing(name, p)) for p in candidates], root))


# ============================================================================ downloads
def _digest(path, algorithm="sha256", opener=open):
    h = hashlib.new(algorithm)
    with opener(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(path, remote):
    """None if ``path`` is ``remote`` (its sha256, or its decompressed content's), else what differs."""
    actual = _digest(path)
    if actual == remote.sha256:
        return None
    if remote.content_sha256 is not None:
        try:
            if _digest(path, opener=gzip.open) == remote.content_sha256:
                return None
        except (OSError, EOFError):
            pass
    return f"sha256 {actual}, expected {remote.sha256}"


class _Progress:
    """A one-line progress bar on stderr, redrawn at most every ``_PROGRESS_INTERVAL`` seconds."""

    def __init__(self, label, total, enabled, stream=None):
        self.label, self.total, self.enabled = label, total, enabled
        self.stream = stream or sys.stderr
        self._last = 0.0

    def update(self, done, final=False):
        now = time.monotonic()
        if not self.enabled or (not final and now - self._last < _PROGRESS_INTERVAL):
            return
        self._last = now
        if self.total:
            fraction = min(1.0, done / self.total)
            bar = "#" * int(30 * fraction)
            text = f"\r{self.label} [{bar:<30s}] {100 * fraction:5.1f}% {done / 1e6:.1f}/{self.total / 1e6:.1f} MB"
        else:
            text = f"\r{self.label} {done / 1e6:.1f} MB"
        self.stream.write(text + ("\n" if final else ""))
        self.stream.flush()


def _open(url, offset, timeout):
    headers = {"User-Agent": "boml-data-fetch"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _fetch_one_url(url, part, total, timeout, progress, chunk_size):
    """Appends the rest of ``url`` to ``part`` (resuming after its current size). Raises OSError."""
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    if total and offset >= total:
        return  # complete already: the checksum decides
    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # nothing left to send: the .part file is complete
            return
        raise
    with response:
        status = getattr(response, "status", None)
        if offset and status != 206:  # the server ignored the Range: start again
            offset = 0
        length = int(response.headers.get("Content-Length") or 0)
        bar = _Progress(os.path.basename(part)[:-5], total or (offset + length), progress)
        with open(part, "ab" if offset else "wb") as out:
            done = offset
            for chunk in iter(lambda: response.read(chunk_size), b""):
                out.write(chunk)
                done += len(chunk)
                bar.update(done)
            bar.update(done, final=True)


def download_file(url, dest, sha256=None, md5=None, progress=True, timeout=60.0, chunk_size=1 << 16, size=None):
    """Downloads ``url`` to ``dest`` through ``dest + '.part'``, resuming a previous partial download.

    An existing ``dest`` with the right checksum is reused. The checksum is checked before the rename;
    on a mismatch the partial file is removed. A failed transfer keeps the ``.part`` file, so calling
    again resumes it (HTTP ``Range``; a server that ignores it sends the whole file again).

    Args:
        url: a URL (``https://``, ``http://``, ``file://``) or a sequence of mirrors tried in order.
        dest: the final path.
        sha256, md5: expected hex digests (optional; give at least one to detect corruption).
        progress: draw a progress bar on stderr.
        timeout: seconds without an answer after which a connection or read is given up.
        chunk_size: bytes per read.
        size: expected size in bytes (for the progress bar when the server does not send it).

    Returns:
        ``dest``.

    Raises:
        ChecksumMismatchError: the downloaded file has another digest (the file was removed).
        DownloadError: no mirror could be read (unreachable, timeout, HTTP error).
    """
    remote_sums = {k: v.lower() for k, v in (("sha256", sha256), ("md5", md5)) if v}

    def mismatch(path):
        for algorithm, expected in remote_sums.items():
            actual = _digest(path, algorithm)
            if actual != expected:
                return f"{algorithm} {actual}, expected {expected}"
        return None

    urls = (url,) if isinstance(url, str) else tuple(url)
    if os.path.isfile(dest) and mismatch(dest) is None:
        return dest
    return _download(urls, dest, mismatch, progress, timeout, chunk_size, size)


def _download(urls, dest, mismatch, progress, timeout, chunk_size, size):
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    part = dest + ".part"
    failures = []
    for url in urls:
        try:
            _fetch_one_url(url, part, size, timeout, progress, chunk_size)
        except (OSError, ValueError) as e:  # URLError, HTTPError, socket timeouts, refused connections
            reason = getattr(e, "reason", None) or e
            failures.append(f"{url}: {reason}")
            continue
        problem = mismatch(part)
        if problem is None:
            os.replace(part, dest)
            return dest
        os.remove(part)
        raise ChecksumMismatchError(
            f"Checksum mismatch: the file downloaded from {url} has {problem}: it is corrupt or changed upstream, "
            f"and was removed. Run the command again, or put a verified copy at {dest}."
        )
    kept = (f" The partial file {part} ({os.path.getsize(part)} bytes) is kept: running again resumes it."
            if os.path.exists(part) else "")
    raise DownloadError(f"Could not download {os.path.basename(dest)}: " + "; ".join(failures) + "." + kept)


def _manual_steps(name, files, folder):
    lines = [f"To install {name} by hand, download these files (with a browser or curl) into {folder}:"]
    for f in files:
        lines.append(f"  {f.urls[0]}  ({f.size:,} bytes, sha256 {f.sha256})")
    lines.append("then check them with: python -m boml data check")
    return "\n".join(lines)


def fetch(name: str, folder: Optional[str] = None, root: Optional[str] = None, timeout: float = 60.0,
          progress: bool = True, log=print) -> str:
    """Downloads dataset ``name`` (``"omniglot"``, ``"mnist"`` or ``"splits"``) and returns its folder.

    Files already there with the right checksum are kept; the others are downloaded (resuming
    ``.part`` files) and verified.

    Args:
        name: what to fetch; ``"splits"`` are the Ravi & Larochelle Mini-ImageNet CSVs (the Omniglot
            splits are shipped with boml).
        folder: the folder to write to (default :func:`dataset_folder` of ``name`` under ``root``).
        root: the datasets folder (default :func:`default_datasets_folder`).
        timeout: seconds of network silence before a file is given up.
        progress: progress bars on stderr.
        log: called with one message per file.

    Raises:
        DownloadError: a file could not be downloaded (the message gives the manual steps);
            ``ChecksumMismatchError`` when one arrived corrupt.
    """
    _check_name(name, FETCHABLE)
    files = _FETCH_FILES[name]
    folder = folder or dataset_folder(name, root)
    for remote in files:
        dest = os.path.join(folder, remote.name)
        if os.path.isfile(dest) and _verify(dest, remote) is None:
            log(f"{dest}: present, sha256 verified")
            continue
        if os.path.isfile(dest):
            raise DataError(f"{dest} exists but is not the published file ({_verify(dest, remote)}). Delete it and "
                            f"run `{fetch_command(name)}` again.")
        try:
            _download(remote.urls, dest, lambda path, r=remote: _verify(path, r), progress, timeout, 1 << 16,
                      remote.size)
        except ChecksumMismatchError as e:
            raise ChecksumMismatchError(f"{e}\n{_manual_steps(name, files, folder)}") from e
        except DownloadError as e:
            raise DownloadError(f"{e} (no network?)\n{_manual_steps(name, files, folder)}") from e
        log(f"{dest}: downloaded, sha256 verified")
    return folder


def verify_files(name: str, folder: str):
    """``[(file name, status)]`` of the downloadable files of ``name`` in ``folder``.

    ``status`` is ``"ok"`` (the published sha256), ``"missing"``, ``"partial"`` (a ``.part`` file is
    waiting to be resumed) or ``"corrupt: <digest>"``.
    """
    out = []
    for remote in _FETCH_FILES[_check_name(name, FETCHABLE)]:
        path = os.path.join(folder, remote.name)
        if os.path.isfile(path):
            problem = _verify(path, remote)
            out.append((remote.name, "ok" if problem is None else f"corrupt: {problem}"))
        elif os.path.isfile(path + ".part"):
            out.append((remote.name, "partial"))
        else:
            out.append((remote.name, "missing"))
    return out
