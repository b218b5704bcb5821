// PNG through libpng's simplified API (it converts grey, palette, 16-bit and alpha itself) and
// JPEG through libjpeg-turbo: both are Debian's, maintained and fuzzed upstream, which a
// single-header decoder is not to the same degree.
#include "convpool/image_file.h"

// clang-format off
#include <cstdio>   // jpeglib.h needs FILE declared first
#include <jpeglib.h>
#include <jerror.h>  // the warning codes
// clang-format on
#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstring>
#include <memory>

#include "convpool/error.h"
#include "convpool/file_io.h"

namespace convpool {

namespace {
// Image files are read whole; a 64 Mi-pixel PNG or JPEG is far smaller than this.
constexpr size_t kMaxImageFileBytes = size_t(256) << 20;

void check_dimensions(const std::string& origin, uint64_t width, uint64_t height) {
  if (width == 0 || height == 0)
    CP_USER_ERROR(origin << ": the image is empty (" << width << "x" << height << ")");
  if (width > uint64_t(kMaxImageSide) || height > uint64_t(kMaxImageSide) ||
      width * height > kMaxImagePixels)
    CP_USER_ERROR(origin << ": the image is " << width << "x" << height
                         << " pixels, over the limit (a side of " << kMaxImageSide << ", "
                         << (kMaxImagePixels >> 20) << " Mi pixels)");
}

RgbImage decode_png(const std::string& bytes, const std::string& origin) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, bytes.data(), bytes.size()))
    CP_USER_ERROR(origin << ": not a readable PNG (" << img.message << ")");
  try {
    check_dimensions(origin, img.width, img.height);
  } catch (...) {
    png_image_free(&img);
    throw;
  }
  RgbImage out;
  out.source_channels = ((img.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1) +
                        ((img.format & PNG_FORMAT_FLAG_ALPHA) ? 1 : 0);
  img.format = PNG_FORMAT_RGB;  // alpha is composited onto the background below
  out.width = int(img.width);
  out.height = int(img.height);
  out.rgb.resize(PNG_IMAGE_SIZE(img));
  png_color black{0, 0, 0};
  if (!png_image_finish_read(&img, &black, out.rgb.data(), 0, nullptr))
    CP_USER_ERROR(origin << ": corrupt or truncated PNG (" << img.message << ")");
  return out;
}

// libjpeg reports errors by calling error_exit, which must not return: it jumps back to
// decode_jpeg's setjmp. Warnings of missing or damaged data (a truncated file is one: libjpeg
// fills the rest with grey) count as errors too.
struct JpegErrors {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {};
};

[[noreturn]] void jpeg_on_error(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegErrors*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

void jpeg_on_message(j_common_ptr c, int level) {
  if (level >= 0) return;  // trace messages
  // Warnings that mean missing or damaged image data; others (an unknown JFIF revision,
  // extraneous bytes before a marker) are common in photos other readers open.
  const int code = c->err->msg_code;
  if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC ||
      code == JWRN_NOT_SEQUENTIAL || code == JWRN_HUFF_BAD_CODE)
    jpeg_on_error(c);
}

// The decoder's state lives on the heap, reached through a pointer set before setjmp and never
// changed after it, so that nothing longjmp returns to is indeterminate.
struct JpegDecode {
  jpeg_decompress_struct info;
  JpegErrors errors;
  RgbImage image;
};

