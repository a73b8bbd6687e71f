"""mnist() on the four IDX files (written here in the standard layout), redivide_data, and real MNIST."""
import gzip
import os
import struct

import numpy as np
import pytest

import data_trees
from boml.errors import DataError, DataNotFoundError, InvalidArgumentError
from boml.load_data.datasets import Dataset, mnist, redivide_data


def test_images_and_labels_are_the_files_content(mnist_folder):
    folder, (x_train, y_train, x_test, y_test) = mnist_folder
    m = mnist(folder, validation_size=50)
    assert [d.num_examples for d in m] == [250, 50, 100]
    np.testing.assert_array_equal(m.validation.data, x_train[:50].reshape(50, 784) / np.float32(255))
    np.testing.assert_array_equal(m.train.labels, y_train[50:])
    np.testing.assert_array_equal(m.test.target, np.eye(10, dtype=np.float32)[y_test])
    assert m.train.data.dtype == np.float32 and m.train.dim_data == 784 and m.train.dim_target == 10
    images = mnist(folder, reshape=False, one_hot=False, validation_size=0)
    assert images.validation is None and images.train.data.shape == (300, 28, 28, 1)
    assert images.train.target.dtype == np.int64


def test_uncompressed_and_dotted_file_names_are_read(mnist_folder, tmp_path):
    folder, (x_train, _, _, y_test) = mnist_folder
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in os.listdir(folder):
        base = name[:-3].replace("-idx", ".idx")  # train-images.idx3-ubyte, uncompressed
        (plain / base).write_bytes(gzip.decompress(open(os.path.join(folder, name), "rb").read()))
    m = mnist(str(plain), validation_size=0, one_hot=False)
    np.testing.assert_array_equal(m.train.data[:3], x_train[:3].reshape(3, 784) / np.float32(255))
    np.testing.assert_array_equal(m.test.target, y_test)


def test_filters_maps_and_partitions(mnist_folder):
    folder, (_, y_train, _, _) = mnist_folder
    m = mnist(folder, validation_size=10, filters=lambda x, y: y.argmax(1) < 5)
    assert m.train.labels.max() < 5 and m.train.num_examples + 10 == int((y_train < 5).sum())
    doubled = mnist(folder, validation_size=0, maps=lambda x, y: (x * 2, y))
    assert doubled.train.data.max() > 1.5
    p = mnist(folder, one_hot=False, partitions=[0.5, 0.3], shuffle=True, reshape=False)
    assert [d.num_examples for d in p] == [200, 120, 80]  # all 400 examples redivided
    q = mnist(folder, one_hot=False, partitions=[0.5, 0.3], shuffle=True, reshape=False)
    np.testing.assert_array_equal(p.test.target, q.test.target)  # shuffled with rand=0
    with pytest.raises(InvalidArgumentError, match="boolean mask of shape \\(300,\\)"):
        mnist(folder, filters=lambda x, y: np.ones(3, bool))
    with pytest.raises(InvalidArgumentError, match="validation_size must be in 0..300"):
        mnist(folder, validation_size=301)


def test_redivide_data_merges_all_infos():
    a = Dataset(np.arange(6)[:, None], np.arange(6), info={"a": 1})
    b = Dataset(np.arange(6, 10)[:, None], np.arange(4), info={"b": 2})
    parts = redivide_data([a, b], [0.5, 0.25])
    assert [p.num_examples for p in parts] == [5, 2, 3]
    assert parts[0].info == {"a": 1, "b": 2}  # the original kept only the first dataset's info
    np.testing.assert_array_equal(np.concatenate([p.data for p in parts])[:, 0], np.arange(10))
    shuffled = redivide_data([a, b], [3, 3], shuffle=True, rand=0)
    assert [p.num_examples for p in shuffled] == [3, 3]
    np.testing.assert_array_equal(shuffled[0].data[:, 0], np.arange(10)[np.random.RandomState(0).permutation(10)][:3])
    assert [p.num_examples for p in redivide_data([a, b])] == [6, 4]
    with pytest.raises(InvalidArgumentError, match="summing to <= 1"):
        redivide_data([a, b], [0.8, 0.5])
    with pytest.raises(InvalidArgumentError, match="do not fit 10 examples"):
        redivide_data([a, b], [8, 5])
    with pytest.raises(InvalidArgumentError, match="at least one dataset"):
        redivide_data([None])


def _write(path, payload):
    with gzip.open(path, "wb") as f:
        f.write(payload)


def test_inconsistent_or_damaged_files_are_named(mnist_folder):
    folder, _ = mnist_folder
    labels = os.path.join(folder, "t10k-labels-idx1-ubyte.gz")
    _write(labels, data_trees.idx_bytes(np.arange(11, dtype=np.uint8) % 10))
    with pytest.raises(DataError, match="test images \\(100\\) and labels \\(11\\)"):
        mnist(folder)
    _write(labels, data_trees.idx_bytes(np.full(100, 12, np.uint8)))
    with pytest.raises(DataError, match="go up to 12"):
        mnist(folder)
    _write(labels, struct.pack(">HBBI", 0, 0x0D, 1, 1) + b"\0" * 4)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz has IDX header 00000d01"):
        mnist(folder)
    _write(labels, struct.pack(">HBBI", 0, 8, 1, 5) + b"\0\0")
    with pytest.raises(DataError, match="header says \\(5,\\) = 5 values, found 2 bytes"):
        mnist(folder)
    _write(labels, b"\0\0")
    with pytest.raises(DataError, match="too short"):
        mnist(folder)
    os.remove(labels)
    with pytest.raises(DataNotFoundError, match="t10k-labels-idx1-ubyte.gz .* python -m boml data fetch mnist"):
        mnist(folder)


def test_flipped_bytes_in_a_gzip_name_the_file(mnist_folder):
    folder, _ = mnist_folder
    path = os.path.join(folder, "train-images-idx3-ubyte.gz")
    raw = data_trees.flip_middle_byte(path)
    with pytest.raises(DataError, match="MNIST file .*train-images-idx3-ubyte.gz cannot be read: it is damaged"):
        mnist(folder)
    with open(path, "wb") as f:
        f.write(bytes(raw[: len(raw) // 3]))  # truncated
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz cannot be read: it is damaged"):
        mnist(folder)


def test_real_mnist(real_data):
    m = mnist(real_data("mnist"))
    assert [d.num_examples for d in m] == [55000, 5000, 10000]
    assert m.train.data.shape == (55000, 784) and m.train.data.min() == 0.0 and m.train.data.max() == 1.0
    counts = m.train.target.sum(0) + m.validation.target.sum(0)
    np.testing.assert_array_equal(counts, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    mean = (m.train.data.mean(dtype=np.float64) * 55000 + m.validation.data.mean(dtype=np.float64) * 5000) / 60000
    assert abs(mean - 0.13066) < 1e-3
    np.testing.assert_array_equal(m.test.target.sum(0), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
