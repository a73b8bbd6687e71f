"""TensorBoard event files of a run, without duplicate points after a resume.

A run resumed from the checkpoint of step ``s`` repeats the iterations after ``s`` that the
interrupted session had already logged. :func:`open_writer` therefore first rewrites the run's
event files without the points after ``s`` (and without the final-test points at ``s`` or
later, which the resumed session writes again), so every ``(tag, step)`` appears once.
"""
import glob
import os
from typing import Dict, Optional

import tensorflow.compat.v1 as tf

EVENT_PATTERN = "events.out.tfevents.*"
TEST_PREFIX = "test/"


def event_files(run_dir: str):
    """The TensorBoard event files of ``run_dir``, oldest first."""
    return sorted(p for p in glob.glob(os.path.join(run_dir, EVENT_PATTERN)) if not p.endswith(".tmp"))


def _kept(event, step: int):
    """``event`` without the values logged after ``step`` (None if nothing is left of it)."""
    if not event.HasField("summary"):
        return event
    if event.step > step:
        return None
    values = [v for v in event.summary.value if not (v.tag.startswith(TEST_PREFIX) and event.step >= step)]
    if not values:
        return None
    if len(values) != len(event.summary.value):
        event = tf.Event.FromString(event.SerializeToString())
        del event.summary.value[:]
        event.summary.value.extend(values)
    return event


def truncate_events(run_dir: str, step: int) -> int:
    """Rewrites the event files of ``run_dir`` without the points a resume from ``step`` writes again.

    Returns:
        The number of scalar points removed.
    """
    removed = 0
    for path in event_files(run_dir):
        kept, dropped = [], 0
        for event in tf.train.summary_iterator(path):
            new = _kept(event, step)
            before = len(event.summary.value) if event.HasField("summary") else 0
            after = (len(new.summary.value) if new.HasField("summary") else 0) if new is not None else 0
            dropped += before - after
            if new is not None:
                kept.append(new)
        if dropped:
            tmp = path + ".tmp"
            with tf.io.TFRecordWriter(tmp) as writer:
                for event in kept:
                    writer.write(event.SerializeToString())
            os.replace(tmp, path)
            removed += dropped
    return removed


def remove_events(run_dir: str) -> None:
    """Deletes the event files of ``run_dir`` (a run that starts over)."""
    for path in event_files(run_dir):
        os.remove(path)


def open_writer(run_dir: str, resume_step: Optional[int]):
    """A ``tf.summary.FileWriter`` for ``run_dir``; after a resume from ``resume_step``, old duplicates go first."""
    if resume_step is not None:
        truncate_events(run_dir, resume_step)
    return tf.summary.FileWriter(run_dir)


def scalar_summary(values: Dict[str, float]):
    """A ``tf.Summary`` of scalar values."""
    return tf.Summary(value=[tf.Summary.Value(tag=k, simple_value=float(v)) for k, v in values.items()])


__all__ = ["event_files", "truncate_events", "remove_events", "open_writer", "scalar_summary"]
