"""Builds convpool_torch._C against the installed PyTorch (torch.utils.cpp_extension).

    tools/build-torch-ext            (= /usr/bin/python3 python/setup.py build_ext --inplace,
                                      objects under build-torch/, git-ignored)

The extension compiles the engine's own pooling sources in place (src/cpu/pool.cpp,
src/cpu/pool_fast.cpp, kernels/pool_math.cuh), nothing is copied. CONVPOOL_TORCH_CUDA=1 also
compiles the CUDA kernels (kernels/pool_small.cu, kernels/pool_warp.cu) and the launcher glue
(csrc/cuda_glue.cpp) with nvcc; that needs a PyTorch built with CUDA for the glue's headers
(Debian's python3-torch is CPU-only: see tools/build-torch-ext --cuda-objects).
"""
import os
import sys

from setuptools import setup
from torch.utils import cpp_extension

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
os.chdir(HERE)  # setuptools wants relative source paths

def rel(path):
    return os.path.relpath(os.path.join(ROOT, path), HERE)

sources = [rel("python/convpool_torch/csrc/ext.cpp"), rel("src/cpu/pool.cpp"),
           rel("src/cpu/pool_fast.cpp")]
cxx = ["-O3", "-fopenmp", "-std=c++17", "-Wall", "-Wno-unknown-pragmas"]
include_dirs = [os.path.join(ROOT, "include")]
with_cuda = os.environ.get("CONVPOOL_TORCH_CUDA") == "1"
if with_cuda:
    sources += [rel("python/convpool_torch/csrc/cuda_glue.cpp"), rel("kernels/pool_small.cu"),
                rel("kernels/pool_warp.cu")]
    ext = cpp_extension.CUDAExtension(
        "convpool_torch._C", sources, include_dirs=include_dirs,
        define_macros=[("CONVPOOL_TORCH_CUDA", "1")],
        extra_compile_args={"cxx": cxx, "nvcc": ["-O3", "-std=c++17", "--expt-relaxed-constexpr",
                                                 "-arch=sm_90"]},
        extra_link_args=["-fopenmp"])
else:
    ext = cpp_extension.CppExtension("convpool_torch._C", sources, include_dirs=include_dirs,
                                     extra_compile_args=cxx, extra_link_args=["-fopenmp"])

setup(name="convpool_torch", version="0.1", packages=["convpool_torch"],
      ext_modules=[ext], cmdclass={"build_ext": cpp_extension.BuildExtension})
