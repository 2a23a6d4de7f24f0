"""``minivgg reproduce --quick``: every step of the pipeline runs, the report has its structure, and the run
folder behaves (finished steps are not redone, an interrupted step resumes, another run's folder is refused).

The data is a small folder of IDX files written here in Fashion-MNIST's format (so the test needs neither the
real files nor a network); the test marked ``needs_fashion_mnist`` runs the command as a user would.
"""
import json
import os
import re

import numpy as np
import pytest

from minivgg.cli.program import main
from minivgg.data.idx import write_idx
from minivgg.reproduction import CLAIMS, QUICK, Reproduction, steps
from minivgg.reproduction.classification import load_seed_data, train_net
from minivgg.reproduction.experiments import NETS, SECTIONS
from minivgg.reproduction.report import FIGURES
from minivgg.reproduction.statistics import VERDICTS

DEBIAN_FOLDER = "/usr/share/datasets/fashion-mnist"


def write_fake_fashion_mnist(folder, train_per_class=24, test_per_class=8, seed=0):
    """Four IDX files of 28x28 grey images in 10 classes: class k is a bright bar at a class-dependent place
    on noise, so a net can learn something in a few steps."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for split, per_class in (("train", train_per_class), ("t10k", test_per_class)):
        labels = np.repeat(np.arange(10), per_class).astype(np.uint8)
        images = rng.integers(0, 60, size=(len(labels), 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 + 2 * label:6 + 2 * label, 4:24] = 230
        write_idx(os.path.join(folder, f"{split}-images-idx3-ubyte"), images)
        write_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte"), labels)
    return folder


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One quick run, shared by the tests that read what it wrote: (run folder, data folder, its output)."""
    root = tmp_path_factory.mktemp("reproduction")
    data = write_fake_fashion_mnist(str(root / "data"))
    run_dir = str(root / "run")
    # Two worker processes, whatever the machine's cores: the parallel path is the one a user's run takes.
    code, output = _main(["reproduce", "--quick", "--quiet", "--jobs", "2", "--data", data, "--run-dir", run_dir])
    return run_dir, data, code, output


def _main(argv):
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(argv)
    return code, buffer.getvalue()


def test_the_quick_run_runs_every_step_of_every_seed(quick_run):
    run_dir, _, code, output = quick_run
    assert code == 0
    for seed in range(QUICK.seeds):
        for step in steps(QUICK):
            assert f"seed {seed} {step.name}:" in output
            path = os.path.join(run_dir, f"seed-{seed}", "results", step.name.replace("/", "_") + ".json")
            with open(path) as handle:
                results = json.load(handle)
            assert results and all(np.isfinite(v) for v in results.values())
    timings = json.load(open(os.path.join(run_dir, "timings.json")))
    assert len(timings) == QUICK.seeds * len(steps(QUICK))


def test_the_report_sets_every_claim_beside_its_measurement(quick_run):
    run_dir, _, _, output = quick_run
    with open(os.path.join(run_dir, "report", "README.md")) as handle:
        report = handle.read()
    assert report in output  # printed as written
    for title, _ in SECTIONS:
        assert f"### {title}" in report
    for claim in CLAIMS:
        # Each claim's row: its statement, the paper's figure, a verdict; and its seed-by-seed gains.
        row = next(line for line in report.splitlines() if line.startswith(f"| {claim.statement} ({claim.section})"))
        assert claim.paper in row
        assert re.search(r"\*\*(" + "|".join(VERDICTS) + r")\*\*", row), row
        gains = next(line for line in report.splitlines() if line.startswith(f"| {claim.key} |"))
        assert len(re.findall(r"[+-]\d+\.\d\d", gains)) == QUICK.seeds, gains
    for name in ("the miniature", "What it cost", "How to read it"):
        assert name.lower() in report.lower()
    for figure in FIGURES:
        path = os.path.join(run_dir, "report", "figures", figure)
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
        assert f"figures/{figure}" in report


