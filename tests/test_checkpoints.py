"""Checkpoints that survive kills and damage, a locked run directory, no non-finite checkpoint (issue 13)."""
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from boml import extension, workflow
from boml.errors import DataError, DivergenceError, InvalidArgumentError
from boml.workflow import checkpoints, trainer
from boml.workflow.checkpoints import CheckpointError
from boml.workflow.locking import LOCK_FILE, RunLock, RunLockedError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ITERATIONS = 8
TINY = dict(algorithm="maml", dataset="synthetic", classes=3, examples_train=1, examples_test=2, meta_batch_size=2,
            T=1, lr=0.4, meta_lr=1e-2, num_filters=4, image_size=8, meta_train_iterations=ITERATIONS,
            test_episodes=4, val_episodes=4, eval_batch_size=4, print_interval=0, save_interval=1, val_interval=0,
            keep_checkpoints=3, threads=1)
#: Run in a subprocess: ``python -m boml`` that SIGKILLs itself before its N-th fsync, rename or unlink.
KILLING_CHILD = r"""
import os, signal, sys
limit, count = int(os.environ["BOML_TEST_KILL_AT"]), [0]
def hook(function):
    def wrapped(*args, **kwargs):
        count[0] += 1
        if count[0] == limit:
            os.kill(os.getpid(), signal.SIGKILL)
        return function(*args, **kwargs)
    return wrapped
os.fsync, os.replace, os.remove = hook(os.fsync), hook(os.replace), hook(os.remove)
from boml.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def tiny(logdir, **changes):
    return workflow.Config().replace(**{**TINY, "logdir": str(logdir), "name": "run", **changes})


def tensors(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def assert_same_tensors(a, b):
    assert set(a) == set(b) and any("Adam" in k for k in a)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def listing(run_dir):
    return {name: (run_dir / name).read_bytes() for name in sorted(os.listdir(run_dir))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of ``ITERATIONS`` meta-iterations (checkpoints 6, 7, 8 kept)."""
    logdir = tmp_path_factory.mktemp("reference")
    workflow.train(tiny(logdir), log=lambda _: None)
    run_dir = logdir / "run"
    assert checkpoints.saved_iterations(str(run_dir)) == [6, 7, 8]
    return {"dir": run_dir, "final": tensors(str(run_dir / f"ckpt-{ITERATIONS}"))}


@pytest.fixture
def copy(reference, tmp_path):
    """A copy of the reference run directory, to damage (same config, so ``tiny(tmp_path)`` resumes it)."""
    shutil.copytree(reference["dir"], tmp_path / "run")
    return tmp_path / "run"


