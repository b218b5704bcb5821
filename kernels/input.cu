// uint8 images -> normalised (and, in training, augmented) float on the GPU, in one kernel:
// the images come either from a staged batch (the host shipped bytes, a quarter of the
// floats) or, with the data set resident on the device, gathered through the epoch order at
// a device-side cursor, so that a captured step needs no host work. The per-pixel formula is
// the CPU's (kernels/input_math.cuh).
#include "cuda/check.h"
#include "input.cuh"
#include "input_math.cuh"

namespace convpool::cuda {

namespace {
struct InputParams {
  int side;  // images are 3 x side x side
  int crop_pad;
  bool reflect, flip;
  int cutout;
  float mean[kCifarChannels], inv_std[kCifarChannels];
  int view_dy, view_dx;  // without augmentation: the test-time view (identity by default)
  bool view_flip;
};

// Where image i of the batch comes from: images[i] (staged), or
// images[order[*cursor + first + i]] (resident; `cursor` may be null for position 0).
struct InputSource {
  const uint8_t* images;
  const uint8_t* labels;  // with `order`: the data set's labels, gathered into labels_out
  const uint32_t* order;
  const uint64_t* cursor;
};

// One block per image: its draw is made once, then the block writes the image's outputs in
// order (coalesced stores; the crop/flip gather reads stay within the image's bytes).
__global__ void input_to_float_kernel(InputSource src, float* __restrict__ dst,
                                      uint8_t* __restrict__ labels_out, InputParams p,
                                      bool augment, uint64_t seed,
                                      const uint64_t* __restrict__ step, uint32_t first) {
  const int image = blockIdx.x;
  __shared__ int shared_draw[7];  // plain ints (no constructor in shared memory)
  __shared__ uint32_t shared_source;
  if (threadIdx.x == 0) {
    const AugmentDraw d = augment ? augment_draw(seed, *step, first + uint32_t(image), p.crop_pad,
                                                 p.flip, p.reflect, p.cutout, p.side)
                                  : view_draw(p.view_dy, p.view_dx, p.view_flip);
    shared_draw[0] = d.dy;
    shared_draw[1] = d.dx;
    shared_draw[2] = d.flip;
    shared_draw[3] = d.reflect;
    shared_draw[4] = d.cut_y0;
    shared_draw[5] = d.cut_x0;
    shared_draw[6] = d.cut_size;
    uint32_t source = uint32_t(image);
    if (src.order) {
      source = src.order[(src.cursor ? *src.cursor : 0) + first + uint32_t(image)];
      labels_out[image] = src.labels[source];
    }
    shared_source = source;
  }
  __syncthreads();
  AugmentDraw draw;
  draw.dy = shared_draw[0];
  draw.dx = shared_draw[1];
  draw.flip = shared_draw[2] != 0;
  draw.reflect = shared_draw[3] != 0;
  draw.cut_y0 = shared_draw[4];
  draw.cut_x0 = shared_draw[5];
  draw.cut_size = shared_draw[6];
  const int side = p.side, plane = side * side, bytes = kCifarChannels * plane;
  const uint8_t* img = src.images + size_t(shared_source) * size_t(bytes);
  float* out = dst + size_t(image) * size_t(bytes);
  for (int i = threadIdx.x; i < bytes; i += blockDim.x) {
    const int c = i / plane, y = (i / side) % side, x = i % side;
    out[i] = input_pixel(img, side, c, y, x, draw, p.mean[c], p.inv_std[c]);
  }
}

// The resident path's cursor moves past the global batch once every block has read it (the
// next kernel on the stream starts after this one's blocks have all finished).
__global__ void advance_cursor_kernel(uint64_t* cursor, uint32_t by) { *cursor += by; }

InputParams input_params(const InputTransform& t, const TtaView& view) {
  InputParams p{t.side, t.crop_pad, t.reflect, t.flip,  t.cutout,
                {},     {},         view.dy,   view.dx, view.flip};
  for (int c = 0; c < kCifarChannels; ++c) {
    p.mean[c] = t.mean[c];
    p.inv_std[c] = 1.f / t.std[c];  // the same float the CPU path multiplies by
  }
  return p;
}

void launch_input_to_float(const InputSource& src, float* dst, uint8_t* labels_out, int n,
                           const InputTransform& t, bool training, uint64_t seed,
                           const uint64_t* step, void* stream, uint32_t first_index,
                           const TtaView& view) {
  if (n <= 0) return;
  input_to_float_kernel<<<unsigned(n), 256, 0, as_stream(stream)>>>(
      src, dst, labels_out, input_params(t, view), training && t.augments(), seed, step,
      first_index);
  CP_CUDA_CHECK_LAUNCH("input_to_float_kernel");
}
}  // namespace

void input_to_float(const uint8_t* src, float* dst, int n, const InputTransform& t, bool training,
                    uint64_t seed, const uint64_t* step, void* stream, uint32_t first_index,
                    const TtaView& view) {
  launch_input_to_float(InputSource{src, nullptr, nullptr, nullptr}, dst, nullptr, n, t, training,
                        seed, step, stream, first_index, view);
}

void gather_input_to_float(const uint8_t* images, const uint8_t* labels, const uint32_t* order,
                           const uint64_t* cursor, float* dst, uint8_t* labels_out, int n,
                           const InputTransform& t, bool training, uint64_t seed,
                           const uint64_t* step, void* stream, uint32_t first_index,
                           const TtaView& view) {
  CP_CHECK(images && labels && order && labels_out, "gather_input_to_float: null buffer");
  launch_input_to_float(InputSource{images, labels, order, cursor}, dst, labels_out, n, t,
                        training, seed, step, stream, first_index, view);
}

void advance_cursor(uint64_t* cursor, uint32_t by, void* stream) {
  advance_cursor_kernel<<<1, 1, 0, as_stream(stream)>>>(cursor, by);
  CP_CUDA_CHECK_LAUNCH("advance_cursor_kernel");
}

}  // namespace convpool::cuda
