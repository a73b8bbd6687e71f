"""meta_mini_imagenet on data in its real layouts (the images themselves cannot be obtained here).

Layouts: class folders ``<split>/<wnid>/*.jpg``, the Ravi & Larochelle CSVs with an ``images/`` folder,
the ``.pkl``/``.npz`` caches and the ``.h5`` files.
"""
import os
import pickle

import numpy as np
import pytest
from PIL import Image

import data_trees
from boml.errors import DataError, DataNotFoundError, InvalidArgumentError
from boml.load_data.datasets import ImageNetMetaDataset, meta_mini_imagenet


def _decoded(path, side):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((side, side), Image.LANCZOS))


def test_class_folders_give_resized_rgb_episodes_from_the_right_files(mini_tree):
    folder, _ = mini_tree
    ds = meta_mini_imagenet(folder, std_num_classes=2, examples_train=1, examples_test=3, resize=16, cache_size=5)
    assert [d.class_names for d in ds] == [data_trees.MINI_CLASSES[s] for s in ("train", "val", "test")]
    assert ds.train.dim_data == (16, 16, 3) and ds.train.dim_target == 2
    episode = ds.train.generate_datasets(rand=0)
    assert episode.train.data.shape == (2, 16, 16, 3) and episode.test.data.shape == (6, 16, 16, 3)
    for image, info in zip(episode.test.data, episode.test.sample_info):
        path = os.path.join(folder, "train", info["name"], f"{info['name']}{info['image_index'] + 1:08d}.jpg")
        np.testing.assert_array_equal(np.round(image * 255).astype(np.uint8), _decoded(path, 16))
    assert not {(i["name"], i["image_index"]) for i in episode.train.sample_info} & \
        {(i["name"], i["image_index"]) for i in episode.test.sample_info}
    for _ in ds.train.generate(5, rand=1):
        pass
    assert ds.train.cache_len == 5  # bounded memory while lazy
    uncached = meta_mini_imagenet(folder, std_num_classes=2, examples_train=1, examples_test=3, resize=16,
                                  cache_size=0)
    np.testing.assert_array_equal(uncached.train.generate_datasets(rand=0).test.data, episode.test.data)
    assert uncached.train.cache_len == 0


def test_eager_and_native_size_loading(mini_tree):
    folder, _ = mini_tree
    lazy = meta_mini_imagenet(folder, std_num_classes=2, examples_train=1, examples_test=3, resize=16)
    eager = meta_mini_imagenet(folder, std_num_classes=2, examples_train=1, examples_test=3, resize=16,
                               load_all_images=True)
    np.testing.assert_array_equal(eager.test.generate_datasets(rand=1).test.data,
                                  lazy.test.generate_datasets(rand=1).test.data)
    native = meta_mini_imagenet(folder, resize=None, std_num_classes=2, examples_train=1, examples_test=1)
    assert native.train.dim_data == (30, 40, 3)


def test_ravi_csv_layout_with_an_images_folder(tmp_path):
    root = data_trees.write_mini_csv_layout(str(tmp_path / "raw"))
    ds = meta_mini_imagenet(root, std_num_classes=2, examples_train=1, examples_test=2, resize=8)
    assert [d.class_names for d in ds] == [data_trees.MINI_CLASSES[s] for s in ("train", "val", "test")]
    assert ds.train.generate_datasets(rand=0).test.data.shape == (4, 8, 8, 3)
    os.remove(os.path.join(root, "images", "n0185567200000002.jpg"))
    with pytest.raises(DataNotFoundError, match="n0185567200000002.jpg \\(class n01855672\\) listed in .*val.csv"):
        meta_mini_imagenet(root)
    with open(os.path.join(root, "test.csv"), "w") as f:
        f.write("a.jpg;n01\n")
    with pytest.raises(DataError, match="expected 'filename,label'"):
        meta_mini_imagenet(root, sub_folders=("test",))


def test_split_csvs_found_in_split_folder(tmp_path):
    root = data_trees.write_mini_csv_layout(str(tmp_path / "raw"))
    splits = tmp_path / "splits"
    splits.mkdir()
    for split in ("train", "val", "test"):
        os.replace(os.path.join(root, f"{split}.csv"), splits / f"{split}.csv")
    ds = meta_mini_imagenet(root, split_folder=str(splits), resize=8)
    assert ds.validation.class_names == data_trees.MINI_CLASSES["val"]


