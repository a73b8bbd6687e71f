"""The workflow (``boml.workflow``): configuration, training loop, exact resume, evaluation, results."""
import json
import os
import pickle
import warnings

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from boml import workflow
from boml.workflow import trainer
from boml.errors import (DataNotFoundError, InvalidArgumentError, InvalidCombinationError, UnknownNameError,
                         VectorizationWarning)


def tiny(tmp_path, **changes):
    """A configuration that trains in a second on 8x8 synthetic episodes."""
    values = dict(algorithm="maml", dataset="synthetic", classes=3, examples_train=1, examples_test=2,
                  meta_batch_size=2, T=1, lr=0.4, meta_lr=1e-3, num_filters=4, image_size=8,
                  meta_train_iterations=4, test_episodes=10, val_episodes=4, eval_batch_size=5,
                  print_interval=0, save_interval=0, val_interval=0, logdir=str(tmp_path), name="run")
    values.update(changes)
    return workflow.Config().replace(**values)


def quiet(*_):
    pass


def read_checkpoint(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


# ------------------------------------------------------------------------------------------ config
def test_algorithm_sets_the_triple_and_its_implied_flags():
    c = workflow.Config(algorithm="fomaml").resolved()
    assert (c.method, c.inner_method, c.outer_method, c.first_order) == ("MetaInit", "Simple", "Simple", True)
    c = workflow.Config(algorithm="TRHG").resolved()
    assert (c.method, c.outer_method, c.truncate_iter, c.algorithm) == ("MetaFeat", "Reverse", 1, "trhg")
    c = workflow.Config(algorithm="trhg", truncate_iter=2).resolved()  # an explicit value wins
    assert c.truncate_iter == 2
    c = workflow.Config(algorithm=None, method="MetaFeat", inner_method="Trad", outer_method="Implicit").validate()
    assert c.outer_method == "Implicit"


@pytest.mark.parametrize("changes,error,match", [
    ({"algorithm": "mamll"}, UnknownNameError, "Unknown algorithm 'mamll'"),
    ({"algorithm": None}, InvalidArgumentError, "Give an algorithm"),
    ({"algorithm": None, "method": "MetaInit", "inner_method": "Trad", "outer_method": "Reverse"},
     InvalidCombinationError, "not allowed"),
    ({"dataset": "cifar"}, UnknownNameError, "Unknown dataset"),
    ({"inner_opt": "RMSProp"}, UnknownNameError, "inner_opt"),
    ({"lr": 0.0}, InvalidArgumentError, "lr must be a positive"),
    ({"meta_lr": float("nan")}, InvalidArgumentError, "meta_lr"),
    ({"T": 0}, InvalidArgumentError, "T must be an integer >= 1"),
    ({"meta_batch_size": 2.5}, InvalidArgumentError, "meta_batch_size"),
    ({"classes": 1}, InvalidArgumentError, "classes must be >= 2"),
    ({"examples_test": 0}, InvalidArgumentError, "examples_test"),
    ({"learn_alpha": True}, InvalidArgumentError, "BDA settings"),
    ({"algorithm": "rhg", "use_warp": True}, InvalidArgumentError, "MetaInit family"),
    ({"truncate_iter": 1}, InvalidArgumentError, "Reverse"),
    ({"max_minutes": -1}, InvalidArgumentError, "max_minutes"),
    ({"name": "a/b"}, InvalidArgumentError, "name"),
    ({"while_loop_threshold": 0}, InvalidArgumentError, "while_loop_threshold must be an integer >= 1"),
    ({"task_memory_budget": 0.0}, InvalidArgumentError, "task_memory_budget must be a positive"),
    ({"algorithm": "rhg", "while_loop_threshold": 4}, InvalidArgumentError, "inner_method='Trad' always runs"),
    ({"recompute_every": "half"}, InvalidArgumentError, "recompute_every must be none"),
    ({"recompute_every": "0"}, InvalidArgumentError, "recompute_every must be none"),
    ({"algorithm": "hoag", "recompute_every": "sqrt"}, InvalidArgumentError, "outer_method='Implicit'"),
    ({"algorithm": "warpgrad", "recompute_every": 4}, InvalidArgumentError, "use_warp"),
])
def test_invalid_configurations_raise_typed_errors(changes, error, match):
    with pytest.raises(error, match=match):
        workflow.Config().replace(**changes).validate()


def test_unknown_keys_and_presets_are_rejected():
    with pytest.raises(InvalidArgumentError, match="Unknown configuration keys"):
        workflow.Config().replace(meta_lrr=0.1)
    with pytest.raises(UnknownNameError, match="Unknown preset"):
        workflow.preset("maml-cifar")
    for name in workflow.PRESETS:
        workflow.preset(name).validate()
    assert workflow.preset("rhg-omniglot-5w1s", T=3).T == 3
    assert workflow.preset("maml_omniglot_5w1s") == workflow.preset("maml-omniglot-5w1s")


def test_train_examples_test_only_changes_the_training_episodes():
    config = workflow.Config(dataset="synthetic", classes=3, examples_train=1, examples_test=4, image_size=8,
                             train_examples_test=2).validate()
    dataset = workflow.load_dataset(config)
    episode = dataset.train.generate_datasets(rand=0)
    assert episode.train.data.shape[0] == 3 and episode.test.data.shape[0] == 6
    assert dataset.test.generate_datasets(rand=0).test.data.shape[0] == 12
    with pytest.raises(InvalidArgumentError, match="train_examples_test"):
        config.replace(train_examples_test=0).validate()


def test_mean_ci95():
    mean, ci, std = workflow.mean_ci95([0.5, 1.0, 1.0, 0.5])
    assert mean == pytest.approx(0.75)
    assert std == pytest.approx(np.std([0.5, 1.0, 1.0, 0.5], ddof=1))
    assert ci == pytest.approx(1.96 * std / 2.0)


# ------------------------------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three tiny runs shared by the tests below (graph building dominates their cost).

    ``straight``: 6 uninterrupted iterations. ``split``: 3 iterations, then a restart that resumes to 6
    with progress lines every 2 and validation every 2. Session runs are counted for both first parts.
    """
    tmp_path = tmp_path_factory.mktemp("workflow")
    calls = {"n": 0}

    class CountingSession(tf.Session):
        def run(self, *args, **kwargs):
            calls["n"] += 1
            return super().run(*args, **kwargs)

    out = {"dir": tmp_path, "calls": {}}
    original = trainer.tf.Session
    trainer.tf.Session = CountingSession
    try:
        for name, iterations in (("straight", 6), ("split", 3)):
            calls["n"] = 0
            with tf.Graph().as_default():
                out[name] = workflow.train(tiny(tmp_path, name=name, meta_train_iterations=iterations), log=quiet)
            out["calls"][name] = calls["n"]
    finally:
        trainer.tf.Session = original
    lines = []
    with tf.Graph().as_default():
        out["resumed"] = workflow.train(tiny(tmp_path, name="split", meta_train_iterations=6, print_interval=2,
                                             val_interval=2), log=lines.append)
    out["lines"] = lines
    return out


def test_train_writes_results_summaries_and_checkpoint(runs):
    run_dir = runs["dir"] / "split"
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["iterations"] == 6 and saved["config"]["meta_batch_size"] == 2
    assert saved["test"]["episodes"] == 10 and 0.0 <= saved["test"]["accuracy"] <= 1.0
    assert saved["test"]["ci95"] >= 0 and np.isfinite(saved["final_running"]["outer_loss"])
    assert [h["iteration"] for h in saved["history"]] == [4, 6]
    assert runs["resumed"]["test"] == saved["test"]
    assert json.loads((run_dir / "config.json").read_text())["algorithm"] == "maml"
    assert workflow.latest_checkpoint(str(run_dir)).endswith("ckpt-6")
    assert any("it/s" in line and "ETA" in line and "train acc" in line for line in runs["lines"])
    tags = set()
    for event_file in run_dir.glob("events.out.tfevents.*"):
        for event in tf.train.summary_iterator(str(event_file)):
            tags.update(v.tag for v in event.summary.value)
    assert {"train/outer_loss", "train/inner_loss", "train/accuracy", "validation/accuracy",
            "test/accuracy"} <= tags


def test_resume_is_exact(runs):
    """3 + 3 iterations with a restart in between equal 6 uninterrupted ones (weights, Adam slots, episodes)."""
    assert any("resumed" in line for line in runs["lines"])
    assert runs["resumed"]["iterations"] == 6 and runs["resumed"]["iterations_this_session"] == 3
    a = read_checkpoint(str(runs["dir"] / "straight" / "ckpt-6"))
    b = read_checkpoint(str(runs["dir"] / "split" / "ckpt-6"))
    assert set(a) == set(b) and any("Adam" in k for k in a)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-7, err_msg=name)
    # The sidecar holds the episode RandomState: the same next episode in both runs.
    states = []
    for run in ("straight", "split"):
        rand = np.random.RandomState()
        with open(runs["dir"] / run / "ckpt-6.state.pkl", "rb") as handle:
            rand.set_state(pickle.load(handle)["rand"])
        states.append(rand.randint(1 << 30, size=4))
    np.testing.assert_array_equal(*states)
    assert runs["straight"]["test"]["accuracy"] == pytest.approx(runs["resumed"]["test"]["accuracy"], abs=1e-6)


def test_one_session_run_per_meta_iteration(runs):
    assert runs["calls"]["straight"] - runs["calls"]["split"] == 3


def test_resume_refuses_a_changed_configuration(runs):
    with pytest.raises(InvalidArgumentError, match="configuration changed"):
        workflow.train(tiny(runs["dir"], name="split", meta_train_iterations=8, lr=0.2), log=quiet)


def test_evaluate_reproduces_the_final_test_and_selects_iterations(runs):
    run_dir = str(runs["dir"] / "split")
    out = workflow.evaluate(run_dir, iterations=[3, 6], log=quiet)
    assert [r["iteration"] for r in out["results"]] == [3, 6]
    assert out["results"][1]["accuracy"] == pytest.approx(runs["resumed"]["test"]["accuracy"], abs=1e-6)
    assert all(r["episodes"] == 10 and r["T"] == 1 for r in out["results"])
    assert os.path.exists(os.path.join(run_dir, "evaluation.json"))
    with pytest.raises(DataNotFoundError, match="available iterations"):
        workflow.evaluate(run_dir, iterations=[4], log=quiet)
    with pytest.raises(DataNotFoundError, match="config.json"):
        workflow.evaluate(str(runs["dir"] / "nothing"), log=quiet)


def test_evaluation_adapts_with_the_learned_step_size(fresh_graph, tmp_path):
    """Meta-SGD: the evaluation uses the learned lr variable (the original adapted with SGD(lr0))."""
    config = tiny(tmp_path, algorithm="metasgd", T_test=2).validate()
    dataset = workflow.load_dataset(config)
    model = workflow.build_model(config, dataset)
    lr_vars = [v for v in tf.global_variables() if v.name.split("/")[-1].startswith("lr")]
    assert lr_vars and "lr" in model.extras
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        feed = {}
        for d in model.experiment.feed_dicts(dataset.test.generate_batch(3, rand=0)):
            feed.update(d)

        def loss_with(value):
            for v in lr_vars:
                v.load(np.full(v.shape.as_list(), value, np.float32), sess)
            return sess.run(model.adapted_loss, feed)

        no_step, with_step = loss_with(0.0), loss_with(0.4)
    assert not np.allclose(no_step, with_step)


@pytest.mark.parametrize("threshold,looped,budget,tasks", [(16, False, None, 2), (2, True, 1e-9, 1)])
def test_while_loop_threshold_reaches_the_inner_loop(fresh_graph, tmp_path, threshold, looped, budget, tasks):
    """T=2: unrolled at the default threshold, inner tf.while_loops (inside the task map's body) at 2;
    task_memory_budget reaches the task map (2 tasks at once, or 1 with a tiny budget)."""
    config = tiny(tmp_path, T=2, while_loop_threshold=threshold, task_memory_budget=budget,
                  parallel_iterations=2).validate()
    model = workflow.build_model(config, workflow.load_dataset(config))
    assert model.inner_grad.config.while_loop_threshold == threshold
    assert model.boml_ho.outergradient.task_maps[0]["concurrent_tasks"] == tasks
    library = tf.get_default_graph().as_graph_def().library.function
    inner = [node.name for function in library for node in function.node_def
             if node.op in ("While", "StatelessWhile") and "lower_dynamics" in node.name]
    assert bool(inner) is looped


def test_recompute_every_reaches_the_upper_strategy(fresh_graph, tmp_path):
    config = tiny(tmp_path, T=2, recompute_every="1").validate()
    model = workflow.build_model(config, workflow.load_dataset(config))
    assert model.boml_ho.outergradient.config.recompute_every == 1


@pytest.mark.parametrize("algorithm", ["rhg", "bda"])
def test_meta_feat_family_trains_and_budget_stops_training(tmp_path, algorithm):
    results = workflow.train(tiny(tmp_path, algorithm=algorithm, T=2, meta_train_iterations=10 ** 6,
                                  max_minutes=1e-4, test_episodes=5, print_interval=1), log=quiet)
    assert np.isfinite(results["final_running"]["outer_loss"])
    assert results["stopped_by"] == "budget" and 1 <= results["iterations"] < 10 ** 6


def test_maml_learns_on_synthetic(tmp_path):
    config = workflow.preset("maml-synthetic", logdir=str(tmp_path), meta_train_iterations=100, val_interval=0,
                             save_interval=0, print_interval=0)
    results = workflow.train(config, log=quiet)
    assert results["test"]["accuracy"] > 0.35  # chance is 0.2


# ------------------------------------------------------------------------------------------ run names
def changed_value(field, value):
    kind, _ = workflow.config.field_type(field)
    choices = field.metadata["choices"]
    if choices:
        return next(c for c in choices if c != value)
    if kind is bool:
        return not value
    if value is None:
        return 3
    if kind is str:
        return "Momentum" if value != "Momentum" else "Adam"
    return value + 1 if kind is int else value * 2 + 0.5


def test_every_structural_field_changes_the_derived_run_name():
    """The run name and the resume check read one list: two runs that cannot resume each other never share a name."""
    base = workflow.Config()
    for name in workflow.config.structural_fields():
        field = workflow.Config.__dataclass_fields__[name]
        if name in ("method", "inner_method", "outer_method"):
            other = base.replace(algorithm=None, method="MetaInit", inner_method="Simple", outer_method="Reptile")
        else:
            other = base.replace(**{name: changed_value(field, getattr(base.resolved(), name))})
        assert other.run_name != base.run_name, name
        changed = "outer_method" if name in ("method", "inner_method") else name
        with pytest.raises(InvalidArgumentError, match=f"{changed}: saved"):
            workflow.config.check_resumable(base.resolved().to_dict(), other.resolved(), "run")


def test_run_names_show_the_split_and_the_filters():
    name = workflow.preset("maml-omniglot-5w1s").run_name
    assert name == "maml_omniglot_vinyals_5way1shot_tq5_mbs8_T1_lr0.4_mlr0.001_seed0_nf32"
    assert workflow.preset("maml-omniglot-5w1s", split="lake").run_name != name
    assert workflow.Config(name="mine").run_name == "mine"
    # settings that do not change the graph or the episodes keep the name (the run can be resumed with them)
    assert workflow.preset("maml-omniglot-5w1s", max_minutes=5, print_interval=7, logdir="x").run_name == name


# ------------------------------------------------------------------------------------------ TensorBoard
def points(run_dir):
    seen = []
    for event_file in sorted(run_dir.glob("events.out.tfevents.*")):
        for event in tf.train.summary_iterator(str(event_file)):
            seen.extend((v.tag, event.step) for v in event.summary.value)
    return seen


class FailingTrain:
    """The training split of a dataset whose ``calls``-th batch raises (a crash after a checkpoint)."""

    def __init__(self, train, calls):
        self.train, self.left = train, calls

    def __getattr__(self, name):
        return getattr(self.train, name)

    def generate_batch(self, *args, **kwargs):
        self.left -= 1
        if self.left < 0:
            raise RuntimeError("simulated crash")
        return self.train.generate_batch(*args, **kwargs)


def test_a_resumed_run_writes_each_tensorboard_point_once(tmp_path):
    config = tiny(tmp_path, name="tb", meta_train_iterations=6, save_interval=2, print_interval=1, val_interval=3)
    dataset = workflow.load_dataset(config.validate())
    crashing = type(dataset)(FailingTrain(dataset.train, 5), dataset.validation, dataset.test)
    with pytest.raises(RuntimeError, match="simulated crash"):
        workflow.train(config, dataset=crashing, log=quiet)  # logs steps 1-5, last checkpoint at 4
    assert workflow.latest_checkpoint(str(tmp_path / "tb")).endswith("ckpt-4")
    assert max(step for _, step in points(tmp_path / "tb")) == 5
    workflow.train(config, dataset=dataset, log=quiet)  # resumes at 4: steps 5 and 6 again, then the test
    workflow.train(config, dataset=dataset, log=quiet)  # nothing to train: the test at step 6 again
    seen = points(tmp_path / "tb")
    assert len(seen) == len(set(seen))
    assert sorted(s for t, s in seen if t == "train/outer_loss") == [1, 2, 3, 4, 5, 6]
    assert [s for t, s in seen if t == "validation/accuracy"] == [3, 6]
    assert [s for t, s in seen if t == "test/accuracy"] == [6]


# ------------------------------------------------------------------------------------------ failed starts
def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_config(tmp_path):
    """The graph cannot be built (Forward with too many hyperparameters): no run directory is left."""
    config = tiny(tmp_path, name="failed", algorithm="forward", forward_max_dim=1)
    with pytest.raises(Exception) as error:
        workflow.train(config, log=quiet)
    assert "forward_max_dim" in str(error.value)
    assert not (tmp_path / "failed").exists()


def test_reptile_and_mtnet_train_through_the_workflow(tmp_path):
    for algorithm in ("reptile", "mtnet"):
        results = workflow.train(tiny(tmp_path, name=algorithm, algorithm=algorithm, meta_train_iterations=2,
                                      test_episodes=5), log=quiet)
        assert results["iterations"] == 2 and np.isfinite(results["final_running"]["outer_loss"])


def test_vectorize_tasks_reaches_the_task_map(fresh_graph, tmp_path):
    """--vectorize_tasks: 2 tasks at once; under 'auto' an inner tf.while_loop keeps the map quietly."""
    config = tiny(tmp_path, T=2, vectorize_tasks=True, parallel_iterations=2).validate()
    model = workflow.build_model(config, workflow.load_dataset(config))
    task_map = model.boml_ho.outergradient.task_maps[0]
    assert task_map["vectorized"] is True and task_map["concurrent_tasks"] == 2
    with tf.Graph().as_default():  # the default (None): 'auto', small tasks vectorized
        config = tiny(tmp_path, T=2).validate()
        assert config.vectorize_tasks is None
        model = workflow.build_model(config, workflow.load_dataset(config))
    assert model.boml_ho.outergradient.config.vectorize_tasks == "auto"
    assert model.boml_ho.outergradient.task_maps[0]["vectorized"] is True
    with tf.Graph().as_default():
        config = tiny(tmp_path, T=2, vectorize_tasks=False).validate()
        model = workflow.build_model(config, workflow.load_dataset(config))
    assert model.boml_ho.outergradient.task_maps[0]["vectorized"] is False
    with tf.Graph().as_default(), warnings.catch_warnings():
        warnings.simplefilter("error", VectorizationWarning)
        config = tiny(tmp_path, T=2, while_loop_threshold=2).validate()
        model = workflow.build_model(config, workflow.load_dataset(config))
    task_map = model.boml_ho.outergradient.task_maps[0]
    assert task_map["vectorized"] is False and "tf.while_loop" in task_map["vectorization_error"]
