"""The reproduction as data: the nets it trains, and the paper's claims with the measurements that test them.

A net (``NetSpec``) is trained once per seed and reused by every table that needs it, as the paper reuses
its nets: Table 3's D and E are Table 4's, the scale-jittered D and E are Tables 4 to 6's and Appendix B's
Net-D and Net-E.

A claim (``Claim``) names two measurements, the side the paper favours and the other, each a key of the
results every step writes (``runner.py``):

    "<net>/<method>/<scales>"     top-1 error (%) of a net on the test subset, e.g. "D/dense/96",
                                  "D-jittered/dense/64,96,128", "B/single-crop/96"
    "table5/<net>/<method>"       Table 5's methods at Q = 64, 96, 128 on its own (smaller) test subset
    "fusion/..."                  Table 6: the posteriors of several nets averaged
    "best-of/..."                 per seed, the lower error of several measurements
    "<net>/val@<epoch>"           validation top-1 error (%) after that epoch (Sect. 3.1)
    "localisation/..."            Appendix A: localisation error (%)
    "transfer/..."                Appendix B: mean class recall (%) of a linear SVM
    "chance"                      the error of guessing: 90% for ten classes

Lower is better for errors, higher for recall (``higher_is_better``).
"""
from dataclasses import dataclass

__all__ = ["NetSpec", "NETS", "TABLE_3_NETS", "DEEP_NETS", "Claim", "CLAIMS", "PAPER_GAINS", "SECTIONS", "claims_of"]


@dataclass(frozen=True)
class NetSpec:
    """One classification net of the reproduction.

    Attributes
    ----------
    name : its name in results and the run folder ("D-jittered")
    config : Table 1's column
    jittered : trained with S jittered in ``Miniature.jittered_scale`` (else the fixed S)
    weight_init : None: the miniature's default; "paper": N(0, 0.01^2) (Sect. 3.1)
    init_from : pre-initialise from this net of the same seed (Sect. 3.1: the first four conv and the three
        FC layers of net A; the other layers keep their random weights)
    init_conv_layers : how many of its conv layers (4; 0 for B-shallow, whose 5x5 layers cannot take A's 3x3)
    stall : trained only ``Miniature.stall_epochs`` (Sect. 3.1's runs; not evaluated on the test set)
    scales : "single" (Q = 96 only) or "multi" (Q = 64, 96, 128: Tables 4 to 6)
    """

    name: str
    config: str
    jittered: bool = False
    weight_init: str = None
    init_from: str = None
    init_conv_layers: int = 4
    stall: bool = False
    scales: str = "single"


# As in the paper, the deeper nets start from net A's trained layers (Sect. 3.1), their other layers from the
# miniature's random initialisation; A and A-LRN start from scratch. B-shallow takes A's FC layers only.
NETS = (
    NetSpec("A", "A"),
    NetSpec("A-LRN", "A-LRN"),
    NetSpec("B", "B", init_from="A"),
    NetSpec("C", "C", init_from="A"),
    NetSpec("D", "D", init_from="A", scales="multi"),
    NetSpec("E", "E", init_from="A", scales="multi"),
    NetSpec("B-shallow", "B-shallow", init_from="A", init_conv_layers=0),
    NetSpec("D-jittered", "D", jittered=True, init_from="A", scales="multi"),
    NetSpec("E-jittered", "E", jittered=True, init_from="A", scales="multi"),
    # Sect. 3.1: D from N(0, 0.01^2); the same with A's layers (the paper's pre-initialisation, the other layers
    # from N(0, 0.01^2) as the paper's were); from the miniature's random initialisation without A.
    NetSpec("D-N(0,0.01)", "D", weight_init="paper", stall=True),
    NetSpec("D-from-A", "D", weight_init="paper", init_from="A", stall=True),
    NetSpec("D-Glorot", "D", stall=True),
)
TABLE_3_NETS = ("A", "A-LRN", "B", "C", "D", "E")
DEEP_NETS = ("D-jittered", "E-jittered")  # the paper's best: Tables 5 and 6, Appendix B's Net-D and Net-E


