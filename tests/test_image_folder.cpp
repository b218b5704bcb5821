// Image folders: the listing and its one-line refusals, decoding into side x side records
// equal to predict's fitting of each file, the cache (reused whole, a changed file decoded
// again, unreadable files counted and reported), an evenly spaced --limit. The commands on
// folders are test_image_folder_cli.cpp.
#include <gtest/gtest.h>
#include <png.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "convpool/checkpoint.h"
#include "convpool/image_file.h"
#include "convpool/image_folder.h"
#include "layer_harness.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;
namespace fs = std::filesystem;

namespace {
// A folder of `classes` classes and 2 images each in train/ and val/.
std::string small_folder(const TempDir& d, const std::string& name, int classes = 3) {
  write_image_folder(d.str(name), classes, 2, 2, 5);
  return d.str(name);
}

std::string scan_error(const std::string& root) {
  return error_of([&] { scan_image_folder(root); });
}
}  // namespace

TEST(ImageFolder, ScanSortsClassesAndCountsWhatItPassesOver) {
  TempDir d;
  const std::vector<std::string> names = write_image_folder(d.str("f"), 4, 3, 2, fresh_seed());
  std::ofstream(d.str("f/train/c0/readme.txt")) << "not an image";
  std::ofstream(d.str("f/train/c0/.hidden.png")) << "hidden";
  std::ofstream(d.str("f/train/loose.png")) << "outside any class";
  fs::create_directories(d.str("f/train/c1/nested"));
  fs::copy_file(d.str("f/train/c1/img0.png"), d.str("f/train/c1/nested/deep.png"));
  // A link back up: followed, it would loop for ever.
  fs::create_directory_symlink("..", d.str("f/train/c1/loop"));
  // Hidden folders, as a class and inside one, and a hidden file beside the classes.
  fs::create_directories(d.str("f/train/.thumbnails"));
  fs::create_directories(d.str("f/train/c2/.git"));
  fs::copy_file(d.str("f/train/c2/img0.png"), d.str("f/train/c2/.git/x.png"));
  std::ofstream(d.str("f/train/.DS_Store")) << "x";
  // A dangling link beside the classes: a loose entry, not a failed listing.
  fs::create_symlink("nowhere", d.str("f/train/dangling"));
  // A file name that is not UTF-8 (Latin-1): passed over, counted, shown escaped.
  fs::copy_file(d.str("f/train/c2/img0.png"), d.str("f/train/c2/caf\xe9.png"));
  const ImageFolder f = scan_image_folder(d.str("f"));
  EXPECT_EQ(f.class_names, names);
  EXPECT_EQ(f.class_names.back(), "zz-c3");
  ASSERT_EQ(f.train.per_class.size(), 4u);
  EXPECT_EQ(f.train.per_class[0], 3u);
  EXPECT_EQ(f.train.per_class[1], 4u);  // the nested file counts; the loop is not followed
  EXPECT_EQ(f.train.files.size(), 13u);
  EXPECT_EQ(f.train.not_images, 1u);  // readme.txt
  EXPECT_EQ(f.train.hidden, 4u);      // .hidden.png, .thumbnails, .git, .DS_Store
  EXPECT_EQ(f.train.loose, 2u);       // loose.png, dangling
  EXPECT_EQ(f.train.symlinked_dirs, 1u);
  EXPECT_EQ(f.train.bad_names, 1u);
  EXPECT_EQ(f.test.name, "val");
  EXPECT_EQ(f.test.files.size(), 8u);
  for (size_t i = 1; i < f.train.files.size(); ++i)
    EXPECT_LE(f.train.files[i - 1].label, f.train.files[i].label);
  const std::string said = describe_split(f, f.train);
  EXPECT_NE(said.find("13 images in 4 classes"), std::string::npos) << said;
  EXPECT_NE(said.find("passed over 1 file(s) that are not .png"), std::string::npos) << said;
  EXPECT_NE(said.find("passed over 4 hidden file(s) or folder(s)"), std::string::npos) << said;
  EXPECT_NE(said.find("1 file(s) whose names are not UTF-8 (the first: " + d.str("f") +
                      "/train/c2/caf\\xE9.png)"),
            std::string::npos)
      << said;
  // A class folder so named cannot be a class name (checkpoints hold them as text).
  fs::create_directories(d.str("f/train/caf\xe9"));
  EXPECT_NE(scan_error(d.str("f")).find("train/caf\\xE9: a class folder whose name is not UTF-8"),
            std::string::npos);
  EXPECT_NE(said.find("did not follow 1 linked folder"), std::string::npos) << said;
}

