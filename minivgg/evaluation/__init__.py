"""Testing (Sect. 3.2, 4): dense and multi-crop evaluation over several scales, fusion, top-k errors, and
named predictions.

    posteriors.py   ``posteriors(model, images, method, scales)``, multi-crop, ``fuse``, error tables
    metrics.py      top-1 and top-5 error
    prediction.py   ``predict``: images in, named classes out
"""
from .metrics import top_k_correct, top_k_error
from .posteriors import METHODS, fuse, multi_crop_offsets, posteriors
from .scales import default_test_scales, paper_scales, single_test_scale
from .prediction import Prediction, decode_predictions, predict

__all__ = ["METHODS", "posteriors", "fuse", "multi_crop_offsets", "paper_scales", "single_test_scale",
           "default_test_scales", "top_k_correct", "top_k_error",
           "Prediction", "decode_predictions", "predict"]
