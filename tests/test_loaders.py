"""Tests of the real-data loaders: Omniglot, Mini-ImageNet (synthetic image tree) and MNIST.

Real-data tests use the ``shared_data`` fixture (../shared/data) and stay fast by reading the
Omniglot archive once per process (memoised) and decoding only the images they sample.
No test touches the network: downloads are exercised with ``file://`` URLs.
"""
import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from boml.errors import DataError, DataNotFoundError, InvalidArgumentError
from boml.load_data.datasets import (
    Dataset,
    Datasets,
    ImageNetMetaDataset,
    OmniglotMetaDataset,
    download_file,
    meta_mini_imagenet,
    meta_omniglot,
    mnist,
    redivide_data,
)
from boml.load_data.datasets import downloads
from boml.load_data.datasets import load_full_dataset as lfd


def _tar(shared):
    return os.path.join(shared, "omniglot_resized", "omniglot_resized.tar.gz")


# ============================================================================ omniglot, real data
def test_omniglot_archive_original_split(shared_data):
    t = time.time()
    ds = meta_omniglot(_tar(shared_data), std_num_classes=5, examples_train=1, examples_test=15)
    assert time.time() - t < 10
    assert [len(d.characters) for d in ds] == [1200, 100, 323]
    assert [d.n_total_classes for d in ds] == [4800, 400, 1292]  # x4 rotations
    chars = [set(d.characters) for d in ds]
    assert not (chars[0] & chars[1] or chars[0] & chars[2] or chars[1] & chars[2])
    # the split is: sorted class names, shuffled by RandomState(_rand=0), cut at 1200/1300
    names = sorted(chars[0] | chars[1] | chars[2])
    np.random.RandomState(0).shuffle(names)
    assert ds.train.characters == names[:1200] and ds.test.characters == names[1300:]
    other = meta_omniglot(_tar(shared_data), _rand=1)
    assert other.train.characters != ds.train.characters
    assert ds.train.dim_data == (28, 28, 1) and ds.train.dim_target == 5

    ep = ds.train.generate_datasets(rand=0)
    assert ep.train.data.shape == (5, 28, 28, 1) and ep.test.data.shape == (75, 28, 28, 1)
    assert ep.train.data.dtype == np.float32
    assert set(np.unique(ep.test.data)) <= {0.0, 1.0}  # binary strokes, exact rotations
    ink = ep.test.data.mean()
    assert 0.03 < ink < 0.2  # ~8.5% ink pixels (ink = 1), not the near-constant images of the bug
    np.testing.assert_array_equal(ep.test.target.sum(0), [15] * 5)
    sup = {(i["name"], i["image_index"]) for i in ep.train.sample_info}
    que = {(i["name"], i["image_index"]) for i in ep.test.sample_info}
    assert not sup & que
    # only the sampled characters were decoded, as uint8 (20 x 28 x 28 bytes each)
    assert all(a.dtype == np.uint8 and a.shape == (20, 28, 28) for a in ds.train._decoded.values())
    assert ds.train.nbytes <= 5 * 20 * 28 * 28


def test_omniglot_vinyals_and_lake_splits(shared_data):
    ds = meta_omniglot(os.path.join(shared_data, "omniglot_resized"), split="vinyals", rotations=None)
    assert [len(d.characters) for d in ds] == [1028, 172, 423]
    assert [d.n_total_classes for d in ds] == [1028, 172, 423]
    lake = meta_omniglot(shared_data, split="lake", rotations=None)
    assert len(lake.train.characters) == 964 and lake.validation is None and len(lake.test.characters) == 659
    with pytest.raises(DataNotFoundError, match="split_folder"):
        meta_omniglot(_tar(shared_data), split="vinyals", split_folder=str(shared_data) + "/nowhere")
    with pytest.raises(InvalidArgumentError):
        meta_omniglot(_tar(shared_data), split="bogus")


