"""The data layer's less travelled paths: stacking, settings, argument checks, iteration."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml import errors
from boml.load_data.datasets import ClassMetaDataset, Dataset, Datasets, SyntheticMetaDataset
from boml.load_data.datasets.structures import _normalize_num_examples


def _dataset(n, label, name="d"):
    return Dataset(np.full((n, 2), label, np.float32), np.eye(3)[[label] * n], sample_info=[{"i": k} for k in range(n)],
                   info={"source": name}, name=name)


def test_dataset_stack_setting_and_repr():
    with pytest.raises(errors.ShapeError, match="leading example axis"):
        Dataset(np.float32(1.0), np.float32(0.0))
    a, b = _dataset(2, 0, "a"), _dataset(3, 1, "b")
    stacked = Dataset.stack(a, None, b)
    assert len(stacked) == 5 and stacked.name == "a" and stacked.labels.tolist() == [0, 0, 1, 1, 1]
    assert stacked.sample_info[2] == {"i": 0} and stacked.info == {"source": "b"}
    assert stacked.setting() == {"name": "a", "num_examples": 5, "dim_data": 2, "dim_target": 3,
                                 "info": {"source": "b"}}
    assert repr(stacked) == "Dataset(name='a', num_examples=5, dim_data=2, dim_target=3)"
    with pytest.raises(errors.InvalidArgumentError, match="at least one dataset"):
        Dataset.stack(None)


def test_datasets_stack_setting_iteration_and_repr():
    first = Datasets(train=_dataset(1, 0), test=_dataset(1, 1))
    second = Datasets(train=_dataset(2, 2), test=_dataset(2, 0))
    both = Datasets.stack(first, second)
    assert len(both) == 2 and both.validation is None and len(both.train) == 3 and len(both.test) == 3
    assert [len(d) for d in both] == [3, 3] and both[0] is both.train
    assert both.setting()["validation"] is None and both.setting()["train"]["num_examples"] == 3
    assert repr(both).startswith("Datasets(train=Dataset(") and "validation=None" in repr(both)


def test_num_examples_normalization():
    assert _normalize_num_examples(None) is None
    assert _normalize_num_examples(6) == (6, 0) and _normalize_num_examples([4]) == (4, 0)
    with pytest.raises(errors.InvalidArgumentError, match="an int or a"):
        _normalize_num_examples("many")
    with pytest.raises(errors.InvalidArgumentError, match=">= 0"):
        _normalize_num_examples((1, -1))


def test_class_meta_dataset_is_abstract_and_converts_images():
    base = ClassMetaDataset(name="abstract", num_classes=2, num_examples=(2, 2))
    for name in ("class_names", "image_shape"):
        with pytest.raises(NotImplementedError):
            getattr(base, name)
    with pytest.raises(NotImplementedError):
        base.class_size(0)
    with pytest.raises(NotImplementedError):
        base.load_images(0, [0])
    assert base._as_float(np.array([True, False])).tolist() == [1.0, 0.0]
    assert base._as_float(np.array([0.25], np.float64)).dtype == np.float32
    assert base._as_float(np.array([255], np.uint8)).tolist() == [1.0]


def test_synthetic_dataset_properties_and_checks():
    data = SyntheticMetaDataset(num_classes=2, examples_train=1, examples_test=3, image_shape=(4, 4),
                                n_total_classes=3, examples_per_class=5)
    assert data.dim_data == (4, 4, 1) and data.examples_train == 1 and data.examples_test == 3
    assert data.dim_target == 2 and "num_classes=2" in repr(data)
    unknown = ClassMetaDataset(name="unsized", num_classes=2, num_examples=None)
    assert unknown.examples_train is None and unknown.examples_test is None
    with pytest.raises(errors.InvalidArgumentError, match="num_classes must be >= 1"):
        data.generate_datasets(rand=0, num_classes=0)
    for kwargs, message in (({"image_shape": 5}, "must be a tuple"), ({"image_shape": (0, 4, 1)}, "positive sizes"),
                            ({"noise": -1.0}, "noise"), ({"examples_train": 0}, "examples_train"),
                            ({"n_total_classes": 0}, "n_total_classes")):
        with pytest.raises(errors.InvalidArgumentError, match=message):
            SyntheticMetaDataset(**{"image_shape": (4, 4, 1), **kwargs})
    with pytest.raises(errors.InvalidArgumentError, match="n_classes"):
        boml.meta_synthetic(n_classes=(3, 3))


def test_batch_queue_iterates_meta_batches():
    dataset = boml.meta_synthetic(num_classes=2, examples_train=1, examples_test=1, image_shape=(4, 4, 1),
                                  n_classes=(4, 2, 2), examples_per_class=3)
    queue = boml.BatchQueueMock(dataset.train, n_batches=2, batch_size=3, rand=0)
    assert iter(queue) is queue
    batch = next(queue)
    assert len(batch) == 3 and all(ep.train.data.shape == (2, 4, 4, 1) for ep in batch)


def test_experiment_argument_checks():
    with pytest.raises(errors.InvalidArgumentError, match="needs the shape of the data"):
        boml.BOMLExperiment()
    with pytest.raises(errors.InvalidArgumentError, match="meta_batch_size must be"):
        boml.BOMLExperiment(dim_data=(2,), dim_target=2, meta_batch_size=0)
    ex = boml.BOMLExperiment(dim_data=3, dim_target=2)
    assert ex.x.shape.as_list() == [None, 3]
    with pytest.raises(errors.InvalidArgumentError, match="no task axis"):
        ex.batch_placeholders
    with pytest.raises(errors.InvalidArgumentError, match="empty list of episodes"):
        ex.feed_dicts([])
    with pytest.raises(errors.InvalidArgumentError, match="train \\(support\\) and test \\(query\\)"):
        ex.feed_dicts(Datasets(train=_dataset(1, 0)))
    scalar = boml.BOMLExperiment(dim_data=(), dim_target=1, name="scalar")
    assert scalar.x.shape.as_list() == [None]
    assert isinstance(scalar.x, tf.Tensor)
