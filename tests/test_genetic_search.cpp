// The genetic pooling search: the genes of a model file and their rewriting, the breeding
// rules, the held-out split, and `convpool study --search genetic` end to end: it runs,
// resumes after SIGKILL to the same result, and two processes sharing its directory reach
// the result of one.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "convpool/file_io.h"
#include "convpool/genetic_search.h"
#include "convpool/graph.h"
#include "convpool/model.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;
namespace fs = std::filesystem;

namespace {

const std::string kModel =
    "input channels=3 height=8 width=8\n"
    "conv name=c1 filters=4 size=3\n"
    "pool max size=2 name=p1   # first\n"
    "repeat 2\n"
    "  conv filters=4 size=3 padding=same in=$in\n"
    "  pool avg size=3 stride=1 pad=1 lr_mult=0.5 name=rp$i\n"
    "end\n"
    "pool avg global\n"
    "dense units=10\n";

TEST(GeneticSearch, GenesAreTheWindowedPoolLinesAndRewriteKeepsTheRest) {
  const auto genes = searchable_pool_lines(kModel, "m");
  ASSERT_EQ(genes.size(), 2u);  // the global pool is --global-pool's
  EXPECT_EQ(genes[0].line, 3);
  EXPECT_EQ(genes[0].layer, "p1");
  EXPECT_EQ(genes[1].line, 6);  // one gene for both copies of the repeat block
  const std::string text = rewrite_pool_lines(kModel, "m", genes, {"avgtopk:k=3", "lip_pool"});
  std::istringstream in(text);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 9u);
  EXPECT_EQ(lines[2], "pool avgtopk size=2 name=p1 k=3  # first");
  EXPECT_EQ(lines[5], "  lip_pool size=3 stride=1 pad=1 lr_mult=0.5 name=rp$i");
  EXPECT_EQ(lines[7], "pool avg global name=pool4");  // every name written out
  EXPECT_EQ(lines[8], "dense units=10 name=dense1");
  // The rewritten model builds, with both copies of the block's pool replaced.
  const ModelSpec spec = parse_model_text(text, "rewritten");
  int lip = 0;
  for (const auto& l : spec.layers) lip += l.type == "lip_pool";
  EXPECT_EQ(lip, 2);
  EXPECT_NO_THROW(Graph::build(spec, GraphOptions{Device::cpu, 1, 0}));
  // A choice's geometry wins over the line's; aliases are spelled as their method.
  const std::string t2 = rewrite_pool_lines(kModel, "m", genes, {"max:size=3,stride=2", "rap:t=2"});
  EXPECT_NE(t2.find("pool max name=p1 size=3 stride=2  # first"), std::string::npos) << t2;
  EXPECT_NE(t2.find("  pool avgtopk size=3 stride=1 pad=1 lr_mult=0.5 name=rp$i k=2"),
            std::string::npos)
      << t2;
  EXPECT_NE(error_of([&] {
              rewrite_pool_lines(kModel, "m", genes, {"nosuch", "max"});
            }).find("unknown pooling method 'nosuch'"),
            std::string::npos);
}

// A pool line that becomes an op keeps its name, and so do the unnamed pools after it;
// a choice cannot rewire the layer.
TEST(GeneticSearch, RewritingKeepsEveryLayersName) {
  const std::string model =
      "input channels=3 height=8 width=8\n"
      "conv filters=4 size=3 padding=same\n"
      "pool max size=2\n"
      "conv filters=4 size=3 padding=same\n"
      "pool max size=2   # second\n"
      "pool avg global\n"
      "dense units=10\n";
  const auto genes = searchable_pool_lines(model, "m");
  ASSERT_EQ(genes.size(), 2u);
  EXPECT_EQ(genes[0].layer, "pool1");
  EXPECT_EQ(genes[1].layer, "pool2");
  const std::string text = rewrite_pool_lines(model, "m", genes, {"lip_pool", "avg"});
  const ModelSpec spec = parse_model_text(text, "rewritten");
  std::vector<std::string> names;
  for (const auto& l : spec.layers) names.push_back(l.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"conv1", "pool1", "conv2", "pool2", "pool3", "dense1"}))
      << text;
  EXPECT_NE(text.find("lip_pool size=2 name=pool1"), std::string::npos) << text;
  EXPECT_NE(text.find("pool avg size=2 name=pool2  # second"), std::string::npos) << text;
  EXPECT_NE(error_of([&] {
              rewrite_pool_lines(model, "m", genes, {"avg:in=conv1", "max"});
            }).find("in= belongs to the pool layer"),
            std::string::npos);
  // In a repeat block names are the copies' defaults: an op there needs the line named.
  const std::string block =
      "input channels=3 height=8 width=8\nrepeat 2\n  conv filters=4 size=3 padding=same\n"
      "  pool max size=2 stride=1 pad=1\nend\ndense units=10\n";
  const auto g2 = searchable_pool_lines(block, "b");
  ASSERT_EQ(g2.size(), 1u);
  EXPECT_NE(error_of([&] {
              rewrite_pool_lines(block, "b", g2, {"lip_pool"});
            }).find("give the repeat block's pool line a name"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { rewrite_pool_lines(block, "b", g2, {"avg"}); }), "");
}

