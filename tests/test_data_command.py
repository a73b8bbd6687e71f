"""``python -m boml data fetch|check``: parsing, output, exit status; the command imports no TensorFlow."""
import argparse
import hashlib
import os
import subprocess
import sys

import pytest

import data_trees
from boml.data_command import add_data_parser, run_data_command
from boml.load_data.datasets import downloads
from boml.load_data.datasets.downloads import RemoteFile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def _run(argv):
    parser = argparse.ArgumentParser(prog="boml")
    add_data_parser(parser.add_subparsers(dest="command"))
    return run_data_command(parser.parse_args(["data"] + argv))


def _serve(tmp_path, monkeypatch, name, writer, file_names):
    source = tmp_path / f"upstream_{name}"
    writer(str(source))
    files = tuple(RemoteFile(n, ((source / n).as_uri(),), hashlib.sha256((source / n).read_bytes()).hexdigest(),
                             (source / n).stat().st_size) for n in file_names)
    monkeypatch.setitem(downloads._FETCH_FILES, name, files)


def test_fetch_then_check(tmp_path, monkeypatch, capsys):
    _serve(tmp_path, monkeypatch, "mnist", lambda d: data_trees.write_mnist(d, 20, 10),
           [f.name for f in downloads.MNIST_FILES])
    root = tmp_path / "datasets"
    assert _run(["fetch", "mnist", "--folder", str(root), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"MNIST: ready in {root / 'mnist'}" in out and f"DATASETS_FOLDER={root}" in out
    assert _run(["check", "--folder", str(root)]) == 0  # missing datasets are listed, not failures
    out = capsys.readouterr().out
    assert f"MNIST: present at {root / 'mnist'}" in out and "train-images-idx3-ubyte.gz: ok" in out
    assert "Omniglot: MISSING (get it: python -m boml data fetch omniglot)" in out
    assert "Mini-ImageNet: MISSING (cannot be downloaded" in out
    assert "Omniglot Vinyals split shipped with boml" in out
    assert "Mini-ImageNet split CSVs" in out and "get them: python -m boml data fetch splits" in out
    assert _run(["check", "omniglot", "--folder", str(root)]) == 1  # a dataset asked for and missing
    capsys.readouterr()
    with open(root / "mnist" / "t10k-labels-idx1-ubyte.gz", "ab") as f:
        f.write(b"extra bytes")
    assert _run(["check", "mnist", "--folder", str(root)]) == 1
    assert "t10k-labels-idx1-ubyte.gz: corrupt: sha256" in capsys.readouterr().out


def test_fetch_splits_and_check_them(tmp_path, monkeypatch, capsys):
    def write_csvs(folder):
        os.makedirs(folder)
        for split in ("train", "val", "test"):
            with open(os.path.join(folder, f"{split}.csv"), "w") as f:
                f.write(f"filename,label\nn0{split}00000001.jpg,n0{split}\n")

    _serve(tmp_path, monkeypatch, "splits", write_csvs, ["train.csv", "val.csv", "test.csv"])
    assert _run(["fetch", "splits", "--folder", str(tmp_path / "d"), "--no-progress"]) == 0
    capsys.readouterr()
    assert _run(["check", "splits", "--folder", str(tmp_path / "d")]) == 0
    assert "train.csv, val.csv, test.csv verified" in capsys.readouterr().out


def test_offline_fetch_prints_the_manual_steps_and_fails(tmp_path, monkeypatch, capsys):
    dead = RemoteFile("images_background.zip", ((tmp_path / "nowhere.zip").as_uri(),), "0" * 64, 10)
    monkeypatch.setitem(downloads._FETCH_FILES, "omniglot", (dead,))
    assert _run(["fetch", "omniglot", "--folder", str(tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("boml data: error: DownloadError: Could not download images_background.zip")
    assert f"download these files (with a browser or curl) into {tmp_path / 'omniglot'}" in err


def test_unknown_names_are_refused_by_the_parser(capsys):
    for argv in (["fetch", "miniimagenet"], ["check", "cifar"], ["fetch"]):
        with pytest.raises(SystemExit) as exit_info:
            _run(argv)
        assert exit_info.value.code == 2
    assert "invalid choice: 'cifar'" in capsys.readouterr().err


def test_the_data_layer_and_the_command_import_no_tensorflow():
    # boml/__init__.py and boml/load_data/__init__.py build the TensorFlow facade; they are replaced by bare
    # packages here, so this checks what the data command itself imports.
    code = f"""
import sys, types
for name, path in (("boml", {os.path.join(ROOT, "boml")!r}),
                   ("boml.load_data", {os.path.join(ROOT, "boml", "load_data")!r})):
    module = types.ModuleType(name)
    module.__path__ = [path]
    sys.modules[name] = module
import boml.data_command, boml.load_data.datasets
from boml.load_data.datasets import meta_omniglot, mnist, meta_mini_imagenet, fetch, locate_dataset
print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_python_m_boml_data_check(tmp_path):
    data_trees.write_omniglot_tree(str(tmp_path / "omniglot_resized"))
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "CI": ""}
    result = subprocess.run([sys.executable, "-m", "boml", "data", "check", "omniglot", "--folder", str(tmp_path)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    assert f"Omniglot: present at {tmp_path / 'omniglot_resized'}" in result.stdout
