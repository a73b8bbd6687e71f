"""Checkpoints of a run that survive kills and damage: TensorFlow variables plus one state file.

A checkpoint ``<run_dir>/ckpt-<step>`` holds the global variables (meta-parameters, learned step
sizes, the outer optimizer's slots, the global step); its state file ``ckpt-<step>.state.pkl``
holds the episode sampler's ``RandomState``, the running statistics, the meta-training time and
the curves recorded so far, plus an integrity record: the step, the size and SHA-256 of each
TensorFlow file, and the structural configuration with its hash.

:func:`save_checkpoint` writes, in this order: the TensorFlow files (fsynced), the state file (to
a temporary name, fsynced, renamed), the ``checkpoint`` index (same way), and only then deletes
the checkpoints beyond ``keep_checkpoints``. A kill at any point leaves the previous checkpoints
intact, and a checkpoint is *valid* only when its state file loads and every file it lists has
the recorded size and digest. :func:`find_checkpoint` scans the directory (the index is only a
hint: a garbage or stale index does not hide valid checkpoints), uses the newest valid one and
logs why each newer one was rejected. Non-finite variables are never saved
(:class:`~boml.errors.DivergenceError`).
"""
import hashlib
import os
import pickle
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow.compat.v1 as tf

from boml.errors import DataError, DataNotFoundError, DivergenceError
from boml.workflow.config import structural_hash, structural_values

STATE_SUFFIX = ".state.pkl"
#: Kept for the plotting module and older callers.
SIDECAR_SUFFIX = STATE_SUFFIX
INDEX_FILE = "checkpoint"
#: Key of the integrity record inside a state file, and its format version.
INTEGRITY = "_integrity"
FORMAT = 2
_NAME = re.compile(r"^ckpt-(\d+)(\..+)$")
_RECORD_KEYS = {"format", "step", "files", "config", "config_hash"}


class CheckpointError(DataError):
    """A checkpoint is damaged or incomplete, or a run has checkpoints and none of them is valid."""


# ---------------------------------------------------------------------------------------------- files
def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: str) -> None:
    try:
        _fsync_file(path)
    except OSError:  # some file systems cannot sync a directory
        pass


