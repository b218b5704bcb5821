// CUDA device discovery. Works in CPU-only builds too (there is then never a device).
#pragma once
#include <string>

namespace convpool {

bool cuda_built();             // was this binary built with the CUDA backend?
bool cuda_device_available();  // built with CUDA, a driver is present and a device is usable
// Throws a one-line error saying why no usable device exists (not built, no driver, no
// device, or an architecture the binary was not built for, with how to rebuild).
void require_cuda_device();
// One line: device name, compute capability, driver/runtime and cuDNN versions, built archs.
std::string cuda_device_report();

}  // namespace convpool
