"""The linear SVM's solver: the dual problem when there are fewer images than dimensions (raw pixels, a few
images per class), the primal one otherwise; both reach the same classifier."""
import numpy as np
import pytest

from minivgg.transfer.svm import choose_C


def _blobs(count, dimensions, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 4
    centres = rng.standard_normal((4, dimensions))
    features = centres[labels] + 0.8 * rng.standard_normal((count, dimensions))
    return features / np.linalg.norm(features, axis=1, keepdims=True), labels


@pytest.mark.parametrize("count, dimensions, dual", [(40, 500, True), (400, 20, False)])
def test_the_smaller_problem_is_solved(count, dimensions, dual):
    features, labels = _blobs(count, dimensions)
    svm, _ = choose_C(features, labels, "balanced_accuracy", C_grid=(0.1, 1.0), folds=2)
    assert svm.dual is dual


@pytest.mark.parametrize("C", [0.1, 10.0])
def test_the_dual_solver_reaches_the_primal_solver_s_classifier(C):
    from sklearn.svm import LinearSVC

    features, labels = _blobs(40, 500, seed=1)
    dual, _ = choose_C(features, labels, "balanced_accuracy", C_grid=(C,))
    primal = LinearSVC(C=C, dual=False, max_iter=10000).fit(features, labels)
    np.testing.assert_allclose(dual.coef_, primal.coef_, rtol=0, atol=1e-3 * np.abs(primal.coef_).max())
    test, _ = _blobs(200, 500, seed=1)
    np.testing.assert_array_equal(dual.predict(test), primal.predict(test))
