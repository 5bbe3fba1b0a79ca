"""Keeping the cores awake between hand-offs: an idle-priority busy process on each core while the
tile threads work (``parallel.tile_threads``).

A tile thread with no work sleeps on a lock, and its core, with nothing else to run, goes idle.
Waking an idle core for the next hand-off costs more than the hand-off itself, most of all on a
virtual machine whose host is busy: on a 2-core EPYC VM, two empty tiles handed out after 2 ms of
quiet took 182-203 us (p90 474-762) with the cores left to idle and 63-125 us (p90 158-166) with
them kept busy. PyTorch's OpenMP threads spin for a while after each parallel region for this
reason (libgomp's GOMP_SPINCOUNT, Intel's KMP_BLOCKTIME of 200 ms). Ours cannot: a Python thread
that spins holds the GIL that the others need. So a process of its own spins on each core
instead, in Linux's idle scheduling class (SCHED_IDLE): it runs only when nothing else wants that
core, and a thread that wakes there takes the core from it at once. While the VM's host was busy,
the U-Net step took 10 ms less with them (quartiles -29 / -1) and 28 ms less at the training job's
size (-43 / 0), 30 rounds each taking turns with the helpers stopped; once it was quiet, about the
same (+0.5 and +2.1 ms, within the noise; ``benchmarks/results/2026-12-03-zen5-awake.md``).

Each helper spins for ``SPIN_SECONDS`` after the last hand-off (``beat``, written by
``parallel.map_tiles`` to a page the helpers share), then naps in 10 ms sleeps until the next one.
While it spins it makes few system calls: a helper that read the clock and asked for its parent on
every turn made the step 43-52 ms slower than no helper. It reads them every 20,000 turns, and
every 2,000 it offers the core back (``sched_yield``, 20-40 us apart): on some kernels a thread
that wakes on the helper's core does not always take it at once but at the next scheduler tick
(4 ms at 250 Hz). On a 2-core EPYC VM (kernel 6.18) that happened about three times a step, 11 ms
of it, and the step was 10 ms slower with helpers than without; yielding, none, and the same as
without (``benchmarks/results/2026-12-04-zen5-yield.md``).
It exits when the mode does, and on its own once the process that started it has gone (killed,
say). In a process group of its own, it does not see a Ctrl-C at the terminal; it stays in our
session, though. Linux's autogroup (``/proc/sys/kernel/sched_autogroup_enabled``, on in most
desktop and many server kernels) gives each session a fair share of the CPU whatever its tasks'
class: in sessions of their own, the helpers took half of each core from our threads
(``bench_step.py`` on a 2-core VM: 386 ms a step with them, 194 ms without). Where helpers cannot
start (a sandbox without memfd, no processes left), the mode runs without them. Linux only; only
where the pool has a thread for each core (the pinned pool, ``parallel._pin``) and no two of those
cores are hyperthreads of one core, where a helper would take half the core from the thread
working beside it; only where this process runs at normal priority, since an idle-priority task
still gets a share of the core beside a niced one (the step 224 -> 293 ms under ``nice -n 19``);
and not under a cgroup's CPU quota of fewer CPUs than it may run on, which the helpers' spinning
would spend (185 -> 212 ms under 1.9 cores of 2). ``MINITORCH_SEG_KEEP_AWAKE=0`` in the
environment turns it off.
"""
import contextlib
import mmap
import os
import struct
import subprocess
import sys
import time

SPIN_SECONDS = 0.2       # after the last hand-off, as KMP_BLOCKTIME's default
ENVIRONMENT = "MINITORCH_SEG_KEEP_AWAKE"
_page = None             # the shared heartbeat (time.monotonic() of the last hand-off) while helpers run
helpers = []             # the helpers' Popen objects while they run