def test_the_report_of_a_finished_run_is_not_marked_partial_and_explains_what_did_not_reproduce(quick_run):
    run_dir, _, _, _ = quick_run
    with open(os.path.join(run_dir, "report", "README.md")) as handle:
        report = handle.read()
    assert "PARTIAL" not in report and "(partial)" not in report
    assert "The steps ran from" in report and "CPU time" in report and "scikit-learn" in report
    not_reproduced = [line for line in report.splitlines() if line.startswith("| ") and
                      re.search(r"\*\*(not reproduced|inconclusive)\*\*", line)]
    explained = [line for line in report.splitlines() if line.startswith("- *") and "**" in line]
    assert not_reproduced and len(explained) == len(not_reproduced)


def test_the_results_file_holds_the_report_s_verdicts_and_every_seed_s_measurements(quick_run):
    from minivgg.reproduction import load_results, read_results

    run_dir, _, _, _ = quick_run
    results = load_results(os.path.join(run_dir, "report", "results.json"))
    report = open(os.path.join(run_dir, "report", "README.md")).read()
    assert results.complete and results.seeds == QUICK.seeds
    for claim in CLAIMS:
        row = next(line for line in report.splitlines() if line.startswith(f"| {claim.statement} ({claim.section})"))
        assert f"**{results.claim(claim.key).verdict}**" in row
    measured = read_results(run_dir, 1)
    for key in ("A/dense/96", "D-jittered/dense/64,96,128", "transfer/raw-pixels"):
        assert results.measurement(key)[1] == measured[key]


def test_report_only_writes_the_report_of_the_folder_elsewhere_and_runs_nothing(quick_run, tmp_path):
    run_dir, _, _, _ = quick_run
    before = {path: os.path.getmtime(path) for path in _files(run_dir) if "report" not in path}
    folder = tmp_path / "docs"
    code, output = _main(["reproduce", "--report-only", "--run-dir", run_dir, "--report-dir", str(folder)])
    assert code == 0 and not re.search(r"^seed \d", output, re.MULTILINE)
    report = (folder / "README.md").read_text()
    assert report in output and "Run by `minivgg reproduce --quick`" in report  # the sizes read from the folder
    for figure in FIGURES:
        assert (folder / "figures" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((folder / "results.json").read_text())["claims"] == \
        json.load(open(os.path.join(run_dir, "report", "results.json")))["claims"]
    with open(os.path.join(run_dir, "report", "README.md")) as handle:
        ran = handle.read()
    # The same claims, measurements and verdicts as the report the run wrote.
    assert [line for line in report.splitlines() if line.startswith("|")] == \
        [line for line in ran.splitlines() if line.startswith("|")]
    assert {path: os.path.getmtime(path) for path in _files(run_dir) if "report" not in path} == before


def test_the_report_of_an_unfinished_run_is_marked_partial_and_names_what_is_missing(quick_run, tmp_path):
    import shutil

    run_dir, _, _, _ = quick_run
    copy = str(tmp_path / "run")
    shutil.copytree(run_dir, copy)
    os.remove(os.path.join(copy, "seed-1", "results", "transfer.json"))
    os.remove(os.path.join(copy, "seed-0", "results", "evaluate_E.json"))
    code, output = _main(["reproduce", "--report-only", "--run-dir", copy])
    assert code == 0
    report = open(os.path.join(copy, "report", "README.md")).read()
    assert report.startswith("# The paper's findings in miniature (partial)")
    assert "PARTIAL REPORT: 2 of" in report and "evaluate/E (seed 0); transfer (seed 1)" in report
    assert "CPU min" in report
    # The estimate of what is left: each missing step as long as the same step took in the seeds timed.
    from minivgg.reproduction import read_miniature

    timings = json.load(open(os.path.join(copy, "timings.json")))

    def mean(step):
        return sum(timings[f"seed-{seed}/{step}"]["cpu_seconds"] for seed in (0, 1)) / 2
    run = Reproduction(copy, read_miniature(copy), progress=False)
    assert run.remaining_cpu_seconds() == (pytest.approx(mean("evaluate/E") + mean("transfer")), 2, 2)
    # With no seed's measurement of a net, net A's, scaled by the multiply-adds and the test scales' pixels.
    os.remove(os.path.join(copy, "seed-1", "results", "evaluate_E.json"))
    del timings["seed-0/evaluate/E"], timings["seed-1/evaluate/E"]
    with open(os.path.join(copy, "timings.json"), "w") as handle:
        json.dump(timings, handle)
    seconds, estimated, missing = run.remaining_cpu_seconds()
    assert (estimated, missing) == (3, 3)
    assert seconds - mean("transfer") == pytest.approx(2 * mean("evaluate/A") * 6.29, rel=0.01)
    # A claim on E is measured over the one seed that has both sides.
    row = next(line for line in report.splitlines() if line.startswith("| depth-e-a |"))
    assert len(re.findall(r"[+-]\d+\.\d\d", row)) == 1, row


def test_report_only_refuses_what_it_cannot_report(quick_run, tmp_path, capsys):
    run_dir, data, _, _ = quick_run
    assert main(["reproduce", "--report-only"]) == 1
    assert "needs the --run-dir" in capsys.readouterr().err
    assert main(["reproduce", "--report-only", "--run-dir", str(tmp_path)]) == 1
    assert "holds no reproduction" in capsys.readouterr().err
    assert main(["reproduce", "--report-only", "--quick", "--run-dir", run_dir]) == 1
    assert "leave out --quick" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "miniature.json").write_text("{not json")
    assert main(["reproduce", "--report-only", "--run-dir", str(broken)]) == 1
    assert "unreadable" in capsys.readouterr().err


