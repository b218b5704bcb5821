// The training options: their flags, a config file's values, and how they resolve into a
// TrainConfig (cli_run.h). Running the training itself is cli_run.cpp.
#include <omp.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>

#include "cli_common.h"
#include "cli_paths.h"
#include "cli_run.h"
#include "convpool/checkpoint.h"
#include "convpool/conv_engine.h"
#include "convpool/device.h"
#include "convpool/distributed.h"
#include "convpool/graph.h"
#include "convpool/image_folder.h"
#include "convpool/model.h"
#include "convpool/pooling.h"

namespace convpool::cli {

namespace fs = std::filesystem;

namespace {
// Per-channel statistics of the CIFAR-10 training set (pixel / 255), for --normalize.
constexpr float kCifarMean[3] = {0.4914f, 0.4822f, 0.4465f};
constexpr float kCifarStd[3] = {0.2470f, 0.2435f, 0.2616f};
}  // namespace

std::string float_str(float v) {
  std::ostringstream s;
  s.precision(9);  // round-trips a float exactly
  s << v;
  return s.str();
}

void set_effective(CLI::App* cmd, const std::string& name, const std::vector<std::string>& values) {
  CLI::Option* opt = cmd->get_option(name);
  opt->clear();
  for (auto& v : values) opt->add_result(v);
}

Verbosity TrainOptions::verbosity() const {
  return quiet ? Verbosity::quiet : verbose ? Verbosity::verbose : Verbosity::normal;
}

namespace {
// The learning-rate schedule (kernels/lr_schedule.cuh); --lr is its peak.
void add_schedule_options(CLI::App* cmd, TrainOptions& o) {
  LrSchedule& s = o.cfg.optimizer.schedule;
  cmd->add_option("--lr-schedule", o.lr_schedule,
                  "lr per step: constant, cosine or linear (decay to --final-lr-ratio), onecycle "
                  "(PyTorch OneCycleLR, cos), step (x --lr-gamma at each --lr-milestones)")
      ->capture_default_str();
  cmd->add_option("--warmup", s.warmup,
                  "fraction of all steps: linear warm-up to --lr (onecycle: its rising phase, "
                  "default 0.3)")
      ->capture_default_str()
      ->check(kFiniteNumber);
  cmd->add_option("--final-lr-ratio", s.final_ratio,
                  "cosine, linear: the last step's lr as a fraction of --lr")
      ->capture_default_str()
      ->check(kFiniteNumber);
  cmd->add_option("--onecycle-start-div", s.start_div, "onecycle: start at --lr / this")
      ->capture_default_str()
      ->check(kFiniteNumber);
  cmd->add_option("--onecycle-final-div", s.final_div,
                  "onecycle: end at --lr / --onecycle-start-div / this")
      ->capture_default_str()
      ->check(kFiniteNumber);
  cmd->add_option("--lr-milestones", o.lr_milestones,
                  "step: where the lr is multiplied by --lr-gamma, e.g. 30,60")
      ->capture_default_str();
  cmd->add_option("--lr-milestone-unit", o.milestone_unit, "--lr-milestones in epochs or steps")
      ->capture_default_str()
      ->check(CLI::IsMember({"epochs", "steps"}));
  cmd->add_option("--lr-gamma", s.gamma, "step: the lr's factor at each milestone")
      ->capture_default_str()
      ->check(kFiniteNumber);
}

// The schedule from its flags; one-line errors for bad values (lr_schedule.cpp validate).
void resolve_schedule_options(CLI::App* cmd, TrainOptions& o) {
  LrSchedule& s = o.cfg.optimizer.schedule;
  s.kind = parse_lr_schedule_kind(o.lr_schedule);
  // OneCycleLR's pct_start defaults to 0.3.
  if (s.kind == LrScheduleKind::onecycle && cmd->count("--warmup") == 0) {
    s.warmup = 0.3f;
    set_effective(cmd, "--warmup", {"0.3"});
  }
  s.milestone_count = 0;
  std::istringstream list(o.lr_milestones);
  for (std::string word; std::getline(list, word, ',');) {
    if (s.milestone_count == kMaxLrMilestones)
      CP_USER_ERROR("at most " << kMaxLrMilestones << " --lr-milestones");
    size_t used = 0;
    uint64_t value = 0;
    try {
      value = std::stoull(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (word.empty() || used != word.size() || !std::isdigit(static_cast<unsigned char>(word[0])))
      CP_USER_ERROR("--lr-milestones: '" << word << "' is not a whole number");
    s.milestones[s.milestone_count++] = value;
  }
  s.milestones_in_epochs = o.milestone_unit == "epochs";
  validate(s);
}
}  // namespace

namespace {
// Options that would change nothing under the chosen optimizer, schedule or recipe are
// refused: a user who sets them expects an effect. They are compared with their defaults,
// not with whether they were typed, because a run's config.toml repeats every option.
void refuse_idle_options(const TrainOptions& o) {
  const OptimizerConfig& opt = o.cfg.optimizer;
  const LrSchedule& s = opt.schedule;
  const LrSchedule defaults;
  const std::string optimizer = optimizer_name(opt.kind);
  if (opt.kind != OptimizerKind::sgd && opt.momentum != 0.f)
    CP_USER_ERROR("--momentum " << opt.momentum << " (given here or by --config) applies to "
                                << "--optimizer sgd only (" << optimizer
                                << " keeps its own moment estimates): set --momentum 0");
  if (opt.kind != OptimizerKind::sgd && opt.nesterov)
    CP_USER_ERROR("--nesterov (given here or by --config) applies to --optimizer sgd only (this "
                  "run's is "
                  << optimizer << "): set --nesterov=false");
  const std::string schedule = std::string("this run's --lr-schedule is ") + lr_schedule_name(s.kind);
  if (s.kind != LrScheduleKind::cosine && s.kind != LrScheduleKind::linear &&
      s.final_ratio != defaults.final_ratio)
    CP_USER_ERROR("--final-lr-ratio " << s.final_ratio << " applies to --lr-schedule cosine or "
                                       << "linear only (" << schedule << "): set it to 0");
  if (s.kind != LrScheduleKind::onecycle &&
      (s.start_div != defaults.start_div || s.final_div != defaults.final_div))
    CP_USER_ERROR("--onecycle-start-div and --onecycle-final-div apply to --lr-schedule "
                  "onecycle only ("
                  << schedule << "): leave them at 25 and 10000");
  if (s.kind != LrScheduleKind::step && s.gamma != defaults.gamma)
    CP_USER_ERROR("--lr-gamma " << s.gamma << " applies to --lr-schedule step only (" << schedule
                                 << "): leave it at 0.1");
  if (o.eval_with == "raw" && !(o.cfg.ema_decay > 0.f))
    CP_USER_ERROR("--eval-with raw (given here or by --config) chooses the raw weights over the "
                  "EMA's: it needs --ema (without it the raw weights are evaluated anyway; set "
                  "--eval-with ema)");
}
}  // namespace

void add_training_options(CLI::App* cmd, TrainOptions& o) {
  o.model = default_model_path();
  cmd->add_option("--config", o.config,
                  "read options from a TOML file, e.g. a run's config.toml (the command line "
                  "wins)")
      ->configurable(false);
  cmd->add_option("--data", o.data,
                  "the data: a CIFAR-10 (or --dataset cifar100) binary directory (default: "
                  "$CIFAR10_DIR, then data/cifar-10-batches-bin), or an image folder holding "
                  "train/<class>/*.png|jpg and val/<class>/ (docs/data.md)")
      ->check(kNonEmpty)
      ->configurable(false);  // where the data lives is not part of the run
  cmd->add_option("--image-size", o.image_size,
                  "image folders: fit every image to this square side (shorter side resized, "
                  "centre cropped); 0: the model's input side")
      ->capture_default_str()
      ->check(CLI::Range(0, kMaxInputSide));
  cmd->add_option("--memory-budget", o.memory_budget,
                  "image folders: a data set over this size (50%: of this machine's memory; or "
                  "8G, 512M; 0: no limit) is not loaded but streamed from its memory-mapped "
                  "cache, in the same order with the same augmentation")
      ->capture_default_str()
      ->configurable(false);
  cmd->add_option("--cache-dir", o.cache_dir,
                  "image folders: where the decoded images are kept (default: DIR/.convpool-cache, "
                  "or ~/.cache/convpool when DIR cannot be written)")
      ->check(kNonEmpty)
      ->configurable(false);
  cmd->add_option("--model", o.model, "model file")->capture_default_str();
  cmd->add_option("--epochs", o.cfg.epochs, "total epochs to train (also when resuming)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--batch", o.cfg.batch, "batch size")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--optimizer", o.optimizer,
                  "adam, adamw (decoupled --weight-decay, as PyTorch's AdamW) or sgd")
      ->capture_default_str()
      ->check(CLI::IsMember({"adam", "adamw", "sgd"}));
  cmd->add_option("--lr", o.cfg.optimizer.lr, "learning rate")
      ->capture_default_str()
      ->check(kFiniteNumber)
      ->check(number_in(0.0, 10.0, false, true));
  cmd->add_option("--momentum", o.cfg.optimizer.momentum, "SGD momentum")
      ->capture_default_str()
      ->check(kFiniteNumber)
      ->check(number_in(0.0, 1.0, true, false));
  cmd->add_flag("--nesterov", o.cfg.optimizer.nesterov, "SGD with Nesterov momentum");
  cmd->add_option("--weight-decay", o.cfg.optimizer.weight_decay, "L2 weight decay")
      ->capture_default_str()
      ->check(kFiniteNumber)
      ->check(number_in(0.0, 1.0, true, false));
  add_schedule_options(cmd, o);
  cmd->add_option("--label-smoothing", o.cfg.label_smoothing,
                  "train towards (1 - EPS) onehot + EPS / 10 instead of the label alone")
      ->capture_default_str()
      ->check(kFiniteNumber);
  cmd->add_option("--ema", o.cfg.ema_decay,
                  "keep an exponential moving average of the weights with this decay, e.g. "
                  "0.999 (0: off); checkpoints hold both")
      ->capture_default_str()
      ->check(kFiniteNumber);
  cmd->add_option("--eval-with", o.eval_with,
                  "with --ema: evaluate, and choose best.safetensors, with the ema or the raw "
                  "weights")
      ->capture_default_str()
      ->check(CLI::IsMember({"ema", "raw"}));
  cmd->add_option("--clip-grad-norm", o.cfg.optimizer.clip_grad_norm,
                  "scale the gradients to a global 2-norm of at most this before each update "
                  "(torch.nn.utils.clip_grad_norm_; 0: off)")
      ->capture_default_str()
      ->check(kFiniteNumber);
  add_device_options(cmd, o.device, o.threads);
  cmd->add_option("--limit-train", o.limit_train, "use only the first N training images (0: all)")
      ->capture_default_str()
      ->check(kWholeNumber);
  cmd->add_option("--limit-test", o.limit_test, "use only the first N test images (0: all)")
      ->capture_default_str()
      ->check(kWholeNumber);
  cmd->add_option("--crop-pad", o.cfg.input.crop_pad,
                  "augment: random 32x32 crop of the image zero-padded by N pixels (0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0, kMaxInputSide / 2));
  cmd->add_option("--pad-mode", o.pad_mode,
                  "what the crop's padding holds: zero (black) or reflect (the image mirrored "
                  "about its edge)")
      ->capture_default_str()
      ->check(CLI::IsMember({"zero", "reflect"}));
  cmd->add_flag("--flip", o.cfg.input.flip, "augment: random horizontal flip");
  cmd->add_option("--tta", o.tta,
                  "after training, evaluate the final weights with test-time augmentation too: "
                  "flip, or flip,translate (airbench94's); none: off")
      ->capture_default_str();
  cmd->add_option("--cutout", o.cfg.input.cutout,
                  "augment: zero a random NxN square (clipped at the borders) after normalisation: "
                  "the mean colour with --normalize, black without (0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0, kMaxInputSide));
  cmd->add_flag("--normalize-from-data", o.normalize_from_data,
                "normalise each channel by the training images' own mean and std, measured "
                "once (your own data; recorded as --mean and --std)");
  cmd->add_flag("--normalize", o.normalize,
                "normalise each channel by the CIFAR-10 training mean and std");
  cmd->add_option("--mean", o.mean, "per-channel mean subtracted from pixel/255: R,G,B")
      ->check(kFiniteNumber)
      ->expected(3)
      ->delimiter(',');
  cmd->add_option("--std", o.std, "per-channel std dividing it: R,G,B")
      ->check(kFiniteNumber)
      ->expected(3)
      ->delimiter(',');
  cmd->add_flag("--tf32", o.tf32,
                "CUDA: TF32 tensor-core math in convolutions and dense layers (faster; results "
                "differ from fp32 by up to ~1e-3 relative)");
  cmd->add_flag("--sync-bn", o.cfg.sync_bn,
                "data-parallel runs (mpirun -np N convpool train ...): BatchNorm normalises with "
                "the statistics of the whole global batch, not each rank's slice");
  cmd->add_option("--dataset", o.dataset,
                  "cifar10, cifar100 (its 100 fine classes: the model needs 100 outputs), or "
                  "folder (chosen by itself when --data holds train/)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cifar10", "cifar100", "folder"}));
  cmd->add_option("--data-placement", o.data_placement,
                  "CUDA: where the data set lives: device (uploaded once; batches gathered and "
                  "augmented on the GPU), pinned (streamed from host memory), or auto (device "
                  "when it fits in a quarter of the free GPU memory)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "pinned", "device"}));
  cmd->add_flag("--no-graph", o.no_graph,
                "CUDA: launch every kernel eagerly instead of replaying a captured CUDA Graph");
  cmd->add_option("--save-every", o.cfg.save_every, "also save last.safetensors every N steps")
      ->capture_default_str()
      ->check(kWholeNumber)
      ->check(CLI::Range(uint64_t(0), uint64_t(1) << 40));
  cmd->add_option("--keep", o.cfg.keep, "keep the N newest step-*.safetensors files")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  cmd->add_option("--nan-policy", o.cfg.nan_policy,
                  "on a non-finite loss or gradient: stop, or skip that batch's update")
      ->capture_default_str()
      ->check(CLI::IsMember({"stop", "skip"}));
  auto* quiet = cmd->add_flag("--quiet", o.quiet, "print only errors")->configurable(false);
  cmd->add_flag("--verbose", o.verbose,
                "more detail: progress lines every 10% of an epoch even without a terminal, "
                "data-wait times")
      ->configurable(false)
      ->excludes(quiet);
}

void apply_config_file(CLI::App* cmd, const std::string& path, const std::set<std::string>& skip) {
  apply_config_text(cmd, read_regular_file(path, kMaxModelFileBytes, "config file"), path, skip);
}

namespace {
// A config line's value as TOML spells it. CLI11 hands every value over as text, quotes
// stripped, so `epochs = "2"` and `flip = "yes"` would pass for a number and a flag: the
// form is read here, from the text, and checked against the option's type.
enum class ValueForm { number, boolean, string, array, bare };
struct ConfigLine {
  int line = 0;
  ValueForm form = ValueForm::bare;
  std::string value;
};

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r") - a + 1);
}

// The value without a trailing comment ('#' outside quotes).
std::string strip_comment(const std::string& value) {
  char quote = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (quote) {
      if (c == '\\' && quote == '"') ++i;
      else if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '#') {
      return trim(value.substr(0, i));
    }
  }
  return value;
}

// A TOML number as strtod reads it: 50_000 and +5 are TOML's spellings of 50000 and 5.
std::string toml_number(const std::string& v) {
  std::string n = v.size() > 1 && v[0] == '+' ? v.substr(1) : v;
  for (size_t at = n.find('_'); at != std::string::npos; at = n.find('_'))
    if (at > 0 && at + 1 < n.size() && std::isdigit(static_cast<unsigned char>(n[at - 1])) &&
        std::isdigit(static_cast<unsigned char>(n[at + 1])))
      n.erase(at, 1);
    else
      return v;
  return n;
}

ValueForm form_of(const std::string& v) {
  if (v.empty()) return ValueForm::bare;
  if (v[0] == '"' || v[0] == '\'') return ValueForm::string;
  if (v[0] == '[') return ValueForm::array;
  if (v == "true" || v == "false") return ValueForm::boolean;
  const std::string n = toml_number(v);
  char* end = nullptr;
  std::strtod(n.c_str(), &end);
  return end && *end == 0 && end != n.c_str() ? ValueForm::number : ValueForm::bare;
}

// Whether a quoted value's last character closes it (not a quote escaped by a backslash).
bool closed_string(const std::string& v) {
  if (v.size() < 2 || v.back() != v.front()) return false;
  if (v.front() == '\'') return true;  // a literal string has no escapes
  size_t backslashes = 0;
  for (size_t i = v.size() - 1; i-- > 1 && v[i] == '\\';) ++backslashes;
  return backslashes % 2 == 0;
}

// key -> its line, for every `key = value` line; a key given twice, or a line with a key and
// no value, is a one-line error naming both lines.
std::map<std::string, ConfigLine> scan_config_lines(const std::string& text,
                                                    const std::string& path) {
  if (text.rfind("\xEF\xBB\xBF", 0) == 0)
    CP_USER_ERROR("--config " << path << ": starts with a UTF-8 byte-order mark (bytes EF BB BF); "
                                 "save it as UTF-8 without one");
  if (text.find('\0') != std::string::npos)
    CP_USER_ERROR("--config " << path << ": not a text file (it holds NUL bytes; UTF-16? save "
                                 "it as UTF-8)");
  std::map<std::string, ConfigLine> lines;
  std::istringstream in(text);
  int number = 0;
  for (std::string raw; std::getline(in, raw);) {
    ++number;
    const std::string l = trim(raw);
    if (l.empty() || l[0] == '#') continue;
    if (l[0] == '[') {  // a section: refused below by name, unless it is not even one
      if (l.size() < 3 || l.back() != ']' || l.find_first_of("[]", 1) != l.size() - 1)
        CP_USER_ERROR("--config " << path << ":" << number << ": '" << l
                                  << "' is not a key = value line");
      continue;
    }
    const size_t eq = l.find('=');
    if (eq == std::string::npos)
      CP_USER_ERROR("--config " << path << ":" << number << ": '" << l
                                << "' has no value (write " << l << " = VALUE)");
    std::string key = trim(l.substr(0, eq));
    if (key.size() >= 2 && (key.front() == '"' || key.front() == '\'') && key.back() == key.front())
      key = key.substr(1, key.size() - 2);  // a quoted key, as CLI11 reads it
    ConfigLine c{number, ValueForm::bare, strip_comment(trim(l.substr(eq + 1)))};
    c.form = form_of(c.value);
    if (c.value.rfind("\"\"\"", 0) == 0 || c.value.rfind("\'\'\'", 0) == 0)
      CP_USER_ERROR("--config " << path << ":" << number << ": " << key
                                << ": multi-line strings are not read; write the value on one line");
    if (c.form == ValueForm::string && !closed_string(c.value))
      CP_USER_ERROR("--config " << path << ":" << number << ": " << key << " = " << c.value
                                << ": the string has no closing " << c.value.front());
    // A list may go on over several lines, up to its ']'.
    if (c.form == ValueForm::array)
      for (std::string more; c.value.find(']') == std::string::npos && std::getline(in, more);) {
        ++number;
        const std::string part = strip_comment(trim(more));
        if (part != trim(more))  // CLI11 reads a comment inside a list as a value
          CP_USER_ERROR("--config " << path << ":" << number << ": " << key
                                    << ": comments inside a list are not read; move it above");
        c.value += " " + part;
      }
    if (const auto it = lines.find(key); it != lines.end())
      CP_USER_ERROR("--config " << path << ":" << c.line << ": '" << key
                                << "' is set twice (first at line " << it->second.line << ")");
    lines.emplace(key, c);
  }
  return lines;
}

// One-line error unless the line's form is the one the option takes.
void check_value_form(const CLI::Option* opt, const std::string& key, const ConfigLine& c,
                      const std::string& path) {
  const std::string type = opt->get_type_name();
  const auto is = [&](const char* t) { return type.rfind(t, 0) == 0; };
  ValueForm want = ValueForm::string;
  const char* says = "a quoted string";
  std::string example = key + " = \"" + (c.form == ValueForm::string ? "" : c.value) + "\"";
  if (opt->get_expected_max() == 0) {  // a flag
    want = ValueForm::boolean, says = "true or false", example = key + " = true";
  } else if (opt->get_expected_max() > 1) {
    want = ValueForm::array, says = "a list", example = key + " = [0.5, 0.5, 0.5]";
  } else if (is("INT") || is("UINT")) {
    want = ValueForm::number, says = "a whole number", example = key + " = 2";
    const std::string n = toml_number(c.value);
    if (c.form == ValueForm::number &&
        n.find_first_not_of("0123456789", n[0] == '-' ? 1 : 0) != std::string::npos)
      want = ValueForm::bare;  // 2.5, 1e3, nan: a number, not a whole one
  } else if (is("FLOAT") || is("NUMBER")) {
    want = ValueForm::number, says = "a number", example = key + " = 0.5";
  }
  // CLI11 writes a text value that looks like a number or a boolean unquoted
  // (lr-milestones=30): text options take those forms too.
  if (want == ValueForm::string && (c.form == ValueForm::number || c.form == ValueForm::boolean))
    return;
  if (c.form != want)
    CP_USER_ERROR("--config " << path << ":" << c.line << ": " << key << " takes " << says
                              << ", not " << c.value << " (e.g. " << example << ")");
}
}  // namespace

void apply_config_text(CLI::App* cmd, const std::string& text, const std::string& path,
                       const std::set<std::string>& skip) {
  const std::map<std::string, ConfigLine> lines = scan_config_lines(text, path);
  std::vector<CLI::ConfigItem> items;
  try {
    std::istringstream in(text);
    items = CLI::ConfigTOML().from_config(in);
  } catch (const CLI::Error& e) {
    CP_USER_ERROR("--config " << path << ": " << e.what());
  }
  std::vector<std::string> names;
  for (const CLI::Option* opt : cmd->get_options())
    if (opt->get_configurable() && !opt->get_lnames().empty())
      names.push_back(opt->get_lnames()[0]);
  for (const CLI::ConfigItem& item : items) {
    if (item.name == "++" || item.name == "--") continue;  // section markers
    if (skip.count(item.name)) continue;
    if (!item.parents.empty())
      CP_USER_ERROR("--config " << path << ": sections ([" << item.parents[0]
                                << "]) are not used; write key = value lines");
    CLI::Option* opt = cmd->get_option_no_throw("--" + item.name);
    // An empty value sets nothing: older study configs hold merge="".
    if (opt && !opt->get_configurable() &&
        std::all_of(item.inputs.begin(), item.inputs.end(), [](const std::string& v) { return v.empty(); }))
      continue;
    if (opt && !opt->get_configurable())
      CP_USER_ERROR("--config " << path << ": '" << item.name << "' is not read from a config "
                                << "file (it says where a run reads or writes, or how this "
                                << "command runs): give --" << item.name
                                << " on the command line");
    if (!opt) {
      const std::string near = nearest_word(item.name, names);
      CP_USER_ERROR("--config " << path << ": unknown option '" << item.name << "'"
                                << (near.empty() ? "" : "; did you mean '" + near + "'?"));
    }
    if (const auto line = lines.find(item.name); line != lines.end())
      check_value_form(opt, item.name, line->second, path);
    if (opt->count() > 0) continue;  // given on the command line: it wins
    try {
      const std::string type = opt->get_type_name();
      const bool numeric = type.rfind("INT", 0) == 0 || type.rfind("UINT", 0) == 0 ||
                           type.rfind("FLOAT", 0) == 0 || type.rfind("NUMBER", 0) == 0;
      for (const std::string& v : item.inputs) opt->add_result(numeric ? toml_number(v) : v);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      CP_USER_ERROR("--config " << path << ": " << item.name << ": " << e.what());
    }
  }
}

void resolve_options(CLI::App* cmd, TrainOptions& o) {
  set_threads(o.threads);
  o.threads = omp_get_max_threads();
  o.cfg.device = pick_device(o.device);
  o.device = device_name(o.cfg.device);
  set_cuda_tf32(o.tf32);  // before any graph is built
  if (o.normalize_from_data && (!o.mean.empty() || !o.std.empty() || o.normalize))
    CP_USER_ERROR(
        "--normalize-from-data measures the mean and std: drop --normalize, --mean and "
        "--std");
  if (!o.mean.empty() || !o.std.empty() || o.normalize) {
    for (int c = 0; c < kCifarChannels; ++c) {
      o.cfg.input.mean[c] = o.mean.empty() ? (o.normalize ? kCifarMean[c] : 0.f) : o.mean[c];
      o.cfg.input.std[c] = o.std.empty() ? (o.normalize ? kCifarStd[c] : 1.f) : o.std[c];
    }
  }
  o.cfg.input.reflect = o.pad_mode == "reflect";
  tta_views(o.tta);  // a bad --tta fails before training, not after it
  o.cfg.optimizer.kind = parse_optimizer_kind(o.optimizer);
  // train_run resolves it once the data sets' sizes are known; a CPU run asked for device
  // placement fails here, before it loads anything.
  if (o.cfg.device != Device::cuda)
    resolve_data_placement(parse_data_placement(o.data_placement), o.cfg.device, 0);
  resolve_schedule_options(cmd, o);
  o.cfg.eval_ema = o.eval_with == "ema";
  refuse_idle_options(o);
  validate(o.cfg.optimizer);
  validate_recipe(o.cfg);
  o.cfg.cuda_graph = !o.no_graph;
  std::vector<std::string> mean, sd;
  for (int c = 0; c < kCifarChannels; ++c) {
    mean.push_back(float_str(o.cfg.input.mean[c]));
    sd.push_back(float_str(o.cfg.input.std[c]));
  }
  // A zoo path such as a recipe's model="models/resnet20.cfg" also resolves from elsewhere:
  // against the installed (or built) model zoo.
  if (!fs::exists(o.model) && fs::path(o.model).is_relative() &&
      !find_data_file(o.model).empty())
    o.model = find_data_file(o.model);
  if (fs::exists(o.model)) o.model = fs::absolute(o.model).lexically_normal().string();
  set_effective(cmd, "--model", {o.model});  // a config read from elsewhere finds it
  resolve_data(cmd, o);
  validate(o.cfg.input);  // its crop and cutout bounds follow the data's side
  set_effective(cmd, "--threads", {std::to_string(o.threads)});
  set_effective(cmd, "--device", {o.device});
  set_effective(cmd, "--mean", mean);
  set_effective(cmd, "--std", sd);
  set_effective(cmd, "--normalize", {"false"});  // folded into mean and std
}

}  // namespace convpool::cli
