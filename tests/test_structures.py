"""Tests of the numpy containers, the episode sampler, BatchQueueMock and dl_utils."""
import os
import re

import numpy as np
import pytest

from boml.errors import DataError, InvalidArgumentError, ShapeError
from boml.load_data.datasets import (
    BatchQueueMock,
    ClassMetaDataset,
    Dataset,
    Datasets,
    MetaDataset,
    datasets_folder,
    get_rand_state,
    maybe_call,
    to_one_hot_enc,
)

DATASETS_DIR = os.path.join(os.path.dirname(__file__), "..", "boml", "load_data", "datasets")


class _IndexedMeta(ClassMetaDataset):
    """Each image is filled with a unique id (class * 1000 + index), to trace the sampler."""

    def __init__(self, n_classes=10, per_class=20, **kw):
        kw.setdefault("num_classes", 5)
        kw.setdefault("num_examples", (5, 75))
        super().__init__(name="Indexed", **kw)
        self.per_class = per_class
        self._names = [f"c{i}" for i in range(n_classes)]

    @property
    def class_names(self):
        return self._names

    @property
    def image_shape(self):
        return (2, 2, 1)

    def class_size(self, c):
        return self.per_class

    def load_images(self, c, indices):
        ids = c * 1000 + np.asarray(indices, np.float32)
        return np.broadcast_to(ids[:, None, None, None], (len(ids), 2, 2, 1)).copy()


def _ids(ds):
    return ds.data[:, 0, 0, 0].astype(np.int64)


# ---------------------------------------------------------------------------------------- dl_utils
def test_no_tensorflow_import_in_datasets_package():
    for fn in os.listdir(DATASETS_DIR):
        if fn.endswith(".py"):
            with open(os.path.join(DATASETS_DIR, fn)) as f:
                src = f.read()
            assert not re.search(r"^\s*(import|from)\s+tensorflow", src, re.M), fn


def test_get_rand_state():
    r = np.random.RandomState(3)
    assert get_rand_state(r) is r
    assert get_rand_state(5).randint(1000) == np.random.RandomState(5).randint(1000)
    assert isinstance(get_rand_state(None), np.random.RandomState)
    assert isinstance(get_rand_state(np.int64(2)), np.random.RandomState)
    for bad in ("1", 1.5, -1, True, object()):
        with pytest.raises(InvalidArgumentError):
            get_rand_state(bad)


def test_to_one_hot_enc():
    y = to_one_hot_enc([0, 2, 1, 2])
    assert y.dtype == np.float32 and y.shape == (4, 3)
    np.testing.assert_array_equal(y.argmax(1), [0, 2, 1, 2])
    np.testing.assert_array_equal(y.sum(1), 1)
    assert to_one_hot_enc([1], dimension=4).shape == (1, 4)
    with pytest.raises(InvalidArgumentError):
        to_one_hot_enc([0, 5], dimension=3)
    with pytest.raises(InvalidArgumentError):
        to_one_hot_enc([-1, 0])


def test_datasets_folder_reads_env_at_call_time(monkeypatch, tmp_path):
    monkeypatch.setenv("DATASETS_FOLDER", str(tmp_path))
    assert datasets_folder() == str(tmp_path)
    assert datasets_folder("omniglot_resized") == os.path.join(str(tmp_path), "omniglot_resized")
    monkeypatch.delenv("DATASETS_FOLDER")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets_folder() == os.path.join(str(tmp_path), "home", ".boml", "datasets")


def test_maybe_call():
    assert maybe_call(3) == 3
    assert maybe_call(lambda k: k + 1, 2) == 3


# ---------------------------------------------------------------------------------------- Dataset
def test_dataset_properties():
    d = Dataset(np.zeros((7, 4)), np.zeros(7), name="v")
    assert d.num_examples == 7 and d.dim_data == 4 and d.dim_target == 1 and d.name == "v"
    d = Dataset(np.zeros((3, 28, 28, 1)), np.zeros((3, 5)), info={"_name": "img"})
    assert d.dim_data == (28, 28, 1) and d.dim_target == 5 and d.name == "img"
    with pytest.raises(ShapeError):
        Dataset(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ShapeError):
        Dataset(np.zeros((3, 2)), np.zeros(3), sample_info=[{}])
    s = Dataset.stack(d, d)
    assert s.num_examples == 6 and s.dim_data == (28, 28, 1)


