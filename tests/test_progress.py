"""The smoothed ETA of meta-training (``boml.workflow.progress``), on a fake clock."""
import math

import pytest

from boml.errors import InvalidArgumentError
from boml.workflow.progress import EtaEstimator, format_seconds


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def run(estimator, clock, durations):
    for seconds in durations:
        estimator.start()
        clock.now += seconds
        estimator.stop()


def test_constant_iterations_give_the_exact_time_left():
    clock = FakeClock()
    eta = EtaEstimator(clock=clock)
    run(eta, clock, [7.0] + [0.5] * 30)  # a slow warm-up iteration, then 0.5 s each
    assert eta.seconds_per_iteration == pytest.approx(0.5)
    assert eta.seconds_left(120) == pytest.approx(60.0)
    assert eta.seconds_left(120, budget_left=20.0) == 20.0
    assert eta.seconds_left(120, budget_left=-3.0) == 0.0


def test_noisy_iterations_give_a_steady_estimate():
    """Durations alternating 0.2 s / 0.8 s (mean 0.5): successive ETAs barely move."""
    clock = FakeClock()
    eta = EtaEstimator(smoothing=0.05, clock=clock)
    estimates = []
    for k in range(200):
        run(eta, clock, [0.2 if k % 2 else 0.8])
        if k >= 40:
            estimates.append(eta.seconds_left(1000 - k))
    per_iteration = [e / (1000 - k) for e, k in zip(estimates, range(40, 200))]
    assert max(per_iteration) < 0.53 and min(per_iteration) > 0.47
    # consecutive estimates differ by less than 4% (the unsmoothed rate would swing by a factor 4)
    assert all(abs(b - a) < 0.04 * a for a, b in zip(estimates, estimates[1:]))


def test_one_slow_iteration_moves_the_estimate_by_its_weight_only():
    clock = FakeClock()
    eta = EtaEstimator(smoothing=0.05, clock=clock)
    run(eta, clock, [1.0] * 100)
    before = eta.seconds_per_iteration
    run(eta, clock, [11.0])  # 10 s longer than usual (a validation pass or a page fault)
    after = eta.seconds_per_iteration
    assert before == pytest.approx(1.0)
    assert after == pytest.approx(1.0 + 0.05 * 10.0, rel=0.01)


def test_a_change_of_speed_is_followed():
    clock = FakeClock()
    eta = EtaEstimator(smoothing=0.05, clock=clock)
    run(eta, clock, [1.0] * 50 + [2.0] * 150)
    assert eta.seconds_per_iteration == pytest.approx(2.0, rel=0.01)


def test_before_any_iteration_and_after_the_warm_up_only():
    clock = FakeClock()
    eta = EtaEstimator(clock=clock)
    assert eta.seconds_per_iteration is None and math.isinf(eta.seconds_left(10))
    assert eta.seconds_left(10, budget_left=30.0) == 30.0
    run(eta, clock, [4.0])
    assert eta.seconds_per_iteration == 4.0  # the warm-up alone is the only information
    run(eta, clock, [1.0])
    assert eta.seconds_per_iteration == pytest.approx(1.0)


def test_smoothing_must_be_a_weight():
    with pytest.raises(InvalidArgumentError, match="smoothing"):
        EtaEstimator(smoothing=0.0)


@pytest.mark.parametrize("seconds,text", [(0, "00:00"), (59.6, "01:00"), (61, "01:01"), (3600 + 62, "1:01:02"),
                                          (float("inf"), "--:--"), (-5, "00:00")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text