def test_omniglot_rotations_are_exact_and_labelled(shared_data):
    ds = meta_omniglot(_tar(shared_data), rotations=(0, 90, 180, 270))
    tr = ds.train
    base = tr.load_images(0, np.arange(3))
    assert tr.class_names[:4] == [f"{tr.characters[0]}/rot_{a}" for a in (0, 90, 180, 270)]
    for r, angle in enumerate((0, 90, 180, 270)):
        np.testing.assert_array_equal(tr.load_images(r, np.arange(3)),
                                      np.rot90(base, k=angle // 90, axes=(1, 2)))
    assert not np.array_equal(tr.load_images(1, [0]), tr.load_images(3, [0]))
    with pytest.raises(InvalidArgumentError):
        meta_omniglot(_tar(shared_data), rotations=(0, 45))


def test_omniglot_png_decoding_handles_one_bit_images(shared_data):
    files = lfd._index_tar(_tar(shared_data), None)
    src, png = files["Greek/character01"][0]
    im = Image.open(io.BytesIO(png))
    assert im.mode == "1"
    naive = np.asarray(im)
    assert naive.dtype == np.bool_  # the pitfall: `1 - naive / 255` would be ~constant
    img = lfd.decode_omniglot_png(png, src)
    assert img.dtype == np.uint8 and img.shape == (28, 28)
    assert set(np.unique(img)) == {0, 255}
    np.testing.assert_array_equal(img == 255, ~naive)  # black strokes (False) are ink


def test_omniglot_official_zips_resize_like_the_standard_set(shared_data):
    small = os.path.join(shared_data, "omniglot_original_small")
    zips = meta_omniglot(small, rotations=None, alphabets=["Greek"], n_splits=(0, 24, 24, 24))
    ref = lfd._index_tar(_tar(shared_data), None)
    tr = zips.train
    for c, name in list(enumerate(tr.characters))[:4]:
        expected = np.stack([lfd.decode_omniglot_png(b) for _, b in ref[name]])[..., None]
        np.testing.assert_array_equal(tr.load_images(c, np.arange(20)), expected)
    # both small zips hold Greek: drawings are merged, not duplicated
    assert all(tr.class_size(c) == 20 for c in range(tr.n_total_classes))


# ========================================================================= omniglot, local trees
def _png(rng, size=28, mode="1"):
    arr = np.full((size, size), 255, np.uint8)
    r = rng.integers(2, size - 8)
    arr[r:r + 3, 2:size - 2] = 0  # a horizontal stroke at a random height
    arr[2:size - 2, r:r + 2] = 0
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


def _omniglot_tree(root, n_alpha=2, n_char=3, n_img=6, seed=0):
    rng = np.random.default_rng(seed)
    for a in range(n_alpha):
        for c in range(n_char):
            d = os.path.join(root, f"Alpha{a}", f"character{c + 1:02d}")
            os.makedirs(d)
            for i in range(n_img):
                with open(os.path.join(d, f"{a}{c}_{i + 1:02d}.png"), "wb") as f:
                    f.write(_png(rng))
    return root


def test_omniglot_folder_tar_and_env_default_agree(tmp_path, monkeypatch):
    root = _omniglot_tree(str(tmp_path / "omniglot_resized"))
    by_dir = meta_omniglot(root, std_num_classes=2, examples_train=2, examples_test=3, n_splits=(0, 4, 5, 6))
    arc = str(tmp_path / "o.tar.gz")
    with tarfile.open(arc, "w:gz") as t:
        t.add(root, arcname="omniglot_resized")
    by_tar = meta_omniglot(arc, std_num_classes=2, examples_train=2, examples_test=3, n_splits=(0, 4, 5, 6))
    monkeypatch.setenv("DATASETS_FOLDER", str(tmp_path))
    by_env = meta_omniglot(std_num_classes=2, examples_train=2, examples_test=3, n_splits=(0, 4, 5, 6))
    assert by_dir.train.characters == by_tar.train.characters == by_env.train.characters
    e1, e2 = by_dir.train.generate_datasets(rand=3), by_tar.train.generate_datasets(rand=3)
    np.testing.assert_array_equal(e1.test.data, e2.test.data)
    assert e1.train.data.shape == (4, 28, 28, 1) and e1.test.data.shape == (6, 28, 28, 1)
    assert e1.train.data.max() == 1.0 and e1.train.data.mean() < 0.5  # ink = 1 on a 0 background


def test_omniglot_errors(tmp_path, monkeypatch):
    with pytest.raises(DataNotFoundError, match="nope"):
        meta_omniglot(str(tmp_path / "nope"))
    monkeypatch.setenv("DATASETS_FOLDER", str(tmp_path / "empty"))
    with pytest.raises(DataNotFoundError, match="download=True"):
        meta_omniglot()

    root = _omniglot_tree(str(tmp_path / "o"), n_img=4)
    with pytest.raises(DataError, match="examples_train=3"):
        meta_omniglot(root, std_num_classes=2, examples_train=3, examples_test=2)
    with pytest.raises(InvalidArgumentError, match="n_splits"):
        meta_omniglot(root, n_splits=(0, 5, 3, 6))

    bad = os.path.join(root, "Alpha0", "character01", "00_01.png")
    with open(bad, "wb") as f:
        f.write(b"\x89PNG not really")
    with pytest.raises(DataError, match="00_01.png"):
        meta_omniglot(root, load_all_images=True)
    lazy = meta_omniglot(root, rotations=None, n_splits=(0, 6, 6, 6), std_num_classes=6, examples_train=1,
                         examples_test=3)
    with pytest.raises(DataError, match="cannot be decoded"):
        lazy.train.generate_datasets(rand=0)

    rng = np.random.default_rng(0)
    with open(bad, "wb") as f:
        f.write(_png(rng, size=30))
    with pytest.raises(DataError, match="30x30"):
        meta_omniglot(root, load_all_images=True)

    os.makedirs(os.path.join(root, "Alpha1", "character09"))
    with pytest.raises(DataError, match="Alpha1/character09"):
        meta_omniglot(root)
    with pytest.raises(DataError, match="neither"):
        open(str(tmp_path / "x.txt"), "w").close()
        meta_omniglot(str(tmp_path / "x.txt"))


def test_omniglot_meta_dataset_direct_and_grayscale(tmp_path):
    root = _omniglot_tree(str(tmp_path / "o"), n_alpha=1, n_char=2, n_img=3)
    # a grayscale ("L") PNG decodes the same way: dark = ink
    rng = np.random.default_rng(1)
    with open(os.path.join(root, "Alpha0", "character01", "00_01.png"), "wb") as f:
        f.write(_png(rng, mode="L"))
    md = OmniglotMetaDataset(info={"base_folder": root}, rotations=None, num_classes=2, num_examples=(2, 2))
    assert md.class_names == ["Alpha0/character01", "Alpha0/character02"]
    img = md.load_images(0, [0])
    assert img.dtype == np.uint8 and set(np.unique(img)) == {0, 255}
    with pytest.raises(DataError, match="not in the data"):
        OmniglotMetaDataset(info={"base_folder": root, "classes": ["Zeta/character01"]})


# ================================================================================== downloads
def test_download_file_checksums_and_cache(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"omniglot" * 100)
    good = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = str(tmp_path / "cache" / "a.bin")
    with pytest.raises(DataError, match="Checksum mismatch"):
        download_file(src.as_uri(), dest, sha256="0" * 64, progress=False)
    assert not os.path.exists(dest) and not os.path.exists(dest + ".part")
    assert download_file(src.as_uri(), dest, sha256=good, progress=False) == dest
    src.unlink()  # the cached, verified copy is reused without fetching
    assert download_file(src.as_uri(), dest, sha256=good, progress=False) == dest
    with pytest.raises(DataError, match="Could not download"):
        download_file(src.as_uri(), str(tmp_path / "b.bin"), progress=False)


def test_meta_omniglot_download_flow_offline(tmp_path, monkeypatch):
    served = []
    for part in ("images_background", "images_evaluation"):
        p = tmp_path / f"{part}.zip"
        with zipfile.ZipFile(p, "w") as z:
            for c in range(2):
                for i in range(4):
                    arr = np.full((105, 105), 255, np.uint8)
                    arr[20 + 10 * i:30 + 10 * i, 10:90] = 0
                    buf = io.BytesIO()
                    Image.fromarray(arr).convert("1").save(buf, format="PNG")
                    z.writestr(f"{part}/Script_{part[7:]}/character{c + 1:02d}/x_{i:02d}.png", buf.getvalue())
        served.append(downloads.RemoteFile(f"{part}.zip", (p.as_uri(),), hashlib.sha256(p.read_bytes()).hexdigest(),
                                           p.stat().st_size))
    monkeypatch.setitem(downloads._FETCH_FILES, "omniglot", tuple(served))
    monkeypatch.setenv("DATASETS_FOLDER", str(tmp_path / "data"))
    ds = meta_omniglot(download=True, rotations=None, n_splits=(0, 2, 3, 4))
    assert os.path.isfile(tmp_path / "data" / "omniglot" / "images_background.zip")
    assert ds.train.load_images(0, [0]).shape == (1, 28, 28, 1)  # 105x105 resized to 28x28


# ============================================================================== mini-imagenet
def _jpg(path, rng, size=(40, 30)):
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format="JPEG")


def _mini_tree(root, classes=None, n_img=6, seed=0):
    rng = np.random.default_rng(seed)
    classes = classes or {"train": 4, "val": 2, "test": 3}
    k = 0
    for split, n in classes.items():
        for c in range(n):
            d = os.path.join(root, split, f"n{k:08d}")
            os.makedirs(d)
            k += 1
            for i in range(n_img):
                _jpg(os.path.join(d, f"n{k:08d}{i:08d}.jpg"), rng)
    return root


def test_mini_imagenet_class_folders_lazy_lru(tmp_path):
    """Real Mini-ImageNet images are not available here: a small tree in the real layout."""
    root = _mini_tree(str(tmp_path / "mini"))
    ds = meta_mini_imagenet(root, std_num_classes=2, examples_train=1, examples_test=3, resize=16, cache_size=5)
    assert isinstance(ds, Datasets) and [d.n_total_classes for d in ds] == [4, 2, 3]
    assert ds.train.dim_data == (16, 16, 3) and ds.train.dim_target == 2 and ds.name == "Mini"
    for ep in ds.train.generate(5, rand=0):
        assert ep.train.data.shape == (2, 16, 16, 3) and ep.test.data.shape == (6, 16, 16, 3)
        assert ep.train.data.dtype == np.float32 and 0 <= ep.train.data.min() and ep.train.data.max() <= 1
        assert not {(i["name"], i["image_index"]) for i in ep.train.sample_info} & \
            {(i["name"], i["image_index"]) for i in ep.test.sample_info}
    assert ds.train.cache_len <= 5  # bounded memory
    eager = meta_mini_imagenet(root, std_num_classes=2, examples_train=1, examples_test=3, resize=16,
                               load_all_images=True)
    np.testing.assert_array_equal(eager.test.generate_datasets(rand=1).test.data,
                                  ds.test.generate_datasets(rand=1).test.data)
    native = meta_mini_imagenet(root, resize=None, std_num_classes=2, examples_train=1, examples_test=1)
    assert native.train.dim_data == (30, 40, 3)


def test_mini_imagenet_csv_and_cache_layouts(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "raw"
    (root / "images").mkdir(parents=True)
    for split, wnids in (("train", ["n01", "n02"]), ("val", ["n03"]), ("test", ["n04", "n05"])):
        rows = ["filename,label"]
        for w in wnids:
            for i in range(4):
                fn = f"{w}{i:08d}.jpg"
                _jpg(str(root / "images" / fn), rng)
                rows.append(f"{fn},{w}")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    ds = meta_mini_imagenet(str(root), std_num_classes=2, examples_train=1, examples_test=2, resize=8)
    assert ds.train.class_names == ["n01", "n02"] and ds.validation.class_names == ["n03"]
    assert ds.train.generate_datasets(rand=0).test.data.shape == (4, 8, 8, 3)

    cache = tmp_path / "cache"
    cache.mkdir()
    imgs = rng.integers(0, 256, size=(12, 8, 8, 3), dtype=np.uint8)
    np.savez(cache / "train.npz", images=imgs, labels=np.repeat(["a", "b", "c"], 4))
    with open(cache / "mini-imagenet-cache-val.pkl", "wb") as f:
        pickle.dump({"image_data": imgs[:8], "class_dict": {"x": list(range(4)), "y": list(range(4, 8))}}, f)
    np.savez(cache / "test.npz", images=imgs[:8], labels=np.repeat([0, 1], 4))
    cd = meta_mini_imagenet(str(cache), std_num_classes=2, examples_train=2, examples_test=2, resize=8)
    assert [d.n_total_classes for d in cd] == [3, 2, 2]
    ep = cd.validation.generate_datasets(rand=0)
    got = {tuple(np.round(x * 255).astype(np.uint8).ravel()[:5]) for x in ep.train.data}
    want = {tuple(imgs[i].ravel()[:5]) for i in range(8)}
    assert got <= want


def test_mini_imagenet_real_split_csvs(shared_data, tmp_path):
    splits = os.path.join(shared_data, "miniimagenet_splits")
    counts = {}
    for s in ("train", "val", "test"):
        rows = lfd._read_csv(os.path.join(splits, f"{s}.csv"))
        labels = [lab for _, lab in rows]
        counts[s] = (len(set(labels)), len(rows))
    assert counts == {"train": (64, 38400), "val": (16, 9600), "test": (20, 12000)}
    (tmp_path / "images").mkdir()
    with pytest.raises(DataNotFoundError, match="n01532829"):
        meta_mini_imagenet(str(tmp_path), split_folder=splits)


def test_mini_imagenet_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="nope"):
        meta_mini_imagenet(str(tmp_path / "nope"))
    root = _mini_tree(str(tmp_path / "m"), n_img=3)
    with pytest.raises(DataError, match="examples_train=2"):
        meta_mini_imagenet(root, std_num_classes=2, examples_train=2, examples_test=2)
    with pytest.raises(DataNotFoundError, match="'nosplit'"):
        meta_mini_imagenet(root, sub_folders=("train", "val", "nosplit"))
    bad = os.path.join(root, "train", "n00000000", "broken.jpg")
    with open(bad, "wb") as f:
        f.write(b"not a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        meta_mini_imagenet(root, load_all_images=True, resize=8)
    os.remove(bad)
    os.makedirs(os.path.join(root, "val", "n99999999"))
    with pytest.raises(DataError, match="n99999999"):
        meta_mini_imagenet(root)
    with pytest.raises(InvalidArgumentError):
        ImageNetMetaDataset(class_files=[["a"]], array=np.zeros((1, 2, 2, 3), np.uint8))


# ====================================================================================== mnist
def test_mnist_real(shared_data):
    m = mnist(os.path.join(shared_data, "mnist"))
    assert [d.num_examples for d in m] == [55000, 5000, 10000]
    assert m.train.data.dtype == np.float32 and m.train.data.shape == (55000, 784)
    assert m.train.dim_data == 784 and m.train.dim_target == 10
    assert 0.0 == m.train.data.min() and m.train.data.max() == 1.0
    full_counts = m.train.target.sum(0) + m.validation.target.sum(0)
    np.testing.assert_array_equal(full_counts, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    mean = (m.train.data.mean(dtype=np.float64) * 55000 + m.validation.data.mean(dtype=np.float64) * 5000) / 60000
    assert abs(mean - 0.13066) < 1e-3
    np.testing.assert_array_equal(m.test.target.sum(0), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])



def _idx(path, arr, magic):
    header = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_mnist_small_files_filters_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("t10k", 10)):
        _idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)), 3)
        _idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10, 1)
    m = mnist(str(tmp_path), validation_size=10, filters=lambda x, y: y.argmax(1) < 5)
    assert [d.num_examples for d in m] == [5, 10, 5]  # the first 10 kept train examples validate
    assert m.train.labels.max() < 5
    p = mnist(str(tmp_path), one_hot=False, partitions=[0.5, 0.3], shuffle=True, reshape=False)
    assert [d.num_examples for d in p] == [20, 12, 8]  # all 40 examples redivided
    assert p.train.data.shape[1:] == (28, 28, 1) and p.train.target.dtype == np.int64
    q = mnist(str(tmp_path), one_hot=False, partitions=[0.5, 0.3], shuffle=True, reshape=False)
    np.testing.assert_array_equal(p.test.target, q.test.target)  # shuffled with rand=0
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(11) % 10, 1)
    with pytest.raises(DataError, match="disagree"):
        mnist(str(tmp_path))
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x03garbage")
    with pytest.raises(DataError, match="t10k-labels"):
        mnist(str(tmp_path))
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataNotFoundError, match="t10k-labels"):
        mnist(str(tmp_path))
    with pytest.raises(DataNotFoundError):
        mnist(str(tmp_path / "nope"))


def test_redivide_data_merges_all_infos():
    a = Dataset(np.arange(6)[:, None], np.arange(6), info={"a": 1})
    b = Dataset(np.arange(6, 10)[:, None], np.arange(4), info={"b": 2})
    parts = redivide_data([a, b], [0.5, 0.25])
    assert [p.num_examples for p in parts] == [5, 2, 3]
    assert parts[0].info == {"a": 1, "b": 2}  # the original kept only the first dataset's info
    parts = redivide_data([a, b], [3, 3], shuffle=True, rand=0)
    assert [p.num_examples for p in parts] == [3, 3]
    assert [p.num_examples for p in redivide_data([a, b])] == [6, 4]
    with pytest.raises(InvalidArgumentError):
        redivide_data([a, b], [0.8, 0.5])
