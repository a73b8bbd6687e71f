"""boml.distributed: the meta-batch sharded over worker processes on 127.0.0.1 gives the single-process
meta-update (float64, 1e-10) for MAML and RHG; failing tasks give typed errors within a bounded time.

One module-scoped cluster (one ps, three workers; ``python -m boml worker`` subprocesses with a
bounded ``--lifetime``, killed by the fixture) serves every test.
"""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import boml
from boml import distributed
from boml.distributed import command as worker_command
from boml.errors import BOMLError, InvalidArgumentError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = 5  # tasks per meta-iteration: shards of [5], [3, 2], [2, 2, 1]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(spec, job, index, lifetime=1800):
    # The fixture kills the servers; the lifetime only ends orphans. It must outlast the module on a loaded
    # machine (180 s did not: at a load of 15 the servers quit before the module's last tests).
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-m", "boml", "worker", "--cluster_spec", json.dumps(spec),
                             "--job_name", job, "--task_index", str(index), "--lifetime", str(lifetime)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def cluster_processes():
    spec = {"ps": [f"127.0.0.1:{_free_port()}"], "worker": [f"127.0.0.1:{_free_port()}" for _ in range(3)]}
    procs = {("ps", 0): _spawn(spec, "ps", 0), **{("worker", i): _spawn(spec, "worker", i) for i in range(3)}}
    yield spec, procs
    for proc in procs.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait(timeout=30)


@pytest.fixture
def dataset():
    return boml.meta_synthetic(num_classes=3, examples_train=2, examples_test=3, image_shape=(4, 4, 1), seed=0)


def _build(algorithm, dataset, cluster=None):
    """The MAML or RHG meta-update of ``B`` tasks, in float64, inside ``replicate(cluster)`` if given."""
    graph = tf.Graph()
    with graph.as_default(), (distributed.replicate(cluster) if cluster else contextlib.nullcontext()):
        ex = boml.BOMLExperiment(dataset, dtype=tf.float64, meta_batch_size=B)
        if algorithm == "MAML":
            boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
            meta_learner = boml_ho.meta_learner(ex.x, dataset, meta_model="V1", dim_hidden=(3,))
            ex.model = boml_ho.base_learner(ex.x, meta_learner)
            meta = tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS)
        else:
            boml_ho = boml.BOMLOptimizer("MetaFeat", "Trad", "Reverse")
            W = boml.extension.get_outerparameter("W", np.random.RandomState(0).randn(16, 4) * 0.3)
            boml_ho.set_output_dim(3)
            ex.model = boml_ho.base_learner(tf.tanh(tf.matmul(tf.reshape(ex.x, [-1, 16]), W)), None)
            meta = [W]
        query = ex.model.re_forward(tf.tanh(tf.matmul(tf.reshape(ex.x_, [-1, 16]), W))).out \
            if algorithm == "RHG" else ex.model.re_forward(ex.x_).out
        inner_grad = boml_ho.ll_problem(boml.utils.cross_entropy(ex.model.out, ex.y), 0.3, 2, experiment=ex)
        boml_ho.ul_problem(boml.utils.cross_entropy(query, ex.y_), 0.05, inner_grad, meta_param=meta)
        boml_ho.aggregate_all()
        init = tf.global_variables_initializer()
    return {"graph": graph, "ex": ex, "boml_ho": boml_ho, "meta": meta, "init": init}


def _train(model, session, dataset, iterations=2):
    """Runs ``iterations`` meta-updates from fixed meta-parameters; returns their values and the losses."""
    session.run(model["init"])
    for k, param in enumerate(model["meta"]):
        param.load(np.random.RandomState(10 + k).randn(*param.shape.as_list()) * 0.4, session)
    losses = []
    for step in range(iterations):
        episodes = dataset.train.generate_batch(B, rand=np.random.RandomState(step))
        losses.append(model["boml_ho"].run(*model["ex"].feed_dicts(episodes), session=session))
    return session.run(model["meta"]), losses


def _devices_that_ran(model, session, dataset):
    episodes = dataset.train.generate_batch(B, rand=np.random.RandomState(9))
    metadata = tf.RunMetadata()
    feed = {**model["ex"].feed_dicts(episodes)[0], **model["ex"].feed_dicts(episodes)[1]}
    session.run(model["boml_ho"].hypergradients[0][0], feed, run_metadata=metadata,
                options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE))
    return {d.device.split("/device:")[0].replace("/replica:0", "") for d in metadata.step_stats.dev_stats}


