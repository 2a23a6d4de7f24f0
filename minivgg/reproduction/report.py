"""The reproduction's report: each claim of the paper beside its measurement, in Markdown with figures.

For every claim (``experiments.CLAIMS``): the paper's figure, both sides as mean +- std over the seeds, the
favoured side's gain seed by seed, its 95% t-interval and the verdict (``statistics.py``). Then, per section,
the measurements that explain a verdict (how well each net fits its training set, the error at each test
scale, the localisation classifier's own errors), the sizes of the miniature, the machine, the versions and
what each step cost.
"""
import datetime
import os
import platform

import numpy as np

from .experiments import CLAIMS, NETS, SECTIONS, TABLE_3_NETS, claims_of
from .explanations import explain
from .miniature import DEPARTURES
from .statistics import format_mean_std, mean_interval, verdict

__all__ = ["ClaimResult", "evaluate_claims", "resolve", "build_report", "write_report", "REPORT_FILE",
           "FIGURES", "machine_description"]

REPORT_FILE = "README.md"
FIGURES = ("claims.png", "table3.png", "test_scales.png", "initialisation.png")
CLASSES = 10  # Fashion-MNIST's and the digits'
STALL_NETS = tuple(spec.name for spec in NETS if spec.stall)


def resolve(key, results, higher_is_better=False):
    """The value of a claim's side in one seed's ``results``: a result key, "chance" (the error of guessing),
    a number, or "best-of/<key>|<key>..." (the better of several). None when a result is missing."""
    if isinstance(key, (int, float)):
        return float(key)
    if key == "chance":
        return 100.0 * (1 - 1 / CLASSES)
    if key.startswith("best-of/"):
        values = [resolve(part, results, higher_is_better) for part in key[len("best-of/"):].split("|")]
        if any(value is None for value in values):
            return None
        return max(values) if higher_is_better else min(values)
    value = results.get(key)
    return None if value is None else float(value)


class ClaimResult:
    """A claim measured over the seeds: each side's values, the favoured side's gains, interval and verdict."""

    def __init__(self, claim, per_seed):
        self.claim = claim
        favoured = [resolve(claim.favoured, r, claim.higher_is_better) for r in per_seed]
        other = [resolve(claim.other, r, claim.higher_is_better) for r in per_seed]
        pairs = [(f, o) for f, o in zip(favoured, other) if f is not None and o is not None]
        self.favoured = np.array([f for f, _ in pairs])
        self.other = np.array([o for _, o in pairs])
        sign = 1.0 if claim.higher_is_better else -1.0
        self.gains = sign * (self.favoured - self.other)  # positive: the paper's direction
        self.measured = len(pairs) > 0
        self.interval = mean_interval(self.gains) if self.measured else None
        self.verdict = verdict(self.interval, claim.kind, claim.margin) if self.measured else "not measured"

    @property
    def seeds(self):
        return len(self.gains)

    @property
    def agreeing(self):
        return int(np.sum(self.gains > 0))


def evaluate_claims(per_seed, claims=CLAIMS):
    """``ClaimResult`` of each claim over ``per_seed`` (one results dict per seed)."""
    return [ClaimResult(claim, per_seed) for claim in claims]


def _interval(result):
    interval = result.interval
    if interval is None:
        return "-"
    if not interval.defined:
        return f"{interval.mean:+.2f} (one seed: no interval)"
    return f"{interval.mean:+.2f} [{interval.low:+.2f}, {interval.high:+.2f}]"


def _side_name(key):
    if isinstance(key, (int, float)):
        return f"{key:g}"
    if key.startswith("best-of/"):
        return "better of " + " and ".join(key[len("best-of/"):].split("|"))
    return key


def _explanations(results, per_seed, miniature):
    """A bullet per claim of ``results`` that did not reproduce: the measurements that say why."""
    lines = []
    for r in results:
        text = explain(r, per_seed, miniature)
        if text:
            lines.append(f"- *{r.claim.statement}*, **{r.verdict}**: {text}")
    return (["Why the others did not reproduce:", "", *lines, ""]) if lines else []


