"""Downloads, against a small HTTP server on 127.0.0.1 started by the tests (and file:// URLs).

The server serves generated files, honours ``Range`` requests and can misbehave on demand: cut the
connection half-way, ignore ``Range``, answer 404, or never answer (bounded: it gives up after a few
seconds, and is shut down with the test). No test uses the real network.
"""
import gzip
import hashlib
import http.server
import os
import socket
import threading

import pytest

from boml.errors import ChecksumMismatchError, DataError, DownloadError
from boml.load_data.datasets import downloads
from boml.load_data.datasets.downloads import RemoteFile, download_file, fetch, verify_files


class _Handler(http.server.BaseHTTPRequestHandler):
    timeout = 10  # seconds a connection may stay silent (bounds every handler thread)

    def do_GET(self):  # noqa: N802 (http.server's name)
        server = self.server
        name = self.path.lstrip("/")
        server.requests.append((name, self.headers.get("Range")))
        behaviour = server.behaviour.get(name, ["ok"])
        mode = behaviour.pop(0) if len(behaviour) > 1 else behaviour[0]
        if mode == "404" or name not in server.files:
            self.send_error(404)
            return
        if mode == "hang":
            server.release.wait(5)
            return
        data = server.files[name]
        start = 0
        asked = self.headers.get("Range")
        if asked and mode != "ignore_range":
            start = int(asked.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "cut":  # half of the body, then the connection drops
            body = body[: len(body) // 2]
            self.close_connection = True
        # Counted before the write: the client may finish reading, and the test read ``sent``, before this
        # handler thread runs again.
        server.sent[name] = server.sent.get(name, 0) + len(body)
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_files():
    """A threaded HTTP server on 127.0.0.1; ``.files[name] = bytes``, ``.behaviour[name] = [modes...]``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.files, server.behaviour, server.requests, server.sent = {}, {}, [], {}
    server.release = threading.Event()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def _remote(server, name, data, mirrors=()):
    server.files[name] = data
    return RemoteFile(name, tuple(mirrors) + (server.url + name,), hashlib.sha256(data).hexdigest(), len(data))


def _payload(n, seed=0):
    return bytes((i * 31 + seed) % 251 for i in range(n))


# ============================================================================ fetch
def test_fetch_downloads_verifies_and_draws_a_progress_bar(http_files, tmp_path, monkeypatch, capsys):
    files = (_remote(http_files, "a.bin", _payload(300_000)), _remote(http_files, "b.bin", _payload(1000, 1)))
    monkeypatch.setitem(downloads._FETCH_FILES, "mnist", files)
    folder = fetch("mnist", root=str(tmp_path), log=lambda *_: None)
    assert folder == str(tmp_path / "mnist")
    assert (tmp_path / "mnist" / "a.bin").read_bytes() == http_files.files["a.bin"]
    assert (tmp_path / "mnist" / "b.bin").read_bytes() == http_files.files["b.bin"]
    assert not any(name.endswith(".part") for name in os.listdir(folder))
    err = capsys.readouterr().err
    assert "a.bin [" + "#" * 30 + "] 100.0%" in err and "0.3/0.3 MB" in err
    assert verify_files("mnist", folder) == [("a.bin", "ok"), ("b.bin", "ok")]
    count = len(http_files.requests)
    messages = []
    fetch("mnist", root=str(tmp_path), log=messages.append)  # everything verified: nothing downloaded
    assert len(http_files.requests) == count and all("present, sha256 verified" in m for m in messages)


def test_interrupted_download_resumes_with_a_range_request(http_files, tmp_path, monkeypatch):
    data = _payload(200_000)
    files = (_remote(http_files, "big.bin", data),)
    http_files.behaviour["big.bin"] = ["cut", "ok"]
    monkeypatch.setitem(downloads._FETCH_FILES, "omniglot", files)
    with pytest.raises(DownloadError, match="running again resumes it") as error:
        fetch("omniglot", root=str(tmp_path), progress=False, log=lambda *_: None)
    assert "To install omniglot by hand" in str(error.value) and http_files.url + "big.bin" in str(error.value)
    part = tmp_path / "omniglot" / "big.bin.part"
    kept = part.stat().st_size
    assert kept == len(data) // 2 and verify_files("omniglot", str(tmp_path / "omniglot")) == [("big.bin", "partial")]
    fetch("omniglot", root=str(tmp_path), progress=False, log=lambda *_: None)
    assert (tmp_path / "omniglot" / "big.bin").read_bytes() == data and not part.exists()
    assert http_files.requests[-1] == ("big.bin", f"bytes={kept}-")
    assert http_files.sent["big.bin"] == len(data)  # half, then the other half: nothing sent twice


def test_a_server_that_ignores_range_sends_the_whole_file_again(http_files, tmp_path):
    data = _payload(50_000)
    remote = _remote(http_files, "f.bin", data)
    http_files.behaviour["f.bin"] = ["ignore_range"]
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(b"stale bytes from another attempt")
    download_file(remote.urls, str(dest), sha256=remote.sha256, progress=False)
    assert dest.read_bytes() == data


def test_checksum_mismatch_removes_the_file_and_says_so(http_files, tmp_path, monkeypatch):
    remote = _remote(http_files, "c.bin", _payload(5000))
    wrong = RemoteFile("c.bin", remote.urls, "0" * 64, remote.size)
    monkeypatch.setitem(downloads._FETCH_FILES, "splits", (wrong,))
    with pytest.raises(ChecksumMismatchError, match="Checksum mismatch.*expected 0{64}") as error:
        fetch("splits", root=str(tmp_path), progress=False)
    assert "To install splits by hand" in str(error.value)
    assert os.listdir(tmp_path / "miniimagenet") == []  # neither the file nor a .part is left
    with pytest.raises(ChecksumMismatchError):
        download_file(remote.urls, str(tmp_path / "d.bin"), md5="0" * 32, progress=False)


def test_timeout_gives_the_manual_steps(http_files, tmp_path, monkeypatch):
    remote = _remote(http_files, "slow.bin", _payload(100))
    http_files.behaviour["slow.bin"] = ["hang"]
    monkeypatch.setitem(downloads._FETCH_FILES, "mnist", (remote,))
    with pytest.raises(DownloadError, match="timed out") as error:
        fetch("mnist", root=str(tmp_path), timeout=0.3, progress=False)
    message = str(error.value)
    assert "(no network?)" in message and str(tmp_path / "mnist") in message and remote.sha256 in message
    assert message.endswith("then check them with: python -m boml data check")


def test_unreachable_host_and_missing_mirror(http_files, tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/x.bin"
    with pytest.raises(DownloadError, match="Could not download x.bin: .*refused"):
        download_file(closed, str(tmp_path / "x.bin"), progress=False, timeout=2)
    assert not (tmp_path / "x.bin.part").exists()
    remote = _remote(http_files, "m.bin", _payload(3000), mirrors=("http://127.0.0.1:9/m.bin",))
    http_files.behaviour["missing.bin"] = ["404"]
    urls = (http_files.url + "missing.bin",) + remote.urls  # a 404 mirror, a dead one, then a good one
    assert download_file(urls, str(tmp_path / "m.bin"), sha256=remote.sha256, progress=False, timeout=2)
    assert (tmp_path / "m.bin").read_bytes() == http_files.files["m.bin"]


def test_a_complete_part_file_is_verified_without_downloading_again(http_files, tmp_path):
    data = _payload(4000)
    remote = _remote(http_files, "done.bin", data)
    (tmp_path / "done.bin.part").write_bytes(data)
    download_file(remote.urls, str(tmp_path / "done.bin"), sha256=remote.sha256, progress=False)  # server: 416
    assert (tmp_path / "done.bin").read_bytes() == data and http_files.sent.get("done.bin", 0) == 0


def test_file_urls_and_the_verified_copy_is_reused(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(_payload(10_000))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    dest = tmp_path / "out" / "copy.bin"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "copy.bin.part").write_bytes(b"partial")  # file:// ignores Range: a fresh copy
    assert download_file(source.as_uri(), str(dest), sha256=digest, progress=False) == str(dest)
    assert dest.read_bytes() == source.read_bytes()
    source.unlink()
    assert download_file(source.as_uri(), str(dest), sha256=digest, progress=False) == str(dest)  # no fetch
    with pytest.raises(DownloadError, match="No such file"):
        download_file(source.as_uri(), str(tmp_path / "other.bin"), progress=False)


def test_a_corrupt_file_in_place_is_not_overwritten_silently(tmp_path, monkeypatch):
    source = tmp_path / "good.bin"
    source.write_bytes(b"good")
    remote = RemoteFile("good.bin", (source.as_uri(),), hashlib.sha256(b"good").hexdigest(), 4)
    monkeypatch.setitem(downloads._FETCH_FILES, "mnist", (remote,))
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "good.bin").write_bytes(b"evil")
    with pytest.raises(DataError, match="is not the published file.*Delete it"):
        fetch("mnist", root=str(tmp_path), progress=False)
    assert verify_files("mnist", str(tmp_path / "mnist"))[0][1].startswith("corrupt: sha256")


def test_a_recompressed_gzip_is_accepted_by_its_content_checksum(tmp_path, monkeypatch):
    content = _payload(20_000)
    original = gzip.compress(content, compresslevel=1, mtime=0)
    recompressed = gzip.compress(content, compresslevel=9, mtime=0)
    assert original != recompressed
    source = tmp_path / "mirror.gz"
    source.write_bytes(recompressed)
    remote = RemoteFile("x.gz", (source.as_uri(),), hashlib.sha256(original).hexdigest(), len(original),
                        content_sha256=hashlib.sha256(content).hexdigest())
    monkeypatch.setitem(downloads._FETCH_FILES, "mnist", (remote,))
    fetch("mnist", root=str(tmp_path / "data"), progress=False, log=lambda *_: None)
    assert gzip.decompress((tmp_path / "data" / "mnist" / "x.gz").read_bytes()) == content
    other = RemoteFile("x.gz", remote.urls, remote.sha256, remote.size, content_sha256="0" * 64)
    monkeypatch.setitem(downloads._FETCH_FILES, "mnist", (other,))
    assert verify_files("mnist", str(tmp_path / "data" / "mnist"))[0][1].startswith("corrupt")


def test_real_mnist_files_have_the_published_content_checksums(real_data):
    folder = real_data("mnist")
    assert verify_files("mnist", folder) == [(f.name, "ok") for f in downloads.MNIST_FILES]


def test_real_mini_imagenet_split_csvs_are_the_published_files(real_data):
    folder = real_data("miniimagenet_splits", "miniimagenet")
    assert verify_files("splits", folder) == [(f.name, "ok") for f in downloads.MINIIMAGENET_SPLIT_FILES]