// Each bad layout: one line naming the place and what to do.
TEST(ImageFolder, BadLayoutsAreRefusedWithOneLine) {
  TempDir d;
  EXPECT_NE(scan_error(d.str("missing")).find("not a folder"), std::string::npos);
  fs::create_directories(d.str("empty"));
  EXPECT_NE(scan_error(d.str("empty")).find("no train/ folder"), std::string::npos);

  const std::string no_val = small_folder(d, "noval");
  fs::remove_all(no_val + "/val");
  EXPECT_NE(scan_error(no_val).find("no val/ (or test/) folder"), std::string::npos);

  const std::string both = small_folder(d, "both");
  fs::create_directories(both + "/test/c0");
  EXPECT_NE(scan_error(both).find("both val/ and test/"), std::string::npos);

  const std::string test_named = small_folder(d, "testnamed");
  fs::rename(test_named + "/val", test_named + "/test");
  EXPECT_EQ(scan_image_folder(test_named).test.name, "test");

  const std::string empty_class = small_folder(d, "emptyclass");
  fs::create_directories(empty_class + "/train/c9");
  std::ofstream(empty_class + "/train/c9/notes.txt") << "x";
  const std::string e = scan_error(empty_class);
  EXPECT_NE(e.find("train/c9: no images"), std::string::npos) << e;

  const std::string only_val = small_folder(d, "onlyval");
  fs::create_directories(only_val + "/val/extra");
  EXPECT_NE(scan_error(only_val).find("val/extra: a class that train/ does not have"),
            std::string::npos);

  const std::string no_classes = d.str("noclasses");
  fs::create_directories(no_classes + "/train");
  fs::create_directories(no_classes + "/val");
  std::ofstream(no_classes + "/train/a.png") << "x";
  EXPECT_NE(scan_error(no_classes).find("no class folders"), std::string::npos);

  const std::string empty_val = small_folder(d, "emptyval");
  for (const auto& c : fs::directory_iterator(empty_val + "/val")) fs::remove_all(c.path());
  EXPECT_NE(scan_error(empty_val).find("val: no images"), std::string::npos);

  const std::string many = d.str("many");
  for (int c = 0; c <= kMaxFolderClasses; ++c) {
    fs::create_directories(many + "/train/k" + std::to_string(c));
    fs::create_directories(many + "/val/k" + std::to_string(c));
  }
  EXPECT_NE(scan_error(many).find("at most 256 classes"), std::string::npos);

  const std::string capped = small_folder(d, "capped");
  EXPECT_NE(error_of([&] { scan_image_folder(capped, 5); }).find("more than 5 image files"),
            std::string::npos);

  if (::geteuid() != 0) {  // root reads any folder
    const std::string locked = small_folder(d, "locked");
    ::chmod((locked + "/train/c1").c_str(), 0);
    EXPECT_NE(scan_error(locked).find("cannot list the folder"), std::string::npos);
    ::chmod((locked + "/train/c1").c_str(), 0755);
  }
}