def _run_lines(run, miniature, command, wall, cpu):
    """The header: what ran, when, on what, how long; and for an unfinished run, what is missing."""
    from .runner import steps

    span = run.span()
    when = (f"The steps ran from {span[0]:%Y-%m-%d %H:%M} to {span[1]:%Y-%m-%d %H:%M} UTC" if span else
            "No step has finished")
    elapsed = run.elapsed()
    if elapsed is None:  # a folder from before sessions were kept: the steps ran one after another
        took = f"Wall time of the steps: {wall / 60:.0f} min; their CPU time: {cpu / 60:.0f} min"
    else:
        seconds, sessions, jobs = elapsed
        workers = "/".join(map(str, jobs))
        took = (f"Wall time of the run: {seconds / 60:.0f} min"
                + (f" in {sessions} sessions" if sessions > 1 else "")
                + (f", {workers} steps at a time in worker processes" if jobs != [1] else ", one step at a time")
                + f"; the steps' own wall times add up to {wall / 60:.0f} min, their CPU time to {cpu / 60:.0f} min")
    lines = [f"Run by `{command}`; report written on {datetime.date.today().isoformat()}. {when}, on "
             f"{machine_description()}; {_versions()}. {took} (on a machine shared with other work the CPU time "
             f"is the better measure of the cost).", ""]
    missing = run.missing()
    if missing:
        estimate, estimated, count = run.remaining_cpu_seconds()
        by_step = {}
        for seed, step in missing:
            by_step.setdefault(step.name, []).append(seed)
        listed = "; ".join(f"{name} (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))})"
                           for name, seeds in by_step.items())
        lines += [f"**PARTIAL REPORT: {count} of {miniature.seeds * len(steps(miniature))} steps are not done "
                  f"yet.** The claims below are measured over the seeds that have both of their sides; a claim "
                  f"with no such seed is *not measured*. Missing: {listed}.", "",
                  f"The missing steps need about {estimate / 60:.0f} CPU min by the steps already done (each from "
                  f"the same step of another seed, or a net's from net A's by their multiply-adds"
                  + (f"; {count - estimated} steps with no such measurement are not counted" if estimated < count
                     else "") + ")"
                  + "; the NumPy backend uses up to two cores. Running the same command again continues.", ""]
    return lines


