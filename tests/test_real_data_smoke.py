"""A short real-data run: MAML on the real Omniglot (Vinyals split, 5-way 1-shot), through the workflow.

Checks the episode shapes, finite losses and that the test accuracy rises above chance and above the
untrained network's. The full 30-minute runs are documented commands (README), not CI tests. The presets'
data loading is also checked on an Omniglot folder written here, found through ``DATASETS_FOLDER``.
"""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import data_trees
from boml import workflow
from boml.errors import MissingDataError


def test_a_preset_finds_omniglot_in_the_datasets_folder_with_the_shipped_split(tmp_path, monkeypatch):
    data_trees.write_omniglot_tree(str(tmp_path / "omniglot_resized"))
    monkeypatch.setenv("DATASETS_FOLDER", str(tmp_path))
    config = workflow.preset("maml-omniglot-5w1s", classes=2, examples_test=3, train_examples_test=3,
                             logdir=str(tmp_path / "logs"))
    dataset = workflow.load_dataset(config)
    assert sorted(dataset.train.characters) == data_trees.omniglot_classes(vinyals_split="train")
    assert sorted(dataset.test.characters) == data_trees.omniglot_classes(vinyals_split="test")
    episode = dataset.test.generate_datasets(rand=0)
    assert episode.train.data.shape == (2, 28, 28, 1) and episode.test.data.shape == (6, 28, 28, 1)


def test_a_preset_without_data_names_the_command_that_fetches_it(empty_datasets_folder):
    with pytest.raises(MissingDataError) as error:
        workflow.load_dataset(workflow.preset("maml-omniglot-5w1s"))
    assert str(error.value).endswith("Run: python -m boml data fetch omniglot")


@pytest.fixture
def omniglot_config(real_data, tmp_path):
    folder = real_data("omniglot_resized", "omniglot")
    return workflow.preset("maml-omniglot-5w1s", data_folder=folder, logdir=str(tmp_path), name="smoke",
                           num_filters=16, meta_batch_size=4, meta_lr=3e-3, max_minutes=None, test_episodes=50,
                           val_interval=0, save_interval=0, print_interval=20)


def test_maml_on_real_omniglot_rises_above_chance(omniglot_config):
    config = omniglot_config
    dataset = workflow.load_dataset(config)
    assert len(dataset.train.class_names) == 4 * 1028 and len(dataset.test.class_names) == 4 * 423
    episode = dataset.train.generate_datasets(rand=np.random.RandomState(0))
    assert episode.train.data.shape == (5, 28, 28, 1) and episode.train.target.shape == (5, 5)
    queries = config.classes * config.train_examples_test  # the preset trains on fewer queries
    assert episode.test.data.shape == (queries, 28, 28, 1) and episode.test.target.shape == (queries, 5)
    test_episode = dataset.test.generate_datasets(rand=np.random.RandomState(0))
    assert test_episode.test.data.shape == (75, 28, 28, 1)  # evaluation: 15 queries per class
    assert 0.0 <= episode.train.data.min() and episode.train.data.max() <= 1.0 and episode.train.data.std() > 0.1

    with tf.Graph().as_default():
        before = workflow.train(config.replace(meta_train_iterations=0), dataset=dataset, log=lambda *_: None)
    lines = []
    with tf.Graph().as_default():
        after = workflow.train(config.replace(meta_train_iterations=60), dataset=dataset, log=lines.append)
    assert after["iterations"] == 60 and np.isfinite(after["final_running"]["outer_loss"])
    assert np.isfinite(after["final_running"]["inner_loss"])
    chance = 1.0 / config.classes
    assert after["test"]["accuracy"] > chance + 3 * after["test"]["ci95"]
    assert after["test"]["accuracy"] > before["test"]["accuracy"], (before["test"], after["test"], lines)
