"""Ctrl-C in a training loop: the first asks it to stop after the step in progress, a second stops at once.

Stopping between steps lets ``Trainer`` save a consistent ``last.npz`` (never half an optimizer
update). Only the main thread may handle signals: elsewhere (a worker thread) the block changes
nothing and Ctrl-C raises KeyboardInterrupt as usual.
"""
import signal
import threading


class graceful_interrupt:  # noqa: N801 - a context manager used like a function
    """While training, SIGINT sets ``trainer.stop_requested``; a second SIGINT raises KeyboardInterrupt."""

    def __init__(self, trainer):
        self.trainer, self.previous = trainer, None

    def _handle(self, signum, frame):
        if self.trainer.stop_requested:
            raise KeyboardInterrupt
        self.trainer.stop_requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
