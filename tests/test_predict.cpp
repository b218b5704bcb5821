// convpool predict and its image files: PNG and JPEG decode to the pixels written, every PNG
// colour type becomes RGB, resampling keeps a model-sized image exact and averages blocks when
// shrinking, bad files fail one by one, and predictions on a test set written out as PNG
// files are eval's predictions on that test set.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <png.h>
#include <zlib.h>
#include <random>

#include "convpool/data.h"
#include "convpool/error.h"
#include "convpool/image_file.h"
#include "layer_harness.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;
namespace fs = std::filesystem;

namespace {

RgbImage random_image(int w, int h, uint64_t seed) {
  std::mt19937_64 rng(seed);
  RgbImage im;
  im.width = w, im.height = h;
  im.rgb.resize(size_t(w) * h * 3);
  for (auto& v : im.rgb) v = uint8_t(rng());
  return im;
}

// A PNG of another colour type, through libpng's simplified writer.
void write_png_format(const std::string& path, int w, int h, png_uint_32 format,
                      const std::vector<uint8_t>& pixels) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = png_uint_32(w), img.height = png_uint_32(h), img.format = format;
  ASSERT_TRUE(png_image_write_to_file(&img, path.c_str(), 0, pixels.data(), 0, nullptr))
      << img.message;
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

}  // namespace

TEST(ImageFile, PngRoundTripsExactlyAndJpegClosely) {
  TempDir d;
  const RgbImage im = random_image(37, 23, fresh_seed());
  write_png(d.str("a.png"), im);
  const RgbImage back = read_image_file(d.str("a.png"));
  EXPECT_EQ(back.width, 37);
  EXPECT_EQ(back.height, 23);
  EXPECT_EQ(back.rgb, im.rgb);
  // A smooth image survives JPEG at quality 100 to within a few levels.
  RgbImage smooth;
  smooth.width = 40, smooth.height = 30;
  for (int y = 0; y < 30; ++y)
    for (int x = 0; x < 40; ++x)
      for (int c = 0; c < 3; ++c) smooth.rgb.push_back(uint8_t(2 * x + y + 20 * c));
  write_jpeg(d.str("a.jpg"), smooth, 100);
  const RgbImage j = read_image_file(d.str("a.jpg"));
  ASSERT_EQ(j.rgb.size(), smooth.rgb.size());
  int worst = 0;
  for (size_t i = 0; i < j.rgb.size(); ++i) worst = std::max(worst, std::abs(j.rgb[i] - smooth.rgb[i]));
  EXPECT_LE(worst, 8);
  // The format is told by the bytes, not the name.
  fs::copy_file(d.str("a.png"), d.str("really-a-png.jpg"));
  EXPECT_EQ(read_image_file(d.str("really-a-png.jpg")).rgb, im.rgb);
}

TEST(ImageFile, GreyPaletteAndAlphaPngsBecomeRgb) {
  TempDir d;
  const int w = 5, h = 4;
  std::vector<uint8_t> grey(size_t(w) * h);
  for (size_t i = 0; i < grey.size(); ++i) grey[i] = uint8_t(13 * i);
  write_png_format(d.str("g.png"), w, h, PNG_FORMAT_GRAY, grey);
  const RgbImage g = read_image_file(d.str("g.png"));
  for (size_t i = 0; i < grey.size(); ++i)
    for (int c = 0; c < 3; ++c) ASSERT_EQ(g.rgb[i * 3 + size_t(c)], grey[i]) << i;
  // Alpha: opaque pixels keep their colour, transparent ones become black.
  std::vector<uint8_t> rgba;
  for (int i = 0; i < w * h; ++i) rgba.insert(rgba.end(), {200, 100, 50, uint8_t(i % 2 ? 255 : 0)});
  write_png_format(d.str("a.png"), w, h, PNG_FORMAT_RGBA, rgba);
  const RgbImage a = read_image_file(d.str("a.png"));
  for (int i = 0; i < w * h; ++i) {
    const uint8_t want[3] = {uint8_t(i % 2 ? 200 : 0), uint8_t(i % 2 ? 100 : 0), uint8_t(i % 2 ? 50 : 0)};
    for (int c = 0; c < 3; ++c) ASSERT_EQ(a.rgb[size_t(i) * 3 + size_t(c)], want[c]) << i;
  }
  // A colour-mapped (palette) PNG.
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = w, img.height = h, img.format = PNG_FORMAT_RGB_COLORMAP;
  img.colormap_entries = 2;
  const uint8_t colormap[6] = {10, 20, 30, 240, 220, 200};
  std::vector<uint8_t> index(size_t(w) * h);
  for (size_t i = 0; i < index.size(); ++i) index[i] = uint8_t(i % 3 == 0);
  ASSERT_TRUE(png_image_write_to_file(&img, d.str("p.png").c_str(), 0, index.data(), 0, colormap));
  const RgbImage p = read_image_file(d.str("p.png"));
  for (size_t i = 0; i < index.size(); ++i)
    for (int c = 0; c < 3; ++c) ASSERT_EQ(p.rgb[i * 3 + size_t(c)], colormap[index[i] * 3 + size_t(c)]);
}