def test_datasets_from_list_indexing_len_name():
    a, b, c = (Dataset(np.zeros((2, 1)), np.zeros(2), name=n) for n in "abc")
    ds = Datasets.from_list([a])
    assert ds.train is a and ds.validation is None and ds.test is None and len(ds) == 1
    ds = Datasets.from_list([a, b])
    assert ds.train is a and ds.test is b and len(ds) == 2
    ds = Datasets.from_list([a, b, c])
    assert (ds[0], ds[1], ds[2]) == (a, b, c) and len(ds) == 3 and ds.name == "a"
    assert Datasets.from_list([a, b, c, a]) == [a, b, c, a]
    with pytest.raises(InvalidArgumentError):
        Datasets.from_list([])


def _labelled(n, label, name="d"):
    return Dataset(np.full((n, 2), label, np.float32), np.eye(3)[[label] * n], sample_info=[{"i": k} for k in range(n)],
                   info={"source": name}, name=name)


def test_dataset_stack_skips_none_and_keeps_the_order():
    with pytest.raises(ShapeError, match="leading example axis"):
        Dataset(np.float32(1.0), np.float32(0.0))
    a, b = _labelled(2, 0, "a"), _labelled(3, 1, "b")
    stacked = Dataset.stack(a, None, b)
    assert len(stacked) == 5 and stacked.name == "a" and stacked.labels.tolist() == [0, 0, 1, 1, 1]
    assert [i["i"] for i in stacked.sample_info] == [0, 1, 0, 1, 2] and stacked.info == {"source": "b"}
    assert stacked.setting() == {"name": "a", "num_examples": 5, "dim_data": 2, "dim_target": 3,
                                 "info": {"source": "b"}}
    with pytest.raises(InvalidArgumentError, match="at least one dataset"):
        Dataset.stack(None)


def test_datasets_stack_joins_each_split():
    first = Datasets(train=_labelled(1, 0), test=_labelled(1, 1))
    second = Datasets(train=_labelled(2, 2), test=_labelled(2, 0))
    both = Datasets.stack(first, second)
    assert both.validation is None and both.train.labels.tolist() == [0, 2, 2]
    assert both.test.labels.tolist() == [1, 0, 0]
    assert [len(d) for d in both] == [3, 3]
    assert both.setting()["validation"] is None and both.setting()["train"]["num_examples"] == 3


def test_num_examples_of_a_meta_dataset():
    assert MetaDataset(num_examples=None).num_examples is None
    assert MetaDataset(num_examples=6).num_examples == (6, 0) and MetaDataset(num_examples=[4]).num_examples == (4, 0)
    assert MetaDataset(num_classes=2, num_examples=(2, 6)).examples_test == 3
    with pytest.raises(InvalidArgumentError, match="an int or a"):
        MetaDataset(num_examples="many")
    with pytest.raises(InvalidArgumentError, match=">= 0"):
        MetaDataset(num_examples=(1, -1))