RgbImage decode_jpeg(const std::string& bytes, const std::string& origin) {
  const auto s = std::make_unique<JpegDecode>();
  s->info.err = jpeg_std_error(&s->errors.mgr);
  s->errors.mgr.error_exit = jpeg_on_error;
  s->errors.mgr.emit_message = jpeg_on_message;
  if (setjmp(s->errors.jump)) {
    jpeg_destroy_decompress(&s->info);
    CP_USER_ERROR(origin << ": corrupt or truncated JPEG (" << s->errors.message << ")");
  }
  jpeg_create_decompress(&s->info);
  jpeg_mem_src(&s->info, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&s->info, TRUE);
  const auto fail = [&](const std::string& why) {
    jpeg_destroy_decompress(&s->info);
    CP_USER_ERROR(origin << ": " << why);
  };
  try {
    check_dimensions(origin, s->info.image_width, s->info.image_height);
  } catch (...) {
    jpeg_destroy_decompress(&s->info);
    throw;
  }
  if (s->info.jpeg_color_space == JCS_CMYK || s->info.jpeg_color_space == JCS_YCCK)
    fail("a CMYK JPEG (convert it to RGB first)");
  s->image.source_channels = s->info.jpeg_color_space == JCS_GRAYSCALE ? 1 : 3;
  s->info.out_color_space = JCS_RGB;
  jpeg_start_decompress(&s->info);
  if (s->info.output_components != 3) fail("the JPEG does not decode to RGB");
  s->image.width = int(s->info.output_width);
  s->image.height = int(s->info.output_height);
  s->image.rgb.resize(size_t(s->image.width) * size_t(s->image.height) * 3);
  while (s->info.output_scanline < s->info.output_height) {
    JSAMPROW row = s->image.rgb.data() + size_t(s->info.output_scanline) * s->image.width * 3;
    jpeg_read_scanlines(&s->info, &row, 1);
  }
  jpeg_finish_decompress(&s->info);
  jpeg_destroy_decompress(&s->info);
  return std::move(s->image);
}

bool starts_with(const std::string& bytes, const char* magic, size_t n) {
  return bytes.size() >= n && std::memcmp(bytes.data(), magic, n) == 0;
}

// Weights of the input pixels [first, first + count) for each output pixel along one axis:
// area coverage when shrinking (a whole factor averages each block), linear interpolation
// between pixel centres when enlarging; both give the identity at scale 1.
struct Taps {
  std::vector<int> first;
  std::vector<std::vector<float>> weights;
};

Taps axis_taps(int in, int out) {
  Taps t;
  const double scale = double(in) / double(out);
  for (int o = 0; o < out; ++o) {
    std::vector<float> w;
    int first = 0;
    if (scale >= 1.0) {
      const double lo = o * scale, hi = (o + 1) * scale;
      first = int(std::floor(lo));
      for (int i = first; i < in && i < hi; ++i)
        w.push_back(float((std::min(hi, double(i + 1)) - std::max(lo, double(i))) / scale));
    } else {
      const double centre = (o + 0.5) * scale - 0.5;
      const int i0 = int(std::floor(centre));
      const double frac = centre - i0;
      first = std::clamp(i0, 0, in - 1);
      const int i1 = std::clamp(i0 + 1, 0, in - 1);
      if (i1 == first) {
        w = {1.f};
      } else {
        w = {float(1.0 - frac), float(frac)};
      }
    }
    t.first.push_back(first);
    t.weights.push_back(std::move(w));
  }
  return t;
}
}  // namespace

RgbImage decode_image(const std::string& bytes, const std::string& origin) {
  if (bytes.empty()) CP_USER_ERROR(origin << ": empty file (0 bytes), not an image");
  if (starts_with(bytes, "\x89PNG\r\n\x1a\n", 8)) return decode_png(bytes, origin);
  if (starts_with(bytes, "\xff\xd8\xff", 3)) return decode_jpeg(bytes, origin);
  CP_USER_ERROR(origin << ": not a PNG or JPEG image");
}

RgbImage read_image_file(const std::string& path) {
  return decode_image(read_regular_file(path, kMaxImageFileBytes, "image file"), path);
}