@pytest.mark.parametrize("algorithm", ["MAML", "RHG"])
def test_sharded_meta_update_equals_the_single_process_one(cluster_processes, dataset, algorithm):
    spec, _ = cluster_processes
    single = _build(algorithm, dataset)
    with tf.Session(graph=single["graph"]) as sess:
        expected, expected_losses = _train(single, sess, dataset)
    start = [np.random.RandomState(10 + k).randn(*p.shape.as_list()) * 0.4 for k, p in enumerate(single["meta"])]
    assert max(np.max(np.abs(a - b)) for a, b in zip(expected, start)) > 1e-4  # the meta-update moves them
    for workers in (1, 2, 3):
        cluster = distributed.Cluster(spec, num_workers=workers)
        model = _build(algorithm, dataset, cluster)
        assert all(p.device == "/job:ps/task:0" for p in model["meta"])
        with distributed.connect(cluster, graph=model["graph"], connect_timeout=90) as sess:
            values, losses = _train(model, sess, dataset)
            ran = _devices_that_ran(model, sess, dataset)
        assert ran == {"/job:ps/task:0", *cluster.worker_devices}, ran
        for value, reference in zip(values, expected):
            np.testing.assert_allclose(value, reference, rtol=0, atol=1e-10)
        for got, want in zip(losses, expected_losses):
            np.testing.assert_allclose(got["outer_loss"], want["outer_loss"], rtol=1e-10)


def test_hung_worker_fails_the_step_within_the_timeout_naming_it(cluster_processes, dataset):
    spec, procs = cluster_processes
    cluster = distributed.Cluster(spec)
    model = _build("MAML", dataset, cluster)
    with distributed.connect(cluster, graph=model["graph"], connect_timeout=90, step_timeout=60.0) as sess:
        _train(model, sess, dataset, iterations=1)  # the first run registers the graphs: slower
        sess.step_timeout = 3.0
        os.kill(procs[("worker", 2)].pid, signal.SIGSTOP)
        try:
            start = time.monotonic()
            with pytest.raises(distributed.WorkerFailureError) as failure:
                _train(model, sess, dataset, iterations=1)
            elapsed = time.monotonic() - start
        finally:
            os.kill(procs[("worker", 2)].pid, signal.SIGCONT)
    assert elapsed < 3.0 + 2 * 2.0 + 5.0  # step_timeout + the diagnosis pings + slack
    assert failure.value.tasks == [("/job:worker/task:2", spec["worker"][2])]
    assert "/job:worker/task:2 at " + spec["worker"][2] in str(failure.value)
    assert isinstance(failure.value.__cause__, tf.errors.DeadlineExceededError)


def test_dead_worker_fails_the_step_naming_it_and_a_restart_resumes(cluster_processes, dataset, tmp_path):
    spec, procs = cluster_processes
    cluster = distributed.Cluster(spec)
    single = _build("RHG", dataset)
    with tf.Session(graph=single["graph"]) as sess:
        expected, _ = _train(single, sess, dataset, iterations=2)
    model = _build("RHG", dataset, cluster)
    with model["graph"].as_default():
        saver = tf.train.Saver()
    with distributed.connect(cluster, graph=model["graph"], connect_timeout=90, step_timeout=20.0) as sess:
        _train(model, sess, dataset, iterations=1)
        prefix = saver.save(sess, str(tmp_path / "ckpt"))
        procs[("worker", 1)].kill()
        procs[("worker", 1)].wait()
        start = time.monotonic()
        with pytest.raises(distributed.WorkerFailureError) as failure:
            episodes = dataset.train.generate_batch(B, rand=np.random.RandomState(1))
            model["boml_ho"].run(*model["ex"].feed_dicts(episodes), session=sess)
        assert time.monotonic() - start < 10.0
    assert failure.value.tasks == [("/job:worker/task:1", spec["worker"][1])]
    assert spec["worker"][1] in str(failure.value) and "resume" in str(failure.value)
    procs[("worker", 1)] = _spawn(spec, "worker", 1)
    with distributed.connect(cluster, graph=model["graph"], connect_timeout=90) as sess:
        saver.restore(sess, prefix)
        model["boml_ho"].sync_step(sess)
        episodes = dataset.train.generate_batch(B, rand=np.random.RandomState(1))
        model["boml_ho"].run(*model["ex"].feed_dicts(episodes), session=sess)
        resumed = sess.run(model["meta"])
    np.testing.assert_allclose(resumed[0], expected[0], rtol=0, atol=1e-10)


