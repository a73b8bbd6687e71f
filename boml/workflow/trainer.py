"""The meta-training loop of ``python -m boml train``: one ``session.run`` per meta-iteration.

:func:`train` validates the configuration, loads the data (before writing anything, so a run that
cannot start leaves no run directory behind), locks the run directory
(:class:`~boml.workflow.locking.RunLock`), resumes from the newest valid checkpoint
(:func:`~boml.workflow.checkpoints.find_checkpoint`), meta-trains until ``meta_train_iterations`` or
``max_minutes``, and evaluates on the test episodes. ``resume=False`` never deletes a checkpoint:
when the run directory has some, the session starts in a new one (``<name>-2``, ``-3`` ...).
Progress lines carry a smoothed ETA (:class:`~boml.workflow.progress.EtaEstimator`); SIGINT and
SIGTERM stop it cleanly (:mod:`boml.workflow.interrupts`). A divergence (NaN or infinity) never
reaches a checkpoint; the run can then be resumed from its last good checkpoint with another
``meta_lr`` (a file ``diverged.json`` in the run directory allows that one change).
"""
import contextlib
import logging
import os
import shlex
import time
from typing import Any, Dict

import numpy as np
import tensorflow.compat.v1 as tf

from boml import distributed
from boml.errors import DivergenceError
from boml.workflow.checkpoints import (find_checkpoint, has_checkpoint_files, latest_checkpoint, restore_checkpoint,
                                       save_checkpoint)
from boml.workflow.config import Config
from boml.workflow.data import load_dataset
from boml.workflow.evaluation import evaluate_episodes, session_config
from boml.workflow.interrupts import StopRequest, TerminateAsInterrupt, TrainingInterrupted
from boml.workflow.locking import RunLock
from boml.workflow.model import build_model
from boml.workflow.prefetch import Prefetcher
from boml.workflow.progress import EtaEstimator, format_seconds
from boml.workflow.results import CONFIG_FILE, RESULTS_FILE, read_json, write_json
from boml.workflow.summaries import open_writer, remove_events, scalar_summary

LOGGER = logging.getLogger("boml.workflow")
#: Written when a run diverged after a valid checkpoint: the next resume may change ``meta_lr``.
DIVERGED_FILE = "diverged.json"


def resume_command(run_dir: str, *extra: str) -> str:
    """The shell command that continues the run of ``run_dir`` (from the directory it was started in)."""
    words = ["python", "-m", "boml", "train", "--config", os.path.join(run_dir, CONFIG_FILE), "--resume", "true",
             *extra]
    return " ".join(shlex.quote(w) for w in words)


def _new_run_directory(c: Config, log) -> Config:
    """``resume=False`` on a directory with checkpoints: the same configuration in the first free ``<name>-<k>``."""
    if c.resume or not has_checkpoint_files(c.run_dir):
        return c
    k = 2
    while os.path.exists(os.path.join(c.logdir, f"{c.run_name}-{k}")):
        k += 1
    fresh = c.replace(name=f"{c.run_name}-{k}")
    log(f"--no-resume: {c.run_dir} has checkpoints, which are kept; this run starts in the new run directory "
        f"{fresh.run_dir}")
    return fresh


def _prepare_run_dir(c: Config, log):
    """Finds the checkpoint to resume (``(prefix, state)`` or ``(None, None)``) and writes ``config.json``."""
    run_dir = c.run_dir
    prefix = state = None
    if c.resume:
        diverged = read_json(run_dir, DIVERGED_FILE, "") if os.path.exists(os.path.join(run_dir, DIVERGED_FILE)) \
            else None
        prefix, state = find_checkpoint(run_dir, c, ignore=("meta_lr",) if diverged else (), log=log)
        if diverged and prefix:
            log(f"resuming after the divergence at meta-iteration {diverged['iteration']} from {prefix}: meta_lr "
                f"{state['config']['meta_lr']:g} -> {c.meta_lr:g}"
                + (" (unchanged: it will probably diverge again)" if state["config"]["meta_lr"] == c.meta_lr else ""))
    else:
        remove_events(run_dir)
    write_json(os.path.join(run_dir, CONFIG_FILE), c.to_dict())
    return prefix, state


