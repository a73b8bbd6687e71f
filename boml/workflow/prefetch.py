"""Training meta-batches sampled ahead of the graph, in a background thread, in their usual order.

Sampling an Omniglot meta-batch of 32 episodes (reading and stacking 2560 images) takes a tenth of
a second or more; :class:`Prefetcher` does it while ``session.run`` computes the previous
meta-iteration. One producer thread draws the batches from its own copy of the trainer's
``RandomState`` one after the other, so the batches and their order are those of sampling in the
loop; each batch comes with the generator state after it, which the trainer adopts so that its
checkpoints resume exactly where the consumed batches stopped.
"""
import queue
import threading

import numpy as np

from boml.errors import InvalidArgumentError

__all__ = ["Prefetcher"]

_DONE = object()


class Prefetcher:
    """Produces ``sample(rand)`` items ahead of time in a thread, at most ``depth`` of them waiting.

    Use as a context manager; :meth:`next` returns the items in order::

        with Prefetcher(lambda r: feeds_of(dataset.train.generate_batch(32, rand=r)), rand, depth=2) as ahead:
            item, state = ahead.next()      # state: the RandomState's state after drawing ``item``

    Args:
        sample: callable taking a ``numpy.random.RandomState`` and returning one item.
        rand: the ``RandomState`` whose sequence is reproduced (it is copied, not advanced).
        depth: the most items sampled ahead (>= 1).

    Raises:
        InvalidArgumentError: ``depth`` is not a positive integer.
    """

    def __init__(self, sample, rand, depth=2):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise InvalidArgumentError(
                f"Prefetcher depth must be a positive integer (batches sampled ahead); received {depth!r}. "
                f"Pass depth=2, or sample in the loop without a Prefetcher.")
        self._sample = sample
        self._rand = np.random.RandomState()
        self._rand.set_state(rand.get_state())
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="boml-prefetch", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self):
        try:
            while not self._stop.is_set():
                item = self._sample(self._rand)
                if not self._put((item, self._rand.get_state(), None)):
                    return
        except BaseException as error:  # handed to the consumer, raised by next()
            self._put((_DONE, None, error))

    def next(self):
        """The next item and the generator state after it.

        Returns:
            ``(item, rand_state)``.

        Raises:
            Exception: whatever ``sample`` raised in the thread.
        """
        item, state, error = self._queue.get()
        if error is not None:
            raise error
        return item, state

    def close(self):
        """Stops the thread (the items sampled ahead are dropped)."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread.is_alive():
            self._thread.join()
