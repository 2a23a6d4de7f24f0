"""Linear SVMs on fixed descriptors (Appendix B): "combined with a linear SVM classifier, trained on the
target dataset", the ConvNet weights kept fixed.

scikit-learn's ``LinearSVC`` (liblinear; squared hinge loss, L2 penalty) does the work. Its one
hyper-parameter, the penalty C, is chosen by cross-validation on the training data alone (stratified
folds; the paper held out 20% of the training images, which is one fold of five), scored by the measure
the protocol reports: mean class recall (scikit-learn's "balanced_accuracy") for Caltech-style multi-class
data, average precision for each class of multi-label VOC data. The best C is then refit on all the
training data.

- ``MultiClassSVM``: one-vs-rest over K classes (LinearSVC's own scheme); predicts the highest score.
- ``MultiLabelSVMs``: one binary SVM per class, each with its own C (VOC: an image may hold several
  classes). Images marked difficult (0) for a class are left out of that class's training, as they are
  left out of its evaluation.
"""
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["C_GRID", "check_features", "choose_C", "MultiClassSVM", "MultiLabelSVMs", "train_multiclass", "train_multilabel"]

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def _linear_svc(C=1.0):
    from sklearn.svm import LinearSVC

    # The primal solver (trust-region Newton) converges in a few iterations at every C of the grid on unit-norm
    # descriptors; the dual one needs thousands at large C.
    return LinearSVC(C=C, dual=False, max_iter=10000)


def check_features(features, count, caller):
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] != count:
        raise ValueError(f"{caller}: expected features of shape ({count}, D), got {features.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError(f"{caller}: the features hold NaN or infinity")
    return features


def choose_C(features, targets, scoring, C_grid=C_GRID, folds=5, seed=0):
    """The C of ``C_grid`` with the best cross-validated ``scoring``, and the SVM refit with it.

    Parameters
    ----------
    features : (N, D); targets : (N,) class indices (binary: 0/1)
    scoring : a scikit-learn scorer name ("balanced_accuracy", "average_precision")
    C_grid : the candidate penalties; folds : at most this many stratified folds (fewer when the smallest
        class has fewer images; a single candidate or a class with one image skips the search)
    seed : the folds' shuffling

    Returns
    -------
    (fitted LinearSVC, C)
    """
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    grid = [float(c) for c in C_grid]
    if not grid or min(grid) <= 0:
        raise ValueError(f"choose_C: C_grid must hold positive numbers, got {C_grid!r}")
    smallest = int(np.unique(targets, return_counts=True)[1].min()) if len(targets) else 0
    k = min(int(folds), smallest)
    if len(grid) == 1 or k < 2:
        C = grid[len(grid) // 2]
        if len(grid) > 1:
            warnings.warn(f"choose_C: a class has {smallest} training image(s), too few to cross-validate C; "
                          f"using C = {C:g}, the middle of the grid", RuntimeWarning, stacklevel=3)
        return _linear_svc(C).fit(features, targets), C
    search = GridSearchCV(_linear_svc(), {"C": grid}, scoring=scoring, refit=True,
                          cv=StratifiedKFold(k, shuffle=True, random_state=int(seed)))
    search.fit(features, targets)
    return search.best_estimator_, float(search.best_params_["C"])


@dataclass
class MultiClassSVM:
    """K-way linear SVM (one-vs-rest). ``scores(features)`` (N, K); ``predict(features)`` (N,) indices."""

    estimator: object
    C: float
    num_classes: int

    def scores(self, features):
        scores = self.estimator.decision_function(np.asarray(features))
        return np.stack([-scores, scores], axis=1) if scores.ndim == 1 else scores

    def predict(self, features):
        return np.argmax(self.scores(features), axis=1)


@dataclass
class MultiLabelSVMs:
    """One binary linear SVM per class. ``scores(features)`` (N, K); ``Cs`` the penalty chosen per class."""

    estimators: list
    Cs: list

    def scores(self, features):
        features = np.asarray(features)
        return np.stack([estimator.decision_function(features) for estimator in self.estimators], axis=1)


def train_multiclass(features, labels, C_grid=C_GRID, folds=5, seed=0):
    """A ``MultiClassSVM`` on (N, D) features and (N,) labels in 0..K-1, C by cross-validated mean class
    recall."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"train_multiclass: labels must be (N,) integers, got {labels.dtype} {labels.shape}")
    features = check_features(features, len(labels), "train_multiclass")
    present = np.unique(labels)
    if len(present) < 2:
        raise ValueError(f"train_multiclass: the training data holds {len(present)} class; an SVM needs two")
    estimator, C = choose_C(features, labels, "balanced_accuracy", C_grid, folds, seed)
    return MultiClassSVM(estimator, C, int(labels.max()) + 1)


def train_multilabel(features, flags, C_grid=C_GRID, folds=5, seed=0, class_names=None):
    """``MultiLabelSVMs`` on (N, D) features and (N, K) VOC flags (1 present, -1 absent, 0 difficult: left
    out of that class's training); C per class by cross-validated average precision."""
    flags = np.asarray(flags)
    if flags.ndim != 2 or not np.isin(flags, (-1, 0, 1)).all():
        raise ValueError(f"train_multilabel: flags must be (N, K) of 1, -1 and 0, got {flags.shape}")
    features = check_features(features, flags.shape[0], "train_multilabel")
    estimators, Cs = [], []
    for k in range(flags.shape[1]):
        kept = flags[:, k] != 0
        targets = (flags[kept, k] > 0).astype(np.int64)
        name = class_names[k] if class_names is not None else k
        if targets.min(initial=1) == targets.max(initial=0) or len(targets) == 0:
            raise ValueError(f"train_multilabel: class {name!r} has "
                             f"{'no positive' if not targets.any() else 'no negative'} training image")
        estimator, C = choose_C(features[kept], targets, "average_precision", C_grid, folds, seed)
        estimators.append(estimator)
        Cs.append(C)
    return MultiLabelSVMs(estimators, Cs)