// Every record is predict's fitting of its file (shorter side resized, centre cropped), grey
// and alpha PNGs become RGB and are counted, and the cache gives the same records back.
TEST(ImageFolder, RecordsAreEachFilesFitAndTheCacheGivesThemBack) {
  TempDir d;
  const std::string root = d.str("f");
  write_image_folder(root, 3, 6, 2, fresh_seed());
  // Two more colour types through libpng: grey with alpha, and RGBA.
  for (const auto& [name, format, channels] :
       {std::tuple{"ga.png", png_uint_32(PNG_FORMAT_GA), 2},
        std::tuple{"rgba.png", png_uint_32(PNG_FORMAT_RGBA), 4}}) {
    std::vector<uint8_t> px(size_t(20 * 30 * channels));
    for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 7);
    png_image img{};
    img.version = PNG_IMAGE_VERSION;
    img.width = 20, img.height = 30, img.format = format;
    ASSERT_TRUE(png_image_write_to_file(&img, (root + "/train/c1/" + name).c_str(), 0, px.data(), 0,
                                        nullptr));
  }
  const ImageFolder f = scan_image_folder(root);
  FolderLoadOptions o;
  o.side = 48;
  o.cache_dir = d.str("cache");
  size_t calls = 0;
  o.progress = [&](size_t done, size_t total) {
    ++calls;
    EXPECT_LE(done, total);
  };
  FolderLoadReport r;
  const Dataset a = load_image_folder(f, "train", 0, o, &r);
  ASSERT_EQ(a.size(), f.train.files.size());
  EXPECT_EQ(a.side, 48);
  EXPECT_EQ(a.classes, 3);
  EXPECT_EQ(a.class_names, f.class_names);
  EXPECT_EQ(r.decoded, a.size());
  EXPECT_EQ(r.cached, 0u);
  EXPECT_EQ(r.converted, 2u);  // the GA and RGBA PNGs (the grey-pixel ones are RGB files)
  EXPECT_GT(r.resized, 0u);
  EXPECT_TRUE(r.failures.empty());
  EXPECT_GE(calls, 1u);
  for (size_t i = 0; i < a.size(); ++i) {
    const std::vector<uint8_t> want =
        resample_to_square(read_image_file(root + "/" + f.train.files[i].path), 48, ImageFit::crop);
    ASSERT_EQ(std::vector<uint8_t>(a.image(i), a.image(i) + a.image_bytes()), want)
        << f.train.files[i].path;
    ASSERT_EQ(a.labels[i], f.train.files[i].label);
  }
  // Again: everything from the cache, the same bytes.
  const Dataset b = load_image_folder(scan_image_folder(root), "train", 0, o, &r);
  EXPECT_EQ(r.decoded, 0u);
  EXPECT_EQ(r.cached, a.size());
  EXPECT_EQ(b.pixels, a.pixels);
  EXPECT_EQ(b.labels, a.labels);
  // Over a memory budget: the same records, read from the mapped cache file.
  o.memory_budget = a.pixels.size() - 1;
  const Dataset mapped = load_image_folder(scan_image_folder(root), "train", 0, o, &r);
  EXPECT_TRUE(r.streamed);
  ASSERT_NE(mapped.mapped, nullptr);
  EXPECT_TRUE(mapped.pixels.empty());
  ASSERT_EQ(mapped.size(), a.size());
  EXPECT_EQ(std::memcmp(mapped.pixel_data(), a.pixels.data(), a.pixels.size()), 0);
  o.memory_budget = a.pixels.size();  // fits exactly: in memory
  EXPECT_EQ(load_image_folder(scan_image_folder(root), "train", 0, o, &r).mapped, nullptr);
  EXPECT_FALSE(r.streamed);
  // Another side is another cache, beside the first; streamed as it is first written.
  o.side = 24;
  o.memory_budget = 1;
  const Dataset c = load_image_folder(scan_image_folder(root), "train", 0, o, &r);
  EXPECT_EQ(r.decoded, a.size());
  EXPECT_TRUE(r.streamed);
  EXPECT_EQ(c.image_bytes(), size_t(3 * 24 * 24));
  o.memory_budget = 0;
  const Dataset c_again = load_image_folder(scan_image_folder(root), "train", 0, o, &r);
  EXPECT_EQ(std::memcmp(c_again.pixels.data(), c.pixel_data(), c.pixel_bytes()), 0);
  o.side = 48;
  load_image_folder(scan_image_folder(root), "train", 0, o, &r);
  EXPECT_EQ(r.decoded, 0u);
}