@dataclass(frozen=True)
class Claim:
    """One of the paper's findings and the two measurements that test it.

    Attributes
    ----------
    key : a short unique name
    section : where the paper says it, e.g. "Table 3 (A, A-LRN)"
    statement : the claim in words
    paper : the paper's figures
    favoured, other : result keys (``other`` may be a number, a fixed reference such as chance)
    kind : "better" (favoured beats other) or "not worse" (other brings no gain over favoured)
    margin : for "not worse", the largest loss of the favoured side that still counts as none
    higher_is_better : True for recall, False for errors
    measure : what the numbers are
    """

    key: str
    section: str
    statement: str
    paper: str
    favoured: str
    other: object
    kind: str = "better"
    margin: float = 0.0
    higher_is_better: bool = False
    measure: str = "top-1 error (%)"


_Q = "96"          # Sect. 4.1's single test scale (Miniature.single_test_scale)
_MULTI = "64,96,128"  # Sect. 4.2's three (Miniature.test_scales)


def _dense(net, scales=_Q):
    return f"{net}/dense/{scales}"


CLAIMS = (
    # Table 3: single-scale dense evaluation, Q = S (fixed) or (S_min + S_max) / 2 (jittered).
    Claim("lrn", "Table 3 (A, A-LRN)", "local response normalisation does not improve on net A",
          "A 29.6%, A-LRN 29.7% top-1", _dense("A"), _dense("A-LRN"), kind="not worse", margin=1.0),
    Claim("depth-b-a", "Table 3 (A, B)", "B (13 layers) beats A (11 layers)", "B 28.7%, A 29.6% top-1",
          _dense("B"), _dense("A")),
    Claim("depth-e-a", "Table 3 (A, E)", "the error falls with depth: E (19 layers) beats A (11 layers)",
          "E 27.3%, A 29.6% top-1 (S = 256)", _dense("E"), _dense("A")),
    Claim("depth-c-b", "Table 3 (B, C)", "C beats B: the extra 1x1 non-linearities help",
          "C 28.1%, B 28.7% top-1 (S = 256)", _dense("C"), _dense("B")),
    Claim("depth-d-c", "Table 3 (C, D)", "D beats C: 3x3 context beats 1x1 at the same depth",
          "D 27.0%, C 28.1% top-1 (S = 256)", _dense("D"), _dense("C")),
    Claim("depth-saturates", "Table 3 (D, E)", "the error saturates at 19 layers: E is no better than D",
          "E 27.3%, D 27.0% (S = 256); 25.5%, 25.6% (jittered)", _dense("D"), _dense("E"), kind="not worse",
          margin=1.0),
    Claim("jitter-d", "Table 3 (D)", "scale jittering in training beats a fixed S (net D, one test scale)",
          "D jittered 25.6%, S = 256 27.0%, S = 384 26.8% top-1", _dense("D-jittered"), _dense("D")),
    Claim("jitter-e", "Table 3 (E)", "scale jittering in training beats a fixed S (net E, one test scale)",
          "E jittered 25.5%, S = 256 27.3%, S = 384 26.9% top-1", _dense("E-jittered"), _dense("E")),
    Claim("test-scale-fixed", "Sect. 4.1, 4.2 (D)",
          "a fixed-S net is best tested at Q = S: 96 beats the better of S - 32 and S + 32",
          "\"a large discrepancy between training and testing scales leads to a drop in performance\"",
          _dense("D"), "best-of/D/dense/64|D/dense/128"),
    Claim("test-scale-jittered", "Sect. 4.1, 4.2 (D jittered)",
          "a jittered net tested at one scale is best at Q = (S_min + S_max) / 2: 96 beats 64 and 128",
          "Q = 384 for S in [256, 512] (Table 3)", _dense("D-jittered"),
          "best-of/D-jittered/dense/64|D-jittered/dense/128"),
    # Sect. 4.1: the shallow net, on a centre crop.
    Claim("shallow", "Sect. 4.1 (B, B-shallow)",
          "B beats the shallow net with a 5x5 layer for each pair of 3x3 layers (centre crop)",
          "shallow net 7% higher top-1 than B", "B/single-crop/96", "B-shallow/single-crop/96"),
    # Sect. 3.1: initialisation.
    Claim("stall", "Sect. 3.1", "a deep net from N(0, 0.01^2) stalls: no better than chance",
          "\"bad initialisation can stall learning due to the instability of gradient in deep nets\"",
          "chance", "D-N(0,0.01)/val@stall", kind="not worse", margin=5.0,
          measure="validation top-1 error (%) after the stall epochs"),
    Claim("pre-initialisation", "Sect. 3.1",
          "pre-initialising the first 4 conv and the FC layers from net A trains the deep net",
          "(used for B to E in the paper)", "D-from-A/val@stall", "D-N(0,0.01)/val@stall",
          measure="validation top-1 error (%) after the stall epochs"),
    Claim("glorot", "Sect. 3.1", "Glorot's initialisation trains the deep net without pre-training",
          "\"it is possible to initialise the weights without pre-training\"", "D-Glorot/val@stall",
          "D-N(0,0.01)/val@stall", measure="validation top-1 error (%) after the stall epochs"),
    # Table 4: several test scales.
    *(Claim(f"multi-scale-{net}", f"Table 4 ({net})", f"testing at Q = 64, 96, 128 beats Q = 96 alone (net {net})",
            paper, _dense(net, _MULTI), _dense(net))
      for net, paper in (("D", "D (S = 256) 26.6% vs 27.0% top-1"), ("E", "E (S = 256) 26.9% vs 27.3%"),
                         ("D-jittered", "D jittered 24.8% vs 25.6%"), ("E-jittered", "E jittered 24.8% vs 25.5%"))),
    # Table 5: multi-crop and dense, Q = 64, 96, 128, jittered nets.
    *(claim for net, paper in (("D-jittered", ("24.6%", "24.8%", "24.4%")), ("E-jittered", ("24.6%", "24.8%", "24.4%")))
      for claim in (
          Claim(f"multi-crop-{net}", f"Table 5 ({net})", f"multi-crop is slightly better than dense (net {net})",
                f"multi-crop {paper[0]}, dense {paper[1]} top-1", f"table5/{net}/multi-crop",
                f"table5/{net}/dense"),
          Claim(f"combined-dense-{net}", f"Table 5 ({net})", f"multi-crop & dense beats dense (net {net})",
                f"combined {paper[2]}, dense {paper[1]} top-1", f"table5/{net}/multi-crop+dense",
                f"table5/{net}/dense"),
          Claim(f"combined-multi-crop-{net}", f"Table 5 ({net})", f"multi-crop & dense beats multi-crop (net {net})",
                f"combined {paper[2]}, multi-crop {paper[0]} top-1", f"table5/{net}/multi-crop+dense",
                f"table5/{net}/multi-crop"))),
    # Table 6: fusion.
    Claim("fusion-dense", "Table 6 (D & E, dense)", "fusing the two jittered nets beats the better of them alone",
          "D & E 24.0% vs E 24.8% top-1 (dense, Q = 256, 384, 512)", "fusion/D-jittered+E-jittered/dense",
          "best-of/D-jittered/dense/64,96,128|E-jittered/dense/64,96,128"),
    Claim("fusion-combined", "Table 6 (D & E, multi-crop & dense)",
          "fusing the two jittered nets beats the better of them (multi-crop & dense)",
          "D & E 23.7% vs E 24.4% top-1", "fusion/D-jittered+E-jittered/table5-multi-crop+dense",
          "best-of/table5/D-jittered/multi-crop+dense|table5/E-jittered/multi-crop+dense"),
    # Appendix A: localisation (Fashion-MNIST items on photographs).
    Claim("pcr-scr", "Appendix A, Table 8", "per-class regression beats single-class regression (FC fine-tuned)",
          "PCR 34.3%, SCR 36.4% localisation error", "localisation/PCR-fc/protocol-1",
          "localisation/SCR-fc/protocol-1", measure="localisation error (%), centre crop, ground-truth class"),
    Claim("fine-tune-all", "Appendix A, Table 8", "fine-tuning all layers beats fine-tuning the FC layers only (PCR)",
          "all 33.1%, FC only 34.3% localisation error", "localisation/PCR-all/protocol-1",
          "localisation/PCR-fc/protocol-1", measure="localisation error (%), centre crop, ground-truth class"),
    Claim("dense-localisation", "Appendix A, Tables 8 and 9",
          "dense boxes with greedy merging and the predicted classes (protocol 2) beat the centre crop with the "
          "ground-truth class (protocol 1)", "28.2% (Table 9, S = Q = 384) vs 33.1% (Table 8)",
          "localisation/PCR-all/protocol-2", "localisation/PCR-all/protocol-1", measure="localisation error (%)"),
    # Appendix B: features of nets trained on Fashion-MNIST, linear SVMs on the digits.
    Claim("transfer-depth", "Appendix B, Table 11", "the deepest net's features beat a shallower net's (E vs A)",
          "Net-E 92.3% vs a shallower net's 88.4% (Caltech-101, Chatfield et al.)",
          "transfer/E-jittered/stack", "transfer/A/stack", higher_is_better=True, measure="mean class recall (%)"),
    Claim("transfer-e-d", "Appendix B, Table 11", "Net-E's features beat Net-D's", "92.3% vs 91.8% (Caltech-101)",
          "transfer/E-jittered/stack", "transfer/D-jittered/stack", higher_is_better=True,
          measure="mean class recall (%)"),
    Claim("transfer-fusion", "Appendix B, Table 11", "Net-D & Net-E stacked beat Net-E alone",
          "92.7% vs 92.3% (Caltech-101)", "transfer/D-jittered+E-jittered/stack", "transfer/E-jittered/stack",
          higher_is_better=True, measure="mean class recall (%)"),
    Claim("transfer-random", "Appendix B", "trained features beat those of the same net left at random",
          "(not measured in the paper)", "transfer/E-jittered/stack", "transfer/E-random/stack",
          higher_is_better=True, measure="mean class recall (%)"),
    Claim("transfer-pixels", "Appendix B", "the deep features beat raw pixels",
          "(hand-crafted representations outperformed \"by a large margin\")", "transfer/E-jittered/stack",
          "transfer/raw-pixels", higher_is_better=True, measure="mean class recall (%)"),
    Claim("stacking", "Appendix B (Caltech)", "stacking the scales' descriptors beats averaging them",
          "\"on Caltech datasets the stacking of descriptors [...] performs better than averaging\"",
          "transfer/E-jittered/stack", "transfer/E-jittered/average", higher_is_better=True,
          measure="mean class recall (%)"),
)

