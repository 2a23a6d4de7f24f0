"""The reproduction's steps run by several worker processes at once, one step each: ``minivgg reproduce --jobs N``.

The seeds are independent, so each seed's steps run in their own order (a step only needs earlier steps of its
seed) while other seeds' steps run beside them: with 3 seeds and 2 cores both cores stay busy until the last
seed's last steps. A step computes exactly what it computes in the single process (the same seeded data, order
and initialisation; NumPy's BLAS is limited to one thread a worker, which does not change its results), so a run
may change its number of workers between sessions.

The parent process is the only one that writes the run folder's ``results/`` and ``timings.json``: a worker
receives ``{"seed": k, "step": name}`` on its standard input and answers one JSON line on the pipe it was given,
with the step's results and its CPU seconds, or the error that stopped it. Each worker is in a process group of
its own, so the terminal's Ctrl-C reaches the parent alone, which then asks every busy worker to stop as Ctrl-C
would (SIGUSR1: a training step finishes its SGD step and writes its checkpoint) and waits for them.

A worker is ``python -m minivgg.reproduction.worker_process`` (``worker_process.py``).
"""
import json
import os
import selectors
import signal
import subprocess
import sys
import time

from ..errors import MinivggError
from ..threads import available_cores, with_thread_limits

__all__ = ["run_in_workers", "default_jobs", "WorkerFailed", "Interrupted"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a training step: the step's checkpoint is written; running again continues it."""


class WorkerFailed(MinivggError, RuntimeError):
    """A step failed in a worker process: the message names the seed, the step and the worker's error."""


def default_jobs(seeds):
    """How many steps run at once when the user does not say: one a core, at most one a seed, on the CPU
    backends of a POSIX system; a GPU backend runs one step at a time (one device), as do other systems."""
    from ..backend import get_backend

    if os.name != "posix" or get_backend().name not in ("numpy", "reference"):
        return 1
    return max(1, min(available_cores(), seeds))


# -- the parent ---------------------------------------------------------------------------------------------------
class _Worker:
    def __init__(self, reproduction, slot, threads):
        import minivgg
        from ..backend import get_backend

        environment = with_thread_limits(os.environ, threads)  # cores / workers threads, unless set
        # The worker imports the same minivgg as this process, installed or not.
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(minivgg.__file__)))
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, environment.get("PYTHONPATH")]))
        self.answers, answer_end = os.pipe()
        command = [sys.executable, "-m", f"{__package__}.worker_process", os.path.abspath(reproduction.run_dir),
                   "--seeds", str(reproduction.miniature.seeds), "--slot", str(slot),
                   "--answers", str(answer_end), "--backend", get_backend().name]
        if reproduction.progress:
            command.append("--progress")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, text=True, env=environment,
                                        pass_fds=(answer_end,), start_new_session=True)
        os.close(answer_end)
        self.reader = os.fdopen(self.answers, "r")
        self.task = None  # (seed, step, wall clock at its start) while busy

    def send(self, seed, step):
        self.task = (seed, step, time.perf_counter())
        self.process.stdin.write(json.dumps({"seed": seed, "step": step.name}) + "\n")
        self.process.stdin.flush()

    def answer(self):
        """The worker's answer to its task (None when it ended without one)."""
        line = self.reader.readline()
        return json.loads(line) if line else None

    def stop_politely(self):
        if self.process.poll() is None:
            try:
                os.kill(self.process.pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass

    def close(self, kill=False):
        try:
            self.process.stdin.close()
        except OSError:
            pass
        if kill and self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=None if not kill else 10)
        finally:
            self.reader.close()


def run_in_workers(reproduction, jobs):
    """Run every missing step of ``reproduction`` (a ``Reproduction``) in ``jobs`` worker processes; returns the
    ``(seed, step)`` pairs run, in the order they finished. Ctrl-C stops every worker as it would stop the
    single process (``Interrupted``); a step that fails stops the run once the other workers' steps are done
    (``WorkerFailed``, or the worker's own error when it is one of minivgg's)."""
    pending = reproduction.missing()
    jobs = max(1, min(jobs, len({seed for seed, _ in pending})))
    threads = max(1, available_cores() // jobs)
    workers, ran, failure = [], [], None
    selector = selectors.DefaultSelector()
    try:
        while True:
            if failure is None:
                _hand_out(reproduction, pending, workers, selector, jobs, threads)
            busy = [worker for worker in workers if worker.task is not None]
            if not busy:
                break
            for key, _ in selector.select():
                worker = key.data
                if worker.task is None:  # an idle worker's pipe closed: it ended
                    selector.unregister(worker.reader)
                    continue
                problem = _take_answer(reproduction, worker, worker.answer(), ran)
                if problem is not None:
                    selector.unregister(worker.reader)
                    failure = failure or problem
    except KeyboardInterrupt:
        _stop_all(reproduction, workers, ran)
        raise Interrupted(f"interrupted; the finished steps are kept and the training steps wrote their "
                          f"checkpoints: run the same command again to continue (--run-dir "
                          f"{reproduction.run_dir})") from None
    finally:
        for worker in workers:
            worker.close(kill=worker.task is not None)
        selector.close()
    if failure is not None:
        raise failure
    return ran


def _hand_out(reproduction, pending, workers, selector, jobs, threads):
    """Give each idle worker (starting one when fewer than ``jobs`` run) the first pending step of a seed that
    no worker is on: each seed's steps stay in their order."""
    busy_seeds = {worker.task[0] for worker in workers if worker.task is not None}
    while True:
        ready = next(((seed, step) for seed, step in pending if seed not in busy_seeds), None)
        if ready is None:
            return
        idle = next((worker for worker in workers if worker.task is None and worker.process.poll() is None), None)
        if idle is None:
            if len(workers) >= jobs:
                return
            idle = _Worker(reproduction, len(workers), threads)
            workers.append(idle)
            selector.register(idle.reader, selectors.EVENT_READ, idle)
        pending.remove(ready)
        busy_seeds.add(ready[0])
        idle.send(*ready)


def _take_answer(reproduction, worker, answer, ran):
    """Write a finished step's results and time; the error to raise when the step failed (None if it did not)."""
    seed, step, started = worker.task
    worker.task = None
    if answer is None:
        code = worker.process.wait()
        return WorkerFailed(f"the worker running seed {seed} {step.name} ended without an answer (exit status "
                            f"{code}): run the same command again to continue")
    if "results" in answer:
        reproduction.record(seed, step, answer["results"], time.perf_counter() - started, answer["cpu_seconds"])
        ran.append((seed, step))
        return None
    if answer.get("interrupted"):
        return Interrupted(answer["message"])
    message = f"seed {seed} {step.name}: {answer['message']}"
    if answer.get("user_error"):
        return WorkerFailed(message)
    return RuntimeError(f"{message}\nthe worker's traceback:\n{answer['traceback']}")


def _stop_all(reproduction, workers, ran):
    """Ctrl-C: ask every busy worker to stop, keep what finishes meanwhile; a second Ctrl-C ends them at once."""
    busy = [worker for worker in workers if worker.task is not None]
    for worker in busy:
        worker.stop_politely()
    try:
        for worker in busy:
            _take_answer(reproduction, worker, worker.answer(), ran)
    except KeyboardInterrupt:
        for worker in busy:
            worker.close(kill=True)
