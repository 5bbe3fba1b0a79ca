"""awake: an idle-priority helper process spinning on each core while the tile threads work, gone
with the mode, with its parent, and never started where it would share a core with our threads."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from minitorch_seg import awake, parallel

linux_only = pytest.mark.skipif(not (hasattr(os, "SCHED_IDLE") and hasattr(os, "memfd_create")),
                                reason="helpers need Linux's SCHED_IDLE and memfd_create")


def cores():
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]


def gone(pid, within=5.0):
    """True once no process ``pid`` runs (a zombie counts as gone), waiting up to ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as file:
                if file.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def no_environment_switch(monkeypatch):
    """Helpers allowed: the switch unset, and the suite's own priority or CPU quota (a niced CI
    runner, ``docker --cpus``) set aside; the tests of those refusals use their own processes and files."""
    monkeypatch.delenv(awake.ENVIRONMENT, raising=False)
    monkeypatch.setattr(awake, "_below_normal_priority", lambda: None)
    monkeypatch.setattr(awake, "_cpu_quota", lambda: None)


@linux_only
def test_a_helper_at_idle_priority_on_its_core_and_none_after_the_mode(no_environment_switch):
    core = cores()[0]
    with awake.cores_kept_awake([core]):
        (helper,) = awake.helpers
        deadline = time.monotonic() + 5
        while os.sched_getscheduler(helper.pid) != os.SCHED_IDLE and time.monotonic() < deadline:
            time.sleep(0.01)                       # the child pins itself, then sets its class, as it starts
        assert os.sched_getscheduler(helper.pid) == os.SCHED_IDLE
        assert os.sched_getaffinity(helper.pid) == {core}
        awake.beat()
        assert helper.poll() is None
    assert helper.returncode is not None and awake.helpers == [] and awake._page is None
    awake.beat()                                    # outside the mode: nothing to note, no error


@linux_only
def test_tile_threads_keeps_awake_only_the_cores_its_pinned_pool_uses(no_environment_switch, monkeypatch):
    monkeypatch.setattr(awake, "separate_cores", lambda cores: True)
    if parallel._blas() is None:
        pytest.skip("no controllable BLAS: tile_threads() changes nothing")
    with parallel.tile_threads(threads=len(cores()) + 1):          # more threads than cores: not pinned
        assert awake.helpers == []
    if len(cores()) < 2:
        pytest.skip("one core: no pool")
    with parallel.tile_threads(threads=len(cores())):
        assert all(wait_pinned(helper) for helper in awake.helpers)
        assert sorted(os.sched_getaffinity(helper.pid).pop() for helper in awake.helpers) == cores()
    assert awake.helpers == []


def wait_pinned(helper, within=5.0):
    """True once the helper has pinned itself to one core (it does so as it starts)."""
    deadline = time.monotonic() + within
    while len(os.sched_getaffinity(helper.pid)) != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(os.sched_getaffinity(helper.pid)) == 1


@linux_only
@pytest.mark.parametrize("value", ["0", "off"])
def test_the_environment_switch_turns_the_helpers_off(monkeypatch, value):
    monkeypatch.setenv(awake.ENVIRONMENT, value)
    with awake.cores_kept_awake(cores()[:1]):
        assert awake.helpers == [] and awake._page is None


@linux_only
def test_no_helpers_where_two_of_the_cores_share_a_physical_core(no_environment_switch, monkeypatch):
    siblings = {0: {0, 1}, 1: {0, 1}, 2: {2, 3}, 3: {2, 3}}
    monkeypatch.setattr(awake, "_siblings", siblings.get)
    assert awake.separate_cores([0, 2]) and not awake.separate_cores([0, 1, 2])
    assert not awake.separate_cores([0, 7])                          # unknown: no helpers
    with awake.cores_kept_awake([2, 3]):
        assert awake.helpers == []


def test_cpu_lists_are_read_as_linux_writes_them():
    assert awake.cpu_list("3") == {3}
    assert awake.cpu_list("0-1,4,6-7") == {0, 1, 4, 6, 7}


@linux_only
def test_a_helper_ends_when_the_process_that_started_it_is_killed():
    script = textwrap.dedent(f"""
        import sys, time
        from minitorch_seg import awake
        awake._below_normal_priority = awake._cpu_quota = lambda: None   # as the fixture sets them aside
        with awake.cores_kept_awake([{cores()[0]}]):
            awake.beat()
            print(awake.helpers[0].pid, flush=True)
            time.sleep(60)
    """)
    environment = {k: v for k, v in os.environ.items() if k != awake.ENVIRONMENT}
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=environment)
    try:
        helper = int(parent.stdout.readline())
        assert not gone(helper, 0.2)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert gone(helper)
    finally:
        parent.kill()
        parent.wait()


