"""Checkpoints of a run: TensorFlow variables plus a sidecar with the Python state.

A checkpoint ``<run_dir>/ckpt-<step>`` holds the global variables (meta-parameters, learned step
sizes, the outer optimizer's slots, the global step); its sidecar ``ckpt-<step>.state.pkl`` holds
the episode sampler's ``RandomState``, the running statistics, the meta-training time and the
curves recorded so far, so that a resumed run continues exactly as the uninterrupted one.
"""
import os
import pickle
from typing import Any, Dict, List, Optional

import tensorflow.compat.v1 as tf

from boml.errors import DataNotFoundError

SIDECAR_SUFFIX = ".state.pkl"


def latest_checkpoint(run_dir: str) -> Optional[str]:
    """The prefix of the newest checkpoint in ``run_dir`` (None if there is none)."""
    if not os.path.isdir(run_dir):
        return None
    return tf.train.latest_checkpoint(run_dir)


def saved_iterations(run_dir: str) -> List[int]:
    """The iterations of the checkpoints present in ``run_dir``, sorted."""
    out = []
    if os.path.isdir(run_dir):
        for name in os.listdir(run_dir):
            if name.startswith("ckpt-") and name.endswith(".index"):
                number = name[len("ckpt-"):-len(".index")]
                if number.isdigit():
                    out.append(int(number))
    return sorted(out)


def checkpoint_for_iteration(run_dir: str, iteration: int) -> str:
    """The checkpoint prefix saved at ``iteration``.

    Raises:
        DataNotFoundError: no checkpoint of that iteration exists.
    """
    prefix = os.path.join(run_dir, f"ckpt-{int(iteration)}")
    if not os.path.exists(prefix + ".index"):
        available = saved_iterations(run_dir)
        raise DataNotFoundError(
            f"No checkpoint for iteration {iteration} in {run_dir}; available iterations: {available or 'none'}."
        )
    return prefix


def save_checkpoint(session, model, run_dir: str, state: Dict[str, Any]) -> str:
    """Saves the global variables of ``model`` and the Python ``state`` at the current global step.

    Args:
        session: the training session.
        model: the :class:`~boml.workflow.model.Model` (its ``saver`` and ``global_step``).
        run_dir: the run directory.
        state: picklable Python state, written to the sidecar.

    Returns:
        The checkpoint prefix.
    """
    step = int(session.run(model.global_step))
    prefix = model.saver.save(session, os.path.join(run_dir, "ckpt"), global_step=step, write_meta_graph=False)
    tmp = prefix + SIDECAR_SUFFIX + ".tmp"
    with open(tmp, "wb") as handle:
        pickle.dump(state, handle)
    os.replace(tmp, prefix + SIDECAR_SUFFIX)
    for stale in os.listdir(run_dir):  # sidecars of the checkpoints the Saver deleted
        if stale.endswith(SIDECAR_SUFFIX):
            base = os.path.join(run_dir, stale[:-len(SIDECAR_SUFFIX)])
            if not os.path.exists(base + ".index"):
                os.remove(os.path.join(run_dir, stale))
    return prefix


def restore_checkpoint(session, model, prefix: str) -> Dict[str, Any]:
    """Restores the variables of ``prefix`` and returns its Python state (empty dict if no sidecar)."""
    model.saver.restore(session, prefix)
    model.boml_ho.sync_step(session)
    path = prefix + SIDECAR_SUFFIX
    if not os.path.exists(path):
        return {}
    with open(path, "rb") as handle:
        return pickle.load(handle)


def remove_checkpoints(run_dir: str) -> None:
    """Deletes every checkpoint of ``run_dir`` (``--no-resume``: the run starts over)."""
    for name in os.listdir(run_dir):
        if name.startswith("ckpt-") or name == "checkpoint":
            os.remove(os.path.join(run_dir, name))


__all__ = ["latest_checkpoint", "saved_iterations", "checkpoint_for_iteration", "save_checkpoint",
           "restore_checkpoint", "remove_checkpoints"]