def atomic_write(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file that is fsynced, then renamed."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path) or ".")


def _digest(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _files_of(run_dir: str, step: int) -> List[str]:
    """Names of the files of checkpoint ``step`` present in ``run_dir`` (TensorFlow's and the state file)."""
    if not os.path.isdir(run_dir):
        return []
    out = []
    for name in os.listdir(run_dir):
        match = _NAME.match(name)
        if match and int(match.group(1)) == step:
            out.append(name)
    return sorted(out)


def checkpoint_steps(run_dir: str) -> List[int]:
    """The steps of every checkpoint with at least one file in ``run_dir`` (complete or not), sorted."""
    steps = set()
    if os.path.isdir(run_dir):
        for name in os.listdir(run_dir):
            match = _NAME.match(name)
            if match:
                steps.add(int(match.group(1)))
    return sorted(steps)


def has_checkpoint_files(run_dir: str) -> bool:
    """True when ``run_dir`` holds any checkpoint file or a checkpoint index."""
    return bool(checkpoint_steps(run_dir)) or os.path.exists(os.path.join(run_dir, INDEX_FILE))


def saved_iterations(run_dir: str) -> List[int]:
    """The iterations of the checkpoints whose TensorFlow index file is present in ``run_dir``, sorted."""
    return [s for s in checkpoint_steps(run_dir) if os.path.exists(os.path.join(run_dir, f"ckpt-{s}.index"))]


# ---------------------------------------------------------------------------------------------- validation
def load_state(prefix: str, config=None, ignore: Sequence[str] = ()) -> Dict[str, Any]:
    """The Python state of checkpoint ``prefix`` after checking that the checkpoint is complete and intact.

    Args:
        prefix: ``<run_dir>/ckpt-<step>``.
        config: when given, the checkpoint must have been written with the same structural settings.
        ignore: structural fields allowed to differ from ``config`` (``meta_lr`` after a divergence).

    Returns:
        The state dict (without its integrity record).

    Raises:
        CheckpointError: the state file is missing or unreadable, a file is missing, truncated or
            altered (the message says which).
        InvalidArgumentError: the checkpoint is intact but ``config`` changed a structural setting.
    """
    run_dir, base = os.path.split(prefix)
    path = prefix + STATE_SUFFIX
    if not os.path.exists(path):
        raise CheckpointError(f"its state file {base + STATE_SUFFIX} is missing (the save was interrupted)")
    try:
        with open(path, "rb") as handle:
            state = pickle.load(handle)
    except Exception as error:  # truncated, zero-length or garbage: pickle raises many types
        raise CheckpointError(f"its state file {base + STATE_SUFFIX} cannot be read "
                              f"({type(error).__name__}: {error}); it is truncated or damaged") from None
    record = state.get(INTEGRITY) if isinstance(state, dict) else None
    if not isinstance(record, dict) or record.get("format") != FORMAT or not _RECORD_KEYS <= set(record):
        raise CheckpointError(f"its state file {base + STATE_SUFFIX} has no integrity record of format {FORMAT} "
                              "(written by an older boml, or not by boml)")
    step = int(base.rsplit("-", 1)[-1])
    if record.get("step") != step:
        raise CheckpointError(f"its state file records step {record.get('step')}, not {step}")
    for name, (size, digest) in sorted(record["files"].items()):
        file_path = os.path.join(run_dir, name)
        if not os.path.exists(file_path):
            raise CheckpointError(f"its file {name} is missing")
        actual = os.path.getsize(file_path)
        if actual != size:
            raise CheckpointError(f"its file {name} has {actual} bytes instead of {size} (truncated or overwritten)")
        if _digest(file_path) != digest:
            raise CheckpointError(f"its file {name} does not have the recorded SHA-256 (damaged)")
    if structural_hash(record["config"]) != record["config_hash"]:
        raise CheckpointError("its recorded configuration does not match its hash (damaged state file)")
    if config is not None:
        from boml.workflow.config import check_resumable

        check_resumable(record["config"], config, run_dir, ignore=ignore)
    out = dict(state)
    out.pop(INTEGRITY)
    out["config"] = dict(record["config"])
    return out


def _index_names(run_dir: str, log: Callable[[str], None]) -> Optional[str]:
    """The newest checkpoint the index names (None, with a log line, when it is unreadable)."""
    path = os.path.join(run_dir, INDEX_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as handle:
        match = re.search(r'^model_checkpoint_path:\s*"([^"]+)"\s*$', handle.read(), re.M)
    if match is None:
        log(f"the checkpoint index {path} is unreadable; the checkpoints are found by scanning the directory")
        return None
    return os.path.basename(match.group(1))


def find_checkpoint(run_dir: str, config=None, ignore: Sequence[str] = (),
                    log: Callable[[str], None] = print) -> Tuple[Optional[str], Optional[Dict[str, Any]]]:
    """The newest valid checkpoint of ``run_dir`` and its state; each newer invalid one is logged with why.

    Args:
        run_dir: the run directory.
        config: passed to :func:`load_state` (structural settings must match).
        ignore: passed to :func:`load_state`.
        log: receives one line per rejected checkpoint.

    Returns:
        ``(prefix, state)``, or ``(None, None)`` when ``run_dir`` has no checkpoint file at all.

    Raises:
        CheckpointError: checkpoint files exist but none is valid (the message lists the reasons and
            how to start afresh).
        InvalidArgumentError: the newest valid checkpoint has other structural settings than ``config``.
    """
    named = _index_names(run_dir, log)
    reasons = []
    for step in reversed(checkpoint_steps(run_dir)):
        prefix = os.path.join(run_dir, f"ckpt-{step}")
        try:
            state = load_state(prefix, config, ignore)
        except CheckpointError as error:
            reasons.append(f"ckpt-{step}: {error}")
            log(f"checkpoint {prefix} rejected: {error}")
            continue
        if named is not None and named != f"ckpt-{step}":
            log(f"the checkpoint index names {named}; the newest valid checkpoint is ckpt-{step}")
        return prefix, state
    if reasons or os.path.exists(os.path.join(run_dir, INDEX_FILE)):
        details = "; ".join(reasons) or f"only the index file {INDEX_FILE} is there"
        raise CheckpointError(
            f"{run_dir} has checkpoint files but no valid checkpoint ({details}). Nothing was changed. To start "
            f"afresh in a new run directory (these files are kept), run again with --no-resume (resume=False); "
            f"or move the damaged files out of {run_dir}."
        )
    return None, None


def latest_checkpoint(run_dir: str) -> Optional[str]:
    """The prefix of the newest valid checkpoint in ``run_dir`` (None if there is none)."""
    if not os.path.isdir(run_dir):
        return None
    for step in reversed(checkpoint_steps(run_dir)):
        prefix = os.path.join(run_dir, f"ckpt-{step}")
        try:
            load_state(prefix)
        except CheckpointError:
            continue
        return prefix
    return None


def checkpoint_for_iteration(run_dir: str, iteration: int) -> str:
    """The checkpoint prefix saved at ``iteration``.

    Raises:
        DataNotFoundError: no checkpoint of that iteration exists.
    """
    prefix = os.path.join(run_dir, f"ckpt-{int(iteration)}")
    if not _files_of(run_dir, int(iteration)):
        available = saved_iterations(run_dir)
        raise DataNotFoundError(
            f"No checkpoint for iteration {iteration} in {run_dir}; available iterations: {available or 'none'}."
        )
    return prefix


# ---------------------------------------------------------------------------------------------- save / restore
def _check_finite(session, model, step: int) -> None:
    flags = session.run(model.finite_flags) if model.finite_flags is not None else []
    bad = [v.op.name for v, ok in zip(model.checked_variables, np.atleast_1d(flags)) if not ok]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise DivergenceError(
            f"After meta-iteration {step} the variables {shown} hold NaN or infinite values; that checkpoint was "
            "not written."
        )


def _write_index(run_dir: str, kept: Sequence[int]) -> None:
    """Writes TensorFlow's ``checkpoint`` index (``CheckpointState`` text format) naming ``kept``, newest last."""
    lines = [f'model_checkpoint_path: "ckpt-{kept[-1]}"'] + [f'all_model_checkpoint_paths: "ckpt-{s}"' for s in kept]
    atomic_write(os.path.join(run_dir, INDEX_FILE), ("\n".join(lines) + "\n").encode())


def save_checkpoint(session, model, run_dir: str, state: Dict[str, Any]) -> str:
    """Saves the global variables of ``model`` and the Python ``state`` at the current global step.

    Order: TensorFlow files (fsynced), state file with their digests (temporary name, fsync,
    rename), the ``checkpoint`` index, then the deletion of the checkpoints older than the
    ``keep_checkpoints`` newest (files of later steps, from an abandoned attempt, are left alone).

    Args:
        session: the training session.
        model: the :class:`~boml.workflow.model.Model` (its ``saver``, ``global_step``, ``config``).
        run_dir: the run directory.
        state: picklable Python state, written to the state file.

    Returns:
        The checkpoint prefix.

    Raises:
        DivergenceError: a variable is NaN or infinite (nothing is written).
    """
    step = int(session.run(model.global_step))
    _check_finite(session, model, step)
    prefix = os.path.join(run_dir, f"ckpt-{step}")
    if os.path.exists(prefix + STATE_SUFFIX):  # never pair new TensorFlow files with an older state file
        os.remove(prefix + STATE_SUFFIX)
    model.saver.save(session, os.path.join(run_dir, "ckpt"), global_step=step, write_meta_graph=False,
                     write_state=False)
    files = {}
    for name in _files_of(run_dir, step):
        if not name.endswith((STATE_SUFFIX, ".tmp")):
            path = os.path.join(run_dir, name)
            _fsync_file(path)
            files[name] = (os.path.getsize(path), _digest(path))
    config = structural_values(model.config.to_dict())
    record = {"format": FORMAT, "step": step, "files": files, "config": config, "config_hash": structural_hash(config)}
    atomic_write(prefix + STATE_SUFFIX, pickle.dumps({**state, INTEGRITY: record}))
    present = checkpoint_steps(run_dir)
    complete = [s for s in present if s <= step and os.path.exists(os.path.join(run_dir, f"ckpt-{s}{STATE_SUFFIX}"))]
    kept = complete[-max(int(model.config.keep_checkpoints), 1):]
    _write_index(run_dir, kept)
    for old in (s for s in present if s < kept[0]):
        names = _files_of(run_dir, old)  # the state file first: a kill leaves an invalid, never a mixed, checkpoint
        for name in sorted(names, key=lambda n: not n.endswith(STATE_SUFFIX)):
            os.remove(os.path.join(run_dir, name))
    return prefix


def restore_checkpoint(session, model, prefix: str, state: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Restores the variables of the valid checkpoint ``prefix`` and returns its Python state.

    Args:
        session: the session of ``model``'s graph.
        model: the :class:`~boml.workflow.model.Model`.
        prefix: the checkpoint.
        state: its state when already validated by :func:`find_checkpoint` (else it is checked here).

    Raises:
        CheckpointError: the checkpoint is damaged, or TensorFlow cannot restore it into this graph.
        InvalidArgumentError: the checkpoint has other structural settings than ``model.config``.
    """
    if state is None:
        state = load_state(prefix, model.config)
    try:
        model.saver.restore(session, prefix)
    except tf.errors.OpError as error:
        raise CheckpointError(f"TensorFlow cannot restore {prefix} into this graph ({type(error).__name__}: "
                              f"{error.message.splitlines()[0]}).") from None
    model.boml_ho.sync_step(session)
    return state


__all__ = ["CheckpointError", "STATE_SUFFIX", "INDEX_FILE", "atomic_write", "checkpoint_steps",
           "has_checkpoint_files", "saved_iterations", "load_state", "find_checkpoint",
           "latest_checkpoint", "checkpoint_for_iteration", "save_checkpoint", "restore_checkpoint"]
