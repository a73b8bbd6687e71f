"""The few-shot evaluation protocol: fixed episodes, the training dynamics, mean and 95% CI.

``evaluate_episodes`` adapts each episode with the inner optimizer, learned step sizes and BDA
aggregation used in training (:meth:`BOMLOptimizer.adapted`), on episodes drawn from a fixed
``RandomState(seed)``, so every checkpoint is measured on the same episodes. :func:`evaluate`
does it for saved checkpoints of a run (``python -m boml evaluate``).
"""
import logging
import os
import time
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow.compat.v1 as tf

from boml import utils
from boml.errors import DataNotFoundError, InvalidArgumentError
from boml.workflow.checkpoints import CheckpointError, checkpoint_for_iteration, find_checkpoint, load_state, \
    restore_checkpoint
from boml.workflow.config import Config
from boml.workflow.data import load_dataset
from boml.workflow.model import Model, build_model
from boml.workflow.results import CONFIG_FILE, EVALUATION_FILE, read_json, write_json

LOGGER = logging.getLogger("boml.workflow")


def mean_ci95(values: Sequence[float]) -> Tuple[float, float, float]:
    """``(mean, ci95, std)``: the 95% confidence half-width is ``1.96 * std / sqrt(n)``.

    ``std`` is the sample standard deviation (``ddof=1``).

    Raises:
        InvalidArgumentError: ``values`` is empty.
    """
    mean, std, ci = utils.mean_std_ci(values)
    return float(mean), float(ci), float(std)


def evaluate_episodes(session, model: Model, meta_dataset, n_episodes: int, seed: int,
                      batch_size: Optional[int] = None) -> Dict[str, Any]:
    """Adapts to ``n_episodes`` fixed episodes and measures the query accuracy.

    Returns:
        dict with ``accuracy`` (mean), ``ci95``, ``std``, ``loss``, ``episodes``, ``T``, ``seed``, ``seconds``.
    """
    start = time.perf_counter()
    accuracies, losses = utils.run_on_episodes(session, [model.adapted_accuracy, model.adapted_loss],
                                               model.experiment, meta_dataset, n_episodes, seed,
                                               int(batch_size or model.config.eval_batch_size))
    mean, ci, std = mean_ci95(accuracies)
    return {"accuracy": mean, "ci95": ci, "std": std, "loss": float(np.mean(losses)), "episodes": len(accuracies),
            "T": model.config.eval_T, "seed": int(seed), "seconds": time.perf_counter() - start}


def session_config(threads: int):
    """The ``ConfigProto`` of a run's sessions (``threads`` intra-op threads, 0: TensorFlow's default)."""
    return tf.ConfigProto(intra_op_parallelism_threads=int(threads), inter_op_parallelism_threads=0)


def load_run_config(run_dir: str) -> Config:
    """The configuration saved in ``run_dir/config.json``.

    Raises:
        DataNotFoundError: the run directory has no ``config.json``.
    """
    return Config.from_dict(read_json(run_dir, CONFIG_FILE, "a `boml train` run"))


def evaluate(run_dir: str, iterations: Optional[Sequence[int]] = None, test_episodes: Optional[int] = None,
             T_test: Optional[int] = None, split: str = "test", dataset=None, log=None,
             **overrides) -> Dict[str, Any]:
    """Evaluates the checkpoints of a run on fixed episodes and writes ``evaluation.json``.

    Args:
        run_dir: the directory of a ``train`` run.
        iterations: checkpoint iterations to evaluate (default: the latest).
        test_episodes: number of episodes (default: the run's ``test_episodes``).
        T_test: adaptation steps (default: the run's).
        split: ``"test"`` or ``"validation"``.
        dataset: optional pre-loaded ``Datasets``.
        log: progress callable.
        **overrides: other configuration changes (e.g. ``data_folder``, ``eval_batch_size``).

    Returns:
        ``{"config": ..., "split": ..., "results": [{"iteration": i, "accuracy": ..., "ci95": ...}, ...]}``.

    Raises:
        DataNotFoundError: no ``config.json``, no checkpoint, or no checkpoint of a requested iteration.
        CheckpointError: a requested checkpoint is damaged, or there are checkpoints and none is valid
            (without ``iterations`` the newest valid one is used; each newer rejected one is logged).
        InvalidArgumentError: unknown ``split`` or configuration key.
    """
    log = log or LOGGER.info
    if split not in ("test", "validation"):
        raise InvalidArgumentError(f"split must be 'test' or 'validation'; received {split!r}.")
    changes = dict(overrides)
    if test_episodes is not None:
        changes["test_episodes"] = test_episodes
    if T_test is not None:
        changes["T_test"] = T_test
    c = load_run_config(run_dir).replace(**changes).validate()
    if iterations:
        chosen = []
        for prefix in [checkpoint_for_iteration(run_dir, i) for i in iterations]:
            try:
                chosen.append((prefix, load_state(prefix, c, ignore=("meta_lr",))))
            except CheckpointError as error:
                raise CheckpointError(f"Checkpoint {prefix} cannot be evaluated: {error}. Evaluate another "
                                      "iteration (without --iterations_to_test: the newest valid one).") from None
    else:
        prefix, state = find_checkpoint(run_dir, c, ignore=("meta_lr",), log=log)
        if prefix is None:
            raise DataNotFoundError(f"{run_dir} has no checkpoint to evaluate; train first.")
        chosen = [(prefix, state)]
    dataset = dataset if dataset is not None else load_dataset(c, log=log)
    meta_dataset = getattr(dataset, split)
    if meta_dataset is None:
        raise InvalidArgumentError(f"The {c.dataset} dataset has no {split} split.")
    graph = tf.Graph()
    with graph.as_default():
        model = build_model(c, dataset)
        graph.finalize()
    rows = []
    with tf.Session(graph=graph, config=session_config(c.threads)) as sess:
        for prefix, state in chosen:
            restore_checkpoint(sess, model, prefix, state)
            iteration = int(sess.run(model.global_step))
            seed = c.test_seed if split == "test" else c.test_seed + 1
            row = evaluate_episodes(sess, model, meta_dataset, c.test_episodes, seed)
            row["iteration"] = iteration
            rows.append(row)
            log(f"iteration {iteration}: {split} accuracy {100 * row['accuracy']:.2f}% +- "
                f"{100 * row['ci95']:.2f}% ({row['episodes']} episodes, T={row['T']}, {row['seconds']:.1f}s)")
    out = {"config": c.to_dict(), "split": split, "results": rows}
    write_json(os.path.join(run_dir, EVALUATION_FILE), out)
    return out


__all__ = ["mean_ci95", "evaluate_episodes", "session_config", "load_run_config", "evaluate"]
