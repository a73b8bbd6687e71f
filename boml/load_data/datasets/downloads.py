"""How boml fetches the datasets that can be downloaded (and where it looks for them, re-exported from
:mod:`~boml.load_data.datasets.locations`).

``python -m boml data fetch NAME`` writes to a sub-folder of the datasets folder (``$DATASETS_FOLDER``, else
``~/.boml/datasets``): ``omniglot`` (the official ``images_background.zip`` and ``images_evaluation.zip``),
``mnist`` (the four IDX ``.gz`` files) and, for ``splits``, ``miniimagenet`` (the Ravi & Larochelle CSVs;
the images are never downloaded: they have no official direct source).

Downloads use only the standard library: every file goes to ``<name>.part`` first, an interrupted
download resumes with an HTTP ``Range`` request, the sha256 is checked before the file is renamed to its
final name, a progress bar goes to stderr and every network call has a timeout. When a file cannot be
fetched the error names the URLs and the folder, so the files can be put there by hand.

Nothing here imports TensorFlow (the ``data`` command of the CLI relies on it).
"""
import gzip
import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Optional, Tuple

from boml.errors import ChecksumMismatchError, DataError, DownloadError
from boml.load_data.datasets.locations import (  # noqa: F401 (re-exported: the data command's interface)
    DATASET_NAMES,
    DATASETS_FOLDER_ENV,
    FETCHABLE,
    MNIST_NAMES,
    OMNIGLOT_ARCHIVES,
    check_dataset_name,
    dataset_folder,
    default_datasets_folder,
    fetch_command,
    find_mnist_file,
    locate_dataset,
)

__all__ = [
    "RemoteFile",
    "OMNIGLOT_FILES",
    "MNIST_FILES",
    "MINIIMAGENET_SPLIT_FILES",
    "download_file",
    "fetch",
    "verify_files",
    "DATASETS_FOLDER_ENV",
    "DATASET_NAMES",
    "FETCHABLE",
    "default_datasets_folder",
    "dataset_folder",
    "fetch_command",
    "find_mnist_file",
    "locate_dataset",
]

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
    RemoteFile(OMNIGLOT_ARCHIVES[0], (_OMNIGLOT_URL + OMNIGLOT_ARCHIVES[0],),
               "ad41ab679c8b5d90b271ef46be6987cc81211774a695c29dcc5367b2b26ee640", 9464212),
    RemoteFile(OMNIGLOT_ARCHIVES[1], (_OMNIGLOT_URL + OMNIGLOT_ARCHIVES[1],),
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

_FETCH_FILES = {"omniglot": OMNIGLOT_FILES, "mnist": MNIST_FILES, "splits": MINIIMAGENET_SPLIT_FILES}


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
    if length and done < offset + length:  # the connection dropped before the end
        raise ConnectionError(f"the transfer stopped after {done} of {offset + length} bytes")


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
        except (OSError, ValueError, http.client.HTTPException) as e:  # URLError, timeouts, refused, cut off
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
    check_dataset_name(name, FETCHABLE)
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
    for remote in _FETCH_FILES[check_dataset_name(name, FETCHABLE)]:
        path = os.path.join(folder, remote.name)
        if os.path.isfile(path):
            problem = _verify(path, remote)
            out.append((remote.name, "ok" if problem is None else f"corrupt: {problem}"))
        elif os.path.isfile(path + ".part"):
            out.append((remote.name, "partial"))
        else:
            out.append((remote.name, "missing"))
    return out