def _forget_failed_start(run_dir: str, existed: bool) -> None:
    """After a run failed before its first checkpoint: removes its ``config.json`` (and the directory it made)."""
    if has_checkpoint_files(run_dir):
        return
    path = os.path.join(run_dir, CONFIG_FILE)
    if os.path.exists(path):
        os.remove(path)
    if not existed and os.path.isdir(run_dir):
        for name in os.listdir(run_dir):  # event files of a session that never trained
            if name.startswith("events.out.tfevents."):
                os.remove(os.path.join(run_dir, name))
        if not os.listdir(run_dir):
            os.rmdir(run_dir)


def train(config: Config, dataset=None, log=None, clock=time.perf_counter) -> Dict[str, Any]:
    """Meta-trains ``config`` (resuming from its run directory), then evaluates it on the test split.

    Args:
        config: the configuration.
        dataset: optional pre-loaded ``Datasets`` (default: :func:`~boml.workflow.data.load_dataset`).
        log: callable receiving progress lines (default: ``logging`` at INFO).
        clock: the clock of the time budget and the ETA (seconds).

    Returns:
        The results dict also written to ``<run_dir>/results.json``.

    Raises:
        DataError: the dataset is missing (nothing is written then).
        CheckpointError: the run directory has checkpoints and none is valid (nothing is changed).
        RunLockedError: another session is training in the run directory (nothing is changed).
        InvalidArgumentError: a bad configuration, or a resume with a changed structural setting.
        DivergenceError: a loss, hypergradient or variable became NaN or infinite (no non-finite
            checkpoint is written; the message says how to resume from the last good one).
        TrainingInterrupted: SIGINT/SIGTERM; a checkpoint and ``results.json`` were saved first.
    """
    c = config.validate()
    log = log or LOGGER.info
    dataset = dataset if dataset is not None else load_dataset(c, log=log)
    with TerminateAsInterrupt():
        c = _new_run_directory(c, log)
        existed = os.path.isdir(c.run_dir)
        lock = RunLock(c.run_dir, log=log).acquire()
        try:
            try:
                log(f"run directory: {c.run_dir}")
                resume = _prepare_run_dir(c, log)
                return _Session(c, dataset, log, clock).run(*resume)
            finally:
                lock.release()
        except BaseException:
            _forget_failed_start(c.run_dir, existed)
            raise


