# The emulated CUDA target (docs/emulation.md): kernels/*.cu compiled as C++ by the host
# compiler, their launches rewritten into calls to a fiber-based emulator, linked with the
# kernel parity suite (tests/kernel_parity*.cpp) and the CPU backend as its oracle. Built on
# every machine, GPU or not, and in the sanitizer build.
find_package(Boost 1.66 QUIET COMPONENTS context)
if(NOT Boost_CONTEXT_FOUND)
  message(FATAL_ERROR "convpool: the emulated CUDA target needs Boost.Context: install "
                      "libboost-context-dev (scripts/install-deps), or configure with "
                      "-DCONVPOOL_EMU=OFF")
endif()

set(_emu ${CMAKE_SOURCE_DIR}/tests/cuda-emu)
add_executable(cuda_emu_rewrite ${_emu}/rewrite.cpp)

# Rewrites each .cu into BUILD/cuda-emu/NAME.emu.cpp and appends the result to `out_var`.
function(convpool_emu_rewrite out_var)
  set(result)
  foreach(cu ${ARGN})
    get_filename_component(stem ${cu} NAME_WE)
    file(RELATIVE_PATH rel ${CMAKE_SOURCE_DIR} ${cu})
    set(out ${CMAKE_BINARY_DIR}/cuda-emu/${stem}.emu.cpp)
    add_custom_command(OUTPUT ${out} COMMAND cuda_emu_rewrite ${cu} ${out}
                       DEPENDS cuda_emu_rewrite ${cu} COMMENT "cuda-emu: rewriting ${rel}"
                       VERBATIM)
    # The rewritten copy keeps the .cu line numbers (#line): diagnostics name the .cu file.
    set_source_files_properties(${out} PROPERTIES COMPILE_OPTIONS
                                "-include;${_emu}/emu_device.h;-ffp-contract=off")
    list(APPEND result ${out})
  endforeach()
  set(${out_var} ${${out_var}} ${result} PARENT_SCOPE)
endfunction()