# ------------------------------------------------------------------------------------------ kill -9
def test_kill_9_during_checkpoint_writes_then_resume_reaches_the_uninterrupted_parameters(reference, tmp_path):
    """Three children SIGKILL themselves at seeded points of their file writes; each next one resumes.

    The kill points are the N-th fsync/rename/unlink of a child (N from a seeded RandomState), so they
    fall inside the TensorFlow files, the state file, the index and the deletion of old checkpoints.
    """
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps({**TINY, "logdir": str(tmp_path), "name": "run"}))
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    killed, outputs = 0, []
    for limit in np.random.RandomState(13).randint(14, 34, size=3):
        done = subprocess.run([sys.executable, "-c", KILLING_CHILD, "train", "--config", str(config_path)],
                              cwd=ROOT, env={**env, "BOML_TEST_KILL_AT": str(limit)}, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode in (0, -signal.SIGKILL), done.stderr[-3000:]
        killed += done.returncode == -signal.SIGKILL
        outputs.append(done.stdout)
    assert killed >= 2
    assert any("taking over the stale lock" in out for out in outputs[1:])
    assert any("resumed from" in out for out in outputs[1:])
    lines = []
    results = workflow.train(tiny(tmp_path), log=lines.append)
    assert results["iterations"] == ITERATIONS
    assert_same_tensors(tensors(str(tmp_path / "run" / f"ckpt-{ITERATIONS}")), reference["final"])
    assert not (tmp_path / "run" / LOCK_FILE).exists()


# ------------------------------------------------------------------------------------------ damaged checkpoints
def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_one(copy, reference):
    data = copy / "ckpt-8.data-00000-of-00001"
    size = data.stat().st_size
    data.write_bytes(data.read_bytes()[:size // 2])
    lines = []
    out = workflow.evaluate(str(copy), log=lines.append)
    assert [row["iteration"] for row in out["results"]] == [7]
    assert f"ckpt-8 rejected: its file {data.name} has {size // 2} bytes instead of {size}" in "\n".join(lines)
    with pytest.raises(CheckpointError, match=f"ckpt-8 cannot be evaluated: its file {data.name} has"):
        workflow.evaluate(str(copy), iterations=[8], log=lines.append)
    lines = []
    workflow.train(tiny(copy.parent), log=lines.append)
    assert any(line.endswith("ckpt-8 rejected: its file ckpt-8.data-00000-of-00001 has "
                             f"{size // 2} bytes instead of {size} (truncated or overwritten)") for line in lines)
    assert any(line.startswith("resumed from") and line.endswith("ckpt-7 at iteration 7") for line in lines)
    assert_same_tensors(tensors(str(copy / "ckpt-8")), reference["final"])


def test_garbage_index_deleted_and_truncated_files_never_restart_from_zero(copy):
    (copy / "checkpoint").write_text("\x00garbage {{{")
    for name in os.listdir(copy):
        if name.startswith("ckpt-8."):
            os.remove(copy / name)
    (copy / "ckpt-7.state.pkl").write_bytes((copy / "ckpt-7.state.pkl").read_bytes()[:10])
    lines = []
    prefix, state = checkpoints.find_checkpoint(str(copy), tiny(copy.parent).validate(), log=lines.append)
    assert prefix == str(copy / "ckpt-6") and state["config"]["num_filters"] == 4
    assert "index" in lines[0] and "unreadable" in lines[0]
    assert "ckpt-7 rejected: its state file ckpt-7.state.pkl cannot be read (UnpicklingError" in lines[1]
    assert workflow.latest_checkpoint(str(copy)) == str(copy / "ckpt-6")
    os.remove(copy / "ckpt-6.state.pkl")
    before = listing(copy)
    with pytest.raises(CheckpointError) as error:
        workflow.train(tiny(copy.parent), log=lambda _: None)
    message = str(error.value)
    assert "no valid checkpoint" in message and "ckpt-6: its state file ckpt-6.state.pkl is missing" in message
    assert "--no-resume" in message
    assert listing(copy) == before  # nothing changed, the lock released
    with pytest.raises(CheckpointError, match="no valid checkpoint"):
        workflow.evaluate(str(copy), log=lambda _: None)


@pytest.mark.parametrize("damage,reason", [
    ("flip", "its file ckpt-8.data-00000-of-00001 does not have the recorded SHA-256 (damaged)"),
    ("other_step", "its state file records step 7, not 8"),
    ("old_format", "its state file ckpt-8.state.pkl has no integrity record of format 2 (written by an older "
                   "boml, or not by boml)"),
    ("no_index", "its file ckpt-8.index is missing"),
])
def test_each_kind_of_damage_is_named(copy, damage, reason):
    data = copy / "ckpt-8.data-00000-of-00001"
    if damage == "flip":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data.write_bytes(bytes(raw))
    elif damage == "other_step":
        shutil.copy(copy / "ckpt-7.state.pkl", copy / "ckpt-8.state.pkl")
    elif damage == "old_format":
        (copy / "ckpt-8.state.pkl").write_bytes(pickle.dumps({"rand": None, "train_seconds": 1.0}))
    else:
        os.remove(copy / "ckpt-8.index")
    lines = []
    prefix, _ = checkpoints.find_checkpoint(str(copy), log=lines.append)
    assert prefix == str(copy / "ckpt-7")
    assert lines == [f"checkpoint {copy / 'ckpt-8'} rejected: {reason}",
                     "the checkpoint index names ckpt-8; the newest valid checkpoint is ckpt-7"]


def test_no_resume_starts_a_new_run_directory_and_deletes_nothing(copy):
    before = listing(copy)
    lines = []
    results = workflow.train(tiny(copy.parent, resume=False, meta_train_iterations=1), log=lines.append)
    fresh = copy.parent / "run-2"
    assert results["run_dir"] == str(fresh) and results["iterations"] == 1
    assert any(f"{copy} has checkpoints, which are kept" in line and str(fresh) in line for line in lines)
    assert listing(copy) == before
    assert json.loads((fresh / "config.json").read_text())["name"] == "run-2"


def test_missing_config_json_then_a_structural_change_is_refused_before_building(copy, monkeypatch):
    os.remove(copy / "config.json")

    def no_graph(*_):
        raise AssertionError("the graph was built")

    monkeypatch.setattr(trainer, "build_model", no_graph)
    with pytest.raises(InvalidArgumentError, match="num_filters: saved 4 vs now 8"):
        workflow.train(tiny(copy.parent, num_filters=8), log=lambda _: None)
    assert not (copy / LOCK_FILE).exists()


def test_plotting_skips_an_unreadable_state_file(tmp_path):
    from boml.workflow.plotting import read_curves

    state = {"progress": [{"iteration": 2, "train_seconds": 1.0, "outer_loss": 1.0}], "history": []}
    (tmp_path / "ckpt-2.state.pkl").write_bytes(pickle.dumps(state))
    (tmp_path / "ckpt-4.state.pkl").write_bytes(pickle.dumps(state)[:7])
    assert read_curves(str(tmp_path))["progress"][0]["iteration"] == 2
    os.remove(tmp_path / "ckpt-2.state.pkl")
    with pytest.raises(DataError, match="none of its checkpoint state files can be read"):
        read_curves(str(tmp_path))


# ------------------------------------------------------------------------------------------ lock
def test_a_second_session_on_a_locked_directory_is_refused(copy):
    before = listing(copy)
    with RunLock(str(copy)):
        with pytest.raises(RunLockedError) as error:
            workflow.train(tiny(copy.parent), log=lambda _: None)
        assert f"in use by process {os.getpid()} on this host" in str(error.value)
        assert (copy / LOCK_FILE).exists()
    assert listing(copy) == before  # released; config.json and the checkpoints untouched
    (copy / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    with pytest.raises(RunLockedError, match="on host 'elsewhere'.*delete"):
        RunLock(str(copy)).acquire()


def test_a_stale_lock_is_taken_over_with_a_message(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    lines = []
    with RunLock(str(tmp_path), log=lines.append):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert lines == [f"taking over the stale lock {tmp_path / LOCK_FILE} (of process {dead.pid}, which is no "
                     "longer running)"]
    assert not (tmp_path / LOCK_FILE).exists()
    # a live pid whose process started at another time is a reused pid: the lock is stale too
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": socket.gethostname(), "started": "-1"}))
    with RunLock(str(tmp_path), log=lines.append):
        assert "of process 1, which is no longer running" in lines[-1]
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": socket.gethostname()}))
    with pytest.raises(RunLockedError, match="in use by process 1 on this host"):
        RunLock(str(tmp_path)).acquire()
    os.remove(tmp_path / LOCK_FILE)
    (tmp_path / LOCK_FILE).write_text("{garbage")
    with RunLock(str(tmp_path), log=lines.append):
        assert "unreadable" in lines[-1]


def test_sigterm_before_meta_training_releases_the_lock(tmp_path):
    def terminate(line):
        if line.startswith("run directory:"):
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        workflow.train(tiny(tmp_path), log=terminate)
    assert not (tmp_path / "run").exists()  # nothing was trained: the directory is removed with its lock
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


# ------------------------------------------------------------------------------------------ non-finite
class NanOnCall:
    """The training split of a dataset whose ``call``-th batch has NaN support images."""

    def __init__(self, train, call):
        self.train, self.left = train, call

    def __getattr__(self, name):
        return getattr(self.train, name)

    def generate_batch(self, *args, **kwargs):
        episodes = self.train.generate_batch(*args, **kwargs)
        self.left -= 1
        if self.left == 0:
            for episode in episodes:
                episode.train.data[...] = np.nan
        return episodes


def test_divergence_keeps_the_last_good_checkpoint_and_resumes_with_a_lower_meta_lr(tmp_path):
    config = tiny(tmp_path, meta_train_iterations=4)
    dataset = workflow.load_dataset(config.validate())
    first = type(dataset)(NanOnCall(dataset.train, 1), dataset.validation, dataset.test)
    with pytest.raises(DivergenceError, match="No checkpoint was saved before; run again with a lower --meta_lr "
                                              r"\(now 0.01, e.g. 0.001\)"):
        workflow.train(config.replace(name="at_once"), dataset=first, log=lambda _: None)
    assert not (tmp_path / "at_once").exists()
    poisoned = type(dataset)(NanOnCall(dataset.train, 3), dataset.validation, dataset.test)
    with pytest.raises(DivergenceError) as error:
        workflow.train(config, dataset=poisoned, log=lambda _: None)
    run_dir = tmp_path / "run"
    message = str(error.value)
    assert f"the last good one, {run_dir / 'ckpt-2'}, is kept" in message
    assert "--name run --meta_lr 0.001" in message
    assert checkpoints.saved_iterations(str(run_dir)) == [1, 2]
    assert all(np.all(np.isfinite(v)) for v in tensors(str(run_dir / "ckpt-2")).values())
    with pytest.raises(InvalidArgumentError, match="meta_lr: saved"):  # only after a divergence
        checkpoints.load_state(str(run_dir / "ckpt-2"), config.replace(meta_lr=1e-3).validate())
    lines = []
    results = workflow.train(config.replace(meta_lr=1e-3), dataset=dataset, log=lines.append)
    assert "resuming after the divergence at meta-iteration 3" in "\n".join(lines)
    assert "meta_lr 0.01 -> 0.001" in "\n".join(lines)
    assert results["iterations"] == 4 and results["iterations_this_session"] == 2
    assert not (run_dir / trainer.DIVERGED_FILE).exists()
    assert json.loads((run_dir / "config.json").read_text())["meta_lr"] == 1e-3


def test_non_finite_variables_are_never_saved(fresh_graph, tmp_path):
    config = tiny(tmp_path).validate()
    model = workflow.build_model(config, workflow.load_dataset(config))
    run_dir = tmp_path / "nan"
    run_dir.mkdir()
    meta = tf.get_collection(extension.GraphKeys.METAPARAMETERS)[0]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        first = workflow.save_checkpoint(sess, model, str(run_dir), {"rand": None})
        value = sess.run(meta)
        value.flat[0] = np.nan
        meta.load(value, sess)
        with pytest.raises(DivergenceError, match=f"the variables {meta.op.name} hold NaN"):
            workflow.save_checkpoint(sess, model, str(run_dir), {"rand": None})
        assert workflow.latest_checkpoint(str(run_dir)) == first
        assert sorted(os.listdir(run_dir)) == ["checkpoint", "ckpt-0.data-00000-of-00001", "ckpt-0.index",
                                               "ckpt-0.state.pkl"]
        # rolling back to the last good checkpoint restores finite values
        assert workflow.restore_checkpoint(sess, model, first)["rand"] is None
        assert np.all(np.isfinite(sess.run(meta)))
        state = checkpoints.load_state(first)
        data = run_dir / "ckpt-0.data-00000-of-00001"
        data.write_bytes(data.read_bytes()[:8])  # damaged after it was validated
        with pytest.raises(CheckpointError, match="TensorFlow cannot restore"):
            workflow.restore_checkpoint(sess, model, first, state)