TEST(ImageFile, ResamplingKeepsAModelSizedImageAndAveragesBlocks) {
  const RgbImage im = random_image(32, 32, fresh_seed());
  const std::vector<uint8_t> same = resample_to_square(im, 32, ImageFit::crop);
  for (int c = 0; c < 3; ++c)
    for (int p = 0; p < 32 * 32; ++p)
      ASSERT_EQ(same[size_t(c) * 1024 + size_t(p)], im.rgb[size_t(p) * 3 + size_t(c)]);
  // 64x64 made of 2x2 blocks of one value each: shrinking to 32 gives the blocks' values.
  RgbImage blocks;
  blocks.width = blocks.height = 64;
  blocks.rgb.resize(64 * 64 * 3);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x)
      for (int c = 0; c < 3; ++c)
        blocks.rgb[(size_t(y) * 64 + size_t(x)) * 3 + size_t(c)] = im.rgb[(size_t(y / 2) * 32 + size_t(x / 2)) * 3 + size_t(c)];
  EXPECT_EQ(resample_to_square(blocks, 32, ImageFit::stretch), same);
  // crop takes the central square: a 96x64 image whose middle 64 columns are the blocks.
  RgbImage wide;
  wide.width = 96, wide.height = 64;
  wide.rgb.assign(96 * 64 * 3, 255);
  for (int y = 0; y < 64; ++y)
    std::copy_n(blocks.rgb.begin() + long(y) * 64 * 3, 64 * 3, wide.rgb.begin() + (long(y) * 96 + 16) * 3);
  EXPECT_EQ(resample_to_square(wide, 32, ImageFit::crop), same);
  EXPECT_NE(resample_to_square(wide, 32, ImageFit::stretch), same);
  // Enlarging a constant image stays constant.
  RgbImage tiny;
  tiny.width = 3, tiny.height = 5;
  tiny.rgb.assign(3 * 5 * 3, 77);
  for (uint8_t v : resample_to_square(tiny, 32, ImageFit::stretch)) ASSERT_EQ(v, 77);
}

TEST(ImageFile, BadFilesAreOneLineErrorsNamingTheFile) {
  TempDir d;
  write_png(d.str("ok.png"), random_image(40, 40, 3));
  write_jpeg(d.str("ok.jpg"), random_image(40, 40, 4), 90);
  const std::string png = read_all(d.str("ok.png")), jpg = read_all(d.str("ok.jpg"));
  std::ofstream(d.str("empty.png"));
  std::ofstream(d.str("text.png")) << "hello";
  std::ofstream(d.str("half.png"), std::ios::binary) << png.substr(0, png.size() / 2);
  std::ofstream(d.str("half.jpg"), std::ios::binary) << jpg.substr(0, jpg.size() / 2);
  // A PNG header claiming 100000 x 100000 pixels (its CRC made right, so libpng reads it).
  std::string huge = png.substr(0, 33);
  for (int k : {16, 20}) {
    huge[size_t(k)] = 0, huge[size_t(k) + 1] = 1, huge[size_t(k) + 2] = char(0x86), huge[size_t(k) + 3] = char(0xA0);
  }
  const uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(huge.data() + 12), 17));
  for (int k = 0; k < 4; ++k) huge[size_t(29 + k)] = char(crc >> (24 - 8 * k));
  std::ofstream(d.str("huge.png"), std::ios::binary) << huge << png.substr(33);
  fs::create_directory(d.str("dir.png"));
  struct Case {
    const char* file;
    const char* says;
  };
  for (const Case& c : {Case{"empty.png", "empty file (0 bytes)"}, Case{"text.png", "not a PNG or JPEG"},
                        Case{"half.png", "corrupt or truncated PNG"},
                        Case{"half.jpg", "corrupt or truncated JPEG"},
                        Case{"huge.png", "100000x100000 pixels, over the limit"},
                        Case{"dir.png", "is a directory"}, Case{"none.png", "No such file"}}) {
    const std::string err = error_of([&] { read_image_file(d.str(c.file)); });
    EXPECT_NE(err.find(c.says), std::string::npos) << c.file << ": " << err;
    EXPECT_NE(err.find(c.file), std::string::npos) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  }
}

