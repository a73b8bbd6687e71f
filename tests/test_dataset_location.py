"""Where boml looks for each dataset (locate_dataset), what it says when nothing is there, and --download."""
import hashlib
import os

import pytest

import data_trees
from boml.errors import InvalidArgumentError, MissingDataError
from boml.load_data.datasets import downloads, meta_mini_imagenet, mnist
from boml.load_data.datasets.downloads import RemoteFile, dataset_folder, default_datasets_folder, locate_dataset


def test_default_datasets_folder_is_the_environment_variable_else_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DATASETS_FOLDER", str(tmp_path / "mine"))
    assert default_datasets_folder() == str(tmp_path / "mine")
    assert dataset_folder("omniglot") == str(tmp_path / "mine" / "omniglot")
    assert dataset_folder("splits", root="/r") == os.path.join("/r", "miniimagenet")
    monkeypatch.delenv("DATASETS_FOLDER")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_datasets_folder() == str(tmp_path / "home" / ".boml" / "datasets")


def test_each_dataset_is_found_in_its_sub_folders_in_order(empty_datasets_folder, omniglot_zips):
    root = empty_datasets_folder
    os.makedirs(os.path.join(root, "imagenet", "mini_v3", "train"))
    for split in ("val", "test"):
        open(os.path.join(root, "imagenet", "mini_v3", f"{split}.csv"), "w").close()
    assert locate_dataset("miniimagenet") == os.path.join(root, "imagenet", "mini_v3")
    data_trees.write_omniglot_tar(os.path.join(root, "omniglot_resized.tar.gz"))
    assert locate_dataset("omniglot") == os.path.join(root, "omniglot_resized.tar.gz")
    data_trees.write_omniglot_tree(os.path.join(root, "omniglot_resized"))
    assert locate_dataset("omniglot") == os.path.join(root, "omniglot_resized")
    data_trees.write_official_zips(os.path.join(root, "omniglot"))
    assert locate_dataset("omniglot") == os.path.join(root, "omniglot")  # where `data fetch` puts it
    data_trees.write_mnist(os.path.join(root, "mnist_data"), n_train=10, n_test=10)
    assert locate_dataset("mnist") == os.path.join(root, "mnist_data")
    with pytest.raises(InvalidArgumentError, match="Unknown dataset 'cifar'"):
        locate_dataset("cifar")


def test_an_explicit_folder_is_used_as_given(tmp_path):
    assert locate_dataset("omniglot", str(tmp_path)) == str(tmp_path)  # its content is the loader's business
    with pytest.raises(MissingDataError, match="does not exist"):
        locate_dataset("mnist", str(tmp_path / "nope"))


def test_incomplete_downloads_are_not_taken_for_data(empty_datasets_folder):
    root = empty_datasets_folder
    os.makedirs(os.path.join(root, "omniglot"))
    open(os.path.join(root, "omniglot", "images_background.zip"), "wb").close()
    open(os.path.join(root, "omniglot", "images_evaluation.zip.part"), "wb").close()
    with pytest.raises(MissingDataError, match="images_evaluation.zip missing"):
        locate_dataset("omniglot")
    data_trees.write_mnist(os.path.join(root, "mnist"), n_train=10, n_test=10)
    os.remove(os.path.join(root, "mnist", "t10k-labels-idx1-ubyte.gz"))
    with pytest.raises(MissingDataError, match="t10k-labels-idx1-ubyte.gz missing") as error:
        mnist()
    assert str(error.value).endswith("Run: python -m boml data fetch mnist")


def test_mini_imagenet_cannot_be_downloaded_and_the_message_gives_the_layout(empty_datasets_folder):
    for download in (False, True):
        with pytest.raises(MissingDataError) as error:
            locate_dataset("miniimagenet", download=download)
        message = str(error.value)
        assert "cannot download Mini-ImageNet" in message and "train/<wnid>/*.jpg" in message
        assert os.path.join(empty_datasets_folder, "miniimagenet") in message and "--data_folder" in message
    with pytest.raises(MissingDataError, match="imagenet/mini_v3"):
        meta_mini_imagenet()
    with pytest.raises(MissingDataError, match="cannot download Mini-ImageNet"):
        meta_mini_imagenet(download=True)


def _serve_mnist(tmp_path, monkeypatch):
    source = tmp_path / "mirror"
    data_trees.write_mnist(str(source), n_train=20, n_test=10)
    files = tuple(RemoteFile(f.name, ((source / f.name).as_uri(),), hashlib.sha256((source / f.name).read_bytes())
                             .hexdigest(), (source / f.name).stat().st_size) for f in downloads.MNIST_FILES)
    monkeypatch.setitem(downloads._FETCH_FILES, "mnist", files)


def test_download_true_fetches_into_the_default_or_the_given_folder(empty_datasets_folder, tmp_path, monkeypatch):
    _serve_mnist(tmp_path, monkeypatch)
    logged = []
    assert locate_dataset("mnist", download=True, log=logged.append) == os.path.join(empty_datasets_folder, "mnist")
    assert len(logged) == 4 and all("downloaded, sha256 verified" in m for m in logged)
    data = mnist(download=True, validation_size=5)
    assert [d.num_examples for d in data] == [15, 5, 10]
    target = tmp_path / "elsewhere" / "mnist"
    assert mnist(str(target), download=True, validation_size=0).train.num_examples == 20
    assert sorted(os.listdir(target)) == sorted(f.name for f in downloads.MNIST_FILES)
    afile = tmp_path / "a_file"
    afile.write_text("x")
    with pytest.raises(MissingDataError, match="it is a file"):
        locate_dataset("mnist", str(afile), download=True)


def test_download_true_completes_a_partial_omniglot(empty_datasets_folder, tmp_path, monkeypatch):
    source = tmp_path / "upstream"
    data_trees.write_official_zips(str(source))
    files = tuple(RemoteFile(n, ((source / n).as_uri(),), hashlib.sha256((source / n).read_bytes()).hexdigest(),
                             (source / n).stat().st_size) for n in ("images_background.zip", "images_evaluation.zip"))
    monkeypatch.setitem(downloads._FETCH_FILES, "omniglot", files)
    target = os.path.join(empty_datasets_folder, "omniglot")
    os.makedirs(target)
    with open(os.path.join(target, "images_background.zip"), "wb") as f:
        f.write((source / "images_background.zip").read_bytes())
    logged = []
    assert locate_dataset("omniglot", download=True, log=logged.append) == target
    assert logged[0].endswith("images_background.zip: present, sha256 verified")
    assert logged[1].endswith("images_evaluation.zip: downloaded, sha256 verified")