std::vector<uint8_t> resample_to_square(const RgbImage& image, int side, ImageFit fit) {
  CP_CHECK(image.width > 0 && image.height > 0 && side > 0, "resample: empty image");
  int x0 = 0, y0 = 0, w = image.width, h = image.height;
  if (fit == ImageFit::crop) {
    const int s = std::min(w, h);
    x0 = (w - s) / 2, y0 = (h - s) / 2, w = s, h = s;
  }
  const Taps tx = axis_taps(w, side), ty = axis_taps(h, side);
  // Rows first: h x side x 3, then columns into the planar output.
  std::vector<float> rows(size_t(h) * side * 3);
  for (int y = 0; y < h; ++y)
    for (int o = 0; o < side; ++o)
      for (int c = 0; c < 3; ++c) {
        float sum = 0.f;
        for (size_t k = 0; k < tx.weights[o].size(); ++k) {
          const int x = x0 + tx.first[o] + int(k);
          sum += tx.weights[o][k] *
                 image.rgb[(size_t(y0 + y) * image.width + size_t(x)) * 3 + size_t(c)];
        }
        rows[(size_t(y) * side + o) * 3 + size_t(c)] = sum;
      }
  std::vector<uint8_t> planar(size_t(3) * side * side);
  for (int o = 0; o < side; ++o)
    for (int x = 0; x < side; ++x)
      for (int c = 0; c < 3; ++c) {
        float sum = 0.f;
        for (size_t k = 0; k < ty.weights[o].size(); ++k)
          sum += ty.weights[o][k] * rows[(size_t(ty.first[o] + int(k)) * side + x) * 3 + size_t(c)];
        planar[(size_t(c) * side + o) * side + x] =
            uint8_t(std::clamp(std::lround(sum), 0L, 255L));
      }
  return planar;
}

RgbImage planar_to_image(const uint8_t* planar, int side) {
  RgbImage im;
  im.width = im.height = side;
  im.rgb.resize(size_t(side) * side * 3);
  for (int c = 0; c < 3; ++c)
    for (int p = 0; p < side * side; ++p)
      im.rgb[size_t(p) * 3 + size_t(c)] = planar[size_t(c) * side * side + size_t(p)];
  return im;
}

void write_png(const std::string& path, const RgbImage& image) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = png_uint_32(image.width);
  img.height = png_uint_32(image.height);
  img.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&img, nullptr, &size, 0, image.rgb.data(), 0, nullptr))
    CP_USER_ERROR("cannot encode " << path << " as PNG (" << img.message << ")");
  std::string bytes(size, '\0');
  if (!png_image_write_to_memory(&img, bytes.data(), &size, 0, image.rgb.data(), 0, nullptr))
    CP_USER_ERROR("cannot encode " << path << " as PNG (" << img.message << ")");
  bytes.resize(size);
  write_file_atomic(path, bytes);
}

namespace {
struct JpegEncode {
  jpeg_compress_struct info;
  JpegErrors errors;
  unsigned char* out = nullptr;
  unsigned long size = 0;
};
}  // namespace

void write_jpeg(const std::string& path, const RgbImage& image, int quality) {
  const auto s = std::make_unique<JpegEncode>();
  s->info.err = jpeg_std_error(&s->errors.mgr);
  s->errors.mgr.error_exit = jpeg_on_error;
  if (setjmp(s->errors.jump)) {
    jpeg_destroy_compress(&s->info);
    std::free(s->out);
    CP_USER_ERROR("cannot encode " << path << " as JPEG (" << s->errors.message << ")");
  }
  jpeg_create_compress(&s->info);
  jpeg_mem_dest(&s->info, &s->out, &s->size);
  s->info.image_width = JDIMENSION(image.width);
  s->info.image_height = JDIMENSION(image.height);
  s->info.input_components = 3;
  s->info.in_color_space = JCS_RGB;
  jpeg_set_defaults(&s->info);
  jpeg_set_quality(&s->info, std::clamp(quality, 1, 100), TRUE);
  jpeg_start_compress(&s->info, TRUE);
  while (s->info.next_scanline < s->info.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(image.rgb.data()) +
                   size_t(s->info.next_scanline) * size_t(image.width) * 3;
    jpeg_write_scanlines(&s->info, &row, 1);
  }
  jpeg_finish_compress(&s->info);
  const std::string bytes(reinterpret_cast<const char*>(s->out), s->size);
  jpeg_destroy_compress(&s->info);
  std::free(s->out);
  write_file_atomic(path, bytes);
}

}  // namespace convpool
