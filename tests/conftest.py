"""Shared pytest fixtures: every test builds in a fresh graph, in graph mode; data folders for the loaders."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

import data_trees  # noqa: E402
import sessions  # noqa: E402

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
    """A session on the test's graph, without grappler's rewrites (``sessions.numeric_session``)."""
    with sessions.numeric_session(graph=fresh_graph) as sess:
        yield sess


@pytest.fixture(scope="session", autouse=True)
def image_validation_cache(tmp_path_factory):
    """The loaders remember validated datasets in ``$BOML_CACHE_DIR``: a fresh folder per test session."""
    folder = str(tmp_path_factory.mktemp("boml_cache"))
    old = os.environ.get("BOML_CACHE_DIR")
    os.environ["BOML_CACHE_DIR"] = folder
    yield folder
    if old is None:
        os.environ.pop("BOML_CACHE_DIR", None)
    else:
        os.environ["BOML_CACHE_DIR"] = old


def real_data_roots():
    """Where real datasets are looked for: ``../shared/data``, then ``$DATASETS_FOLDER``."""
    roots = [SHARED_DATA]
    if os.environ.get("DATASETS_FOLDER"):
        roots.append(os.path.abspath(os.environ["DATASETS_FOLDER"]))
    return roots


def _missing_real_data(what):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the real-data tests, but {what} was not found in {' or '.join(real_data_roots())}.")
    pytest.skip(f"real data {what} not found in {' or '.join(real_data_roots())}")


@pytest.fixture
def real_data():
    """``real_data(*names)``: the first ``<root>/<name>`` that exists, roots as in :func:`real_data_roots`.

    Skips the test when none exists (fails under ``CI=true``). Names are sub-folders of a datasets
    folder, e.g. ``real_data("omniglot_resized", "omniglot")``, ``real_data("mnist")``.
    """
    def find(*names):
        for root in real_data_roots():
            for name in names:
                path = os.path.join(root, name)
                if os.path.exists(path):
                    return path
        _missing_real_data(" or ".join(names))

    return find


@pytest.fixture
def real_omniglot(real_data):
    """The real 28x28 Omniglot folder (``omniglot_resized`` or ``omniglot`` in a real-data root)."""
    return real_data("omniglot_resized", "omniglot")


@pytest.fixture
def shared_data():
    """The first real datasets folder that exists (``../shared/data`` or ``$DATASETS_FOLDER``).

    Tests needing it skip when there is none (and fail under CI=true).
    """
    for root in real_data_roots():
        if os.path.isdir(root):
            return root
    _missing_real_data("a datasets folder")


@pytest.fixture
def empty_datasets_folder(tmp_path, monkeypatch):
    """``$DATASETS_FOLDER`` set to an empty folder (nothing can be found there)."""
    folder = tmp_path / "no_datasets"
    folder.mkdir()
    monkeypatch.setenv("DATASETS_FOLDER", str(folder))
    return str(folder)


@pytest.fixture
def omniglot_tree(tmp_path):
    """An ``omniglot_resized`` folder of 9 real characters x 4 drawings (28x28 1-bit PNGs)."""
    return data_trees.write_omniglot_tree(str(tmp_path / "omniglot_resized"))


@pytest.fixture
def omniglot_tar(tmp_path):
    """The same characters as ``omniglot_resized.tar.gz``."""
    return data_trees.write_omniglot_tar(str(tmp_path / "omniglot_resized.tar.gz"))


@pytest.fixture
def omniglot_zips(tmp_path):
    """``(folder, drawings)``: the official ``images_background.zip`` / ``images_evaluation.zip`` (105x105)."""
    folder = str(tmp_path / "omniglot")
    return folder, data_trees.write_official_zips(folder)


@pytest.fixture
def mnist_folder(tmp_path):
    """``(folder, (x_train, y_train, x_test, y_test))``: 300 + 100 separable 28x28 images as gzipped IDX files."""
    folder = str(tmp_path / "mnist")
    return folder, data_trees.write_mnist(folder)


@pytest.fixture
def mini_tree(tmp_path):
    """``(folder, images)``: Mini-ImageNet class folders (4 / 2 / 3 classes x 6 JPEGs of 40x30)."""
    folder = str(tmp_path / "miniimagenet")
    return folder, data_trees.write_mini_tree(folder)