def test_pkl_and_npz_caches(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "train.npz", images=images, labels=np.repeat(["a", "b", "c"], 4))
    with open(tmp_path / "mini-imagenet-cache-val.pkl", "wb") as f:
        pickle.dump({"image_data": images[:8], "class_dict": {"x": list(range(4)), "y": list(range(4, 8))}}, f)
    with open(tmp_path / "test.pkl", "wb") as f:  # float images in [0, 1] and integer labels
        pickle.dump({"images": images[:8] / 255.0, "labels": np.repeat([1, 0], 4)}, f)
    ds = meta_mini_imagenet(str(tmp_path), std_num_classes=2, examples_train=2, examples_test=2, resize=8)
    assert [d.class_names for d in ds] == [["a", "b", "c"], ["x", "y"], ["0", "1"]]
    for c, rows in ((0, range(4, 8)), (1, range(4))):  # class "0" is the last four images
        np.testing.assert_array_equal(ds.test.load_images(c, [0, 1, 2, 3]), images[list(rows)])
    np.testing.assert_array_equal(ds.validation.load_images(1, [0]), images[4:5])


@pytest.mark.parametrize("content,message", [
    ({"labels": [0]}, "no 'image_data'"),
    ({"images": np.zeros((2, 2, 2)), "labels": [0, 1]}, "expected \\(n, H, W, 3\\)"),
    ({"images": np.zeros((2, 2, 2, 3)), "labels": [0]}, "1 labels for 2 images"),
    ({"images": np.zeros((2, 2, 2, 3))}, "neither 'class_dict' nor 'labels'"),
])
def test_bad_caches_are_described(tmp_path, content, message):
    for split in ("train", "val", "test"):
        with open(tmp_path / f"{split}.pkl", "wb") as f:
            pickle.dump(content, f)
    with pytest.raises(DataError, match=message):
        meta_mini_imagenet(str(tmp_path))


def test_an_unreadable_cache_is_named(tmp_path):
    (tmp_path / "train.pkl").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="train.pkl cannot be read"):
        meta_mini_imagenet(str(tmp_path), sub_folders=("train",))


def test_h5_files(tmp_path, monkeypatch):
    import sys

    h5py = pytest.importorskip("h5py")
    with h5py.File(str(tmp_path / "train.h5"), "w") as f:
        f["X"] = (np.arange(1200 * 2 * 2 * 3).reshape(1200, 2, 2, 3) % 256).astype(np.uint8)
    ds = meta_mini_imagenet(str(tmp_path), sub_folders=("train",), h5=True, resize=None)
    assert ds.train.class_names == ["class0", "class1"] and ds.train.class_size(1) == 600
    expected = (np.arange(600 * 12, 601 * 12) % 256).reshape(2, 2, 3)  # image 600 = the first of class 1
    np.testing.assert_array_equal(ds.train.load_images(1, [0])[0], expected)
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if h5py were not installed
    with pytest.raises(DataError, match="pip install h5py"):
        meta_mini_imagenet(str(tmp_path), sub_folders=("train",), h5=True)


def test_damaged_or_odd_images_fail_at_load(mini_tree):
    folder, _ = mini_tree
    bad = os.path.join(folder, "test", "n01930112", "n0193011200000003.jpg")
    with open(bad, "wb") as f:
        f.write(b"not a jpeg")
    with pytest.raises(DataError, match="n0193011200000003.jpg cannot be decoded"):
        meta_mini_imagenet(folder, resize=8)  # a *test* image: found before any training
    lazy = meta_mini_imagenet(folder, resize=8, std_num_classes=3, examples_train=2, examples_test=4, validate=False)
    with pytest.raises(DataError, match="cannot be decoded"):
        lazy.test.generate_datasets(rand=0)
    Image.fromarray(data_trees.mini_image(0, size=(20, 20))).save(bad, format="JPEG")
    with pytest.raises(DataError, match="n0193011200000003.jpg is 20x20, but .* is 40x30"):
        meta_mini_imagenet(folder, resize=None)
    assert meta_mini_imagenet(folder, resize=8).test.dim_data == (8, 8, 3)  # resized: any size is fine


def test_missing_and_empty_parts_are_named(mini_tree, tmp_path):
    folder, _ = mini_tree
    with pytest.raises(DataError, match="examples_train=5 \\+ examples_test=2"):
        meta_mini_imagenet(folder, std_num_classes=2, examples_train=5, examples_test=2)
    with pytest.raises(DataNotFoundError, match="split 'nosplit' not found"):
        meta_mini_imagenet(folder, sub_folders=("train", "nosplit"))
    os.makedirs(os.path.join(folder, "val", "n99999999"))
    with pytest.raises(DataError, match="n99999999 has no images"):
        meta_mini_imagenet(folder)
    with pytest.raises(InvalidArgumentError, match="exactly one of"):
        ImageNetMetaDataset(class_files=[["a"]], array=np.zeros((1, 2, 2, 3), np.uint8))
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(DataNotFoundError, match="is not a folder"):
        meta_mini_imagenet(str(tmp_path / "a_file"))


def test_real_split_csvs_name_the_first_missing_image(real_data, tmp_path):
    splits = real_data("miniimagenet_splits")
    (tmp_path / "images").mkdir()
    with pytest.raises(DataNotFoundError, match="n0153282900000005.jpg \\(class n01532829\\)"):
        meta_mini_imagenet(str(tmp_path), split_folder=splits)
