// Where a CUDA training keeps the data set: in GPU memory, or streamed from pinned host memory.
#include "convpool/trainer.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "cuda/device_data.h"
#endif

namespace convpool {

const char* data_placement_name(DataPlacement p) {
  switch (p) {
    case DataPlacement::automatic: return "auto";
    case DataPlacement::pinned: return "pinned";
    case DataPlacement::device: return "device";
  }
  return "?";
}

DataPlacement parse_data_placement(const std::string& name) {
  for (DataPlacement p : {DataPlacement::automatic, DataPlacement::pinned, DataPlacement::device})
    if (name == data_placement_name(p)) return p;
  CP_USER_ERROR("--data-placement must be auto, pinned or device (got '" << name << "')");
}

namespace {
// An explicit --data-placement device may take more than automatic's share, not all of it:
// activations, workspaces and the graphs need the rest.
constexpr double kDeviceFraction = 0.8;
}  // namespace

DataPlacement resolve_data_placement(DataPlacement requested, Device device, size_t bytes) {
  if (device != Device::cuda) {
    if (requested == DataPlacement::device)
      CP_USER_ERROR("--data-placement device keeps the data in GPU memory: it needs --device cuda");
    return DataPlacement::pinned;
  }
#ifdef CONVPOOL_HAVE_CUDA
  if (requested == DataPlacement::device && !cuda::fits_in_free_memory(bytes, kDeviceFraction))
    CP_USER_ERROR("--data-placement device: the data sets' "
                  << (bytes >> 20) << " MiB do not fit in " << int(kDeviceFraction * 100)
                  << "% of the GPU's free memory; use --data-placement pinned (or auto)");
#endif
  if (requested != DataPlacement::automatic) return requested;
#ifdef CONVPOOL_HAVE_CUDA
  return cuda::fits_in_free_memory(bytes, kResidentFraction) ? DataPlacement::device
                                                             : DataPlacement::pinned;
#else
  (void)bytes;
  return DataPlacement::pinned;
#endif
}

}  // namespace convpool