_HELPER = """
import mmap, os, struct, sys, time
core, fd, parent, spin = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
try:
    if os.getpgid(0) != os.getpid():
        os.setpgid(0, 0)                # Python 3.10, which cannot start it in a group of its own (its
                                        # parent tries too, so a Ctrl-C while it starts misses it)
    os.sched_setaffinity(0, {core})
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
except OSError:
    sys.exit(0)                         # not allowed here: no helper, no harm
page = mmap.mmap(fd, 8)
while os.getppid() == parent:
    if time.monotonic() - struct.unpack_from("d", page)[0] > spin:
        time.sleep(0.01)
    else:
        for _ in range(10):             # 0.2-0.4 ms, the core offered back every 2,000 turns
            for _ in range(2000):
                pass
            os.sched_yield()
"""


_OWN_GROUP = {"process_group": 0} if sys.version_info >= (3, 11) else {}


def _unavailable():
    """Why no helper can run here, or None: turned off in the environment, not Linux (SCHED_IDLE,
    memfd), no Python to run one (a frozen application, whose executable is the application),
    this process below normal priority, or a cgroup's CPU quota."""
    if os.environ.get(ENVIRONMENT, "1").strip().lower() in ("0", "false", "no", "off"):
        return f"{ENVIRONMENT} says so"
    if not (hasattr(os, "SCHED_IDLE") and hasattr(os, "memfd_create")):
        return "it needs Linux (SCHED_IDLE, memfd_create)"
    if not sys.executable or getattr(sys, "frozen", False):
        return "no Python to run it (a frozen application)"
    return _below_normal_priority() or _cpu_quota()


def _below_normal_priority():
    """Why this process's priority leaves no room for an idle-priority helper, or None. An idle task
    is a fair task of weight 3 that any other wakes in front of: beside a thread at nice 19
    (weight 15) a helper takes a sixth of the core (the step 224 -> 293 ms under ``nice -n 19``),
    and beside another idle task half."""
    if os.sched_getscheduler(0) & ~getattr(os, "SCHED_RESET_ON_FORK", 0) == os.SCHED_IDLE:
        return "this process runs at idle priority itself"
    niceness = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness > 0:
        return f"this process runs below normal priority (nice {niceness})"
    return None


_PROC_CGROUP, _CGROUPS = "/proc/self/cgroup", "/sys/fs/cgroup"


def _cpu_quota():
    """Why a cgroup's CPU quota leaves no room for helpers, or None. A quota (``docker run --cpus``,
    a Kubernetes CPU limit) counts every task's time, an idle one's too: where it allows fewer CPUs
    than this process may run on, helpers that spin use it up and the kernel then stops our threads
    with them (the step 185 -> 212 ms under a quota of 1.9 of 2 cores). Read for this process's
    cgroup and its ancestors: cgroup v2's ``cpu.max`` ("max 100000": none), v1's
    ``cpu.cfs_quota_us`` (-1: none) over ``cpu.cfs_period_us``."""
    try:
        with open(_PROC_CGROUP) as file:
            lines = file.read().splitlines()
    except OSError:
        return None
    usable = _usable_cpus()
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        parts = [part for part in path.split("/") if part]
        if ".." in parts:                                      # outside our namespace: not ours to read
            continue
        if controllers == "":
            folder, read = _CGROUPS, _v2_quota
        elif "cpu" in controllers.split(","):
            folder, read = os.path.join(_CGROUPS, controllers), _v1_quota
        else:
            continue
        for depth in range(len(parts), -1, -1):
            where = os.path.join(folder, *parts[:depth])
            try:
                cpus = read(where)
            except (OSError, ValueError, IndexError, ZeroDivisionError):
                continue
            if cpus is not None and cpus < usable:
                return (f"a cgroup caps this process at {cpus:g} CPUs of the {usable} it may run on "
                        f"({where}), and spinning would spend them")
    return None


def _v2_quota(folder):
    """CPUs a cgroup v2 folder's ``cpu.max`` allows ("quota period"), None for "max"."""
    with open(os.path.join(folder, "cpu.max")) as file:
        quota, period = file.read().split()[:2]
    return None if quota == "max" else int(quota) / int(period)


def _v1_quota(folder):
    """CPUs a cgroup v1 folder's ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us`` allows, None for -1."""
    with open(os.path.join(folder, "cpu.cfs_quota_us")) as file:
        quota = int(file.read())
    if quota < 0:
        return None
    with open(os.path.join(folder, "cpu.cfs_period_us")) as file:
        return quota / int(file.read())


