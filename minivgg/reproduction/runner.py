"""The reproduction's run: every step of every seed, each done once, in a run folder that survives Ctrl-C.

    RUN/miniature.json            the sizes (``Miniature``); a later run in the folder must use the same
    RUN/seed-<k>/nets/<net>/      a training run folder per net (checkpoint, log, model.safetensors)
    RUN/seed-<k>/results/<step>.json    what each step measured (written last: the step is done)
    RUN/seed-<k>/posteriors/<net>.npz   test posteriors kept for fusion (Table 6)
    RUN/timings.json              wall and CPU seconds of each step
    RUN/sessions.json             when each call of ``run`` started and ended, with how many worker processes
    RUN/report/README.md, RUN/report/figures/   the report (``report.py``)

Each step runs for every seed before the next step starts (A for seeds 0, 1, 2, then A-LRN, ...), so a run
stopped part-way already has its first comparisons at every seed, paired and given verdicts, rather than every
comparison at one seed, which can be given none (``steps`` gives the order). With several worker processes
(``run(jobs=...)``, ``workers.py``) each seed's steps keep that order and the seeds run side by side. A step
whose results file exists is skipped; a training step that was interrupted resumes from its checkpoint; an
evaluation that was interrupted is redone (its files are written atomically, at its end).
"""
import json
import os
import sys
import time
from dataclasses import dataclass, replace

from ..errors import RunFolderError
from ..files import atomic_write
from .classification import (WEIGHTS_FILE, build_net, classification_posteriors, load_arrays, load_net,
                             load_seed_data, save_arrays, top1_error, train_net)
from .experiments import DEEP_NETS, NETS
from .miniature import Miniature
from .workers import Interrupted, run_in_workers

__all__ = ["Step", "steps", "Reproduction", "MINIATURE_FILE", "TIMINGS_FILE", "REPORT_FOLDER", "read_results",
           "read_miniature", "Interrupted"]

MINIATURE_FILE, TIMINGS_FILE, SESSIONS_FILE, REPORT_FOLDER = "miniature.json", "timings.json", "sessions.json", "report"


@dataclass(frozen=True)
class Step:
    """One unit of work of a seed: ``name`` (also its results file's), ``kind``, the net or nets it concerns,
    and how many units its progress bar counts."""

    name: str
    kind: str
    net: str = None
    total: int = 1


# The nets trained before the rest: A, and A-LRN, which is as cheap. The steps that need only net A (Appendix A,
# Sect. 3.1's short runs) come next, so a run stopped part-way has measured most of the paper's sections before
# the deeper nets of Table 3 take the larger part of the time.
FIRST_NETS = ("A", "A-LRN")


def steps(miniature):
    """Every step of one seed, in the order they run (a step only needs steps before it): nets A and A-LRN,
    Appendix A (from net A), Sect. 3.1's short runs, the other nets of Tables 3 and 4, Table 5, Table 6 and
    Appendix B."""
    from .localisation import CLASSIFIER, LOCALISATION_NETS
    from .transfer import TRANSFER_NETS

    def net_steps(specs):
        out = []
        for spec in specs:
            epochs = miniature.stall_epochs if spec.stall else miniature.epochs
            out.append(Step(f"train/{spec.name}", "train", spec.name, epochs))
            if not spec.stall:
                out.append(Step(f"evaluate/{spec.name}", "evaluate", spec.name, len(_evaluations(miniature, spec))))
        return out

    out = net_steps([spec for spec in NETS if spec.name in FIRST_NETS])
    out.append(Step(f"localisation/{CLASSIFIER}", "localisation-classifier", CLASSIFIER, miniature.classifier_epochs))
    out += [Step(f"localisation/{name}", "localisation-net", name, miniature.localisation_epochs)
            for name, _, _ in LOCALISATION_NETS]
    out.append(Step("localisation/evaluate", "localisation-evaluate"))
    out += net_steps([spec for spec in NETS if spec.stall])
    out += net_steps([spec for spec in NETS if spec.name not in FIRST_NETS and not spec.stall])
    out += [Step(f"table5/{net}", "table5", net, 2 * len(miniature.test_scales)) for net in DEEP_NETS]
    out.append(Step("fusion", "fusion"))
    out.append(Step("transfer", "transfer", total=len(TRANSFER_NETS) + 2))
    return out


