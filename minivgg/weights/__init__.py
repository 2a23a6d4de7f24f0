"""Weights: the weight file and everything that produces one.

    weight_file.py   save / load: one safetensors file with the parameters, the architecture, the
                     preprocessing and the class names, every field checked before anything is built
    published.py     the published VGG weights by name (``minivgg.pretrained("vgg16")``), cached
    download.py      resumable, digest-checked downloads
    convert/         torchvision's .pth and the authors' .caffemodel read without their frameworks
    onnx_export.py   a weight file as an ONNX model
"""
from .weight_file import (FORMAT, RECORD_FIELDS, declared_shapes, load, load_into, read_metadata, save,
                          set_parameters)

__all__ = ["FORMAT", "RECORD_FIELDS", "save", "load", "load_into", "read_metadata", "set_parameters",
           "declared_shapes"]
