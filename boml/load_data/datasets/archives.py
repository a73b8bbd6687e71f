"""Reading dataset files: gzip, tar and zip archives (standard library), and the one cache of the data layer.

Every decompression error (a truncated file, flipped bytes, a bad CRC) becomes a
:class:`~boml.errors.DataError` naming the file (and the archive member), so a damaged download is
reported as such instead of as a raw ``zlib.error``. Nothing here imports TensorFlow.

Archives are read with :mod:`tarfile` and :mod:`zipfile`. Indexing the 32,460 members of
``omniglot_resized.tar.gz`` takes about 2 s (measured: 1.9 s, against 0.1 s for the gunzip); it happens
once per process, as :func:`archive_members` keeps the last few archives in an :class:`LRUCache`.
"""
import gzip
import hashlib
import io
import os
import tarfile
import zipfile
import zlib
from collections import OrderedDict

from boml.errors import DataError

__all__ = ["LRUCache", "read_maybe_gzip", "archive_members", "is_archive_name", "is_tar_name", "is_zip_name"]

_DECOMPRESSION_ERRORS = (OSError, EOFError, zlib.error, tarfile.TarError, zipfile.BadZipFile, ValueError)


class LRUCache:
    """A mapping that keeps at most ``maxsize`` entries, dropping the least recently used one.

    Args:
        maxsize: the number of entries kept; 0 keeps nothing.
    """

    def __init__(self, maxsize):
        self.maxsize = max(0, int(maxsize))
        self._entries = OrderedDict()

    def get(self, key, default=None):
        """The value of ``key`` (now the most recently used), or ``default``."""
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        return default

    def put(self, key, value):
        """Stores ``value`` under ``key``, evicting the oldest entries beyond ``maxsize``."""
        if self.maxsize == 0:
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)

    def __contains__(self, key):
        return key in self._entries

    def __len__(self):
        return len(self._entries)


def is_zip_name(name):
    """True for ``*.zip``."""
    return name.lower().endswith(".zip")


def is_tar_name(name):
    """True for ``*.tar``, ``*.tar.gz`` and ``*.tgz``."""
    return name.lower().endswith((".tar.gz", ".tgz", ".tar"))


def is_archive_name(name):
    """True for the archives :func:`archive_members` reads."""
    return is_zip_name(name) or is_tar_name(name)


def _is_gzip(path):
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def read_maybe_gzip(path, what="file"):
    """The bytes of ``path``, decompressed if it is a gzip file (detected from its magic bytes).

    Args:
        path: the file.
        what: what the file is, for error messages (e.g. ``"MNIST file"``).

    Raises:
        DataError: the file cannot be read or its gzip stream is damaged (truncated, flipped bytes,
            bad CRC); the message names the file.
    """
    try:
        opener = gzip.open if _is_gzip(path) else open
        with opener(path, "rb") as f:
            return f.read()
    except _DECOMPRESSION_ERRORS as e:
        raise DataError(f"{what} {path} cannot be read: it is damaged ({type(e).__name__}: {e}). "
                        "Delete it and download it again.") from e


_MEMBERS = LRUCache(4)


def _file_key(path):
    st = os.stat(path)
    return os.path.realpath(path), st.st_mtime_ns, st.st_size


def _tar_members(path):
    raw = read_maybe_gzip(path, "Archive")
    files, dirs = [], []
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                if member.isdir():
                    dirs.append(member.name)
                elif member.isfile():
                    files.append((member.name, raw[member.offset_data:member.offset_data + member.size]))
    except _DECOMPRESSION_ERRORS as e:
        raise DataError(f"Archive {path} is not a readable tar archive ({type(e).__name__}: {e}). "
                        "Delete it and download or re-create it.") from e
    return files, dirs


def _zip_members(path):
    files, dirs = [], []
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except _DECOMPRESSION_ERRORS as e:
        raise DataError(f"Archive {path} is not a readable zip archive ({type(e).__name__}: {e}). "
                        "Delete it and download it again.") from e
    with zipfile.ZipFile(path) as archive:
        for info in infos:
            if info.is_dir():
                dirs.append(info.filename)
                continue
            try:
                files.append((info.filename, archive.read(info)))
            except _DECOMPRESSION_ERRORS as e:  # bad CRC-32, damaged deflate stream
                raise DataError(f"Member {info.filename} of the archive {path} is damaged "
                                f"({type(e).__name__}: {e}). Delete the archive and download it again.") from e
    return files, dirs


def archive_members(path):
    """``(files, dirs, digest)`` of a tar (optionally gzipped) or zip archive.

    ``files`` lists ``(member name, bytes)`` in archive order, ``dirs`` the names of the directory
    entries and ``digest`` the sha256 of the archive file. The last four archives read are kept in
    memory (keyed by path, modification time and size).

    Raises:
        DataError: the archive is damaged or not an archive; the message names it (and the member).
    """
    key = _file_key(path)
    cached = _MEMBERS.get(key)
    if cached is not None:
        return cached
    files, dirs = (_zip_members if is_zip_name(path) else _tar_members)(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    result = (files, dirs, digest.hexdigest())
    _MEMBERS.put(key, result)
    return result