class _Session:
    """One training session of a run: builds the graph, trains, checkpoints, tests."""

    def __init__(self, c: Config, dataset, log, clock):
        self.c, self.dataset, self.log, self.clock = c, dataset, log, clock
        self.run_dir = c.run_dir

    def run(self, prefix, state):
        c = self.c
        graph = tf.Graph()
        cluster = distributed.Cluster.from_spec(c.cluster_spec) if c.cluster_spec else None
        with graph.as_default(), distributed.replicate(cluster) if cluster else contextlib.nullcontext():
            self.model = build_model(c, self.dataset)
            init = tf.global_variables_initializer()
            graph.finalize()
        wall_start = self.clock()
        with distributed.connect(cluster, graph=graph, config=session_config(c.threads)) if cluster else \
                tf.Session(graph=graph, config=session_config(c.threads)) as sess:
            self.sess = sess
            sess.run(init)
            self.state = {"rand": np.random.RandomState(c.seed).get_state(), "train_seconds": 0.0, "history": [],
                          "progress": [], "running": {}}
            self.last_good = prefix
            if prefix:
                self.state.update(restore_checkpoint(sess, self.model, prefix, state))
                self.state.pop("config", None)
                self.log(f"resumed from {prefix} at iteration {int(sess.run(self.model.global_step))}")
            self.model.boml_ho.sync_step(sess)
            self.rand = np.random.RandomState()
            self.rand.set_state(self.state["rand"])
            self.step = self.start_step = int(sess.run(self.model.global_step))
            self.writer = open_writer(self.run_dir, self.step if prefix else None)
            try:
                stopped = self._loop(saved=self.step if prefix else None)
                if stopped not in ("budget", "iterations"):
                    results = self._results(stopped, None, wall_start)
                    raise TrainingInterrupted(stopped, results, resume_command(self.run_dir))
                self.log(f"meta-training stopped at iteration {self.step} ({stopped}) after "
                         f"{format_seconds(self.state['train_seconds'])} of meta-training; evaluating on "
                         f"{c.test_episodes} test episodes")
                test = evaluate_episodes(sess, self.model, self.dataset.test, c.test_episodes, c.test_seed)
                self.writer.add_summary(scalar_summary({"test/accuracy": test["accuracy"],
                                                        "test/ci95": test["ci95"]}), self.step)
            finally:
                self.writer.close()
            self.log(f"test accuracy {100 * test['accuracy']:.2f}% +- {100 * test['ci95']:.2f}% over "
                     f"{test['episodes']} episodes (T={test['T']})")
            return self._results(stopped, test, wall_start)

    def _checkpoint(self):
        self.state.update(rand=self.rand.get_state())
        try:
            prefix = save_checkpoint(self.sess, self.model, self.run_dir, self.state)
        except DivergenceError as error:
            raise self._diverged(error, self.step) from None
        self.last_good = prefix
        marker = os.path.join(self.run_dir, DIVERGED_FILE)
        if os.path.exists(marker):  # the resumed run has its own good checkpoint now
            os.remove(marker)
        return prefix

    def _diverged(self, error, iteration):
        """The :class:`DivergenceError` to raise: ``error`` plus the last good checkpoint and how to resume it."""
        lower = f"{self.c.meta_lr / 10:g}"
        if self.last_good is None:
            return DivergenceError(f"{error} No checkpoint was saved before; run again with a lower --meta_lr "
                                   f"(now {self.c.meta_lr:g}, e.g. {lower}) or a lower --lr.")
        write_json(os.path.join(self.run_dir, DIVERGED_FILE),
                   {"iteration": iteration, "meta_lr": self.c.meta_lr, "last_good": self.last_good,
                    "error": str(error)})
        command = resume_command(self.run_dir, "--name", self.c.run_name, "--meta_lr", lower)
        return DivergenceError(
            f"{error} No non-finite checkpoint was written: the last good one, {self.last_good}, is kept. Resume "
            f"from it with a lower meta learning rate (now {self.c.meta_lr:g}; any --meta_lr is accepted for this "
            f"resume):\n    {command}"
        )

    def _loop(self, saved):
        """Meta-trains; returns why it stopped: "iterations", "budget" or the name of a signal."""
        c, state = self.c, self.state
        budget = None if c.max_minutes is None else 60.0 * c.max_minutes
        eta = EtaEstimator(clock=self.clock)
        interval = {"outer_loss": 0.0, "inner_loss": 0.0, "n": 0}
        with StopRequest(log=self.log) as stop, self._episodes() as next_feeds:
            while (self.step < c.meta_train_iterations and (budget is None or state["train_seconds"] < budget)
                   and stop.requested is None):
                eta.start()
                inner_fd, outer_fd = next_feeds()
                try:
                    losses = self.model.boml_ho.run(inner_fd, outer_fd, session=self.sess)
                except DivergenceError as error:
                    raise self._diverged(error, self.step + 1) from None
                except Exception:
                    if saved != self.step:
                        self.log(f"meta-iteration {self.step + 1} failed; the last checkpoint is kept")
                    raise
                self.step += 1
                state["train_seconds"] += eta.stop()
                self._record(losses, interval)
                scalars = {f"train/{k}": v for k, v in losses.items()}
                if c.print_interval and (self.step % c.print_interval == 0 or self.step == c.meta_train_iterations):
                    scalars.update(self._report(inner_fd, outer_fd, eta, budget, interval))
                if c.val_interval and self.step % c.val_interval == 0 and self.dataset.validation is not None:
                    scalars.update(self._validate())
                self.writer.add_summary(scalar_summary(scalars), self.step)
                if c.save_interval and self.step % c.save_interval == 0:
                    self._checkpoint()
                    saved = self.step
            if saved != self.step or stop.requested:
                prefix = self._checkpoint()
                if stop.requested:
                    self.log(f"saved {prefix}")
        if stop.requested:
            return stop.requested
        return "budget" if self.step < c.meta_train_iterations else "iterations"

    def _sample(self, rand):
        episodes = self.dataset.train.generate_batch(self.c.meta_batch_size, rand=rand)
        return self.model.experiment.feed_dicts(episodes)

    @contextlib.contextmanager
    def _episodes(self):
        """Yields a callable returning the next meta-batch's feed dicts (sampled ahead with ``prefetch``)."""
        if not self.c.prefetch:
            yield lambda: self._sample(self.rand)
            return
        with Prefetcher(self._sample, self.rand, self.c.prefetch) as ahead:
            def next_feeds():
                feeds, rand_state = ahead.next()
                self.rand.set_state(rand_state)  # as if sampled here: checkpoints resume the same sequence
                return feeds

            yield next_feeds

    def _record(self, losses, interval):
        running = self.state["running"]
        for key, value in losses.items():
            running[key] = value if key not in running else 0.95 * running[key] + 0.05 * value
        for key in ("outer_loss", "inner_loss"):
            interval[key] += float(np.mean(losses.get(key, np.nan)))
        interval["n"] += 1

    def _report(self, inner_fd, outer_fd, eta, budget, interval):
        c, running, state = self.c, self.state["running"], self.state
        acc = float(np.mean(self.sess.run(self.model.adapted_accuracy, {**inner_fd, **outer_fd})))
        running["accuracy"] = acc if "accuracy" not in running else 0.7 * running["accuracy"] + 0.3 * acc
        per_iteration = eta.seconds_per_iteration
        speed = 1.0 / per_iteration if per_iteration else 0.0
        left = eta.seconds_left(c.meta_train_iterations - self.step,
                                None if budget is None else budget - state["train_seconds"])
        extras = {k: float(v) for k, v in self.sess.run(self.model.extras).items()} if self.model.extras else {}
        extra_text = "".join(f" {k} {v:.4g}" for k, v in extras.items())
        self.log(f"it {self.step}/{c.meta_train_iterations} | {speed:.2f} it/s | ETA {format_seconds(left)} | "
                 f"outer loss {running['outer_loss']:.4f} | inner loss {running['inner_loss']:.4f} | "
                 f"train acc {running['accuracy']:.3f} | time {format_seconds(state['train_seconds'])}{extra_text}")
        n = max(interval["n"], 1)
        state.setdefault("progress", []).append({
            "iteration": self.step, "train_seconds": state["train_seconds"], "outer_loss": interval["outer_loss"] / n,
            "inner_loss": interval["inner_loss"] / n, "train_accuracy": acc})
        interval.update(outer_loss=0.0, inner_loss=0.0, n=0)
        return {"train/accuracy": acc, "speed/iterations_per_second": speed,
                **{f"learned/{k}": v for k, v in extras.items()}}

    def _validate(self):
        c, state = self.c, self.state
        val = evaluate_episodes(self.sess, self.model, self.dataset.validation, c.val_episodes, c.test_seed + 1)
        state["history"].append({"iteration": self.step, "train_seconds": state["train_seconds"],
                                 "val_accuracy": val["accuracy"], "val_ci95": val["ci95"],
                                 "outer_loss": state["running"]["outer_loss"]})
        self.log(f"it {self.step} | validation accuracy {val['accuracy']:.4f} +- {val['ci95']:.4f} "
                 f"({val['episodes']} episodes, {val['seconds']:.1f}s)")
        return {"validation/accuracy": val["accuracy"], "validation/loss": val["loss"]}

    def _results(self, stopped, test, wall_start):
        c, state, step = self.c, self.state, self.step
        extras = self.model.extras
        results = {
            "config": c.to_dict(),
            "iterations": step,
            "iterations_this_session": step - self.start_step,
            "stopped_by": stopped,
            "train_seconds": state["train_seconds"],
            "wall_seconds_this_session": self.clock() - wall_start,
            "seconds_per_iteration": state["train_seconds"] / step if step else None,
            "final_running": state["running"],
            "learned": {k: float(v) for k, v in self.sess.run(extras).items()} if extras else {},
            "test": test,
            "history": state["history"],
            "progress": state.get("progress", []),
            "checkpoint": latest_checkpoint(self.run_dir),
            "run_dir": os.path.abspath(self.run_dir),
        }
        write_json(os.path.join(self.run_dir, RESULTS_FILE), results)
        return results


__all__ = ["train", "resume_command"]