# ---------------------------------------------------------------------------------------- sampler
def test_episode_shapes_onehot_balanced():
    md = _IndexedMeta(num_classes=5, num_examples=(5 * 2, 5 * 3))
    ep = md.generate_datasets(rand=0)
    assert isinstance(ep, Datasets) and ep.validation is None
    assert ep.train.data.shape == (10, 2, 2, 1) and ep.test.data.shape == (15, 2, 2, 1)
    assert ep.train.data.dtype == np.float32
    for part, k in ((ep.train, 2), (ep.test, 3)):
        assert part.target.dtype == np.float32 and part.target.shape == (part.num_examples, 5)
        np.testing.assert_array_equal(part.target.sum(1), 1)
        np.testing.assert_array_equal(part.target.sum(0), [k] * 5)
    # labels are consistent with the class of every image, in both sets
    cls_of_label = {}
    for part in (ep.train, ep.test):
        for lab, img_id in zip(part.labels, _ids(part)):
            cls_of_label.setdefault(int(lab), img_id // 1000)
            assert cls_of_label[int(lab)] == img_id // 1000
    assert len(set(cls_of_label.values())) == 5


def test_support_and_query_never_share_an_image():
    # 20 images per class, 1 + 19 per class: any leak would show up quickly
    md = _IndexedMeta(n_classes=6, per_class=20, num_classes=5, num_examples=(5, 95))
    for ep in md.generate(30, rand=1):
        sup, que = set(_ids(ep.train)), set(_ids(ep.test))
        assert not sup & que
        assert len(que) == ep.test.num_examples  # no duplicates inside the query set either


def test_sample_info_and_not_one_hot():
    md = _IndexedMeta(num_classes=3, num_examples=(3, 6), one_hot_enc=False)
    ep = md.generate_datasets(rand=4)
    assert ep.train.target.dtype == np.int64 and ep.train.target.shape == (3,)
    assert ep.train.dim_target == 1 and md.dim_target == 1
    for info, lab, img_id in zip(ep.test.sample_info, ep.test.target, _ids(ep.test)):
        assert info["label"] == lab and info["class_index"] * 1000 + info["image_index"] == img_id
    assert len(ep.train.info["all_classes"]) == 3


def test_labels_are_a_random_permutation_of_positions():
    md = _IndexedMeta(num_classes=5, num_examples=(5, 5))
    mappings = set()
    for ep in md.generate(20, rand=0):
        mappings.add(tuple(ep.train.info["class_indices"]))
        lab_to_cls = {int(label): int(i) // 1000 for label, i in zip(ep.train.labels, _ids(ep.train))}
        assert [lab_to_cls[k] for k in range(5)] == list(ep.train.info["class_indices"])
    assert len(mappings) > 1


def test_reproducible_and_seed_dependent():
    md = _IndexedMeta()
    e1, e2, e3 = md.generate_datasets(rand=7), md.generate_datasets(rand=7), md.generate_datasets(rand=8)
    np.testing.assert_array_equal(e1.train.data, e2.train.data)
    np.testing.assert_array_equal(e1.test.target, e2.test.target)
    assert not np.array_equal(_ids(e1.test), _ids(e3.test))
    # generate() from the same seed gives the same sequence, and successive episodes differ
    s1 = [_ids(e.train) for e in md.generate(3, rand=2)]
    s2 = [_ids(e.train) for e in md.generate(3, rand=np.random.RandomState(2))]
    for a, b in zip(s1, s2):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(s1[0], s1[1])


def test_generate_batching():
    md = _IndexedMeta()
    items = list(md.generate(2, batch_size=3, rand=0))
    assert len(items) == 2 and all(isinstance(i, list) and len(i) == 3 for i in items)
    assert all(isinstance(e, Datasets) for e in md.generate_batch(4, rand=0))
    with pytest.raises(InvalidArgumentError):
        list(md.generate(1, batch_size=0))


def test_dims_do_not_consume_randomness():
    md = _IndexedMeta()
    state = np.random.get_state()[1].copy()
    assert md.dim_data == (2, 2, 1) and md.dim_target == 5
    np.testing.assert_array_equal(np.random.get_state()[1], state)

    calls = []

    class Counting(MetaDataset):
        def generate_datasets(self, rand=None, num_classes=None, num_examples=None):
            calls.append(rand)
            r = get_rand_state(rand)
            return Datasets(train=Dataset(r.rand(2, 3, 3, 1), np.eye(2, dtype=np.float32)))

    c = Counting(name="c")
    assert c.dim_data == (3, 3, 1) and c.dim_target == 2 and c.dim_data == (3, 3, 1)
    assert len(calls) == 1  # computed once, with a private RandomState, then cached
    assert isinstance(calls[0], np.random.RandomState)


def test_sampler_errors():
    md = _IndexedMeta(n_classes=4, per_class=3)
    with pytest.raises(DataError, match="only 4"):
        md.generate_datasets(rand=0, num_classes=5)
    with pytest.raises(DataError, match="has 3 images"):
        md.generate_datasets(rand=0, num_classes=2, num_examples=(2, 6))
    with pytest.raises(InvalidArgumentError):
        md.generate_datasets(rand=0, num_classes=2, num_examples=(0, 2))
    with pytest.raises(NotImplementedError):
        MetaDataset().generate_datasets()


def test_support_only_and_unbalanced_totals():
    md = _IndexedMeta(num_classes=3, num_examples=3)
    ep = md.generate_datasets(rand=0)
    assert ep.test is None and ep.train.num_examples == 3
    ep = md.generate_datasets(rand=0, num_examples=(4, 5))
    assert ep.train.num_examples == 4 and ep.test.num_examples == 5
    assert sorted(ep.train.target.sum(0)) == [1, 1, 2]


# ---------------------------------------------------------------------------------- BatchQueueMock
def test_batch_queue_mock_advances_and_is_reproducible():
    md = _IndexedMeta()
    q = BatchQueueMock(md, 2, 3, 1)
    b1, b2 = q.get_single_batch(), q.get_single_batch()
    assert len(b1) == 3 and all(isinstance(e, Datasets) for e in b1)
    assert not np.array_equal(_ids(b1[0].train), _ids(b2[0].train))  # a new episode every call
    q2 = BatchQueueMock(md, 2, 3, 1)
    np.testing.assert_array_equal(_ids(q2.get_single_batch()[0].train), _ids(b1[0].train))
    all_b = q2.get_all_batches()
    assert len(all_b) == 2 and all(len(b) == 3 for b in all_b)
    single = BatchQueueMock(md, 4, 1, 0).get_all_batches()
    assert len(single) == 4 and all(isinstance(e, Datasets) for e in single)
    with pytest.raises(InvalidArgumentError):
        BatchQueueMock(md, 0, 1, 0)
