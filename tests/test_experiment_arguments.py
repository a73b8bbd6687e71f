"""BOMLExperiment refuses arguments it cannot use, and the synthetic dataset checks its settings."""
import numpy as np
import pytest

import boml
from boml import errors
from boml.load_data.datasets import Dataset, Datasets, SyntheticMetaDataset


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
    support_only = Datasets(train=Dataset(np.zeros((1, 3), np.float32), np.eye(2, dtype=np.float32)[[0]]))
    with pytest.raises(errors.InvalidArgumentError, match="train \\(support\\) and test \\(query\\)"):
        ex.feed_dicts(support_only)
    assert boml.BOMLExperiment(dim_data=(), dim_target=1, name="scalar").x.shape.as_list() == [None]


def test_synthetic_settings_are_checked():
    data = SyntheticMetaDataset(num_classes=2, examples_train=1, examples_test=3, image_shape=(4, 4),
                                n_total_classes=3, examples_per_class=5)
    assert data.dim_data == (4, 4, 1) and data.examples_train == 1 and data.examples_test == 3
    with pytest.raises(errors.InvalidArgumentError, match="num_classes must be >= 1"):
        data.generate_datasets(rand=0, num_classes=0)
    for kwargs, message in (({"image_shape": 5}, "must be a tuple"), ({"image_shape": (0, 4, 1)}, "positive sizes"),
                            ({"noise": -1.0}, "noise"), ({"examples_train": 0}, "examples_train"),
                            ({"n_total_classes": 0}, "n_total_classes")):
        with pytest.raises(errors.InvalidArgumentError, match=message):
            SyntheticMetaDataset(**{"image_shape": (4, 4, 1), **kwargs})
    with pytest.raises(errors.InvalidArgumentError, match="n_classes"):
        boml.meta_synthetic(n_classes=(3, 3))


def test_batch_queue_hands_out_meta_batches():
    dataset = boml.meta_synthetic(num_classes=2, examples_train=1, examples_test=1, image_shape=(4, 4, 1),
                                  n_classes=(4, 2, 2), examples_per_class=3)
    queue = boml.BatchQueueMock(dataset.train, n_batches=2, batch_size=3, rand=0)
    first, second = next(queue), next(queue)  # an endless iterator: each step draws a new meta-batch
    assert len(first) == 3 and all(ep.train.data.shape == (2, 4, 4, 1) for ep in first + second)
    assert not np.array_equal(first[0].train.data, second[0].train.data)