TEST(GeneticSearch, SettingsOutOfRangeAreOneLineErrors) {
  GeneticSettings s;
  EXPECT_NE(error_of([&] { check_genetic_settings(s, 0, 3); }).find("no pool layer to search"),
            std::string::npos);
  EXPECT_NE(error_of([&] { check_genetic_settings(s, 2, 1); }).find("at least two methods"),
            std::string::npos);
  for (auto [field, value, flag] :
       std::vector<std::tuple<int GeneticSettings::*, int, const char*>>{
           {&GeneticSettings::population, 1, "--population"},
           {&GeneticSettings::generations, 0, "--generations"},
           {&GeneticSettings::tournament, 9, "--tournament"},
           {&GeneticSettings::elite, 8, "--elite"}}) {
    GeneticSettings bad;
    bad.*field = value;
    EXPECT_NE(error_of([&] { check_genetic_settings(bad, 2, 3); }).find(flag), std::string::npos)
        << flag;
  }
  GeneticSettings nan_rate;
  nan_rate.mutation = std::nan("");
  EXPECT_NE(error_of([&] { check_genetic_settings(nan_rate, 2, 3); }).find("--mutation"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { check_genetic_settings(GeneticSettings{}, 4, 6); }), "");
}

TEST(GeneticSearch, BreedingIsDeterministicKeepsTheEliteAndMutatesToOtherChoices) {
  GeneticSettings s;
  s.population = 12;
  s.elite = 2;
  s.seed = 7;
  const auto first = first_generation(s, 5, 4);
  ASSERT_EQ(first.size(), 12u);
  EXPECT_EQ(first, first_generation(s, 5, 4));
  std::set<int> used;
  for (auto& g : first) {
    ASSERT_EQ(g.size(), 5u);
    for (int c : g) {
      EXPECT_GE(c, 0);
      EXPECT_LT(c, 4);
      used.insert(c);
    }
  }
  EXPECT_EQ(used.size(), 4u);
  GeneticSettings other = s;
  other.seed = 8;
  EXPECT_NE(first, first_generation(other, 5, 4));

  // Fitness with ties: individuals 3 and 9 share the best accuracy; 9's lower loss wins.
  std::vector<Fitness> fit(12);
  for (int i = 0; i < 12; ++i) fit[size_t(i)] = {0.1 + 0.01 * (i % 5), 2.0};
  fit[3] = {0.9, 1.5};
  fit[9] = {0.9, 1.0};
  const auto next = next_generation(s, 1, 4, first, fit);
  ASSERT_EQ(next.size(), 12u);
  EXPECT_EQ(next[0], first[9]);
  EXPECT_EQ(next[1], first[3]);
  EXPECT_EQ(next, next_generation(s, 1, 4, first, fit));
  EXPECT_NE(next, next_generation(s, 2, 4, first, fit));

  // No crossover and certain mutation over two choices: each child is a parent's complement.
  GeneticSettings flip = s;
  flip.crossover = 0;
  flip.mutation = 1;
  flip.elite = 0;
  const auto two = first_generation(flip, 6, 2);
  const auto flipped = next_generation(flip, 1, 2, two, std::vector<Fitness>(12));
  for (const auto& child : flipped) {
    Genotype parent = child;
    for (int& c : parent) c = 1 - c;
    EXPECT_NE(std::find(two.begin(), two.end(), parent), two.end());
  }
  // Tournaments favour the fit: with one strong individual, it parents most children.
  GeneticSettings keep = s;
  keep.crossover = 0;
  keep.mutation = 0;
  keep.elite = 0;
  keep.tournament = 4;
  const auto kept = next_generation(keep, 1, 4, first, fit);
  EXPECT_GE(std::count(kept.begin(), kept.end(), first[9]), 3);
  for (const auto& child : kept)
    EXPECT_NE(std::find(first.begin(), first.end(), child), first.end());
}

TEST(GeneticSearch, HoldOutIsASeededSortedSubset) {
  const auto a = hold_out_indices(1000, 100, 1);
  ASSERT_EQ(a.size(), 100u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::set<size_t>(a.begin(), a.end()).size(), 100u);
  EXPECT_LT(a.back(), 1000u);
  EXPECT_EQ(a, hold_out_indices(1000, 100, 1));
  EXPECT_NE(a, hold_out_indices(1000, 100, 2));
  // Spread over the set, not its end: a folder's images come class by class.
  EXPECT_LT(a.front(), 100u);
  EXPECT_GT(a.back(), 900u);
  EXPECT_EQ(hold_out_indices(5, 5, 3), (std::vector<size_t>{0, 1, 2, 3, 4}));
}

