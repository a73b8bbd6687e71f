"""boml.helpers: one contract per helper, importable under the original names, and the one 95% interval."""
import warnings

import numpy as np
import pytest
from scipy import stats

from boml import helpers, utils
from boml.errors import InvalidArgumentError
from boml.load_data.datasets import dl_utils
from boml.setup_model import network_utils

RNG = np.random.RandomState(11)


@pytest.mark.parametrize("name", ["get_rand_state", "as_list", "as_tuple_or_list", "maybe_call", "flatten_list",
                                  "mean_std_ci"])
def test_original_modules_share_one_definition(name):
    holders = [m for m in (utils, network_utils, dl_utils) if hasattr(m, name)]
    assert len(holders) >= 2 and all(getattr(m, name) is getattr(helpers, name) for m in holders)


def test_rand_state_contract():
    assert helpers.get_rand_state(7).randint(10 ** 6) == np.random.RandomState(7).randint(10 ** 6)
    assert helpers.get_rand_state(np.uint32(7)).randint(10 ** 6) == np.random.RandomState(7).randint(10 ** 6)
    for seeds in ([1, 2], (1, 2), np.array([1, 2])):
        assert helpers.get_rand_state(seeds).randint(10 ** 6) == np.random.RandomState([1, 2]).randint(10 ** 6)
    for bad in (True, -1, 2 ** 32, 1.5, "3", [], [1, -2], [1.5], [[1]], object()):
        with pytest.raises(InvalidArgumentError, match="received"):
            helpers.get_rand_state(bad)


def test_list_contracts():
    assert helpers.as_tuple_or_list(3) == [3] and helpers.as_tuple_or_list("ab") == ["ab"]
    pair = (1, 2)
    assert helpers.as_tuple_or_list(pair) is pair
    items = [1]
    copied = helpers.as_list(items)
    assert copied == [1] and copied is not items  # a copy: the caller's list is never aliased
    assert helpers.isinteger(np.int8(1)) and not helpers.isinteger(np.bool_(True))
    assert helpers.is_positive_int(2) and not helpers.is_positive_int(0) and not helpers.is_positive_int(True)


def test_interval_is_the_normal_one_and_the_originals():
    for n in (2, 5, 30, 600):
        x = RNG.randn(n) * 3.0 + 1.0
        normal = stats.norm.ppf(0.975) * x.std(ddof=1) / np.sqrt(n)
        assert helpers.half_int(x) == pytest.approx(normal, rel=2e-5)  # 1.96 is the rounded quantile
        # the original's 1.96 * population std / sqrt(n - 1): the same number
        assert helpers.half_int(x) == pytest.approx(1.96 * np.std(x) / np.sqrt(n - 1), rel=1e-12)
    x = RNG.rand(600)
    student = stats.t.ppf(0.975, 599) * x.std(ddof=1) / np.sqrt(600)
    assert helpers.half_int(x) == pytest.approx(student, rel=2.5e-3)  # 600 episodes: t and normal agree
    assert helpers.half_int(x[:5]) < 0.75 * stats.t.ppf(0.975, 4) * x[:5].std(ddof=1) / np.sqrt(5)


def test_interval_covers_the_true_mean_95_percent_of_the_time():
    samples = RNG.randn(4000, 200) + 0.5
    covered = [abs(s.mean() - 0.5) <= helpers.half_int(s) for s in samples]
    assert 0.94 <= np.mean(covered) <= 0.96  # binomial sd 0.0034


def test_mean_std_ci():
    mean, std, ci = helpers.mean_std_ci([0.5, 1.0, 1.0, 0.5], mul=100)
    assert (mean, std, ci) == (75.0, pytest.approx(np.std([50, 100, 100, 50], ddof=1)), pytest.approx(1.96 * std / 2))
    assert helpers.mean_std_ci([0.5, 1.0, 1.0, 0.5], tex=True) == "$0.75 \\pm 0.28$"
    one = helpers.mean_std_ci([0.8])
    assert one[0] == 0.8 and np.isnan(one[1]) and np.isnan(one[2])  # no interval from one measure
    with pytest.raises(InvalidArgumentError, match="at least one"):
        helpers.mean_std_ci([])


def test_deprecated_keyword():
    @helpers.deprecated_keyword("datatype", "data_type")
    def build(x, data_type="float32"):
        return x, data_type

    assert build(1, data_type="float64") == (1, "float64")
    with pytest.warns(DeprecationWarning, match="'datatype' is deprecated; use 'data_type'"):
        assert build(1, datatype="float64") == (1, "float64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert build(2) == (2, "float32")
    with pytest.raises(InvalidArgumentError, match="both data_type='a' and the deprecated spelling datatype='b'"):
        build(1, data_type="a", datatype="b")
