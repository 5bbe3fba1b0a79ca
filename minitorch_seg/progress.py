"""Training progress: tqdm bars on a terminal, plain lines anywhere else.

With bars (the default when stderr is a terminal): one bar for the whole run, whose estimated
time left is the run's (its rate is the average since this process started, validation
included), one for the epoch's training steps (loss, images per second, seconds spent waiting for
data) and one while validating. The lines the run logs (one per epoch) are printed above the
bars, which are cleared when the run ends.

Without bars (stderr a file, a pipe, a CI log): nothing but the lines, one per epoch, each
ending with the time left, estimated the same way. tqdm redraws a bar with carriage returns
several times a second, which fills a log file with hundreds of kilobytes of them.
"""
import sys
import time

__all__ = ["Progress", "count", "duration"]


def count(number, noun):
    """ "1 epoch", "3 epochs"."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def duration(seconds):
    """A rough duration for people: "45 s", "7 min", "1 h 20 min"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60:02d} min"


class Progress:
    """Bars or lines for one run of ``total_steps`` training steps, ``done_steps`` of them done before.

    ``bars``: True for tqdm bars, False for plain lines, None for bars only when stderr is a
    terminal. ``log``: the callable that prints a line (``print``, say).
    """

    def __init__(self, bars, log, total_steps, done_steps):
        self.bars = sys.stderr.isatty() if bars is None else bool(bars)
        self._log, self.total, self.done = log, total_steps, done_steps
        self.started, self.steps_this_run = time.perf_counter(), 0
        self.run_bar = self.epoch_bar = None
        if self.bars:
            from tqdm import tqdm
            self.run_bar = tqdm(total=total_steps, initial=done_steps, desc="run", unit="step", position=0,
                                leave=False, dynamic_ncols=True, smoothing=0, file=sys.stderr)

    def log(self, line):
        """Print ``line`` (above the bars, which are redrawn under it)."""
        if self.bars:
            from tqdm import tqdm
            with tqdm.external_write_mode(file=sys.stderr):
                self._log(line)
        else:
            self._log(line)

    def train(self, loader, initial, desc):
        """The epoch's batches, behind a bar that starts at batch ``initial``."""
        if not self.bars:
            return loader
        from tqdm import tqdm
        self.epoch_bar = tqdm(loader, total=len(loader), initial=initial, desc=desc, unit="batch", position=1,
                              leave=False, dynamic_ncols=True, file=sys.stderr)
        return self.epoch_bar

    def end_epoch(self):
        """Clear the epoch's bar (also when the epoch stopped early, on Ctrl-C)."""
        if self.epoch_bar is not None:
            self.epoch_bar.close()
            self.epoch_bar = None

    def validate(self, loader):
        """The validation batches, behind a bar."""
        if not self.bars:
            return loader
        from tqdm import tqdm
        return tqdm(loader, total=len(loader), desc="validation", unit="batch", position=1, leave=False,
                    dynamic_ncols=True, file=sys.stderr)

    def step(self, **postfix):
        """One training step done; ``postfix`` (loss=..., say) is shown on the epoch's bar."""
        self.done, self.steps_this_run = self.done + 1, self.steps_this_run + 1
        if self.bars:
            self.run_bar.update(1)
            if self.epoch_bar is not None and postfix:
                self.epoch_bar.set_postfix(postfix, refresh=False)

    def time_left(self):
        """The estimated time to the end of the run, in words ("about 3 min left", or "done")."""
        if self.done >= self.total:
            return "done"
        if not self.steps_this_run:
            return "time left unknown"
        seconds = (time.perf_counter() - self.started) / self.steps_this_run * (self.total - self.done)
        return f"about {duration(seconds)} left"

    def close(self):
        for bar in (self.epoch_bar, self.run_bar):
            if bar is not None:
                bar.close()
        self.run_bar = self.epoch_bar = None
