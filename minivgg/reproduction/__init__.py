"""The paper's findings, measured in miniature: Tables 3 to 6 and the appendices' comparisons, trained and
evaluated on real data with several seeds, each claim given a verdict from a paired comparison.

    miniature.py       the sizes (data, crop, scales, width, epochs, seeds) and why; ``DEFAULT``, ``QUICK``
    experiments.py     the nets and the claims, as data
    classification.py  a net trained with the library's loop and tested as Sect. 3.2 tests (Tables 3 to 6)
    localisation.py    Appendix A on Fashion-MNIST items placed on photographs
    transfer.py        Appendix B: features of the Fashion-MNIST nets, linear SVMs on the digits
    epochs.py          training one epoch per call, for the progress bar
    statistics.py      paired t-intervals over seeds, and the verdicts
    runner.py          every step of every seed, once, resumable, in a run folder
    report.py          the Markdown report and its figures (partial while steps are missing)
    published.py       the report's measurements as ``results.json``, and ``load_results`` to read them back
    explanations.py    why a claim did not reproduce: the run's measurements that bear on it

``minivgg reproduce`` runs it: ``Reproduction(run_dir, DEFAULT).run()``, then ``write_report``.
"""
from .experiments import CLAIMS, NETS, Claim, NetSpec
from .miniature import DEFAULT, DEPARTURES, QUICK, Miniature
from .published import PublishedResults, committed_results, load_results
from .report import build_report, evaluate_claims, write_report
from .runner import Interrupted, Reproduction, read_miniature, read_results, steps
from .statistics import Interval, mean_interval, paired_interval, verdict

__all__ = ["CLAIMS", "NETS", "Claim", "NetSpec", "DEFAULT", "DEPARTURES", "QUICK", "Miniature", "build_report",
           "evaluate_claims", "write_report", "PublishedResults", "load_results", "committed_results", "Interrupted", "Reproduction",
           "read_miniature", "read_results", "steps", "Interval", "mean_interval", "paired_interval", "verdict"]
