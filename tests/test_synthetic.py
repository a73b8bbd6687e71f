"""Tests of the in-memory synthetic meta-dataset."""
import time

import numpy as np
import pytest

from boml.errors import DataError, InvalidArgumentError
from boml.load_data.datasets import Datasets, SyntheticMetaDataset, meta_synthetic


def test_meta_synthetic_splits_are_disjoint_and_fast():
    t = time.time()
    ds = meta_synthetic()
    assert time.time() - t < 1.0
    assert isinstance(ds, Datasets) and len(ds) == 3 and ds.name == "Synthetic"
    assert [d.n_total_classes for d in ds] == [64, 16, 20]
    names = [set(d.class_names) for d in ds]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    # disjoint data too, not only names
    assert not np.array_equal(ds.train.prototypes[0], ds.validation.prototypes[0])
    assert ds.train.images.dtype == np.uint8


def test_synthetic_episode_conventions():
    md = SyntheticMetaDataset(num_classes=5, examples_train=1, examples_test=15, n_total_classes=10)
    assert md.dim_data == (28, 28, 1) and md.dim_target == 5
    assert md.examples_train == 1 and md.examples_test == 15
    ep = md.generate_datasets(rand=0)
    assert ep.train.data.shape == (5, 28, 28, 1) and ep.test.data.shape == (75, 28, 28, 1)
    assert ep.train.data.dtype == np.float32
    assert 0.0 <= ep.train.data.min() and ep.train.data.max() <= 1.0
    np.testing.assert_array_equal(ep.test.target.sum(0), [15] * 5)
    np.testing.assert_array_equal(ep.train.target.sum(0), [1] * 5)
    sup = {(i["class_index"], i["image_index"]) for i in ep.train.sample_info}
    que = {(i["class_index"], i["image_index"]) for i in ep.test.sample_info}
    assert not sup & que


def test_synthetic_is_deterministic_from_seed():
    a = SyntheticMetaDataset(n_total_classes=5, seed=3)
    b = SyntheticMetaDataset(n_total_classes=5, seed=3)
    c = SyntheticMetaDataset(n_total_classes=5, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    np.testing.assert_array_equal(a.generate_datasets(rand=1).test.data, b.generate_datasets(rand=1).test.data)
    assert not np.array_equal(a.generate_datasets(rand=1).test.data, a.generate_datasets(rand=2).test.data)
    # the same class of the same seed is the same whichever split holds it
    full = SyntheticMetaDataset(n_total_classes=8, seed=3)
    part = SyntheticMetaDataset(n_total_classes=3, seed=3, class_offset=5)
    np.testing.assert_array_equal(full.images[5:], part.images)


def test_synthetic_is_learnable_by_nearest_prototype():
    md = meta_synthetic(num_classes=5, examples_train=1, examples_test=5).test
    accs = []
    for ep in md.generate(20, rand=0):
        xs = ep.train.data.reshape(ep.train.num_examples, -1)
        xq = ep.test.data.reshape(ep.test.num_examples, -1)
        nn = ((xq[:, None] - xs[None]) ** 2).sum(-1).argmin(1)
        accs.append(np.mean(ep.train.labels[nn] == ep.test.labels))
    assert np.mean(accs) > 0.9


def test_synthetic_other_shapes_and_errors():
    md = SyntheticMetaDataset(num_classes=2, examples_train=1, examples_test=1, image_shape=(8, 6, 3),
                              n_total_classes=4, one_hot_enc=False)
    ep = md.generate_datasets(rand=0)
    assert ep.train.data.shape == (2, 8, 6, 3) and ep.train.target.shape == (2,) and md.dim_target == 1
    with pytest.raises(InvalidArgumentError):
        SyntheticMetaDataset(image_shape=(28,))
    with pytest.raises(InvalidArgumentError):
        SyntheticMetaDataset(noise=-1)
    with pytest.raises(DataError):
        SyntheticMetaDataset(examples_train=10, examples_test=15, n_total_classes=5).generate_datasets(rand=0)