def test_a_second_run_in_the_same_folder_redoes_nothing(quick_run):
    run_dir, data, _, _ = quick_run
    before = {path: os.path.getmtime(path) for path in _files(run_dir) if "report" not in path}
    code, output = _main(["reproduce", "--quick", "--quiet", "--data", data, "--run-dir", run_dir])
    assert code == 0
    assert not re.search(r"^seed \d", output, re.MULTILINE)  # no step ran
    assert {path: os.path.getmtime(path) for path in _files(run_dir) if "report" not in path} == before


def _files(folder):
    return [os.path.join(top, name) for top, _, names in os.walk(folder) for name in names]


def test_a_folder_of_other_sizes_or_of_another_run_is_refused(quick_run, tmp_path, capsys):
    run_dir, data, _, _ = quick_run
    assert main(["reproduce", "--data", data, "--run-dir", run_dir]) == 1  # the default sizes into --quick's folder
    assert "holds a reproduction of other sizes" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    (other / "checkpoint.safetensors").write_bytes(b"")
    assert main(["reproduce", "--quick", "--data", data, "--run-dir", str(other)]) == 1
    assert "something else than a reproduction" in capsys.readouterr().err
    afile = tmp_path / "file"
    afile.write_text("")
    assert main(["reproduce", "--quick", "--data", data, "--run-dir", str(afile)]) == 1
    assert "is a file" in capsys.readouterr().err
    # A --report-dir that cannot take the report is refused before anything runs.
    fresh = tmp_path / "fresh"
    assert main(["reproduce", "--quick", "--data", data, "--run-dir", str(fresh), "--report-dir", str(afile)]) == 1
    assert "--report-dir" in capsys.readouterr().err and not fresh.exists()


@pytest.mark.parametrize("option", ["--seeds", "--jobs"])
@pytest.mark.parametrize("value", ["0", "-1", "x", "2.5", "100000"])
def test_bad_seeds_and_jobs_are_refused_at_parse_time(option, value, capsys):
    if option == "--seeds" and value == "100000":
        return  # 100,000 seeds is a (long) run, not a mistake
    with pytest.raises(SystemExit) as stop:
        main(["reproduce", option, value])
    assert stop.value.code == 2
    assert option in capsys.readouterr().err


