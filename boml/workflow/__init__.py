"""The meta-training workflow: configuration, graph, training loop, checkpoints, evaluation, plots.

This module is what ``python -m boml train ...`` runs. It builds the graph the
original README teaches (a ``BOMLExperiment``, a ``BOMLOptimizer``, its
meta-learner and base learner, ``ll_problem``, ``ul_problem``,
``aggregate_all``) for a chosen algorithm and dataset, then meta-trains it with
one ``session.run`` per meta-iteration and evaluates it with the standard
few-shot protocol.

Typical use::

    from boml import workflow

    config = workflow.preset("maml-omniglot-5w1s", data_folder="../shared/data/omniglot_resized")
    results = workflow.train(config)            # writes <logdir>/<name>/results.json
    print(results["test"]["accuracy"], results["test"]["ci95"])

Run directory layout (``config.run_dir``)::

    config.json             the configuration of the run
    ckpt-<step>.*           TensorFlow checkpoints (global variables: meta-parameters,
                            learned step sizes, outer optimizer slots, global step)
    ckpt-<step>.state.pkl   state file: episode RandomState, running statistics, elapsed time, and
                            the integrity record (file sizes and SHA-256, structural configuration)
    checkpoint              the index of the checkpoints (written last; only a hint)
    run.lock                the lock of the session training in the directory (pid, host)
    events.out.tfevents.*   TensorBoard scalars (losses, accuracies, speed)
    results.json            configuration and final figures
    evaluation.json         written by ``evaluate``

Checkpoints resume exactly: the next episode, the outer optimizer state and the
global step are those the uninterrupted run would have had. A resume uses the newest checkpoint
that validates; a damaged one is skipped with a log line saying why.

Modules: :mod:`~boml.workflow.config` (the fields, which are also the command-line flags, and
the structural-change check), :mod:`~boml.workflow.validation`, :mod:`~boml.workflow.presets`,
:mod:`~boml.workflow.data`, :mod:`~boml.workflow.model` (the graph),
:mod:`~boml.workflow.trainer`, :mod:`~boml.workflow.checkpoints`, :mod:`~boml.workflow.locking`,
:mod:`~boml.workflow.interrupts`, :mod:`~boml.workflow.progress`,
:mod:`~boml.workflow.summaries` (TensorBoard), :mod:`~boml.workflow.evaluation`,
:mod:`~boml.workflow.results` and :mod:`~boml.workflow.plotting`. The names below are
re-exported here; the configuration and the presets import without TensorFlow, the rest loads on
first use (so ``python -m boml --help`` stays fast).
"""

import importlib

from boml.workflow.config import ALGORITHMS, Config
from boml.workflow.presets import PRESETS, preset

#: Public name -> the module that defines it (imported on first access: they need TensorFlow).
_LAZY = {
    "Model": "model", "build_model": "model", "load_dataset": "data", "train": "trainer",
    "resume_command": "trainer", "evaluate": "evaluation", "evaluate_episodes": "evaluation",
    "mean_ci95": "evaluation", "load_run_config": "evaluation", "latest_checkpoint": "checkpoints",
    "checkpoint_for_iteration": "checkpoints", "save_checkpoint": "checkpoints",
    "restore_checkpoint": "checkpoints", "find_checkpoint": "checkpoints", "CheckpointError": "checkpoints",
    "RunLock": "locking", "RunLockedError": "locking", "TrainingInterrupted": "interrupts",
    "plot_runs": "plotting",
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"boml.workflow.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'boml.workflow' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["ALGORITHMS", "PRESETS", "Config", "preset", *_LAZY]
