"""Appendix B on the embedded digits: the descriptors of a trained net beat those of the same net at its
random initialisation under the same linear SVM, on real data and without a download."""
import numpy as np

from minivgg.training.recipes import digits_run
from minivgg.transfer.demonstration import DIGITS_SETTINGS, compare_representations, raw_pixels, train_digits_net


def test_trained_net_features_beat_random_net_features():
    trained, splits, _ = train_digits_net(max_epochs=8, seed=0)
    untrained = digits_run(seed=0, model_seed=1).model.eval()
    results = compare_representations({"trained net": trained, "random net": untrained}, splits,
                                      DIGITS_SETTINGS, train_per_class=10, seed=0, folds=3)
    # Same SVM, same 10 training images per class: only the representation differs. (Eight epochs keep the
    # test short; the net is then still behind raw pixels, which the fully trained net of lesson 11 beats.)
    assert results["trained net"] > results["random net"] + 5
    assert results["trained net"] > 75 and results["raw pixels"] > 75
    assert results["dimensions"] == {"raw pixels": 40 * 40 * 3, "trained net": 2 * 256, "random net": 2 * 256}
    assert np.allclose(np.linalg.norm(raw_pixels(splits["test"].images[:5]), axis=1), 1.0, atol=1e-6)