def _usable_cpus():
    return len(os.sched_getaffinity(0))


def _refusal(cores):
    """Why ``cores_kept_awake(cores)`` would start no helper, or None."""
    if not cores:
        return "the tile threads are not one per core, so they are not pinned"
    if not separate_cores(cores):
        return "two of the cores are hyperthreads of one (or sysfs does not say)"
    return _unavailable()


def _siblings(core):
    """The CPUs that share ``core``'s physical core (itself included), from Linux's sysfs; None if unknown."""
    try:
        with open(f"/sys/devices/system/cpu/cpu{core}/topology/thread_siblings_list") as file:
            text = file.read().strip()
    except OSError:
        return None
    return cpu_list(text)


def cpu_list(text):
    """The CPUs of a Linux CPU list such as "0-3,8,10-11", as a set.

    >>> sorted(cpu_list("0-2,5,7-8"))
    [0, 1, 2, 5, 7, 8]
    """
    cpus = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def separate_cores(cores):
    """True where no two of ``cores`` are hyperthreads of one physical core (and sysfs says so)."""
    chosen = set(cores)
    for core in cores:
        siblings = _siblings(core)
        if siblings is None or len(siblings & chosen) > 1:
            return False
    return True


def describe(cores):
    """Whether ``cores_kept_awake(cores)`` starts helpers here, in words, and if not, why."""
    reason = _refusal(cores)
    if reason:
        return f"off: {reason}"
    listed = ", ".join(map(str, cores))
    return (f"on: a process at idle priority on each of cores {listed}, spinning {SPIN_SECONDS * 1000:.0f} ms "
            f"after each hand-off ({ENVIRONMENT}=0 turns it off)")


def beat():
    """Note a hand-off: the helpers spin for ``SPIN_SECONDS`` from now."""
    page = _page
    if page is not None:
        struct.pack_into("d", page, 0, time.monotonic())


@contextlib.contextmanager
def cores_kept_awake(cores):
    """Within: a helper spinning on each of ``cores`` (CPU numbers) after each ``beat``; none where
    ``_refusal`` says why not, or helpers run already (a nested use). The helpers are stopped and
    waited for on the way out."""
    global _page
    if _page is not None or _refusal(cores):
        yield
        return
    try:
        try:
            _page = _start(cores)
        except OSError:           # a sandbox without memfd, no processes left to start: run without them
            _stop()
        yield
    finally:
        _stop()


def _start(cores):
    """Start a helper on each core; returns the heartbeat's page. Each helper runs in a process
    group of its own, so that a Ctrl-C at the terminal (which ``train`` answers by finishing its
    step and saving) does not reach it, but in our session, so that it shares our autogroup."""
    fd = os.memfd_create("minitorch-seg-heartbeat")
    try:
        os.ftruncate(fd, 8)
        page = mmap.mmap(fd, 8)
        struct.pack_into("d", page, 0, time.monotonic())
        for core in cores:
            command = [sys.executable, "-c", _HELPER, str(core), str(fd), str(os.getpid()), str(SPIN_SECONDS)]
            helpers.append(subprocess.Popen(command, pass_fds=(fd,), stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, **_OWN_GROUP))
            if not _OWN_GROUP:                 # Python 3.10: as a shell does, from this side too
                with contextlib.suppress(OSError):
                    os.setpgid(helpers[-1].pid, helpers[-1].pid)
        return page
    finally:
        os.close(fd)                                     # the page and the helpers' maps keep the memory


def _stop():
    """Stop the helpers and wait for them; the page goes with its last reference."""
    global _page
    _page = None
    for helper in helpers:
        helper.terminate()
    for helper in helpers:
        try:
            helper.wait(timeout=5)
        except subprocess.TimeoutExpired:              # pragma: no cover - SIGTERM ends a helper at once
            helper.kill()
            helper.wait()
    helpers.clear()


def _forget_helpers():
    """A forked child neither beats for its parent's helpers nor stops them."""
    global _page
    _page = None
    helpers.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helpers)
