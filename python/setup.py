"""Builds convpool_torch._C against the installed PyTorch (torch.utils.cpp_extension).

    scripts/build-torch-ext          (= /usr/bin/python3 python/setup.py build_ext --inplace,
                                      objects under build-torch/, git-ignored)
    pip install --no-build-isolation ./python    (into the environment's site-packages)

The extension compiles the engine's own pooling sources in place (src/cpu/pool.cpp,
src/cpu/pool_fast.cpp, kernels/pool_math.cuh), nothing is copied. CONVPOOL_TORCH_CUDA=1 also
compiles the CUDA kernels (kernels/pool_small.cu, kernels/pool_warp.cu) with nvcc and the
launcher glue (csrc/cuda_glue.cpp), linked against libcudart; with a CPU-only torch (Debian's)
this compiles and links but can never run (no CUDA tensors exist there).
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
           rel("src/cpu/pool_fast.cpp"), rel("src/cpu/pool_fast_global.cpp"),
           rel("src/cpu/pool_fast_lists.cpp"), rel("src/cpu/intermap_pool.cpp"),
           rel("src/cpu/weighted_pool.cpp"), rel("src/cpu/weighted_pool_disjoint.cpp"),
           rel("src/cpu/lip_pool.cpp"),
           rel("src/layers/pool_methods.cpp")]
# C++20: PyTorch 2.x's headers refuse anything older, the engine's sources are C++20, and
# torch 1.13's headers (Debian's) compile under it too.
cxx = ["-O3", "-fopenmp", "-std=c++20", "-Wall", "-Wno-unknown-pragmas"]
include_dirs = [os.path.join(ROOT, "include"), os.path.join(ROOT, "src"), ROOT]
with_cuda = os.environ.get("CONVPOOL_TORCH_CUDA") == "1"
if with_cuda:
    # nvcc compiles the engine's kernels; the glue is plain C++ against torch's headers. A
    # CUDA-enabled torch links its CUDA runtime libraries (CUDAExtension); a CPU-only torch
    # (Debian's) still compiles and links everything against libcudart alone, and the module
    # loads, but it can never hold a CUDA tensor to run the kernels on.
    cuda_home = cpp_extension.CUDA_HOME or "/usr/local/cuda"
    sources += [rel("python/convpool_torch/csrc/cuda_glue.cpp"), rel("kernels/pool_small.cu"),
                rel("kernels/pool_warp.cu"), rel("kernels/intermap_pool.cu"),
                rel("kernels/weighted_pool.cu"), rel("kernels/lip_pool.cu")]
    macros = [("CONVPOOL_TORCH_CUDA", "1")]
    torch_has_cuda = __import__("torch").version.cuda is not None
    if torch_has_cuda:
        macros.append(("CONVPOOL_TORCH_CUDA_STREAM", "1"))
    archs = os.environ.get("CONVPOOL_CUDA_ARCHS", "90")
    nvcc = ["-O3", "-std=c++20", "--expt-relaxed-constexpr", "-lineinfo",
            "-DCONVPOOL_TORCH_CUDA=1"] + [f"-gencode=arch=compute_{a},code=sm_{a}"
                                          for a in archs.split(",")]
    if not torch_has_cuda:
        # torch 1.13's BuildExtension compares nvcc's CUDA version with torch.version.cuda,
        # which is None in a CPU-only torch (a TypeError): there is no torch CUDA to match.
        cpp_extension._check_cuda_version = lambda *args: None
    kind = cpp_extension.CUDAExtension if torch_has_cuda else cpp_extension.CppExtension
    ext = kind("convpool_torch._C", sources,
               include_dirs=include_dirs + [os.path.join(cuda_home, "include")],
               define_macros=macros, extra_compile_args={"cxx": cxx, "nvcc": nvcc},
               library_dirs=[os.path.join(cuda_home, "lib64")], libraries=["cudart"],
               runtime_library_dirs=[os.path.join(cuda_home, "lib64")],
               extra_link_args=["-fopenmp"])
else:
    ext = cpp_extension.CppExtension("convpool_torch._C", sources, include_dirs=include_dirs,
                                     extra_compile_args=cxx, extra_link_args=["-fopenmp"])

# Name, version and packages: pyproject.toml (pip install --no-build-isolation ./python).
setup(ext_modules=[ext], cmdclass={"build_ext": cpp_extension.BuildExtension})
