// Image files for `convpool predict`: PNG (libpng) and JPEG (libjpeg-turbo) decoded to 8-bit
// RGB, and resampled to a network's square input. Writers for tests and for handing images
// out (a data set's records as PNG files).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace convpool {

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // height x width x 3, row by row
  // What the file held before it was made RGB: 1 grey, 2 grey and alpha, 3 RGB, 4 RGBA.
  int source_channels = 3;
};

// The largest image read: a side of at most 16384 pixels and 64 Mi pixels in all, checked
// from the header before any pixel is decoded.
constexpr int kMaxImageSide = 16384;
constexpr uint64_t kMaxImagePixels = uint64_t(64) << 20;

// Decodes a PNG or JPEG file (told by its first bytes, not its name): grey, palette, 16-bit
// and alpha PNGs become RGB (alpha composited onto black), grey and YCbCr JPEGs too. Anything
// else (another format, a truncated or corrupt file, 0 bytes, a directory, a FIFO, CMYK, an
// image over the limits) is a one-line error naming the file.
RgbImage read_image_file(const std::string& path);
// The same for bytes already read; `origin` names them in errors.
RgbImage decode_image(const std::string& bytes, const std::string& origin);

// How a non-square image becomes a square input: its central square (the default, as
// torchvision's Resize then CenterCrop), or the whole image stretched.
enum class ImageFit { crop, stretch };

// Resamples `image` to side x side, returned channel-planar (3 x side x side, CIFAR's record
// layout) as 8-bit values: area averaging when shrinking (each output pixel the mean of the
// input it covers, as PIL's BOX and OpenCV's INTER_AREA), linear interpolation between pixel
// centres when enlarging. A side x side image comes back unchanged, and shrinking by a whole
// factor averages each block.
std::vector<uint8_t> resample_to_square(const RgbImage& image, int side, ImageFit fit);

// Writes 8-bit RGB pixels (height x width x 3) as a PNG, or as a JPEG of `quality` (1..100).
void write_png(const std::string& path, const RgbImage& image);
void write_jpeg(const std::string& path, const RgbImage& image, int quality = 95);
// A channel-planar side x side record (a data set's image) as an RgbImage.
RgbImage planar_to_image(const uint8_t* planar, int side);

}  // namespace convpool