def test_report_only_refuses_jobs(quick_run, capsys):
    assert main(["reproduce", "--report-only", "--jobs", "2", "--run-dir", quick_run[0]]) == 1
    assert "leave out --jobs" in capsys.readouterr().err


# --- several worker processes (workers.py) -----------------------------------------------------------------------
def _all_results(run_dir, seeds=QUICK.seeds):
    from minivgg.reproduction import read_results

    return [read_results(run_dir, seed) for seed in range(seeds)]


def test_worker_processes_give_exactly_the_results_of_one_process(quick_run, tmp_path):
    run_dir, data, _, _ = quick_run
    one = str(tmp_path / "one")
    code, _ = _main(["reproduce", "--quick", "--quiet", "--jobs", "1", "--data", data, "--run-dir", one])
    assert code == 0
    parallel, single = _all_results(run_dir), _all_results(one)
    assert all(len(results) > 50 for results in parallel)
    assert parallel == single  # every measurement of every step, to the last bit
    # Each run says how it ran: its sessions, and the report's wall time of the run.
    for folder, jobs, words in ((run_dir, 2, "2 steps at a time in worker processes"), (one, 1, "one step at a time")):
        sessions = json.load(open(os.path.join(folder, "sessions.json")))
        assert [(entry["jobs"], entry["steps"]) for entry in sessions[:1]] == [(jobs, QUICK.seeds * len(steps(QUICK)))]
        assert sessions[0]["ended"] >= sessions[0]["started"]
        report = open(os.path.join(folder, "report", "README.md")).read()
        assert re.search(r"Wall time of the run: \d+ min, " + words + r"; the steps' own wall times add up to", report)


def test_a_run_folder_without_sessions_reports_the_steps_wall_time(quick_run, tmp_path):
    import shutil

    copy = str(tmp_path / "run")
    shutil.copytree(quick_run[0], copy)
    os.remove(os.path.join(copy, "sessions.json"))
    code, output = _main(["reproduce", "--report-only", "--run-dir", copy])
    assert code == 0 and "Wall time of the steps: " in output and "Wall time of the run" not in output