def test_unreachable_worker_at_start_is_a_typed_error_after_the_timeout():
    address = f"127.0.0.1:{_free_port()}"
    cluster = distributed.Cluster.from_spec(f"worker={address}")
    start = time.monotonic()
    with pytest.raises(distributed.WorkerUnreachableError) as failure:
        distributed.connect(cluster, connect_timeout=1.0)
    assert 1.0 <= time.monotonic() - start < 6.0
    assert failure.value.tasks == [("/job:worker/task:0", address)]
    assert f"/job:worker/task:0 at {address}" in str(failure.value) and "connect_timeout=1 s" in str(failure.value)
    assert isinstance(failure.value, (BOMLError, ConnectionError))


@pytest.mark.parametrize("text, jobs", [
    ("worker=a:1,b:2", {"worker": ["a:1", "b:2"]}),
    ("worker=a:1;ps=c:3;", {"worker": ["a:1"], "ps": ["c:3"]}),
    ('{"worker": ["a:1"], "chief": "d:4"}', {"worker": ["a:1"], "chief": ["d:4"]}),
])
def test_cluster_spec_formats(text, jobs):
    assert distributed.parse_cluster_spec(text) == (jobs, None)


def test_tf_config_gives_the_cluster_and_the_task():
    document = {"cluster": {"worker": ["a:1", "b:2"], "chief": ["c:3"]}, "task": {"type": "worker", "index": 1}}
    cluster = distributed.Cluster.from_spec(environ={"TF_CONFIG": json.dumps(document)})
    assert cluster.task == ("worker", 1)
    assert cluster.parameter_device == "/job:chief/task:0" and cluster.target == "grpc://c:3"
    assert cluster.devices == ["/job:chief/task:0", "/job:worker/task:0", "/job:worker/task:1"]
    plain = distributed.Cluster.from_spec("worker=a:1,b:2", num_workers=1)
    assert plain.parameter_device == "/job:worker/task:0" and plain.devices == ["/job:worker/task:0"]
    assert "num_workers=1" in repr(plain) and plain.spec.as_dict() == {"worker": ["a:1", "b:2"]}


@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("{bad", "not valid JSON"), ("worker", "not job=host:port"), ("[1]", "map job names"),
    ("[", "not valid JSON"),
    ('"x"', "map job names"), ("gpu=a:1", "unknown job"), ("ps=a:1", "no worker"), ("worker=a:0", "1..65535"),
    ("worker=a:1;chief=b:1,c:1", "one task"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "not in the cluster"),
])
def test_bad_cluster_specs_are_typed_errors(text, message):
    with pytest.raises(distributed.ClusterSpecError, match=message):
        distributed.parse_cluster_spec(text)


def test_bad_cluster_arguments():
    with pytest.raises(distributed.ClusterSpecError, match="TF_CONFIG"):
        distributed.Cluster.from_spec(environ={})
    with pytest.raises(distributed.ClusterSpecError, match=r"1\.\.2 .*received 3"):
        distributed.Cluster.from_spec("worker=a:1,b:2", num_workers=3)
    with pytest.raises(distributed.ClusterSpecError, match="--task_index"):
        distributed.start_server(distributed.Cluster.from_spec("worker=a:1"), "worker", 1)
    with pytest.raises(InvalidArgumentError, match="connect_timeout"):
        distributed.connect(distributed.Cluster.from_spec("worker=a:1"), connect_timeout=0)
    with pytest.raises(InvalidArgumentError, match="shards"):
        distributed.shard_sizes(3, 0)


def test_shard_sizes_are_contiguous_and_even():
    assert distributed.shard_sizes(5, 2) == [3, 2]
    assert distributed.shard_sizes(5, 3) == [2, 2, 1]
    assert distributed.shard_sizes(2, 4) == [1, 1]


def test_worker_command_takes_the_task_from_tf_config_and_flags(monkeypatch):
    calls = []
    document = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"], "ps": ["127.0.0.1:3"]},
                "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(document))
    from boml.__main__ import build_parser

    parser = build_parser()
    args = parser.parse_args(["worker", "--lifetime", "0"])
    worker_command.run_worker_command(args, serve=lambda c, j, i, lifetime, log: calls.append((j, i, lifetime)),
                                      exit=calls.append)
    args = parser.parse_args(["worker", "--job_name", "ps", "--task_index", "0"])
    worker_command.run_worker_command(args, serve=lambda c, j, i, lifetime, log: calls.append((j, i, lifetime)),
                                      exit=calls.append)
    assert calls == [("worker", 1, 0.0), 0, ("ps", 0, None), 0]