@linux_only
def test_a_forked_child_leaves_its_parents_helpers_alone(no_environment_switch):
    with awake.cores_kept_awake(cores()[:1]):
        (helper,) = awake.helpers
        child = os.fork()
        if child == 0:                                 # the child: forgets the helpers, and its exit keeps them
            os._exit(0 if awake.helpers == [] and awake._page is None else 1)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert helper.poll() is None


def test_doctor_says_whether_the_cores_are_kept_awake_and_why_not(no_environment_switch, monkeypatch):
    monkeypatch.setattr(awake, "separate_cores", lambda cores: True)
    monkeypatch.setattr(awake, "_unavailable", lambda: None)
    assert awake.describe([0, 1]).startswith("on: a process at idle priority on each of cores 0, 1, spinning 200 ms")
    assert awake.describe([]).startswith("off: the tile threads are not one per core")
    monkeypatch.setattr(awake, "separate_cores", lambda cores: False)
    assert awake.describe([0, 1]).startswith("off: two of the cores are hyperthreads of one")
    monkeypatch.setattr(awake, "separate_cores", lambda cores: True)
    monkeypatch.setattr(awake, "_unavailable", lambda: "it needs Linux")
    assert awake.describe([0, 1]) == "off: it needs Linux"
    monkeypatch.setattr(parallel, "default_threads", lambda: 1)
    assert parallel.kept_awake().startswith("no tile threads here")
    monkeypatch.setattr(parallel, "default_threads", lambda: 2)
    monkeypatch.setattr(parallel, "_pinned_cores", lambda threads: [5, 6] if threads == 2 else [])
    monkeypatch.setattr(awake, "_unavailable", lambda: None)
    assert "cores 5, 6" in parallel.kept_awake()


@linux_only
def test_a_helper_has_a_process_group_of_its_own_so_a_ctrl_c_at_the_terminal_does_not_reach_it(no_environment_switch):
    with awake.cores_kept_awake(cores()[:1]):
        (helper,) = awake.helpers
        deadline = time.monotonic() + 5
        while os.getpgid(helper.pid) != helper.pid and time.monotonic() < deadline:
            time.sleep(0.01)                       # on Python 3.10 the child makes its group as it starts
        assert os.getpgid(helper.pid) == helper.pid != os.getpgid(0)


@linux_only
def test_a_spinning_helper_offers_its_core_back_every_few_thousand_turns():
    # on a 6.18 VM kernel a thread woken on a spinning helper's core sometimes waited for the next
    # tick (4 ms), three times a step; a helper that calls sched_yield between its turns hands the
    # core over at once. The helper's own code runs here with a fresh heartbeat, sched_yield counted;
    # the 100th call ends it, and an alarm fails a helper that never yields
    script = textwrap.dedent("""
        import mmap, os, signal, struct, sys, time
        from minitorch_seg import awake
        signal.alarm(10)
        fd = os.memfd_create("heartbeat")
        os.ftruncate(fd, 8)
        struct.pack_into("d", mmap.mmap(fd, 8), 0, time.monotonic() + 3600)      # spinning for an hour
        calls = []
        def counted():
            calls.append(time.monotonic())
            if len(calls) == 100:
                print((calls[-1] - calls[0]) / 99)
                sys.exit(0)
        os.sched_yield = counted
        os.sched_setscheduler = lambda *args: None     # at idle priority a busy machine would starve this test
        sys.argv = ["-c", str(sorted(os.sched_getaffinity(0))[0]), str(fd), str(os.getppid()), "1"]
        exec(awake._HELPER)
    """)
    run = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert 0 < float(run.stdout) < 0.01          # seconds between offers: not just where it naps (10 ms sleeps)


def autogroup(pid):
    """The task's autogroup, or "": a kernel without autogroup, or a task in the root autogroup (in no
    session made since boot, as CI's tasks are), whose file the kernel leaves empty."""
    try:
        with open(f"/proc/{pid}/autogroup") as file:
            return file.read().split(" nice")[0]
    except FileNotFoundError:
        return ""


@linux_only
def test_a_helper_stays_in_our_session_and_autogroup_so_its_idle_priority_holds(no_environment_switch):
    # Linux's autogroup gives each session a fair share of the CPU: a helper in a session of its own
    # took half of each core from the tile threads, whatever its scheduling class. Autogroups follow
    # sessions, so the session is the check everywhere; the autogroup itself where one applies
    with awake.cores_kept_awake(cores()[:1]):
        (helper,) = awake.helpers
        assert os.getsid(helper.pid) == os.getsid(0)
        assert autogroup(helper.pid) == autogroup(os.getpid())


@linux_only
@pytest.mark.parametrize("lower", ["os.nice(5)", "os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))",
                                   "os.sched_setscheduler(0, os.SCHED_IDLE | os.SCHED_RESET_ON_FORK, os.sched_param(0))"])