// The test images written out as PNG files: predict's classes are eval's predictions, so its
// accuracy on them is eval's; a bad file among them fails alone, with exit status 1.
TEST(Predict, TestImagesAsPngGiveEvalsAccuracy) {
  TempDir d;
  write_cifar_dir(d.str("data"), 24, fresh_seed());
  const std::string run = d.str("run");
  ASSERT_EQ(run_convpool("train --device cpu --threads 1 --quiet --epochs 2 --batch 16 --normalize "
                         "--data " + d.str("data") + " --out " + run)
                .exit_code,
            0);
  const Dataset test = load_cifar10(d.str("data"), "test");
  fs::create_directory(d.str("png"));
  for (size_t i = 0; i < test.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "png/%03zu.png", i);
    write_png(d.str(name), planar_to_image(test.image(i), 32));
  }
  const CommandResult e = run_convpool("eval --device cpu --json --data " + d.str("data") +
                                       " --checkpoint " + run + "/last.safetensors");
  ASSERT_EQ(e.exit_code, 0) << e.output;
  const double eval_accuracy = nlohmann::json::parse(e.output.substr(e.output.find('{')))["accuracy"];
  const CommandResult p = run_convpool("predict --device cpu --json --batch 7 --top 2 --checkpoint " +
                                       run + "/last.safetensors " + d.str("png"));
  ASSERT_EQ(p.exit_code, 0) << p.output;
  const auto j = nlohmann::json::parse(p.output.substr(p.output.find('{')));
  ASSERT_EQ(j["predictions"].size(), test.size());
  int correct = 0;
  for (size_t i = 0; i < test.size(); ++i) {
    const auto& top = j["predictions"][i]["top"];
    ASSERT_EQ(top.size(), 2u);
    EXPECT_GE(top[0]["probability"].get<double>(), top[1]["probability"].get<double>());
    correct += top[0]["index"].get<int>() == test.labels[i];
    EXPECT_EQ(top[0]["class"], test.class_names[size_t(top[0]["index"].get<int>())]);
  }
  EXPECT_DOUBLE_EQ(double(correct) / double(test.size()), eval_accuracy);

  // A bad file among good ones: one error line for it, predictions for the rest, exit 1.
  std::ofstream(d.str("png/zz-broken.png")) << "not an image";
  const CommandResult mixed = run_convpool("predict --device cpu --checkpoint " + run +
                                           "/last.safetensors " + d.str("png"));
  EXPECT_EQ(mixed.exit_code, 1) << mixed.output;
  EXPECT_NE(mixed.output.find("zz-broken.png: not a PNG or JPEG image"), std::string::npos)
      << mixed.output;
  EXPECT_NE(mixed.output.find("1 of " + std::to_string(test.size() + 1) + " images could not be read"),
            std::string::npos)
      << mixed.output;
  EXPECT_NE(mixed.output.find("png/000.png: "), std::string::npos) << mixed.output;

  // A file name that is not UTF-8 still gives JSON (the byte replaced), not a crash.
  fs::remove(d.str("png/zz-broken.png"));
  fs::copy_file(d.str("png/000.png"), d.str("png/\xff-latin1.png"));
  const CommandResult odd = run_convpool("predict --device cpu --json --checkpoint " + run +
                                         "/last.safetensors " + d.str("png"));
  ASSERT_EQ(odd.exit_code, 0) << odd.output;
  EXPECT_EQ(nlohmann::json::parse(odd.output.substr(odd.output.find('{')))["predictions"].size(),
            test.size() + 1);
}