// A file rewritten (new pixels, new time) is decoded again and only it; a file that cannot be
// read is left out, counted, named, and remembered by the cache; a removed file leaves the
// records; a damaged cache is rebuilt rather than trusted.
TEST(ImageFolder, AChangedFileIsDecodedAgainAndBadFilesAreCounted) {
  TempDir d;
  const std::string root = d.str("f");
  write_image_folder(root, 2, 4, 1, fresh_seed());
  FolderLoadOptions o;
  o.side = 16;
  FolderLoadReport r;
  const Dataset first = load_image_folder(scan_image_folder(root), "train", 0, o, &r);
  EXPECT_EQ(r.decoded, 8u);
  EXPECT_NE(r.cache_path.find(root + "/.convpool-cache/"), std::string::npos) << r.cache_path;

  // Rewrite one image with other pixels.
  const std::string changed = root + "/train/c0/img0.png";
  RgbImage white;
  white.width = white.height = 16;
  white.rgb.assign(16 * 16 * 3, 255);
  write_png(changed, white);
  bump_mtime(changed, 5);
  // And damage two others: a truncated JPEG, and text named .png.
  const std::string jpg = root + "/train/c0/img1.jpg";
  const std::string bytes = read_file(jpg);
  std::ofstream(jpg, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 3);
  bump_mtime(jpg, 5);
  std::ofstream(root + "/train/zz-c1/notes.png") << "hello";
  const Dataset second = load_image_folder(scan_image_folder(root), "train", 0, o, &r);
  EXPECT_EQ(r.decoded, 3u);  // the rewritten, the truncated, the new text file
  EXPECT_EQ(r.cached, 6u);
  ASSERT_EQ(r.failures.size(), 2u);
  EXPECT_NE(r.failures[0].find("img1.jpg: corrupt or truncated JPEG"), std::string::npos)
      << r.failures[0];
  EXPECT_NE(r.failures[1].find("notes.png: not a PNG or JPEG image"), std::string::npos)
      << r.failures[1];
  ASSERT_EQ(second.size(), 7u);
  EXPECT_TRUE(std::all_of(second.image(0), second.image(0) + second.image_bytes(),
                          [](uint8_t v) { return v == 255; }));
  EXPECT_EQ(std::vector<uint8_t>(second.image(1), second.image(1) + second.image_bytes()),
            std::vector<uint8_t>(first.image(2), first.image(2) + first.image_bytes()));
  // The failures are remembered: reported again without decoding.
  load_image_folder(scan_image_folder(root), "train", 0, o, &r);
  EXPECT_EQ(r.decoded, 0u);
  EXPECT_EQ(r.failures.size(), 2u);

  // New pixels of the same size with the old modification time put back (touch -r, cp -p,
  // rsync -t): the status-change time tells, and the file is decoded again.
  {
    const std::string p = root + "/train/zz-c1/img0.png";
    const auto mtime = fs::last_write_time(p);
    const std::string before = read_file(p);
    RgbImage black;
    black.width = black.height = 16;
    black.rgb.assign(16 * 16 * 3, 0);
    write_png(p, black);
    std::string after = read_file(p);
    after.resize(before.size(), '\0');  // the same size: trailing bytes after IEND are ignored
    std::ofstream(p, std::ios::binary | std::ios::trunc) << after;
    fs::last_write_time(p, mtime);
    ASSERT_EQ(fs::file_size(p), before.size());
    const Dataset restamped = load_image_folder(scan_image_folder(root), "train", 0, o, &r);
    EXPECT_EQ(r.decoded, 1u);
    EXPECT_EQ(restamped.image(3)[0], 0);  // zz-c1's first image (after c0's three), now black
  }

  // A file gone between the listing and its reading: reported, and not remembered (the next
  // run tries again); leftovers of dead runs in the cache are removed.
  {
    const std::string p = root + "/train/zz-c1/img1.jpg";
    bump_mtime(p, 3);  // to be decoded, not taken from the cache
    const ImageFolder listed = scan_image_folder(root);
    const std::string keep = read_file(p);
    fs::remove(p);
    std::ofstream(root + "/.convpool-cache/train-16-crop-0-1.u8") << "orphan";
    std::ofstream(root + "/.convpool-cache/train-16-crop-x.u8.tmp-999999999") << "dead writer";
    load_image_folder(listed, "train", 0, o, &r);
    ASSERT_EQ(r.failures.size(), 3u);
    EXPECT_NE(r.failures[1].find("zz-c1/img1.jpg"), std::string::npos) << r.failures[1];
    EXPECT_FALSE(fs::exists(root + "/.convpool-cache/train-16-crop-0-1.u8"));
    EXPECT_FALSE(fs::exists(root + "/.convpool-cache/train-16-crop-x.u8.tmp-999999999"));
    std::ofstream(p, std::ios::binary) << keep;
    const Dataset back = load_image_folder(scan_image_folder(root), "train", 0, o, &r);
    EXPECT_EQ(r.decoded, 1u);  // the file that came back; the two bad ones are remembered
    EXPECT_EQ(r.failures.size(), 2u);
    EXPECT_EQ(back.size(), 7u);

    // A new file that cannot be read leaves the records file as it is (a file that fails run
    // after run must not rewrite the whole cache each time); the cache folder's other files
    // are not touched.
    const std::string records = r.cache_path;
    std::ofstream(root + "/.convpool-cache/report.tmp-20240101") << "the user's";
    fs::copy_file(root + "/train/c0/img0.png", root + "/train/c0/new.png");
    const ImageFolder with_new = scan_image_folder(root);
    fs::remove(root + "/train/c0/new.png");
    load_image_folder(with_new, "train", 0, o, &r);
    EXPECT_EQ(r.failures.size(), 3u);
    EXPECT_EQ(r.cache_path, records);
    EXPECT_TRUE(fs::exists(records));
    EXPECT_TRUE(fs::exists(root + "/.convpool-cache/report.tmp-20240101"));
    load_image_folder(scan_image_folder(root), "train", 0, o, &r);
    EXPECT_EQ(r.decoded, 0u);
    EXPECT_EQ(r.cache_path, records);
  }

  // A manifest claiming more records than it lists (records x bytes would wrap): not trusted.
  {
    const std::string manifest = root + "/.convpool-cache/train-16-crop.json";
    auto j = nlohmann::json::parse(read_file(manifest));
    j["records"] = (uint64_t(1) << 62) + 10;
    std::ofstream(manifest, std::ios::trunc) << j.dump();
    const Dataset rebuilt = load_image_folder(scan_image_folder(root), "train", 0, o, &r);
    EXPECT_EQ(r.decoded, 9u);
    EXPECT_EQ(rebuilt.size(), 7u);
  }

  // A removed file: gone from the records, nothing decoded.
  fs::remove(root + "/train/zz-c1/img3.JPEG");
  const Dataset third = load_image_folder(scan_image_folder(root), "train", 0, o, &r);
  EXPECT_EQ(r.decoded, 0u);
  EXPECT_EQ(third.size(), 6u);

  // A records file cut short: the cache is not trusted, everything is decoded.
  fs::resize_file(r.cache_path, 100);
  load_image_folder(scan_image_folder(root), "train", 0, o, &r);
  EXPECT_EQ(r.decoded, 8u);
  // A manifest that is not JSON: the same.
  for (const auto& e : fs::directory_iterator(root + "/.convpool-cache"))
    if (e.path().extension() == ".json") std::ofstream(e.path()) << "{not json";
  load_image_folder(scan_image_folder(root), "train", 0, o, &r);
  EXPECT_EQ(r.decoded, 8u);

  // A file that changes between the listing and its decoding (a folder still being written):
  // one line naming it; the others are cached, and the next listing decodes it alone.
  // (Changed before the listing too, so that the load decodes it rather than take the cache's.)
  bump_mtime(root + "/train/zz-c1/img0.png", 9);
  const ImageFolder listed = scan_image_folder(root);
  bump_mtime(root + "/train/zz-c1/img0.png", 9);
  const std::string moved = error_of([&] { load_image_folder(listed, "train", 0, o, &r); });
  EXPECT_NE(moved.find("1 file(s) changed while being decoded (the first: " + root +
                       "/train/zz-c1/img0.png)"),
            std::string::npos)
      << moved;
  load_image_folder(scan_image_folder(root), "train", 0, o, &r);
  EXPECT_EQ(r.decoded, 1u);

  // Every file unreadable: one line, not an empty data set.
  const std::string bad = d.str("bad");
  for (const char* split : {"train/a", "val/a"}) {
    fs::create_directories(bad + "/" + split);
    std::ofstream(bad + "/" + split + "/x.png") << "no";
  }
  const std::string e =
      error_of([&] { load_image_folder(scan_image_folder(bad), "train", 0, o, &r); });
  EXPECT_NE(e.find("none of its 1 image files could be read"), std::string::npos) << e;
}