def test_no_helpers_where_this_process_runs_below_normal_priority(lower):
    # beside a thread at nice 19 an idle-priority helper took a sixth of the core: the step 224 -> 293 ms
    script = textwrap.dedent(f"""
        import os
        os.environ.pop({awake.ENVIRONMENT!r}, None)
        {lower}
        from minitorch_seg import awake
        with awake.cores_kept_awake([sorted(os.sched_getaffinity(0))[0]]):
            print(len(awake.helpers), awake._unavailable())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.startswith("0 this process runs ")


def v1(folder, quota):
    return {f"{folder}/cpu.cfs_quota_us": quota, f"{folder}/cpu.cfs_period_us": "100000"}


@pytest.mark.parametrize("cgroups, files, capped", [
    ("0::/user.slice/app\n", {"user.slice/app/cpu.max": "max 100000", "user.slice/cpu.max": "max 100000"}, None),
    ("0::/\nnot a cgroup line\n", {}, None),                          # the root cgroup has no cpu.max
    ("0::/kubepods/pod1/c1\n", {"kubepods/pod1/c1/cpu.max": "max 100000",
                                "kubepods/pod1/cpu.max": "150000 100000"}, ("kubepods/pod1", "1.5")),
    ("0::/\n", {"cpu.max": "150000 100000"}, ("", "1.5")),             # a container's own, namespaced
    ("0::/\n", {"cpu.max": "200000 100000"}, None),                    # as many CPUs as it may run on
    ("0::/\n", {"cpu.max": "300000 200000"}, ("", "1.5")),            # the period counts
    ("0::/../../outside\n", {"cpu.max": "50000 100000"}, None),       # not in our namespace: not read
    ("4:memory:/m\n1:cpu,cpuacct:/docker/abc\n0::/\n",
     {**v1("cpu,cpuacct/docker/abc", "-1"), **v1("cpu,cpuacct/docker", "-1")}, None),
    ("3:cpu,cpuacct:/docker/abc\n", v1("cpu,cpuacct", "190000"), ("cpu,cpuacct", "1.9")),  # mounted at its own
    ("3:cpu,cpuacct:/docker/abc\n", v1("cpu,cpuacct", "200000"), None),
    ("2:cpuacct:/a\n1:cpu:/a\n", {**v1("cpuacct/a", "5000"), **v1("cpu/a", "-1")}, None),
])
def test_no_helpers_under_a_cgroups_cpu_quota_of_fewer_cpus_than_ours(tmp_path, monkeypatch, cgroups, files, capped):
    # a quota of 1.9 cores of 2: the step 185 -> 212 ms with helpers, which spend it
    (tmp_path / "cgroup").write_text(cgroups)
    for name, text in files.items():
        (tmp_path / "fs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "fs" / name).write_text(text + "\n")
    monkeypatch.setattr(awake, "_PROC_CGROUP", str(tmp_path / "cgroup"))
    monkeypatch.setattr(awake, "_CGROUPS", str(tmp_path / "fs"))
    monkeypatch.setattr(awake, "_usable_cpus", lambda: 2)
    reason = awake._cpu_quota()
    if capped is None:
        assert reason is None
    else:
        folder, cpus = capped
        assert reason == (f"a cgroup caps this process at {cpus} CPUs of the 2 it may run on "
                          f"({tmp_path / 'fs' / folder}), and spinning would spend them")
        monkeypatch.delenv(awake.ENVIRONMENT, raising=False)
        monkeypatch.setattr(awake, "_below_normal_priority", lambda: None)
        monkeypatch.setattr(awake.sys, "frozen", False, raising=False)
        if hasattr(os, "SCHED_IDLE") and hasattr(os, "memfd_create"):
            assert awake._unavailable() == reason


def test_no_cgroup_file_no_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(awake, "_PROC_CGROUP", str(tmp_path / "absent"))
    assert awake._cpu_quota() is None


@linux_only
def test_the_mode_runs_without_helpers_where_they_cannot_start(no_environment_switch, monkeypatch):
    started, real = [], subprocess.Popen

    def popen(*args, **kwargs):            # the first helper starts, the second finds no process left
        if started:
            raise BlockingIOError("Resource temporarily unavailable")
        started.append(real(*args, **kwargs))
        return started[-1]
    monkeypatch.setattr(awake.subprocess, "Popen", popen)
    with awake.cores_kept_awake([cores()[0], cores()[0]]):
        assert awake.helpers == [] and awake._page is None
        awake.beat()
    assert started[0].returncode is not None

    def no_memfd(name):
        raise PermissionError("Operation not permitted")
    monkeypatch.setattr(awake.os, "memfd_create", no_memfd)
    with awake.cores_kept_awake(cores()[:1]):
        assert awake.helpers == []


def test_no_helpers_from_a_frozen_application_whose_executable_is_not_python(no_environment_switch, monkeypatch):
    monkeypatch.setattr(awake.sys, "frozen", True, raising=False)
    assert awake._unavailable() == "no Python to run it (a frozen application)"
