"""Shared pytest fixtures: every test builds in a fresh graph, in graph mode."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

SHARED_DATA = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))


@pytest.fixture(autouse=True)
def fresh_graph():
    """Runs each test inside its own ``tf.Graph`` with fixed seeds."""
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(0)
        np.random.seed(0)
        yield graph


@pytest.fixture
def session(fresh_graph):
    with tf.Session(graph=fresh_graph) as sess:
        yield sess


@pytest.fixture
def shared_data():
    """Path to ../shared/data; tests needing it skip when it is absent (and fail under CI=true)."""
    if not os.path.isdir(SHARED_DATA):
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the real-data tests, but {SHARED_DATA} does not exist.")
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA
