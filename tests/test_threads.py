"""The cores a process may use, and the thread limits given to its child processes."""
import os

from minivgg.threads import THREAD_VARIABLES, available_cores, with_thread_limits


def test_a_child_s_pools_get_the_threads_asked_unless_the_user_set_them():
    given = {"PATH": "/bin", "OMP_NUM_THREADS": "7"}
    environment = with_thread_limits(given, 3)
    assert environment == dict({variable: "3" for variable in THREAD_VARIABLES}, PATH="/bin", OMP_NUM_THREADS="7")
    assert given == {"PATH": "/bin", "OMP_NUM_THREADS": "7"}  # the caller's mapping is left as it was


def test_available_cores_are_this_process_s_affinity(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)
    assert available_cores() == 3
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert available_cores() == 1
