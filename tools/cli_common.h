// Shared pieces of the convpool subcommands.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>

#include "convpool/tensor.h"

namespace convpool {
class Graph;
class Trainer;
struct Checkpoint;
}  // namespace convpool

namespace convpool::cli {

std::string default_model_path();
std::string timestamp();
void set_threads(int threads);
Device pick_device(const std::string& name);  // auto | cpu | cuda | cuda:N
// "; did you mean --x?" for the first unknown --flag on the command line, or "".
std::string suggest_flag(const CLI::App& app, int argc, char** argv);

// Option checks CLI11 lacks. CLI11 reads "-5" into an unsigned option as 2^64 - 5 and lets
// "nan" through a Range; these refuse both with a usage error (exit 2).
extern const CLI::Validator kWholeNumber;  // 0 .. 2^64-1, digits only
extern const CLI::Validator kFiniteNumber;  // a number, not nan or inf
// A number in an interval, each end included or not: "'0' is not in (0, 10]".
CLI::Validator number_in(double lo, double hi, bool lo_included, bool hi_included);
// A value that is not the empty string (--data '' would otherwise read as not given).
extern const CLI::Validator kNonEmpty;

// --device (auto | cpu | cuda) and --threads, as every command that computes takes them.
void add_device_options(CLI::App* cmd, std::string& device, int& threads);

// A Trainer that only evaluates `graph` (built from `ckpt`) as the checkpoint's run
// evaluated: its input normalisation, seed and data set, `batch` images at a time (eval,
// predict).
std::unique_ptr<Trainer> checkpoint_evaluator(Graph& graph, const Checkpoint& ckpt,
                                              Device device, int batch);

// Each subcommand registers its options and returns the function that runs it.
using Runner = std::function<int()>;
struct Commands {
  Runner train, eval, predict, study, profile, bench, model, export_onnx;
  CLI::App* pool_methods = nullptr;
  bool pool_methods_json = false;
};
// Registers every subcommand and its options on `app` (the parser the fuzzer exercises).
void build_cli(CLI::App& app, Commands& commands);
// An error message as one line: newlines, tabs and other control bytes (in a quoted path or
// value) written as \n, \t, \xNN.
std::string one_line(const std::string& message);
// main(): parses, runs the chosen command, maps errors to one line and an exit status.
int run_cli(int argc, char** argv);
Runner add_train_command(CLI::App& app);
Runner add_eval_command(CLI::App& app);
Runner add_study_command(CLI::App& app);
Runner add_profile_command(CLI::App& app);
Runner add_bench_command(CLI::App& app);
Runner add_model_command(CLI::App& app);
Runner add_export_command(CLI::App& app);
Runner add_predict_command(CLI::App& app);
int bench_checkpoint(const std::vector<int>& counts, int reps, bool json);

}  // namespace convpool::cli