def _evaluations(miniature, spec):
    """(method, Q) pairs of Tables 3 and 4 for ``spec``: dense at Sect. 4.1's Q (and at every Q of Sect. 4.2
    for the nets Table 4 uses), and the centre crop at Sect. 4.1's Q (Sect. 4.1's shallow-net comparison)."""
    q = miniature.single_test_scale
    dense = miniature.test_scales if spec.scales == "multi" else (q,)
    return [("dense", scale) for scale in dense] + [("single-crop", q)]


def read_miniature(run_dir, seeds=None):
    """The ``Miniature`` of the reproduction in ``run_dir`` (its ``miniature.json``), with ``seeds`` seeds, or
    as many as the folder has begun (``seed-<k>`` folders) and at least the seeds of its preset (``DEFAULT``'s
    or ``QUICK``'s, when the sizes are theirs). ``RunFolderError`` when the folder holds no reproduction or its
    sizes are unreadable."""
    path = os.path.join(run_dir, MINIATURE_FILE)
    if not os.path.isfile(path):
        raise RunFolderError(f"{run_dir} holds no reproduction (no {MINIATURE_FILE}): give the --run-dir of a "
                             f"run of minivgg reproduce")
    try:
        with open(path) as handle:
            fields = json.load(handle)
        miniature = Miniature.from_dict(fields, seeds or 1)
        if seeds is None:
            from .miniature import DEFAULT, QUICK

            begun = [int(name.split("-", 1)[1]) for name in os.listdir(run_dir)
                     if name.startswith("seed-") and name.split("-", 1)[1].isdigit()]
            preset = {"default": DEFAULT.seeds, "quick": QUICK.seeds}.get(miniature.preset, 1)
            miniature = miniature.with_seeds(max([preset] + [k + 1 for k in begun]))
        return miniature
    except (OSError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise RunFolderError(f"{path} is unreadable ({error}): give the --run-dir of a run of this version of "
                             f"minivgg reproduce") from None


def _now():
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _step_file(name):
    return name.replace("/", "_") + ".json"


def read_results(run_dir, seed):
    """Every result a seed's finished steps wrote, merged: ``{key: value}``."""
    folder = os.path.join(run_dir, f"seed-{seed}", "results")
    merged = {}
    if os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            if name.endswith(".json"):
                with open(os.path.join(folder, name)) as handle:
                    merged.update(json.load(handle))
    return merged


def _write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)

    def write(temporary):
        with open(temporary, "w") as handle:
            json.dump(value, handle, indent=1, sort_keys=True)
    atomic_write(path, write)