def test_serve_starts_a_server_that_answers_and_returns_after_its_lifetime():
    address = f"127.0.0.1:{_free_port()}"
    cluster = distributed.Cluster.from_spec(f"worker={address}")
    lines, slept = [], []
    server = distributed.serve(cluster, "worker", 0, lifetime=0.5, log=lines.append, sleep=slept.append)
    assert server.target == f"grpc://{address}" and slept == [0.5]
    assert f"/job:worker/task:0 serving at {address}" in lines[0]
    assert distributed.ping(cluster, "/job:worker/task:0")


def test_distributed_example_trains_over_the_cluster(cluster_processes, capsys):
    import importlib.util

    spec, _ = cluster_processes
    path = os.path.join(ROOT, "examples", "distributed_maml.py")
    module_spec = importlib.util.spec_from_file_location("distributed_maml", path)
    example = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(example)
    losses = example.main(["--cluster_spec", json.dumps(spec), "--iterations", "2", "--meta_batch_size", "3",
                           "--image_size", "4", "--dim_hidden", "3"])
    out = capsys.readouterr().out
    assert "shards on ['/job:worker/task:0', '/job:worker/task:1', '/job:worker/task:2']" in out
    assert out.count("outer loss") == 2 and np.isfinite(losses["outer_loss"])


def test_workflow_trains_and_resumes_over_the_cluster_as_on_one_process(cluster_processes, tmp_path):
    from boml import workflow

    spec, _ = cluster_processes
    values = dict(algorithm="maml", dataset="synthetic", classes=3, examples_train=1, examples_test=2,
                  meta_batch_size=3, T=1, lr=0.4, meta_lr=1e-2, num_filters=2, image_size=8, test_episodes=6,
                  eval_batch_size=3, print_interval=0, save_interval=0, val_interval=0, name="run")
    single = workflow.train(workflow.Config(logdir=str(tmp_path / "one"), meta_train_iterations=4, **values),
                            log=lambda *_: None)
    config = workflow.Config(logdir=str(tmp_path / "cluster"), meta_train_iterations=2, cluster_spec=json.dumps(spec),
                             **values)
    workflow.train(config, log=lambda *_: None)
    resumed = workflow.train(config.replace(meta_train_iterations=4), log=lambda *_: None)
    assert resumed["iterations"] == 4 and resumed["iterations_this_session"] == 2
    np.testing.assert_allclose(resumed["final_running"]["outer_loss"], single["final_running"]["outer_loss"],
                               rtol=1e-6)
    np.testing.assert_allclose(resumed["test"]["loss"], single["test"]["loss"], rtol=1e-6)
    assert resumed["test"]["accuracy"] == single["test"]["accuracy"]


def test_a_single_task_experiment_runs_on_the_first_worker_and_the_parameters_on_the_ps(dataset):
    cluster = distributed.Cluster.from_spec("worker=127.0.0.1:1,127.0.0.1:2;ps=127.0.0.1:3")
    with tf.Graph().as_default() as graph, distributed.replicate(cluster) as plan:
        assert distributed.active_plan() is plan
        ex = boml.BOMLExperiment(dataset, dtype=tf.float64)
        boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
        ex.model = boml_ho.base_learner(ex.x, boml_ho.meta_learner(ex.x, dataset, meta_model="V1", dim_hidden=(3,)))
        inner_grad = boml_ho.ll_problem(boml.utils.cross_entropy(ex.model.out, ex.y), 0.3, 1, experiment=ex)
        boml_ho.ul_problem(boml.utils.cross_entropy(ex.model.re_forward(ex.x_).out, ex.y_), 0.05, inner_grad)
        boml_ho.aggregate_all()
    assert distributed.active_plan() is None
    task_ops = {op.device for op in graph.get_operations() if "/task/" in op.name and op.type != "ReadVariableOp"}
    assert task_ops == {"/job:worker/task:0"}  # variable reads run where the variables are
    with graph.as_default():
        assert {v.device for v in tf.global_variables()} == {"/job:ps/task:0"}


def test_a_step_slower_than_step_timeout_is_reported_as_such(cluster_processes):
    spec, _ = cluster_processes
    cluster = distributed.Cluster(spec, num_workers=1)
    graph = tf.Graph()
    with graph.as_default(), tf.device("/job:worker/task:0"):
        slow = tf.while_loop(lambda i: i < 10 ** 7, lambda i: i + 1, [tf.constant(0)])
    with distributed.connect(cluster, graph=graph, connect_timeout=90, step_timeout=0.01) as sess:
        with pytest.raises(distributed.WorkerFailureError, match="every task answers now.*raise it") as failure:
            sess.run(slow)
    assert failure.value.tasks == []


def test_unknown_names_of_the_package():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        distributed.nope  # noqa: B018
    assert "connect" in dir(distributed)