def _claims_table(results):
    lines = ["| claim | paper | favoured side | other side | gain, 95% interval | seeds with gain > 0 | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        c = r.claim
        margin = f" (margin {c.margin:g})" if c.kind == "not worse" else ""
        lines.append(f"| {c.statement} ({c.section}) | {c.paper} | `{_side_name(c.favoured)}` "
                     f"{format_mean_std(r.favoured)} | `{_side_name(c.other)}` {format_mean_std(r.other)} | {_interval(r)} "
                     f"| {r.agreeing}/{r.seeds} | **{r.verdict}**{margin} |")
    return lines


def _seed_values(per_seed, key, digits=1):
    values = [r[key] for r in per_seed if key in r]
    return format_mean_std(values, digits) if values else "-"


def _context(title, per_seed, miniature):
    """Measurements that explain a section's verdicts."""
    lines = []
    if title.startswith("Table 3"):
        lines += ["How each net fits: top-1 error (%) on the test subset and, at the end of training, on its own "
                  "training crops (with augmentation), mean ± std over the seeds.", "",
                  "| net | dense, Q = 96 | centre crop, Q = 96 | training error, last epoch | validation error | "
                  "epochs |", "| --- | --- | --- | --- | --- | --- |"]
        for spec in NETS:
            if spec.stall:
                continue
            lines.append(f"| {spec.name} | {_seed_values(per_seed, f'{spec.name}/dense/96')} | "
                         f"{_seed_values(per_seed, f'{spec.name}/single-crop/96')} | "
                         f"{_seed_values(per_seed, f'{spec.name}/train-error')} | "
                         f"{_seed_values(per_seed, f'{spec.name}/val-error')} | "
                         f"{_seed_values(per_seed, f'{spec.name}/epochs', 0)} |")
    elif title.startswith("Sect. 3.1"):
        lines += [f"Validation top-1 error (%) after each of the first {miniature.stall_epochs} epoch(s) (chance: "
                  f"{100 * (1 - 1 / CLASSES):.0f}%); training loss at the end (ln 10 = 2.303 is the loss of "
                  f"uniform guessing).", "",
                  "| net | " + " | ".join(f"epoch {e}" for e in range(1, miniature.stall_epochs + 1))
                  + " | training loss |", "| --- |" + " --- |" * (miniature.stall_epochs + 1)]
        for name in STALL_NETS:
            cells = [_seed_values(per_seed, f"{name}/val@{e}") for e in range(1, miniature.stall_epochs + 1)]
            loss = _seed_values(per_seed, f"{name}/train-loss", 3)
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {loss} |")
    elif title.startswith("Table 4"):
        scales = miniature.test_scales
        lines += ["Dense top-1 error (%) at each test scale alone and the scales together.", "",
                  "| net | " + " | ".join(f"Q = {q}" for q in scales) + " | Q = " + ", ".join(map(str, scales)) + " |",
                  "| --- |" + " --- |" * (len(scales) + 1)]
        for spec in NETS:
            if spec.scales == "multi":
                cells = [_seed_values(per_seed, f"{spec.name}/dense/{q}") for q in scales]
                cells.append(_seed_values(per_seed, f"{spec.name}/dense/{','.join(map(str, scales))}"))
                lines.append(f"| {spec.name} | " + " | ".join(cells) + " |")
    elif title.startswith("Appendix A"):
        lines += ["What protocol 2 starts from and what the boxes are measured against: the scenes' classifier "
                  "(dense, Q = %d) and two boxes that look at nothing." % miniature.scene_size, "",
                  "| measurement | mean ± std |", "| --- | --- |"]
        for key, name in (("localisation/classifier/top-1", "classifier top-1 error (%)"),
                          ("localisation/classifier/top-5", "classifier top-5 error (%)"),
                          ("localisation/classifier/train-error", "classifier training error, last epoch (%)"),
                          ("localisation/baseline/whole-image box", "localisation error of the whole image (%)"),
                          ("localisation/baseline/centre box", "localisation error of a mean-sized centre box (%)"),
                          ("localisation/SCR-fc/protocol-1", "SCR, FC fine-tuned, protocol 1 (%)"),
                          ("localisation/PCR-fc/protocol-1", "PCR, FC fine-tuned, protocol 1 (%)"),
                          ("localisation/PCR-all/protocol-1", "PCR, all layers fine-tuned, protocol 1 (%)"),
                          ("localisation/PCR-all/protocol-2", "PCR, all layers, protocol 2 (%)")):
            lines.append(f"| {name} | {_seed_values(per_seed, key)} |")
    elif title.startswith("Appendix B"):
        lines += ["Mean class recall (%) of a linear SVM on each representation of the digits, and its size.", "",
                  "| representation | recall | dimensions |", "| --- | --- | --- |"]
        keys = sorted({key[len("transfer/"):-len("/dimensions")] for r in per_seed for key in r
                       if key.startswith("transfer/") and key.endswith("/dimensions")})
        for key in keys:
            lines.append(f"| {key} | {_seed_values(per_seed, f'transfer/{key}')} | "
                         f"{_seed_values(per_seed, f'transfer/{key}/dimensions', 0)} |")
    return lines + ([""] if lines else [])


def machine_description():
    """The processor, its cores and the system, as far as this machine says."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        if names:
            model = names[0]
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def _versions():
    import numpy
    import sklearn

    from .. import __version__

    return (f"minivgg {__version__}, Python {platform.python_version()}, NumPy {numpy.__version__}, "
            f"scikit-learn {sklearn.__version__}")


def _timing_lines(timings, seeds):
    """Seconds per step kind, summed over the seeds' steps, and the total."""
    by_kind = {}
    for key, value in timings.items():
        seed, step = key.split("/", 1)
        if int(seed.split("-")[1]) >= seeds:
            continue
        kind = step.split("/")[0] if not step.startswith("localisation") else "localisation"
        entry = by_kind.setdefault(kind, [0.0, 0.0, 0])
        entry[0] += value["wall_seconds"]
        entry[1] += value["cpu_seconds"]
        entry[2] += 1
    lines = ["| step | steps run | wall time | CPU time |", "| --- | --- | --- | --- |"]
    for kind, (wall, cpu, count) in by_kind.items():
        lines.append(f"| {kind} | {count} | {wall / 60:.1f} min | {cpu / 60:.1f} min |")
    wall = sum(v[0] for v in by_kind.values())
    cpu = sum(v[1] for v in by_kind.values())
    lines.append(f"| **all** | {sum(v[2] for v in by_kind.values())} | {wall / 60:.1f} min | {cpu / 60:.1f} min |")
    return lines, wall, cpu


def _miniature_lines(miniature):
    m = miniature
    return ["| | the paper | here |", "| --- | --- | --- |",
            f"| data | ILSVRC-2012, 1.3M images, 1000 classes | {m.data}: {m.train_per_class} training images per "
            f"class (a tenth held out for validation), {m.test_per_class} test images per class "
            f"({m.multi_crop_per_class} for Table 5), a seeded subset per seed |",
            f"| crop | 224 | {m.crop} |",
            f"| training scale S | 256, 384, [256, 512] | {m.fixed_scale}, [{m.jittered_scale[0]}, "
            f"{m.jittered_scale[1]}] |",
            f"| test scales Q | S; {{S - 32, S, S + 32}} or {{256, 384, 512}} | {m.single_test_scale}; "
            f"{{{', '.join(map(str, m.test_scales))}}} |",
            f"| width | 64 ... 512 channels, FC 4096 | x{m.width_multiplier:g}: {round(64 * m.width_multiplier)} "
            f"... {round(512 * m.width_multiplier)} channels, FC {m.fc_width} |",
            f"| dropout | 0.5 | {m.dropout:g} |",
            f"| initialisation | N(0, 0.01^2), A's layers; Glorot | {m.weight_init} (Sect. 3.1's runs: N(0, 0.01^2), "
            f"A's layers) |",
            f"| SGD | batch 256, lr 0.01, momentum 0.9, weight decay 5e-4, 74 epochs | batch {m.batch_size}, lr "
            f"{m.learning_rate:g}, momentum 0.9, weight decay 5e-4, {m.epochs} epochs (Sect. 3.1's runs "
            f"{m.stall_epochs}) |",
            f"| localisation | net D, from the classification net, on ILSVRC at S = 256 and 384; protocol 2 with the "
            f"top 5 of 1000 classes | net A, from the seed's Fashion-MNIST net A, on {m.scenes[0]} scenes of "
            f"{m.scene_size}^2 (Fashion-MNIST items of {m.item_sides[0]}-{m.item_sides[1]} px on photographs; "
            f"{m.scenes[2]} test scenes), S = Q = {m.scene_size}, classifier {m.classifier_epochs} epochs, boxes "
            f"{m.localisation_epochs} epochs at lr {m.localisation_learning_rate:g}; protocol 2 with the top "
            f"{m.localisation_guesses} of 10 classes |",
            f"| transfer | VOC, Caltech-101/256 (30 training and up to 50 test images per class) | scikit-learn's "
            f"digits at Q = {', '.join(map(str, m.test_scales))}, {m.transfer_train_per_class} training and up to "
            f"{m.transfer_test_per_class} test images per class, a seeded split per seed |",
            f"| seeds | 1 run per net | {m.seeds} |"]


def _measured(run_dir, miniature):
    """``(run, per_seed, claim_results)``: the run folder, each seed's results and the claims measured on them."""
    from .runner import Reproduction, read_results

    run = Reproduction(run_dir, miniature, progress=False)
    per_seed = [read_results(run_dir, seed) for seed in range(miniature.seeds)]
    return run, per_seed, evaluate_claims(per_seed)


def build_report(run_dir, miniature, figures_folder=None, command="minivgg reproduce", measured=None):
    """The report's Markdown text; ``figures_folder``: where the figures are written (None: no figures);
    ``measured``: ``_measured(run_dir, miniature)`` when the caller has it already."""
    run, per_seed, claim_results = measured or _measured(run_dir, miniature)
    timing_lines, wall, cpu = _timing_lines(run.timings(), miniature.seeds)
    counts = {name: sum(r.verdict == name for r in claim_results)
              for name in ("reproduced", "not reproduced", "inconclusive", "not measured")}
    lines = [
        "# The paper's findings in miniature" + (" (partial)" if run.missing() else ""),
        "",
        *_run_lines(run, miniature, command, wall, cpu),
        f"**{counts['reproduced']} claim{'' if counts['reproduced'] == 1 else 's'} reproduced, "
        f"{counts['not reproduced']} not reproduced, "
        f"{counts['inconclusive']} inconclusive**" + (f", {counts['not measured']} not measured (an unfinished "
                                                        f"run)" if counts["not measured"] else "") + ".",
        "",
        "## How to read it",
        "",
        "Every comparison is paired: both sides were measured with the same seeds (the same training subset, data "
        "order and test images), and the *gain* is the favoured side's advantage seed by seed, in percentage "
        "points, positive in the paper's direction (lower error, or higher recall). The interval is the 95% "
        "Student t-interval of the mean gain over the seeds. A claim that one side beats the other is "
        "**reproduced** when the interval lies above zero, **not reproduced** when it lies below, and "
        "**inconclusive** when it contains zero: a difference within the noise is never called a finding. A claim "
        "that something brings no gain (LRN, depth beyond 16 layers, a stalled net against chance) is reproduced "
        "when the interval's lower end lies above minus its margin, and not reproduced when the other side is "
        "better beyond the noise. Why a t-interval and not an exact sign-flip test: with n seeds the sign-flip "
        "test's smallest p-value is 2 / 2^n (25% with three seeds), so it could never call anything a finding; "
        "the t-interval assumes the seeds' gains are roughly normal, and the table gives how many seeds agree in "
        "sign so that one outlying seed can be seen.",
        "",
        "## The miniature",
        "",
        *_miniature_lines(miniature),
        "",
        "Why this geometry: VGG's five poolings make the dense net's windows step by 32 pixels whatever the crop. "
        "At the paper's 224 crops they overlap heavily and every test scale (256 ... 512) lies a multiple of 32 "
        "above the crop, so each window is inside the image. With 32-pixel crops the windows would not overlap at "
        "all, and at Q = 37 three of four would be mostly padding (dense error 52% against 24% for the centre "
        "crop, `benchmarks/RESULTS.md`). With 64-pixel crops the windows overlap by half, and Q = 64, 96, 128 are "
        "the crop plus 0, 32 and 64 pixels: S - 32, S, S + 32 for S = 96, the paper's own offsets, and S_min, "
        "(S_min + S_max) / 2, S_max for S in [64, 128].",
        "",
        "Departures from the paper besides the sizes:",
        "",
        *[f"- {text}" for text in DEPARTURES],
        "",
        "## Every claim",
        "",
        "![The favoured side's gain per claim, 95% intervals](figures/claims.png)" if figures_folder else "",
        "",
    ]
    for title, prefixes in SECTIONS:
        section_results = [r for r in claim_results if r.claim in claims_of(prefixes)]
        lines += [f"### {title}", "", *_claims_table(section_results), "",
                  *_explanations(section_results, per_seed, miniature), *_context(title, per_seed, miniature)]
        if figures_folder and title.startswith("Table 3"):
            lines += ["![Table 3 in miniature](figures/table3.png)", ""]
        if figures_folder and title.startswith("Table 4"):
            lines += ["![Error against the test scale](figures/test_scales.png)", ""]
        if figures_folder and title.startswith("Sect. 3.1"):
            lines += ["![Validation error of the first epochs](figures/initialisation.png)", ""]
    lines += ["## Gains seed by seed", "",
              "| claim | " + " | ".join(f"seed {s}" for s in range(miniature.seeds)) + " |",
              "| --- |" + " --- |" * miniature.seeds]
    for r in claim_results:
        cells = [f"{g + 0.0:+.2f}".replace("-0.00", "+0.00") for g in r.gains] + ["-"] * (miniature.seeds - r.seeds)
        lines.append(f"| {r.claim.key} | " + " | ".join(cells) + " |")
    lines += ["", "## What it cost", "", *timing_lines, "",
              "Summed over every seed's steps, so with several steps at a time in worker processes the wall "
              "times add up to more than the run's (given at the top). A step that was interrupted and resumed "
              "counts only its time after the last resumption (its checkpoint keeps the work, not the clock).", ""]
    if figures_folder:
        _figures(figures_folder, claim_results, per_seed, miniature)
    return "\n".join(lines) + "\n"


def write_report(run_dir, miniature, folder=None, command="minivgg reproduce"):
    """Write ``README.md``, its figures and ``results.json`` (``published.py``: the same measurements for
    code to read) into ``folder`` (default ``RUN/report``); returns (path of README.md, its text)."""
    from ..files import atomic_write
    from .published import results_document, write_results

    folder = folder or os.path.join(run_dir, "report")
    figures = os.path.join(folder, "figures")
    os.makedirs(figures, exist_ok=True)
    measured = _measured(run_dir, miniature)
    text = build_report(run_dir, miniature, figures, command, measured)
    run, per_seed, claim_results = measured
    write_results(folder, results_document(claim_results, per_seed, miniature, complete=not run.missing(),
                                           span=run.span()))
    path = os.path.join(folder, REPORT_FILE)

    def write(temporary):
        with open(temporary, "w") as handle:
            handle.write(text)
    atomic_write(path, write)
    return path, text


# -- figures -----------------------------------------------------------------------------------------------------
_COLOURS = {"reproduced": "tab:green", "not reproduced": "tab:red", "inconclusive": "tab:grey",
            "not measured": "white"}


def _save(figure, path):
    from ..files import atomic_write

    atomic_write(path, lambda temporary: figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png"))


def _figures(folder, claim_results, per_seed, miniature):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # 1. Every claim's gain and interval.
    measured = [r for r in claim_results if r.measured]
    figure, axis = plt.subplots(figsize=(8, 0.28 * len(measured) + 1))
    for row, r in enumerate(reversed(measured)):
        interval = r.interval
        colour = _COLOURS[r.verdict]
        if interval.defined:
            axis.plot([interval.low, interval.high], [row, row], color=colour, linewidth=2)
        axis.plot([interval.mean], [row], "o", color=colour)
        axis.plot(r.gains, [row] * len(r.gains), "|", color="black", alpha=0.5)
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set_yticks(range(len(measured)), [r.claim.key for r in reversed(measured)], fontsize=7)
    axis.set_xlabel("gain of the paper's favoured side (percentage points), 95% interval; | = one seed")
    axis.set_title("green: reproduced, red: not reproduced, grey: inconclusive", fontsize=9)
    _save(figure, os.path.join(folder, "claims.png"))
    plt.close(figure)

    # 2. Table 3: dense error at Q = 96 per net.
    names = [spec.name for spec in NETS if not spec.stall]
    figure, axis = plt.subplots(figsize=(8, 3.5))
    for i, name in enumerate(names):
        values = [r[f"{name}/dense/96"] for r in per_seed if f"{name}/dense/96" in r]
        if values:
            axis.bar(i, np.mean(values), color="tab:blue" if name in TABLE_3_NETS else "tab:orange", alpha=0.6)
            axis.plot([i] * len(values), values, "k.", markersize=4)
    axis.set_xticks(range(len(names)), names, rotation=30, fontsize=8)
    axis.set_ylabel("top-1 error (%), dense, Q = 96")
    axis.set_title("Table 3 in miniature (bars: mean over seeds; dots: seeds)", fontsize=9)
    _save(figure, os.path.join(folder, "table3.png"))
    plt.close(figure)

    # 3. Error against the test scale (Sect. 4.1, Table 4).
    scales = miniature.test_scales
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for spec in NETS:
        if spec.scales != "multi":
            continue
        means = [np.mean([r[f"{spec.name}/dense/{q}"] for r in per_seed if f"{spec.name}/dense/{q}" in r] or [np.nan])
                 for q in scales]
        line, = axis.plot(scales, means, "o-", label=spec.name)
        multi = [r[f"{spec.name}/dense/{','.join(map(str, scales))}"] for r in per_seed
                 if f"{spec.name}/dense/{','.join(map(str, scales))}" in r]
        if multi:
            axis.axhline(np.mean(multi), color=line.get_color(), linestyle=":", linewidth=1)
    axis.set_xticks(scales)
    axis.set_xlabel("test scale Q (dotted: the three scales averaged)")
    axis.set_ylabel("top-1 error (%), dense")
    axis.legend(fontsize=8)
    _save(figure, os.path.join(folder, "test_scales.png"))
    plt.close(figure)

    # 4. Sect. 3.1: the first epochs.
    epochs = range(1, miniature.stall_epochs + 1)
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for name in STALL_NETS:
        means = [np.mean([r[f"{name}/val@{e}"] for r in per_seed if f"{name}/val@{e}" in r] or [np.nan])
                 for e in epochs]
        axis.plot(list(epochs), means, "o-", label=name)
    axis.axhline(100 * (1 - 1 / CLASSES), color="black", linestyle=":", linewidth=1, label="chance")
    axis.set_xlabel("epoch")
    axis.set_ylabel("validation top-1 error (%)")
    axis.legend(fontsize=8)
    _save(figure, os.path.join(folder, "initialisation.png"))
    plt.close(figure)