class Reproduction:
    """A reproduction run in ``run_dir`` at the sizes of ``miniature``.

    Parameters
    ----------
    run_dir : the run folder (created; a folder of another run, or of other sizes, is refused)
    miniature : ``Miniature``
    progress : show a tqdm bar per step
    out : where the one line per finished step goes (None: standard output at the time of the line)
    """

    def __init__(self, run_dir, miniature, progress=True, out=None):
        if not isinstance(miniature, Miniature):
            raise TypeError(f"Reproduction: expected a Miniature, got {type(miniature).__name__}")
        self.run_dir, self.miniature, self.progress, self.out = os.fspath(run_dir), miniature, progress, out
        self._check_folder()

    # -- the run folder ------------------------------------------------------------------------------------------
    def _check_folder(self):
        run_dir = self.run_dir
        if os.path.lexists(run_dir) and not os.path.isdir(run_dir):
            raise RunFolderError(f"--run-dir {run_dir} is a file, not a folder: choose another --run-dir")
        settings_path = os.path.join(run_dir, MINIATURE_FILE)
        if os.path.isdir(run_dir) and os.listdir(run_dir) and not os.path.exists(settings_path):
            raise RunFolderError(f"{run_dir} holds files of something else than a reproduction (no "
                                 f"{MINIATURE_FILE}): choose another --run-dir")
        if os.path.exists(settings_path):
            try:
                with open(settings_path) as handle:
                    saved = json.load(handle)
            except (OSError, json.JSONDecodeError) as error:
                raise RunFolderError(f"{settings_path} is unreadable ({error}): choose another --run-dir") from None
            now = self.miniature.to_dict()
            if saved != now:
                changed = sorted(key for key in set(saved) | set(now) if saved.get(key) != now.get(key))
                raise RunFolderError(f"{run_dir} holds a reproduction of other sizes ({', '.join(changed)} differ; "
                                     f"--quick and the default run need separate folders): choose another "
                                     f"--run-dir")

    def _start_folder(self):
        os.makedirs(self.run_dir, exist_ok=True)
        settings_path = os.path.join(self.run_dir, MINIATURE_FILE)
        if not os.path.exists(settings_path):
            _write_json(settings_path, self.miniature.to_dict())

    def seed_dir(self, seed):
        return os.path.join(self.run_dir, f"seed-{seed}")

    def results_path(self, seed, step):
        return os.path.join(self.seed_dir(seed), "results", _step_file(step.name))

    def net_dir(self, seed, name):
        return os.path.join(self.seed_dir(seed), "nets", name)

    def is_done(self, seed, step):
        return os.path.exists(self.results_path(seed, step))

    def any_results(self):
        """Whether any step of any seed is done."""
        return any(self.is_done(seed, step) for seed in range(self.miniature.seeds) for step in steps(self.miniature))

    def finished_seeds(self):
        """The seeds whose every step is done."""
        return [seed for seed in range(self.miniature.seeds)
                if all(self.is_done(seed, step) for step in steps(self.miniature))]

    def missing(self):
        """The ``(seed, step)`` pairs not done yet, in the order they would run."""
        return [(seed, step) for step in steps(self.miniature) for seed in range(self.miniature.seeds)
                if not self.is_done(seed, step)]

    def remaining_cpu_seconds(self):
        """An estimate of the CPU seconds the missing steps need: each the mean of the same step's CPU time in
        the seeds that did it; a net's training or evaluation that no seed has done yet, net A's scaled by the
        nets' multiply-adds (and by the epochs, or by the pixels of the test scales). ``(seconds, steps
        estimated, steps missing)``: other steps no seed has done are not counted."""
        by_step = {}
        for key, value in self.timings().items():
            by_step.setdefault(key.split("/", 1)[1], []).append(value["cpu_seconds"])
        mean = {name: sum(values) / len(values) for name, values in by_step.items()}
        missing = self.missing()
        known = []
        for _, step in missing:
            if step.name in mean:
                known.append(mean[step.name])
            elif step.kind in ("train", "evaluate") and f"{step.kind}/A" in mean:
                known.append(mean[f"{step.kind}/A"] * self._relative_cost(step))
        return sum(known), len(known), len(missing)

    def _relative_cost(self, step):
        """The CPU time of ``step`` (a net's training or evaluation) over net A's same step, by multiply-adds."""
        from ..models import layer_specs
        from ..summary import summarise, totals

        m = self.miniature
        spec, net_a = next(s for s in NETS if s.name == step.net), next(s for s in NETS if s.name == "A")

        def multiply_adds(config):
            specs = layer_specs(config, num_classes=10, input_size=m.crop, width_multiplier=m.width_multiplier,
                                fc_width=m.fc_width)
            return totals(summarise(specs, m.crop))[1]

        def work(net):
            if step.kind == "train":
                return m.stall_epochs if net.stall else m.epochs
            return sum((q / m.crop) ** 2 if method == "dense" else 1 for method, q in _evaluations(m, net))
        return multiply_adds(spec.config) / multiply_adds(net_a.config) * work(spec) / work(net_a)

    def span(self):
        """``(started, last step finished)`` as UTC datetimes, from the run folder's files (None if no step is
        done)."""
        import datetime

        def utc(path):
            return datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)

        done = [self.results_path(seed, step) for seed in range(self.miniature.seeds)
                for step in steps(self.miniature) if self.is_done(seed, step)]
        if not done:
            return None
        return utc(os.path.join(self.run_dir, MINIATURE_FILE)), max(utc(path) for path in done)

    def timings(self):
        path = os.path.join(self.run_dir, TIMINGS_FILE)
        if not os.path.exists(path):
            return {}
        with open(path) as handle:
            return json.load(handle)

    # -- running -------------------------------------------------------------------------------------------------
    def run(self, jobs=1):
        """Run every step of every seed that is not done; returns the list of ``(seed, step)`` run now.

        ``jobs``: how many steps run at once, each in a worker process of its own (``workers.py``); 1 runs them
        in this process. Ctrl-C stops with ``Interrupted`` or ``KeyboardInterrupt``; running again continues."""
        if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
            raise ValueError(f"Reproduction.run: jobs must be a positive integer, got {jobs!r}")
        self._start_folder()
        if not self.missing():
            return []  # nothing to do: no session is recorded
        session = self._start_session(jobs)
        try:
            if jobs > 1:
                return run_in_workers(self, jobs)
            ran = []
            for step in steps(self.miniature):
                for seed in range(self.miniature.seeds):
                    if self.is_done(seed, step):
                        continue
                    wall, cpu = time.perf_counter(), time.process_time()
                    with self.step_bar(seed, step) as bar:
                        results = self.run_step(seed, step, bar)
                    self.record(seed, step, results, time.perf_counter() - wall, time.process_time() - cpu)
                    ran.append((seed, step))
            return ran
        finally:
            self._end_session(session)

    def record(self, seed, step, results, wall, cpu):
        """Write a finished step's results (which marks it done) and its wall and CPU seconds, and say so."""
        _write_json(self.results_path(seed, step), results)
        timings = self.timings()
        timings[f"seed-{seed}/{step.name}"] = {"wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2)}
        _write_json(os.path.join(self.run_dir, TIMINGS_FILE), timings)
        print(f"seed {seed} {step.name}: {wall:.0f} s ({cpu:.0f} s CPU)", file=self.out or sys.stdout, flush=True)

    # Each call of ``run`` is a session: its start, end and workers are kept, so that the report can give the
    # run's own wall time (the steps' wall times add up to more when several run at once).
    def sessions(self):
        """Every session of the run folder: ``[{"started", "ended", "jobs", "steps"}]`` (times as UTC ISO
        strings; ``ended`` None while one runs or when it was killed)."""
        path = os.path.join(self.run_dir, SESSIONS_FILE)
        if not os.path.exists(path):
            return []
        try:
            with open(path) as handle:
                sessions = json.load(handle)
            if not isinstance(sessions, list) or not all(
                    isinstance(entry, dict) and {"started", "ended", "jobs"} <= set(entry) for entry in sessions):
                raise ValueError("expected a list of sessions, each with started, ended and jobs")
            return sessions
        except (OSError, ValueError) as error:  # JSONDecodeError is a ValueError
            raise RunFolderError(f"{path} is unreadable ({error}): delete it (the report then gives the steps' "
                                 f"own wall times) or choose another --run-dir") from None

    def elapsed(self):
        """``(wall seconds, sessions, worker counts)`` of the sessions that ran steps: each from its start to its
        end, or to the last step it finished when it was killed. None for a folder without sessions (written
        before they were kept)."""
        import datetime

        # A session that was killed has no end, and its steps were never counted: it counts to its last step.
        sessions = [entry for entry in self.sessions() if entry["ended"] is None or entry.get("steps", 1)]
        if not sessions:
            return None
        finished = [os.path.getmtime(self.results_path(seed, step)) for seed in range(self.miniature.seeds)
                    for step in steps(self.miniature) if self.is_done(seed, step)]
        seconds = 0.0
        for entry in sessions:
            started = datetime.datetime.fromisoformat(entry["started"]).timestamp()
            if entry["ended"] is not None:
                ended = datetime.datetime.fromisoformat(entry["ended"]).timestamp()
            else:
                ended = max([t for t in finished if t >= started], default=started)
            seconds += max(0.0, ended - started)
        return seconds, len(sessions), sorted({entry["jobs"] for entry in sessions})

    def _start_session(self, jobs):
        sessions = self.sessions()
        sessions.append({"started": _now(), "ended": None, "jobs": jobs, "steps": 0,
                         "done_before": self._done_count()})
        _write_json(os.path.join(self.run_dir, SESSIONS_FILE), sessions)
        return len(sessions) - 1

    def _end_session(self, index):
        sessions = self.sessions()
        entry = sessions[index]
        entry["ended"] = _now()
        entry["steps"] = self._done_count() - entry.pop("done_before")
        _write_json(os.path.join(self.run_dir, SESSIONS_FILE), sessions)

    def _done_count(self):
        return sum(self.is_done(seed, step) for seed in range(self.miniature.seeds) for step in steps(self.miniature))

    def step_bar(self, seed, step, position=None):
        """The tqdm bar of one step (``position``: its line when several processes show bars at once)."""
        from tqdm.auto import tqdm

        return tqdm(total=step.total, desc=f"seed {seed} {step.name}", disable=not self.progress, leave=False,
                    position=position, file=sys.stderr)

    def run_step(self, seed, step, bar):
        """Run one step of one seed and return its results (nothing is written to ``results/``)."""
        return getattr(self, "_" + step.kind.replace("-", "_"))(seed, step, bar)

    # -- Sect. 3 and 4: classification ---------------------------------------------------------------------------
    def _train(self, seed, step, bar):
        spec = next(s for s in NETS if s.name == step.net)
        data = load_seed_data(self.miniature, seed)
        run_dir = self.net_dir(seed, spec.name)
        if not os.path.exists(os.path.join(run_dir, WEIGHTS_FILE)):
            source = load_net(self.net_dir(seed, spec.init_from)) if spec.init_from else None
            if train_net(self.miniature, spec, data, seed, run_dir, source, bar) is None:
                raise Interrupted(f"interrupted while training {spec.name} (seed {seed}); its checkpoint is "
                                  f"written: run again with --run-dir {self.run_dir} to continue")
        return self._history_results(spec.name, run_dir)

    def _history_results(self, name, run_dir):
        """Each epoch's validation error, and the last epoch's training error and loss, from the run's log."""
        from ..training.run_folder import LOG

        with open(os.path.join(run_dir, LOG)) as handle:
            history = [json.loads(line) for line in handle if line.strip()]
        results = {f"{name}/val@{entry['epoch']}": 100 * entry["val_top1_error"] for entry in history}
        stall = min(self.miniature.stall_epochs, len(history))
        results[f"{name}/val@stall"] = 100 * history[stall - 1]["val_top1_error"]
        results[f"{name}/train-error"] = 100 * history[-1]["train_top1_error"]
        results[f"{name}/train-loss"] = history[-1]["train_loss"]
        results[f"{name}/val-error"] = 100 * history[-1]["val_top1_error"]
        results[f"{name}/epochs"] = len(history)
        return results

    def _evaluate(self, seed, step, bar):
        spec = next(s for s in NETS if s.name == step.net)
        data = load_seed_data(self.miniature, seed)
        model = load_net(self.net_dir(seed, spec.name))
        images, labels = data.test
        posteriors = classification_posteriors(model, images, _evaluations(self.miniature, spec), bar)
        results = {f"{spec.name}/{key}": top1_error(p, labels) for key, p in posteriors.items()}
        if spec.scales == "multi":  # Sect. 4.2: the posteriors of the scales averaged
            scales = self.miniature.test_scales
            combined = sum(posteriors[f"dense/{q}"] for q in scales) / len(scales)
            results[f"{spec.name}/dense/{','.join(map(str, scales))}"] = top1_error(combined, labels)
            save_arrays(os.path.join(self.seed_dir(seed), "posteriors", f"{spec.name}.npz"),
                        dict(posteriors, labels=labels))
        return results

    def _table5(self, seed, step, bar):
        data = load_seed_data(self.miniature, seed)
        model = load_net(self.net_dir(seed, step.net))
        images, labels = data.table5
        scales = self.miniature.test_scales
        posteriors = classification_posteriors(model, images, [(m, q) for m in ("dense", "multi-crop")
                                                               for q in scales], bar)
        methods = {m: sum(posteriors[f"{m}/{q}"] for q in scales) / len(scales) for m in ("dense", "multi-crop")}
        methods["multi-crop+dense"] = (methods["dense"] + methods["multi-crop"]) / 2  # Table 5's "&"
        save_arrays(os.path.join(self.seed_dir(seed), "posteriors", f"table5-{step.net}.npz"),
                    dict(methods, labels=labels))
        return {f"table5/{step.net}/{m}": top1_error(p, labels) for m, p in methods.items()}

    def _fusion(self, seed, step, bar):
        """Table 6: the two jittered nets' posteriors averaged (``minivgg.evaluation.fuse``)."""
        from ..evaluation import fuse

        folder = os.path.join(self.seed_dir(seed), "posteriors")
        scales = self.miniature.test_scales
        name = "+".join(DEEP_NETS)
        dense = [load_arrays(os.path.join(folder, f"{net}.npz")) for net in DEEP_NETS]
        each = [sum(arrays[f"dense/{q}"] for q in scales) / len(scales) for arrays in dense]
        results = {f"fusion/{name}/dense": top1_error(fuse(each), dense[0]["labels"])}
        table5 = [load_arrays(os.path.join(folder, f"table5-{net}.npz")) for net in DEEP_NETS]
        results[f"fusion/{name}/table5-multi-crop+dense"] = top1_error(
            fuse([arrays["multi-crop+dense"] for arrays in table5]), table5[0]["labels"])
        bar.update(1)
        return results

    # -- Appendix A ----------------------------------------------------------------------------------------------
    def _scenes(self, seed):
        from .localisation import scenes_run

        if not hasattr(self, "_scenes_of"):
            self._scenes_of = {}  # every seed's: Appendix A's steps take each seed in turn
        if seed not in self._scenes_of:
            # The classifier to fine-tune starts as the seed's net A (trained on Fashion-MNIST).
            self._scenes_of[seed] = scenes_run(self.miniature, seed, load_net(self.net_dir(seed, "A")))
        return self._scenes_of[seed]

    def _localisation_classifier(self, seed, step, bar):
        from .localisation import train_classifier

        run_dir = self.net_dir(seed, "localisation-" + step.net)
        if not os.path.exists(os.path.join(run_dir, WEIGHTS_FILE)):
            if train_classifier(self._scenes(seed), run_dir, seed, bar) is None:
                raise Interrupted(f"interrupted while training the scenes' classifier (seed {seed}); run again "
                                  f"with --run-dir {self.run_dir} to continue")
        return self._history_results("localisation/" + step.net, run_dir)

    def _localisation_net(self, seed, step, bar):
        from .localisation import CLASSIFIER, LOCALISATION_NETS, train_localisation_net

        _, regression, fine_tune = next(entry for entry in LOCALISATION_NETS if entry[0] == step.net)
        run_dir = self.net_dir(seed, "localisation-" + step.net)
        if not os.path.exists(os.path.join(run_dir, WEIGHTS_FILE)):
            classifier = load_net(self.net_dir(seed, "localisation-" + CLASSIFIER))
            if train_localisation_net(self._scenes(seed), classifier, regression, fine_tune, run_dir, seed,
                                      bar) is None:
                raise Interrupted(f"interrupted while fine-tuning the {step.net} localisation net (seed {seed}); "
                                  f"run again with --run-dir {self.run_dir} to continue")
        return self._history_results("localisation/" + step.net, run_dir)

    def _localisation_evaluate(self, seed, step, bar):
        from ..localisation import load_localisation_net
        from .localisation import CLASSIFIER, LOCALISATION_NETS, localisation_results

        classifier = load_net(self.net_dir(seed, "localisation-" + CLASSIFIER))
        nets = {name: load_localisation_net(os.path.join(self.net_dir(seed, "localisation-" + name), WEIGHTS_FILE))
                .eval() for name, _, _ in LOCALISATION_NETS}
        results = localisation_results(self._scenes(seed), classifier, nets, self.miniature.localisation_guesses)
        bar.update(1)
        return results

    # -- Appendix B ----------------------------------------------------------------------------------------------
    def _transfer(self, seed, step, bar):
        from .transfer import TRANSFER_NETS, transfer_results

        nets = {name: load_net(self.net_dir(seed, name)) for name in TRANSFER_NETS}
        first = next(spec for spec in NETS if spec.name == TRANSFER_NETS[0])
        # The random net: the first net's architecture and preprocessing, weights as initialised (seeded apart
        # from the trained net's own start).
        random_net = build_net(self.miniature, replace(first, init_from=None), load_seed_data(self.miniature, seed),
                               seed + 10_000).eval()
        return transfer_results(self.miniature, nets, random_net, seed, bar)
