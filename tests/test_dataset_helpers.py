"""boml.load_data.datasets.dl_utils: label encoding, class balance and small helpers, on real Dataset objects."""
import numpy as np
import pytest

import boml
from boml import errors
from boml.load_data.datasets import dl_utils


def test_one_hot_accepts_integral_floats_and_column_vectors():
    np.testing.assert_array_equal(dl_utils.to_one_hot_enc(np.array([[0.0], [2.0]])), [[1, 0, 0], [0, 0, 1]])
    with pytest.raises(errors.InvalidArgumentError, match="integer labels"):
        dl_utils.to_one_hot_enc([0.5, 1.0])


def test_balanced_indices_share_the_examples_out_evenly():
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    indices = dl_utils.get_indices_balanced_classes(7, labels, rand=0)
    assert sorted(np.bincount(labels[indices], minlength=3)) == [2, 2, 3]
    assert len(set(indices)) == 7 and list(indices) == sorted(indices)
    one_hot = dl_utils.get_indices_balanced_classes(7, np.eye(3)[labels], rand=0)
    np.testing.assert_array_equal(one_hot, indices)  # one-hot targets: the same draw
    with pytest.raises(errors.DataError, match="class . has 3 examples, 4 requested. Ask for fewer examples."):
        dl_utils.get_indices_balanced_classes(12, labels[:9], rand=0)
    with pytest.raises(errors.DataError, match="no labels given"):
        dl_utils.get_indices_balanced_classes(1, np.zeros(0, np.int64))


def test_balance_check_of_datasets():
    data = np.zeros((6, 2))
    assert dl_utils.test_if_balanced(boml.Dataset(data, np.eye(3)[[0, 1, 2, 0, 1, 2]]))
    assert not dl_utils.test_if_balanced(boml.Dataset(data[:3], np.array([0, 0, 1])))
    assert dl_utils.test_if_balanced(boml.Dataset(np.zeros((0, 2)), np.zeros(0, np.int64)))


def test_list_and_dict_helpers():
    assert dl_utils.as_list([1, 2]) == [1, 2]
    assert dl_utils.as_list(None) == [] and dl_utils.as_list((1, 2)) == [1, 2] and dl_utils.as_list(3) == [3]
    assert dl_utils.as_tuple_or_list(5) == [5] and dl_utils.as_tuple_or_list([5]) == [5]
    assert dl_utils.merge_dicts({"a": 1}, None, {"a": 2, "b": 3}) == {"a": 2, "b": 3}  # later ones win
    assert dl_utils.maybe_call(lambda k: k + 1, 1) == 2 and dl_utils.maybe_call(7, 1) == 7