// --limit-train N keeps N images spread evenly over the listing, so every class keeps its
// share rather than the first classes filling it.
TEST(ImageFolder, ALimitKeepsEveryClassesShare) {
  TempDir d;
  write_image_folder(d.str("f"), 4, 10, 1, fresh_seed());
  FolderLoadOptions o;
  o.side = 8;
  const ImageFolder f = scan_image_folder(d.str("f"));
  const Dataset all = load_image_folder(f, "train", 0, o);
  const Dataset some = load_image_folder(f, "train", 12, o);
  ASSERT_EQ(some.size(), 12u);
  std::vector<int> per_class(4, 0);
  for (uint8_t l : some.labels) per_class[l]++;
  EXPECT_EQ(per_class, (std::vector<int>{3, 3, 3, 3}));
  EXPECT_EQ(std::vector<uint8_t>(some.image(1), some.image(1) + some.image_bytes()),
            std::vector<uint8_t>(all.image(3), all.image(3) + all.image_bytes()));
}

// The cache goes to $XDG_CACHE_HOME/convpool/folders/ when it cannot be made beside the
// folder (here a file stands where its folder would go: a read-only folder, for root too).
TEST(ImageFolder, AFolderThatCannotHoldTheCacheCachesElsewhere) {
  TempDir d;
  write_image_folder(d.str("f"), 2, 2, 1, fresh_seed());
  std::ofstream(d.str("f/.convpool-cache")) << "in the way";
  ::setenv("XDG_CACHE_HOME", d.str("xdg").c_str(), 1);
  FolderLoadOptions o;
  o.side = 8;
  FolderLoadReport r;
  load_image_folder(scan_image_folder(d.str("f")), "train", 0, o, &r);
  EXPECT_EQ(r.decoded, 4u);
  load_image_folder(scan_image_folder(d.str("f")), "train", 0, o, &r);
  ::unsetenv("XDG_CACHE_HOME");
  EXPECT_EQ(r.decoded, 0u);
  EXPECT_NE(r.cache_path.find(d.str("xdg") + "/convpool/folders/"), std::string::npos)
      << r.cache_path;
  // --cache-dir that cannot be written: one line.
  o.cache_dir = d.str("f/.convpool-cache/sub");
  EXPECT_NE(error_of([&] {
              load_image_folder(scan_image_folder(d.str("f")), "train", 0, o);
            }).find("cannot write there"),
            std::string::npos);
}