file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/cuda-emu)
file(GLOB _emu_cu CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/kernels/*.cu)
set(_emu_generated)
convpool_emu_rewrite(_emu_generated ${_emu_cu})
set(_emu_selftest)
convpool_emu_rewrite(_emu_selftest ${CMAKE_SOURCE_DIR}/tests/emu/selftest.cu)

# The kernels and the emulator's runtime. No CONVPOOL_HAVE_CUDA: nothing here sees the toolkit.
add_library(convpool_emu_kernels STATIC ${_emu_generated} ${_emu}/runtime.cpp ${_emu}/memory.cpp
            ${_emu}/streams.cpp ${_emu}/cufft.cpp)
target_include_directories(convpool_emu_kernels BEFORE PUBLIC ${_emu}/include)
target_include_directories(convpool_emu_kernels PUBLIC ${CMAKE_SOURCE_DIR}/include
                           ${CMAKE_SOURCE_DIR} PRIVATE ${_emu} ${CMAKE_SOURCE_DIR}/src)
# The rewritten kernels live in the build folder: their sibling includes ("philox.cuh")
# resolve from kernels/, as in nvcc.
target_compile_options(convpool_emu_kernels PRIVATE -iquote ${CMAKE_SOURCE_DIR}/kernels)
target_link_libraries(convpool_emu_kernels PUBLIC Boost::context PkgConfig::FFTW3F)

# The oracle: the CPU backend's own sources for the ops the kernels implement, without CUDA
# (convpool_lib may hold the real kernels, whose names these emulated ones share): the shared
# CPU ops (CMakeLists.txt), the optimizer compiled here without CUDA, and the MPI-free build
# of distributed.cpp.
add_library(convpool_emu_oracle STATIC ${CMAKE_SOURCE_DIR}/src/core/distributed.cpp
            ${CMAKE_SOURCE_DIR}/src/train/optim.cpp)
target_include_directories(convpool_emu_oracle PUBLIC ${CMAKE_SOURCE_DIR}/include
                           ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR})
target_link_libraries(convpool_emu_oracle PUBLIC convpool_cpu_ops OpenMP::OpenMP_CXX)

# Every kernel parity file: tests/kernel_parity.cpp and one per op (kernel_parity_<op>.cpp).
file(GLOB _emu_parity CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/kernel_parity*.cpp)
add_executable(convpool_emu_tests ${_emu_parity}
               ${CMAKE_SOURCE_DIR}/tests/emu/emu_main.cpp
               ${CMAKE_SOURCE_DIR}/tests/emu/test_emulator.cpp
               ${CMAKE_SOURCE_DIR}/tests/emu/test_launch_checks.cpp ${_emu_selftest})
target_link_libraries(convpool_emu_tests PRIVATE convpool_emu_kernels convpool_emu_oracle
                      GTest::gtest)
target_include_directories(convpool_emu_tests PRIVATE ${CMAKE_SOURCE_DIR}/src
                           ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/tests/emu)
target_compile_definitions(convpool_emu_tests PRIVATE CONVPOOL_EMULATED_CUDA
                           CONVPOOL_SOURCE_DIR="${CMAKE_SOURCE_DIR}")

# Every case under three schedules; the warp family again with each selection forced. The
# census (every __global__ in kernels/ launched) is checked by the full forward run.
add_test(NAME emu.parity.forward COMMAND convpool_emu_tests --schedule=forward --census)
add_test(NAME emu.parity.reverse COMMAND convpool_emu_tests --schedule=reverse)
add_test(NAME emu.parity.random COMMAND convpool_emu_tests --schedule=random:20261201)
foreach(algo bitonic rounds)
  foreach(sched reverse random:7)
    string(REPLACE ":" "" _s ${sched})
    add_test(NAME emu.warp_${algo}.${_s}
             COMMAND convpool_emu_tests --schedule=${sched} --gtest_filter=*Warp*)
    set_tests_properties(emu.warp_${algo}.${_s} PROPERTIES ENVIRONMENT CONVPOOL_WARP_SELECT=${algo})
  endforeach()
endforeach()
set_tests_properties(emu.parity.forward emu.parity.reverse emu.parity.random PROPERTIES TIMEOUT 600)

# ---- the emulated CUDA build of the whole engine: src/cuda/*, the CUDA training step and the
# CLI compiled unchanged against tests/cuda-emu/include (runtime, cuDNN, cuBLAS, NCCL, Thrust
# and CUB stand-ins), with the CPU backend beside them as in a GPU build: build/convpool-emu
# and the whole-step tests. Needs MPI (the NCCL stand-in runs over it) and the CCCL headers
# (Thrust's CPP system). ----
if(MPI_CXX_FOUND AND CONVPOOL_CCCL_INCLUDE_DIR)
  add_library(convpool_emu_libs STATIC ${_emu}/cudnn.cpp ${_emu}/cudnn_pooling.cpp ${_emu}/cublas.cpp
              ${_emu}/nccl.cpp)
  target_include_directories(convpool_emu_libs BEFORE PUBLIC ${_emu}/include)
  target_include_directories(convpool_emu_libs PUBLIC ${_emu})
  target_link_libraries(convpool_emu_libs PUBLIC convpool_emu_kernels PkgConfig::OPENBLAS
                        MPI::MPI_CXX OpenMP::OpenMP_CXX)

  # src/cuda's .cu files hold host code only (Thrust and CUB calls, launcher calls): compiled
  # as C++ through a one-line wrapper each, so that their own includes resolve beside them.
  set(_emu_engine_cu)
  file(GLOB _engine_cu CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/cuda/*.cu)
  foreach(cu ${_engine_cu})
    get_filename_component(stem ${cu} NAME_WE)
    set(wrapper ${CMAKE_BINARY_DIR}/cuda-emu/engine/${stem}.cu.cpp)
    # CCCL would include the toolkit's runtime header where one is installed; here Thrust
    # must see no toolkit (its CPP system), and the emulated runtime only.
    file(WRITE ${wrapper}.in "#include <cuda/std/__cccl/preprocessor.h>\n#undef _CCCL_HAS_INCLUDE\n"
         "#define _CCCL_HAS_INCLUDE(x) 0\n#include \"${cu}\"\n")
    configure_file(${wrapper}.in ${wrapper} COPYONLY)
    if(CONVPOOL_SANITIZE)
      # Thrust's sequential radix sort upcasts a null execution-policy pointer in its own
      # headers (thrust/detail/reference.h), which UBSan reports: as convpool_thrust_tests,
      # these two translation units keep ASan only.
      set_source_files_properties(${wrapper} PROPERTIES COMPILE_OPTIONS -fno-sanitize=undefined)
    endif()
    list(APPEND _emu_engine_cu ${wrapper})
  endforeach()
  # The sources that see no CUDA are the main build's (convpool_common, convpool_cli_common).
  file(GLOB _engine_cpp CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/cuda/*.cpp)
  add_library(convpool_emu_engine STATIC ${CONVPOOL_CUDA_AWARE_SOURCES} ${_engine_cpp}
              ${CMAKE_SOURCE_DIR}/src/train/cuda_step.cpp ${_emu_engine_cu}
              ${CMAKE_SOURCE_DIR}/tools/cli_bench.cpp)
  target_link_libraries(convpool_emu_engine PUBLIC convpool_common convpool_cpu_ops
                        convpool_cli_common)
  target_include_directories(convpool_emu_engine BEFORE PUBLIC ${_emu}/include)
  target_include_directories(convpool_emu_engine PUBLIC ${CMAKE_SOURCE_DIR}/include
                             ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR})
  target_include_directories(convpool_emu_engine SYSTEM PUBLIC ${CONVPOOL_CCCL_INCLUDE_DIR})
  target_compile_definitions(convpool_emu_engine PUBLIC CONVPOOL_HAVE_CUDA CONVPOOL_CUDA_ARCHS="90"
                             CONVPOOL_EMULATED_CUDA CONVPOOL_HAVE_NCCL CONVPOOL_HAVE_MPI
                             THRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_CPP
                             "__host__=" "__device__=")
  target_link_libraries(convpool_emu_engine PUBLIC convpool_emu_libs OpenMP::OpenMP_CXX
                        PkgConfig::OPENBLAS nlohmann_json::nlohmann_json PNG::PNG JPEG::JPEG
                        MPI::MPI_CXX)
  if(DNNL_INCLUDE_DIR AND DNNL_LIBRARY)
    target_include_directories(convpool_emu_engine PRIVATE ${DNNL_INCLUDE_DIR})
    target_link_libraries(convpool_emu_engine PUBLIC ${DNNL_LIBRARY})
    target_compile_definitions(convpool_emu_engine PRIVATE CONVPOOL_HAVE_ONEDNN)
  endif()
  if(CLI11_INCLUDE_DIR)
    target_include_directories(convpool_emu_engine PUBLIC ${CLI11_INCLUDE_DIR})
  endif()

  # The binary: `convpool-emu train --device cuda ...` runs the CUDA backend on this CPU.
  add_executable(convpool-emu ${CMAKE_SOURCE_DIR}/tools/main.cpp ${_emu}/engine_defaults.cpp)
  target_link_libraries(convpool-emu PRIVATE convpool_emu_engine)
  target_include_directories(convpool-emu PRIVATE ${_emu})

  # The whole-step tests: the GPU parity suite and the emulated-step suite, on this target.
  add_executable(convpool_emu_engine_tests ${CMAKE_SOURCE_DIR}/tests/test_cuda_parity.cpp
                 ${CMAKE_SOURCE_DIR}/tests/test_helpers.cpp ${CMAKE_SOURCE_DIR}/tests/layer_harness.cpp
                 ${CMAKE_SOURCE_DIR}/tests/emu/test_whole_step.cpp
                 ${CMAKE_SOURCE_DIR}/tests/emu/test_cuda_defects.cpp ${_emu}/engine_defaults.cpp)
  target_link_libraries(convpool_emu_engine_tests PRIVATE convpool_emu_engine GTest::gtest
                        GTest::gtest_main)
  target_include_directories(convpool_emu_engine_tests PRIVATE ${CMAKE_SOURCE_DIR}/tests ${_emu})
  target_compile_definitions(convpool_emu_engine_tests PRIVATE
                             CONVPOOL_BINARY="$<TARGET_FILE:convpool-emu>"
                             CONVPOOL_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  add_dependencies(convpool_emu_engine_tests convpool-emu)
  gtest_discover_tests(convpool_emu_engine_tests TEST_PREFIX emu.engine. DISCOVERY_TIMEOUT 60
                       PROPERTIES TIMEOUT 900)
  message(STATUS "convpool: emulated CUDA engine ON (build/convpool-emu)")
else()
  message(STATUS "convpool: emulated CUDA engine OFF (needs MPI and the CCCL headers)")
endif()
