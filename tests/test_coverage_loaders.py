"""Error paths of the real-data loaders, on small files made here (no network, no real data needed)."""
import gzip
import pickle
import struct

import numpy as np
import pytest

from boml.errors import DataError, InvalidArgumentError
from boml.load_data.datasets import load_full_dataset as lfd


def _idx(path, header, payload=b""):
    with open(path, "wb") as f:
        f.write(header + payload)
    return path


def test_mnist_idx_reader_rejects_bad_files(tmp_path):
    good = _idx(str(tmp_path / "ok"), struct.pack(">HBBI", 0, 8, 1, 3), bytes([1, 2, 3]))
    assert lfd._read_idx(good, 1).tolist() == [1, 2, 3]
    with gzip.open(str(tmp_path / "ok.gz"), "wb") as f:
        f.write(struct.pack(">HBBII", 0, 8, 2, 1, 2) + bytes([4, 5]))
    assert lfd._read_idx(str(tmp_path / "ok.gz"), 2).tolist() == [[4, 5]]
    with pytest.raises(DataError, match="too short"):
        lfd._read_idx(_idx(str(tmp_path / "short"), b"\0\0"), 1)
    with pytest.raises(DataError, match="IDX header"):
        lfd._read_idx(_idx(str(tmp_path / "float"), struct.pack(">HBBI", 0, 0x0D, 1, 1), b"\0" * 4), 1)
    with pytest.raises(DataError, match="header says"):
        lfd._read_idx(_idx(str(tmp_path / "truncated"), struct.pack(">HBBI", 0, 8, 1, 5), b"\0\0"), 1)
    with pytest.raises(DataError, match="cannot be read"):
        lfd._read_idx(str(tmp_path / "missing"), 1)
    with open(str(tmp_path / "bad.gz"), "wb") as f:
        f.write(b"\x1f\x8bnot gzip")
    with pytest.raises(DataError, match="cannot be read"):
        lfd._read_idx(str(tmp_path / "bad.gz"), 1)


def _pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)
    return str(path)


def test_mini_imagenet_cache_reader(tmp_path):
    images = np.zeros((4, 2, 2, 3), np.float32)
    images[1] = 1.0
    array, names, indices = lfd._load_mini_cache(_pickle(tmp_path / "a.pkl", {"images": images,
                                                                              "labels": np.array([1, 1, 0, 0])}))
    assert array.dtype == np.uint8 and array[1].max() == 255 and names == ["0", "1"]
    assert [i.tolist() for i in indices] == [[2, 3], [0, 1]]
    np.savez(str(tmp_path / "b.npz"), images=np.zeros((2, 2, 2, 3), np.uint8), labels=np.array([0, 1]))
    assert lfd._load_mini_cache(str(tmp_path / "b.npz"))[1] == ["0", "1"]
    for obj, message in (({"labels": [0]}, "no 'image_data'"),
                         ({"images": np.zeros((2, 2, 2)), "labels": [0, 1]}, "expected \\(n, H, W, 3\\)"),
                         ({"images": np.zeros((2, 2, 2, 3)), "labels": [0]}, "1 labels for 2 images"),
                         ({"images": np.zeros((2, 2, 2, 3))}, "neither 'class_dict' nor 'labels'")):
        with pytest.raises(DataError, match=message):
            lfd._load_mini_cache(_pickle(tmp_path / "bad.pkl", obj))
    with open(str(tmp_path / "corrupt.pkl"), "wb") as f:
        f.write(b"not a pickle")
    with pytest.raises(DataError, match="cannot be read"):
        lfd._load_mini_cache(str(tmp_path / "corrupt.pkl"))


def test_mini_imagenet_h5_reader(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(str(tmp_path / "train.h5"), "w") as f:
        f["X"] = np.arange(1200 * 2 * 2 * 3, dtype=np.int64).reshape(1200, 2, 2, 3) % 256
    images, names, indices = lfd._load_mini_h5(str(tmp_path / "train.h5"))
    assert images.shape == (1200, 2, 2, 3) and names == ["class0", "class1"]
    assert indices[1][0] == 600 and len(indices[1]) == 600


def test_split_csv_reader(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("filename,label\na.jpg,n01\nb.jpg,n02\n")
    assert lfd._read_csv(str(path)) == [("a.jpg", "n01"), ("b.jpg", "n02")]
    path.write_text("a.jpg;n01\n")
    with pytest.raises(DataError, match="expected 'filename,label'"):
        lfd._read_csv(str(path))
    with pytest.raises(DataError, match="cannot be read"):
        lfd._read_csv(str(tmp_path / "missing.csv"))


def test_corrupt_omniglot_archives_are_reported(tmp_path):
    tar = tmp_path / "omniglot.tar.gz"
    tar.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(DataError, match="cannot be read"):
        lfd._index_tar(str(tar), None)
    zipped = tmp_path / "images_background.zip"
    zipped.write_bytes(b"PK garbage")
    with pytest.raises(DataError, match="cannot be read"):
        lfd._index_zip(str(zipped), None)


def test_shot_counts_are_checked():
    with pytest.raises(InvalidArgumentError, match="examples_train must be >= 1"):
        lfd._check_examples(0, 1, 20, "x")
    with pytest.raises(InvalidArgumentError, match="examples_test must be >= 0"):
        lfd._check_examples(1, -1, 20, "x")
    with pytest.raises(DataError):
        lfd._check_examples(15, 10, 20, "Omniglot")
    lfd._check_examples(1, 15, 20, "Omniglot")


def test_h5_layout_without_h5py_says_how_to_install_it(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` fail as if it were not installed
    with pytest.raises(DataError, match="pip install h5py"):
        lfd._load_mini_h5(str(tmp_path / "train.h5"))


def test_lru_cache_bounds_and_disabled_cache():
    cache = lfd._LRUCache(2)
    for key in "abc":
        cache.put(key, key.upper())
    assert len(cache) == 2 and cache.get("a") is None and cache.get("c") == "C"
    disabled = lfd._LRUCache(0)
    disabled.put("a", 1)
    assert len(disabled) == 0 and disabled.get("a") is None


def test_zip_index_is_memoized(tmp_path):
    import zipfile

    path = tmp_path / "images_background.zip"
    with zipfile.ZipFile(str(path), "w") as z:
        z.writestr("images_background/Latin/character01/a.png", b"png bytes")
    first = lfd._index_zip(str(path), None)
    assert list(first) == ["Latin/character01"] and lfd._index_zip(str(path), None) is first


def test_default_folders_follow_datasets_folder(tmp_path, monkeypatch):
    from boml.errors import DataNotFoundError

    monkeypatch.setenv("DATASETS_FOLDER", str(tmp_path))
    with pytest.raises(DataNotFoundError, match=str(tmp_path / "imagenet" / "mini_v3")):
        lfd.meta_mini_imagenet()
    (tmp_path / "miniimagenet").mkdir()
    with pytest.raises(DataError, match=str(tmp_path / "miniimagenet")):
        lfd.meta_mini_imagenet()
    with pytest.raises(DataNotFoundError, match=str(tmp_path / "mnist")):
        lfd.mnist()