// 100,000 tiny files: listed, decoded and cached without a per-file cost beyond the decode,
// and the second load takes them all from the cache. The times are printed.
TEST(ImageFolder, AHundredThousandTinyFiles) {
  TempDir d;
  const std::string root = d.str("f");
  RgbImage px;
  px.width = px.height = 1;
  px.rgb = {10, 20, 30};
  write_png(d.str("one.png"), px);
  const std::string bytes = read_file(d.str("one.png"));
  for (const char* c : {"a", "b"}) {
    fs::create_directories(root + "/train/" + c);
    fs::create_directories(root + "/val/" + c);
    std::ofstream(root + "/val/" + c + "/v.png", std::ios::binary) << bytes;
    for (int i = 0; i < 50000; ++i)
      std::ofstream(root + "/train/" + c + "/" + std::to_string(i) + ".png", std::ios::binary)
          << bytes;
  }
  FolderLoadOptions o;
  o.side = 2;
  FolderLoadReport r;
  const auto t0 = std::chrono::steady_clock::now();
  const Dataset first = load_image_folder(scan_image_folder(root), "train", 0, o, &r);
  const auto t1 = std::chrono::steady_clock::now();
  ASSERT_EQ(first.size(), 100000u);
  EXPECT_EQ(r.decoded, 100000u);
  EXPECT_EQ(first.labels[49999], 0);
  EXPECT_EQ(first.labels[50000], 1);
  EXPECT_EQ(first.image(77777)[0], 10);  // R plane
  EXPECT_EQ(first.image(77777)[4], 20);  // G plane
  const Dataset again = load_image_folder(scan_image_folder(root), "train", 0, o, &r);
  const auto t2 = std::chrono::steady_clock::now();
  EXPECT_EQ(r.decoded, 0u);
  EXPECT_EQ(r.cached, 100000u);
  EXPECT_EQ(again.pixels, first.pixels);
  std::printf("100,000 files: first load %.2f s, from the cache %.2f s\n",
              std::chrono::duration<double>(t1 - t0).count(),
              std::chrono::duration<double>(t2 - t1).count());
}