def _processes_mentioning(text):
    """The pids whose command line contains ``text`` (Linux's /proc)."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as handle:
                    if text.encode() in handle.read():
                        pids.append(int(name))
            except OSError:
                pass
    return pids


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the worker processes in /proc (Linux)")
def test_ctrl_c_stops_every_worker_and_the_same_command_finishes_the_run_exactly(quick_run, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    run_dir, data, _, _ = quick_run
    folder = str(tmp_path / "run")
    command = [sys.executable, "-m", "minivgg", "reproduce", "--quick", "--quiet", "--jobs", "2", "--data", data,
               "--run-dir", folder]
    # A shell starts a background job with SIGINT ignored; the command must get it as a terminal gives it.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = [os.path.join(folder, f"seed-{seed}", "results", "train_A.json") for seed in range(QUICK.seeds)]
    deadline = time.monotonic() + 120
    while not all(os.path.exists(path) for path in first) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_processes_mentioning(folder)) == 3  # the command and its two workers
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "run the same command again to continue" in err
    assert _processes_mentioning(folder) == []  # no worker is left behind
    done = sum(len(results) for results in _all_results(folder))
    assert 0 < done < sum(len(results) for results in _all_results(run_dir))
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert _all_results(folder) == _all_results(run_dir)


def test_a_step_that_fails_in_a_worker_is_named_and_the_other_workers_steps_are_kept(quick_run, tmp_path, capsys):
    import shutil

    run_dir, data, _, _ = quick_run
    copy = str(tmp_path / "run")
    shutil.copytree(run_dir, copy)
    for seed in range(QUICK.seeds):
        os.remove(os.path.join(copy, f"seed-{seed}", "results", "evaluate_A.json"))
    weights = os.path.join(copy, "seed-1", "nets", "A", "model.safetensors")
    with open(weights, "wb") as handle:
        handle.write(b"not a weights file")
    assert main(["reproduce", "--quick", "--quiet", "--jobs", "2", "--data", data, "--run-dir", copy]) == 1
    err = capsys.readouterr().err
    assert "seed 1 evaluate/A" in err and "model.safetensors" in err and "Traceback" not in err
    # The other seed's step, run beside it, is written; the failed one is not.
    assert os.path.exists(os.path.join(copy, "seed-0", "results", "evaluate_A.json"))
    assert not os.path.exists(os.path.join(copy, "seed-1", "results", "evaluate_A.json"))


def test_an_interrupted_training_step_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, monkeypatch):
    # The net trained epoch by epoch, interrupted after one SGD step of its second epoch and resumed, ends with
    # exactly the weights of the same net trained without a stop.
    from dataclasses import replace

    from minivgg.training import train as real_train

    data_folder = write_fake_fashion_mnist(str(tmp_path / "data"))
    miniature = replace(QUICK, data=data_folder, epochs=2)
    spec = next(s for s in NETS if s.name == "A")
    data = load_seed_data(miniature, 0)
    straight = train_net(miniature, spec, data, 0, str(tmp_path / "straight"))

    calls = []

    def interrupted_once(*args, **kwargs):
        calls.append(kwargs.get("resume"))
        if len(calls) == 2:  # in the second epoch: stop as Ctrl-C would, after one step
            return real_train(*args, stop_after_steps=1, **kwargs)
        return real_train(*args, **kwargs)

    monkeypatch.setattr("minivgg.training.train", interrupted_once)
    assert train_net(miniature, spec, data, 0, str(tmp_path / "stopped")) is None
    resumed = train_net(miniature, spec, data, 0, str(tmp_path / "stopped"))
    assert calls[0] is False and all(calls[1:])
    for (name, layer, key), (_, other, _) in zip(straight.named_parameters(), resumed.named_parameters()):
        np.testing.assert_array_equal(layer.params[key], other.params[key], err_msg=name)


def test_an_interrupted_evaluation_is_redone_and_nothing_else(tmp_path, monkeypatch):
    from dataclasses import replace

    data_folder = write_fake_fashion_mnist(str(tmp_path / "data"))
    miniature = replace(QUICK, data=data_folder, seeds=1)
    run = Reproduction(str(tmp_path / "run"), miniature, progress=False)
    original = Reproduction._evaluate

    def stop_at_b(self, seed, step, bar):
        if step.net == "B":
            raise KeyboardInterrupt
        return original(self, seed, step, bar)

    monkeypatch.setattr(Reproduction, "_evaluate", stop_at_b)
    with pytest.raises(KeyboardInterrupt):
        run.run()
    done = {step.name for step in steps(miniature) if run.is_done(0, step)}
    assert "train/B" in done and "evaluate/A" in done and "evaluate/B" not in done
    monkeypatch.setattr(Reproduction, "_evaluate", original)
    ran = [step.name for _, step in run.run()]
    assert ran[0] == "evaluate/B" and "train/A" not in ran and "train/B" not in ran
    assert len(run.finished_seeds()) == 1


@pytest.mark.skipif(not os.path.isdir(DEBIAN_FOLDER), reason=f"the real Fashion-MNIST files are not installed "
                    f"({DEBIAN_FOLDER}: apt-get install dataset-fashion-mnist)")
def test_the_quick_run_on_the_real_fashion_mnist(tmp_path):
    code, output = _main(["reproduce", "--quick", "--quiet", "--seeds", "1", "--run-dir", str(tmp_path / "run")])
    assert code == 0
    assert re.search(r"\d+ claims? reproduced", output)


def test_the_default_is_a_step_a_core_and_a_seed_on_the_cpu_and_one_step_on_a_gpu(monkeypatch):
    from minivgg.reproduction import workers

    monkeypatch.setattr(workers, "available_cores", lambda: 2)
    assert (workers.default_jobs(3), workers.default_jobs(1)) == (2, 1)
    monkeypatch.setattr(workers, "available_cores", lambda: 16)
    assert workers.default_jobs(3) == 3

    class OnTheGpu:
        name = "cupy"
    monkeypatch.setattr("minivgg.backend.get_backend", lambda: OnTheGpu)
    assert workers.default_jobs(3) == 1


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGUSR1"), reason="workers are stopped with SIGUSR1 (POSIX)")
def test_ctrl_c_stops_the_workers_training_at_their_next_step_each_with_a_checkpoint(tmp_path):
    # Net A trained for 500 epochs in two workers (a patience that never ends the schedule early): Ctrl-C (to the command alone, as workers are in process groups
    # of their own) must reach their training loops, which stop after the SGD step, long before the end.
    import signal
    import subprocess
    import sys
    import time

    from minivgg.training.checkpoint import read_checkpoint_state
    from minivgg.training.run_folder import CHECKPOINT, FINAL_WEIGHTS

    data = write_fake_fashion_mnist(str(tmp_path / "data"))
    folder = str(tmp_path / "run")
    script = (
        "import sys\n"
        "from dataclasses import replace\n"
        "from minivgg.reproduction import QUICK, Interrupted, Reproduction\n"
        f"miniature = replace(QUICK, data={data!r}, epochs=500, patience=1000)\n"  # no early end of the schedule
        "try:\n"
        f"    Reproduction({folder!r}, miniature, progress=False).run(jobs=2)\n"
        "except Interrupted as stop:\n"
        "    print(stop)\n"
        "    sys.exit(130)\n")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    checkpoints = [os.path.join(folder, f"seed-{seed}", "nets", "A", CHECKPOINT) for seed in range(QUICK.seeds)]
    deadline = time.monotonic() + 120
    while not all(os.path.exists(path) for path in checkpoints) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(os.path.exists(path) for path in checkpoints), "the workers never wrote a first checkpoint"
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=60)  # 500 epochs would take many minutes
    finally:
        for pid in _processes_mentioning(folder):  # a worker that did not stop must not outlive the test
            os.kill(pid, signal.SIGKILL)
    assert process.returncode == 130, err
    assert "checkpoint" in out
    for path in checkpoints:
        assert read_checkpoint_state(path)["position"]["epoch"] < 500
        assert not os.path.exists(os.path.join(os.path.dirname(path), FINAL_WEIGHTS))
    assert _processes_mentioning(folder) == []


def test_a_killed_session_counts_to_its_last_step_and_a_broken_sessions_file_is_named(quick_run, tmp_path, capsys):
    import datetime
    import shutil

    copy = str(tmp_path / "run")
    shutil.copytree(quick_run[0], copy)
    path = os.path.join(copy, "sessions.json")
    sessions = json.load(open(path))
    last = max(os.path.getmtime(os.path.join(top, name)) for top, _, names in os.walk(os.path.join(copy, "seed-0"))
               for name in names if top.endswith("results"))
    started = datetime.datetime.fromtimestamp(last - 600, datetime.timezone.utc).isoformat(timespec="seconds")
    sessions[0].update(started=started, ended=None, steps=0)  # as a session killed (kill -9) would leave it
    json.dump(sessions, open(path, "w"))
    from minivgg.reproduction import read_miniature

    seconds, count, jobs = Reproduction(copy, read_miniature(copy), progress=False).elapsed()
    assert count == 1 and jobs == [2] and 600 <= seconds <= 600 + 120
    with open(path, "w") as handle:
        handle.write("[{not json")
    assert main(["reproduce", "--report-only", "--run-dir", copy]) == 1
    err = capsys.readouterr().err
    assert "sessions.json is unreadable" in err and "Traceback" not in err