# The paper's own difference between the two sides, in percentage points in the favoured direction (from the
# ``paper`` figures above); the report sets it beside the noise of the miniature's measurement, so a reader sees
# whether three seeds could resolve a gain that size. Claims the paper gives no number for are absent.
PAPER_GAINS = {
    "lrn": 0.1, "depth-b-a": 0.9, "depth-e-a": 2.3, "depth-c-b": 0.6, "depth-d-c": 1.1, "depth-saturates": -0.3,
    "jitter-d": 1.4, "jitter-e": 1.8, "shallow": 7.0, "multi-scale-D": 0.4, "multi-scale-E": 0.4,
    "multi-scale-D-jittered": 0.8, "multi-scale-E-jittered": 0.7, "multi-crop-D-jittered": 0.2,
    "multi-crop-E-jittered": 0.2, "combined-dense-D-jittered": 0.4, "combined-dense-E-jittered": 0.4,
    "combined-multi-crop-D-jittered": 0.2, "combined-multi-crop-E-jittered": 0.2, "fusion-dense": 0.8,
    "fusion-combined": 0.7, "pcr-scr": 2.1, "fine-tune-all": 1.2, "dense-localisation": 4.9, "transfer-depth": 3.9,
    "transfer-e-d": 0.5, "transfer-fusion": 0.4,
}

# The report's sections, in order, and the claims' key prefixes each holds.
SECTIONS = (
    ("Table 3: single test scale", ("lrn", "depth-", "jitter-", "test-scale-")),
    ("Sect. 4.1: deep and thin against shallow and wide", ("shallow",)),
    ("Sect. 3.1: initialisation", ("stall", "pre-initialisation", "glorot")),
    ("Table 4: several test scales", ("multi-scale-",)),
    ("Table 5: multi-crop and dense evaluation", ("multi-crop-", "combined-")),
    ("Table 6: fusion", ("fusion-",)),
    ("Appendix A: localisation", ("pcr-scr", "fine-tune-all", "dense-localisation")),
    ("Appendix B: very deep features on another dataset", ("transfer-", "stacking")),
)


def claims_of(prefixes):
    """The claims whose keys start with one of ``prefixes``, in ``CLAIMS``' order."""
    return [claim for claim in CLAIMS if claim.key.startswith(tuple(prefixes))]
