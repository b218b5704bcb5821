// CUDA launchers of the input pipeline: uint8 images to normalised, augmented floats.
// Launchers take device pointers and a stream (void*, so this header needs no CUDA headers),
// launch, and check the launch; only built when CONVPOOL_HAVE_CUDA.
#pragma once
#include <cstdint>

#include "convpool/data.h"

namespace convpool::cuda {

// kernels/input.cu: n uint8 CIFAR images -> float NCHW, pixel / 255 normalised by `t`; in
// training, augmented (crop, flip, cutout) by draws from (seed, *step, image), as
// images_to_float does.
// `step` is a device pointer (read at run time, so a captured graph replays correctly).
// `first_index`: the position of image 0 in the step's global batch (images_to_float's).
// Out of training, `view` shifts and mirrors every image (view_to_float's test-time views).
void input_to_float(const uint8_t* src, float* dst, int n, const InputTransform& t, bool training,
                    uint64_t seed, const uint64_t* step, void* stream, uint32_t first_index = 0,
                    const TtaView& view = {});
// The same, from a data set resident on the device: image i of the batch is
// images[order[*cursor + first_index + i]] and its label is written to labels_out[i]. `cursor`
// is a device pointer (null: position 0), read at run time like `step`.
void gather_input_to_float(const uint8_t* images, const uint8_t* labels, const uint32_t* order,
                           const uint64_t* cursor, float* dst, uint8_t* labels_out, int n,
                           const InputTransform& t, bool training, uint64_t seed,
                           const uint64_t* step, void* stream, uint32_t first_index = 0,
                           const TtaView& view = {});
// *cursor += by (one thread): the resident path's move to the next global batch.
void advance_cursor(uint64_t* cursor, uint32_t by, void* stream);

}  // namespace convpool::cuda