// individuals.csv without its timing column.
std::string individuals_without_seconds(const std::string& dir) {
  std::istringstream in(read_file(dir + "/individuals.csv"));
  std::string out;
  for (std::string line; std::getline(in, line);) out += line.substr(0, line.rfind(',')) + "\n";
  return out;
}

size_t count_fitness_files(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir + "/runs", ec), end; !ec && it != end; it.increment(ec))
    n += fs::exists(it->path() / "fitness.json");
  return n;
}

TEST(GeneticSearch, RunsResumesAfterSigkillAndSharesOutToTheSameResult) {
  TempDir d;
  write_cifar_dir(d.str("data"), 60, 21);  // 300 training images, 60 test images
  const std::string args =
      "study --search genetic --device cpu --threads 1 --no-plot --batch 25 --epochs 1 "
      "--model " CONVPOOL_SOURCE_DIR
      "/models/keras_cifar10.cfg "
      "--pools max,avg,avgtopk:k=2,lip_pool --population 4 --generations 3 --validation 0.2 "
      "--final-epochs 1 --data " +
      d.str("data");
  const CommandResult whole = run_convpool(args + " --out " + d.str("whole"));
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  for (const char* f : {"search.json", "config.toml", "individuals.csv", "summary.md", "best.cfg",
                        "final.json", "final/last.safetensors"})
    EXPECT_TRUE(fs::exists(d.str("whole/") + f)) << f;
  const std::string table = individuals_without_seconds(d.str("whole"));
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 1 + 4 * 3) << table;
  const std::string summary = read_file(d.str("whole/summary.md"));
  EXPECT_NE(summary.find("test accuracy"), std::string::npos) << summary;
  EXPECT_EQ(summary.find("partial"), std::string::npos) << summary;
  // The best genotype is a model file train takes.
  const CommandResult trained = run_convpool(
      "train --device cpu --threads 1 --epochs 1 --limit-train 50 --limit-test 20 "
      "--quiet --model " +
      d.str("whole/best.cfg") + " --data " + d.str("data") + " --out " + d.str("retrain"));
  EXPECT_EQ(trained.exit_code, 0) << trained.output;
  // Running the finished search again trains nothing and writes the same tables.
  const CommandResult again = run_convpool(args + " --out " + d.str("whole"));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(again.output.find("epoch 1/1"), std::string::npos) << again.output;
  EXPECT_EQ(individuals_without_seconds(d.str("whole")), table);

  // SIGKILL once two genotypes are evaluated, then the same command again.
  const int pid = spawn_convpool(args + " --out " + d.str("killed"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (count_fitness_files(d.str("killed")) < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(pid, SIGKILL);
  EXPECT_EQ(wait_exit(pid), 128 + SIGKILL);
  EXPECT_FALSE(fs::exists(d.str("killed/final.json")));
  const CommandResult resumed = run_convpool(args + " --out " + d.str("killed"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(individuals_without_seconds(d.str("killed")), table);
  EXPECT_EQ(
      read_file(d.str("killed/best.cfg")).substr(read_file(d.str("killed/best.cfg")).find('\n')),
      read_file(d.str("whole/best.cfg")).substr(read_file(d.str("whole/best.cfg")).find('\n')));

  // Two processes on one directory, started together.
  const int a = spawn_convpool(args + " --shard 0/2 --out " + d.str("shared"));
  const int b = spawn_convpool(args + " --shard 1/2 --out " + d.str("shared"));
  EXPECT_EQ(wait_exit(a), 0);
  EXPECT_EQ(wait_exit(b), 0);
  EXPECT_EQ(individuals_without_seconds(d.str("shared")), table);
  const std::string final_whole = read_file(d.str("whole/final.json"));
  EXPECT_EQ(read_file(d.str("shared/final.json")), final_whole);
  EXPECT_EQ(read_file(d.str("killed/final.json")), final_whole);

  // Another search in the same directory is refused, naming what differs, and leaves the
  // directory's config as it was.
  const std::string config = read_file(d.str("whole/config.toml"));
  const CommandResult other = run_convpool(args + " --mutation 0.5 --out " + d.str("whole"));
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.output.find("holds another search (its mutation differs)"), std::string::npos)
      << other.output;
  EXPECT_EQ(read_file(d.str("whole/config.toml")), config);
  // --seed draws another search.
  const CommandResult seeded = run_convpool(args + " --seed 5 --out " + d.str("seeded"));
  ASSERT_EQ(seeded.exit_code, 0) << seeded.output;
  EXPECT_NE(individuals_without_seconds(d.str("seeded")), table);
  EXPECT_NE(read_file(d.str("seeded/search.json")).find("\"seed\": 5"), std::string::npos);
}

// Two processes on one directory train each genotype once between them.
TEST(GeneticSearch, TwoProcessesTrainEachGenotypeOnce) {
  TempDir d;
  write_cifar_dir(d.str("data"), 40, 22);
  const std::string args =
      std::string(CONVPOOL_BINARY) +
      " study --search genetic --device cpu --threads 1 --no-plot --batch 25 --epochs 1 "
      "--model " CONVPOOL_SOURCE_DIR
      "/models/keras_cifar10.cfg "
      "--pools max,avg,avgtopk:k=2,lip_pool --population 6 --generations 3 --data " +
      d.str("data") + " --out " + d.str("shared");
  const CommandResult both =
      run_command("(" + args + " --shard 0/2 > " + d.str("a.log") + " 2>&1 & " + args +
                  " --shard 1/2 > " + d.str("b.log") + " 2>&1 & wait)");
  ASSERT_EQ(both.exit_code, 0) << both.output;
  const std::string logs = read_file(d.str("a.log")) + read_file(d.str("b.log"));
  std::map<std::string, int> trained;
  std::istringstream in(logs);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("generation ", 0) == 0 && line.back() == ')')
      trained[line.substr(line.rfind('(') + 1, line.size() - line.rfind('(') - 2)]++;
  std::set<std::string> labels;
  std::istringstream table(read_file(d.str("shared/individuals.csv")));
  std::string row;
  std::getline(table, row);
  while (std::getline(table, row)) {
    std::istringstream cols(row.substr(row.rfind('"') + 2));
    std::string label;
    std::getline(cols, label, ',');
    labels.insert(label);
  }
  EXPECT_EQ(trained.size(), labels.size()) << logs;
  for (const auto& [label, times] : trained) {
    EXPECT_EQ(times, 1) << label << "\n" << logs;
    EXPECT_TRUE(labels.count(label)) << label;
  }
}

// A genotype that cannot be built (here a 9x9 window on the 8x8 map a 4x4 stride-4 window
// leaves, though each method builds on its own) gets fitness 0 and the search goes on.
TEST(GeneticSearch, AGenotypeThatFailsIsTheLeastFitAndTheSearchGoesOn) {
  TempDir d;
  write_cifar_dir(d.str("data"), 20, 23);
  write_file_atomic(d.str("m.cfg"),
                    "input channels=3 height=32 width=32\nconv filters=4 size=3 padding=same\n"
                    "pool max size=2\npool max size=2\nflatten\ndense units=10\n");
  const CommandResult r = run_convpool(
      "study --search genetic --device cpu --threads 1 --no-plot --batch 20 --epochs 1 "
      "--pools max:size=4,stride=4,avg:size=9,stride=1 --population 8 --generations 2 --data " +
      d.str("data") + " --model " + d.str("m.cfg") + " --out " + d.str("s"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string fitness = read_file(d.str("s/runs/g01/fitness.json"));
  EXPECT_NE(fitness.find("\"failed\""), std::string::npos) << fitness << r.output;
  EXPECT_NE(read_file(d.str("s/individuals.csv")).find("g01,0.000000,"), std::string::npos);
  EXPECT_NE(r.output.find("g01 failed, its fitness is 0"), std::string::npos) << r.output;
}

TEST(GeneticSearch, BadSearchesAreOneLineErrors) {
  TempDir d;
  write_cifar_dir(d.str("data"), 8, 3);
  const std::string base =
      "study --device cpu --no-plot --data " + d.str("data") + " --out " + d.str("s") + " ";
  const std::string keras = "--model " CONVPOOL_SOURCE_DIR "/models/keras_cifar10.cfg ";
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {"--search genetic --seeds 2 " + keras, "--seeds does not apply"},
           {"--search genetic --population 1 " + keras, "--population 1: expected 2 to 10000"},
           {"--search genetic --pools max " + keras, "at least two methods"},
           {"--search genetic --validation 1.5 " + keras, "--validation 1.5"},
           {"--search genetic --pools max,lip_pool --model " CONVPOOL_SOURCE_DIR
            "/models/resnet20.cfg",
            "no pool layer to search"},
           {"--population 4 " + keras, "--population applies to --search genetic only"},
           {"--search annealing " + keras, "--search"},
           {"--search genetic --merge a,b", "--merge does not apply to --search genetic"}}) {
    const CommandResult r = run_convpool(base + args);
    EXPECT_EQ(r.exit_code, args.find("annealing") != std::string::npos ? 2 : 1) << args;
    EXPECT_NE(r.output.find(message), std::string::npos) << args << "\n" << r.output;
    EXPECT_LE(std::count(r.output.begin(), r.output.end(), '\n'), 1) << args << "\n" << r.output;
  }
}

}  // namespace
