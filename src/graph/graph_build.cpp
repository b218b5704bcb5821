// Graph::build: orders the model file's nodes, fuses ReLUs, infers shapes, lays out the
// parameters, plans the activation memory and binds every layer to its tensors. Running the
// built graph is graph.cpp.
#include <algorithm>
#include <map>
#include <set>

#include "convpool/error.h"
#include "convpool/graph.h"
#include "convpool/precision.h"
#include "memory_plan.h"

namespace convpool {

namespace {

// Every buffer must stay indexable by int (BLAS and kernel arguments).
constexpr size_t kMaxFloats = size_t(1) << 31;

// Resolves input names and orders the nodes: Kahn's algorithm, taking the ready node that
// comes first in the file, so a chain keeps its file order. Returns file indices in order.
std::vector<size_t> topological_order(const std::vector<LayerSpec>& layers,
                                      std::vector<std::vector<int>>& file_inputs) {
  const size_t N = layers.size();
  std::map<std::string, int> index_of;
  for (size_t i = 0; i < N; ++i) {
    if (layers[i].name == "input")
      CP_USER_ERROR(layers[i].where << ": the layer name 'input' is reserved for the model's input");
    if (!index_of.emplace(layers[i].name, int(i)).second)
      CP_USER_ERROR(layers[i].where << ": layer name '" << layers[i].name << "' is used twice");
  }
  std::vector<std::string> names;
  for (auto& l : layers) names.push_back(l.name);
  names.push_back("input");
  // file_inputs[i]: file index of each input, -1 for the model's input.
  file_inputs.assign(N, {});
  std::vector<std::vector<size_t>> consumers(N);
  std::vector<int> pending(N, 0);
  for (size_t i = 0; i < N; ++i) {
    const LayerSpec& ls = layers[i];
    if (ls.inputs.empty()) {
      file_inputs[i].push_back(int(i) - 1);
    } else {
      for (auto& name : ls.inputs) {
        if (name == "input") {
          file_inputs[i].push_back(-1);
          continue;
        }
        auto it = index_of.find(name);
        if (it == index_of.end()) {
          const std::string near = nearest_word(name, names);
          CP_USER_ERROR(ls.where << ": " << ls.type << " '" << ls.name << "': unknown input '"
                                 << name << "'"
                                 << (near.empty() ? "" : " (did you mean '" + near + "'?)"));
        }
        file_inputs[i].push_back(it->second);
      }
    }
    for (int src : file_inputs[i])
      if (src >= 0) consumers[size_t(src)].push_back(i), ++pending[i];
  }
  // The last layer of the file is the model's output; every other output must be read.
  for (size_t i = 0; i + 1 < N; ++i)
    if (consumers[i].empty())
      CP_USER_ERROR(layers[i].where << ": " << layers[i].type << " '" << layers[i].name
                                    << "': its output is never used (only the last layer, '"
                                    << layers[N - 1].name << "', may be unread)");
  if (!consumers[N - 1].empty())
    CP_USER_ERROR(layers[N - 1].where << ": " << layers[N - 1].type << " '" << layers[N - 1].name
                                      << "': the last layer is the model's output, but '"
                                      << layers[consumers[N - 1][0]].name << "' reads it");
  std::set<size_t> ready;
  for (size_t i = 0; i < N; ++i)
    if (!pending[i]) ready.insert(i);
  std::vector<size_t> order;
  while (!ready.empty()) {
    const size_t i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (size_t c : consumers[i])
      if (--pending[c] == 0) ready.insert(c);
  }
  if (order.size() < N) {
    // Walk inputs among the unordered nodes until one repeats: that loop is a cycle.
    size_t at = 0;
    while (!pending[at]) ++at;
    std::vector<size_t> path;
    std::vector<int> seen(N, -1);
    while (seen[at] < 0) {
      seen[at] = int(path.size());
      path.push_back(at);
      for (int src : file_inputs[at])
        if (src >= 0 && pending[size_t(src)]) {
          at = size_t(src);
          break;
        }
    }
    std::string loop = layers[at].name;
    for (size_t k = path.size(); k-- > size_t(seen[at]);) loop += " -> " + layers[path[k]].name;
    CP_USER_ERROR(layers[at].where << ": " << layers[at].type << " '" << layers[at].name
                                   << "' is part of a cycle: " << loop);
  }
  return order;
}

}  // namespace

// The steps of Graph::build, in the order it calls them; each fills part of the graph.
struct Graph::Builder {
  Graph& g;
  const GraphOptions& opts;
  size_t N = 0;
  // consumers[v]: the nodes that read value v.
  std::vector<std::vector<size_t>> consumers;
  // Storages: memory shared by values that alias (flatten, a fused ReLU), with lifetimes.
  std::vector<PlannedTensor> storages;
  std::vector<int> state_storage;  // per node, -1 when the layer keeps no state
  size_t scratch_floats = 0;

  Builder(Graph& graph, const GraphOptions& options) : g(graph), opts(options) {}

  int add(size_t floats, int first, int last) {
    storages.push_back({floats, first, last});
    return int(storages.size()) - 1;
  }
  void extend(int s, int step) {
    storages[size_t(s)].first = std::min(storages[size_t(s)].first, step);
    storages[size_t(s)].last = std::max(storages[size_t(s)].last, step);
  }

  // Nodes in execution order; value k + 1 is node k's output.
  void create_nodes(std::vector<LayerSpec> specs) {
    assign_default_names(specs);
    std::vector<std::vector<int>> file_inputs;
    const std::vector<size_t> order = topological_order(specs, file_inputs);
    N = order.size();
    std::vector<int> node_of_file(N);
    for (size_t k = 0; k < N; ++k) node_of_file[order[k]] = int(k);
    for (size_t k = 0; k < N; ++k) {
      auto layer = make_layer(specs[order[k]]);
      // The file position keys the layer's random streams: the same draws as before the graph
      // was a graph, and independent of how the nodes are ordered.
      layer->set_index(uint32_t(order[k]));
      if (!layer->supports(opts.device))
        CP_USER_ERROR(specs[order[k]].where << ": " << layer->type() << " '" << layer->name()
                                            << "' has no " << device_name(opts.device)
                                            << " implementation");
      std::vector<int> in;
      for (int src : file_inputs[order[k]])
        in.push_back(src < 0 ? 0 : node_of_file[size_t(src)] + 1);
      g.inputs_.push_back(in);
      g.layers_.push_back(std::move(layer));
    }
    consumers.assign(N + 1, {});
    for (size_t k = 0; k < N; ++k)
      for (int v : g.inputs_[k]) consumers[size_t(v)].push_back(k);
  }

  // A ReLU whose output and input each have a single reader becomes part of the node after it
  // (pooling gathers through it), else of the node before it (conv and batchnorm apply it to
  // their output, on the CPU).
  void fuse_relus() {
    for (size_t r = 0; r < N; ++r) {
      Layer& relu = *g.layers_[r];
      if (relu.type() != "relu" || consumers[r + 1].size() != 1) continue;
      const int in = g.inputs_[r][0];
      if (in == 0 || consumers[size_t(in)].size() != 1) continue;
      const size_t next_node = consumers[r + 1][0];
      Layer& next = *g.layers_[next_node];
      Layer& prev = *g.layers_[size_t(in - 1)];
      if (g.inputs_[next_node].size() == 1 && next.absorb_preceding_relu()) {
        relu.fuse_relu("the next layer, " + next.name());
      } else if (prev.absorb_following_relu(opts.device)) {
        relu.fuse_relu("the layer before, " + prev.name());
      }
    }
  }

  void infer_shapes(const Shape& input) {
    g.shapes_.push_back(input.with_batch(1));
    for (size_t k = 0; k < N; ++k) {
      Layer& L = *g.layers_[k];
      std::vector<Shape> in;
      for (int v : g.inputs_[k]) in.push_back(g.shapes_[size_t(v)]);
      const Shape out = L.infer(in);
      L.prepare(opts.device, opts.batch);
      const LayerSpec& ls = L.spec();
      if (out.c < 1 || out.h < 1 || out.w < 1)
        CP_USER_ERROR(ls.where << ": " << ls.type << " '" << ls.name << "': input "
                               << in[0].str() << " gives an empty output " << out.str());
      // Each buffer is checked on its own, so that the message names the one too large.
      const auto refuse = [&](const std::string& what, size_t floats) {
        if (floats >= kMaxFloats)
          CP_USER_ERROR(ls.where << ": " << ls.type << " '" << ls.name << "': " << what
                                 << " at batch " << opts.batch << " is too large (" << floats
                                 << " floats; one buffer holds fewer than " << kMaxFloats << ")");
      };
      refuse("its output " + out.str(), out.numel() * size_t(opts.batch));
      refuse("its saved state (for the backward pass)", L.state_floats(opts.batch));
      refuse("its workspace (e.g. im2col columns)", L.workspace_floats(opts.batch));
      g.shapes_.push_back(out);
      g.region_names_.push_back({L.name() + "/fwd", L.name() + "/bwd"});
    }
  }

  // Declaration order (node order, then each layer's own) numbers the tensors: it keys their
  // random initialisation and orders the checkpoint. The flat buffer groups them: trainable
  // ranges by multipliers, then frozen parameters, then buffers.
  void lay_out_params() {
    struct Declared {
      ParamInfo info;
      ParamDecl decl;
    };
    std::vector<Declared> declared;
    for (size_t k = 0; k < N; ++k) {
      const LayerSpec& ls = g.layers_[k]->spec();
      for (auto& d : g.layers_[k]->param_decls()) {
        ParamInfo p{g.layers_[k]->name() + "." + d.suffix, d.shape, 0, int(k), d.rank, d.kind,
                    d.lr_mult * ls.lr_mult, d.wd_mult * ls.wd_mult};
        if (ls.frozen && p.kind == ParamKind::trainable) p.kind = ParamKind::frozen;
        declared.push_back({p, d});
      }
    }
    std::vector<std::pair<float, float>> group_keys;
    auto rank_of = [&](const ParamInfo& p) -> size_t {
      if (p.kind == ParamKind::frozen) return kMaxParamGroups;
      if (p.kind == ParamKind::buffer) return kMaxParamGroups + 1;
      const std::pair<float, float> key{p.lr_mult, p.wd_mult};
      auto it = std::find(group_keys.begin(), group_keys.end(), key);
      if (it != group_keys.end()) return size_t(it - group_keys.begin());
      if (group_keys.size() == size_t(kMaxParamGroups))
        CP_USER_ERROR("the model's parameters use more than " << kMaxParamGroups
                                                              << " (lr_mult, wd_mult) pairs");
      group_keys.push_back(key);
      return group_keys.size() - 1;
    };
    std::vector<size_t> rank(declared.size());
    for (size_t t = 0; t < declared.size(); ++t) rank[t] = rank_of(declared[t].info);
    for (size_t r = 0; r < size_t(kMaxParamGroups) + 2; ++r) {
      const size_t begin = g.num_params_;
      for (size_t t = 0; t < declared.size(); ++t) {
        if (rank[t] != r) continue;
        declared[t].info.offset = g.num_params_;
        // Keep each tensor 8-float aligned so vector loads never straddle two tensors.
        g.num_params_ += (declared[t].info.shape.numel() + 7) / 8 * 8;
      }
      if (r < group_keys.size() && g.num_params_ > begin) {
        ParamGroups& G = g.groups_;
        G.begin[G.count] = begin, G.end[G.count] = g.num_params_;
        G.lr_mult[G.count] = group_keys[r].first, G.wd_mult[G.count] = group_keys[r].second;
        ++G.count;
      }
    }
    for (auto& d : declared) {
      g.param_infos_.push_back(d.info);
      g.param_decls_.push_back(d.decl);
    }
  }

  // Which values keep a gradient, which storage each value uses, and how long each lives.
  // Steps: forward k at k, the loss at N, backward k at 2N - k.
  void plan_storages() {
    const int T = int(2 * N);
    auto fwd = [](size_t k) { return int(k); };
    auto bwd = [&](size_t k) { return T - int(k); };
    g.act_storage_.assign(N + 1, -1);
    g.grad_storage_.assign(N + 1, -1);
    const size_t B = size_t(opts.batch);
    g.act_storage_[0] = add(g.shapes_[0].numel() * B, 0, T);
    if (opts.input_gradient) g.grad_storage_[0] = add(g.shapes_[0].numel() * B, 0, T);
    state_storage.assign(N, -1);
    for (size_t k = 0; k < N; ++k) {
      const Layer& L = *g.layers_[k];
      const size_t v = k + 1, floats = g.shapes_[v].numel() * B;
      if (L.aliases_input()) {
        const int src = g.inputs_[k][0];
        g.act_storage_[v] = g.act_storage_[size_t(src)];
        g.grad_storage_[v] = g.grad_storage_[size_t(src)];
        extend(g.act_storage_[v], fwd(k));
        if (g.grad_storage_[v] >= 0) extend(g.grad_storage_[v], bwd(k));
      } else {
        g.act_storage_[v] = add(floats, fwd(k), fwd(k));
        g.grad_storage_[v] = add(floats, bwd(k), bwd(k));
      }
      if (const size_t s = L.state_floats(opts.batch)) {
        state_storage[k] = add(s, fwd(k), bwd(k));
        g.memory_.kept += (s + 63) / 64 * 64 * sizeof(float);
      }
    }
    // The loss always writes the output's gradient: a model whose output is its input
    // reinterpreted (a lone flatten) has none from the input, so it gets its own.
    if (g.grad_storage_[N] < 0) g.grad_storage_[N] = add(g.shapes_[N].numel() * B, 0, T);
    // Lifetimes: an activation lives until its last reader (forward of its consumers; backward
    // of those that read their inputs there; its producer's backward if that reads its
    // output; the loss for the model's output). A gradient lives from its first writer (the
    // backward of its last consumer, or the loss) to its producer's backward.
    for (size_t k = 0; k < N; ++k) {
      const Layer& L = *g.layers_[k];
      for (int v : g.inputs_[k]) {
        extend(g.act_storage_[size_t(v)], fwd(k));
        if (L.backward_reads_input()) extend(g.act_storage_[size_t(v)], bwd(k));
        if (g.grad_storage_[size_t(v)] >= 0) extend(g.grad_storage_[size_t(v)], bwd(k));
      }
      if (L.backward_reads_output()) extend(g.act_storage_[k + 1], bwd(k));
    }
    // The logits and their gradient are small and callers read or write them around a step
    // (evaluation, tests that set dy first): they live over the whole step.
    for (int s : {g.act_storage_[N], g.grad_storage_[N]}) extend(s, 0), extend(s, T);
  }

  // Walking backward, the first writer of a gradient storage overwrites it and later writers
  // add to it. A layer that cannot add gets scratch, which the graph adds.
  void plan_accumulation() {
    const size_t B = size_t(opts.batch);
    g.accumulate_.assign(N, {});
    g.scratch_offset_.assign(N, {});
    std::vector<bool> written(storages.size(), false);
    written[size_t(g.grad_storage_[N])] = true;  // the loss writes the output's gradient
    for (size_t k = N; k-- > 0;) {
      const Layer& L = *g.layers_[k];
      size_t used = 0;
      for (int v : g.inputs_[k]) {
        const int s = g.grad_storage_[size_t(v)];
        const bool acc = s >= 0 && written[size_t(s)] && !L.aliases_input();
        g.accumulate_[k].push_back(acc && L.accumulates_input_grad());
        long offset = -1;
        if (acc && !L.accumulates_input_grad()) {
          offset = long(used);
          used += (g.shapes_[size_t(v)].numel() * B + 63) / 64 * 64;
        }
        g.scratch_offset_[k].push_back(offset);
        if (s >= 0) written[size_t(s)] = true;
      }
      scratch_floats = std::max(scratch_floats, used);
    }
  }

  // Places the storages in one block, reserves and allocates the arena, and hands every layer
  // its parameters, gradients, state and the shared workspace.
  void allocate_and_bind() {
    MemoryPlan plan = plan_memory(storages);
    if (!opts.plan_memory) {  // one buffer per tensor, each its own (the peak and naive stay)
      for (size_t s = 0, at = 0; s < storages.size(); ++s) {
        plan.offsets[s] = at;
        at += (storages[s].floats + 63) / 64 * 64;
        plan.extent = at;
      }
    }
    g.storage_offset_ = plan.offsets;
    g.memory_.planned = plan.extent * sizeof(float);
    g.memory_.peak = plan.peak * sizeof(float);
    g.memory_.naive = plan.naive * sizeof(float);

    Arena& a = g.arena_;
    g.params_region_ = a.reserve(g.num_params_, "parameters");
    g.grads_region_ = a.reserve(g.num_params_, "gradients");
    for (int s = 0; s < opts.optimizer_state_slots; ++s)
      g.state_regions_.push_back(a.reserve(g.num_params_, "optimizer state"));
    g.activations_region_ = a.reserve(plan.extent, "activations, gradients and layer state");
    g.scratch_region_ = a.reserve(scratch_floats, "gradient accumulation scratch");
    size_t workspace = 0;
    for (auto& L : g.layers_) workspace = std::max(workspace, L->workspace_floats(opts.batch));
    const int workspace_region = a.reserve(workspace, "workspace");
    if (a.bytes() > opts.max_arena_bytes)
      CP_USER_ERROR("the model needs " << a.bytes() / 1048576 << " MiB at batch " << opts.batch
                                       << ", more than the " << opts.max_arena_bytes / 1048576
                                       << " MiB limit");
    a.allocate(opts.device);

    for (size_t k = 0; k < N; ++k) {
      std::vector<Tensor> params, grads;
      for (auto& p : g.param_infos_) {
        if (p.layer != int(k)) continue;
        params.push_back({g.params() + p.offset, p.shape, opts.device});
        grads.push_back({g.grads() + p.offset, p.shape, opts.device});
      }
      float* state = state_storage[k] < 0 ? nullptr
                                          : a.region(g.activations_region_) +
                                                g.storage_offset_[size_t(state_storage[k])];
      g.layers_[k]->bind(params, grads, state, a.region(workspace_region));
    }
  }
};

std::unique_ptr<Graph> Graph::build(const ModelSpec& spec, const GraphOptions& opts) {
  if (opts.batch < 1) CP_USER_ERROR("batch size must be at least 1 (got " << opts.batch << ")");
  if (spec.layers.empty()) CP_USER_ERROR("the model defines no layers");
  require_precision_supported(precision(), opts.device == Device::cuda);
  auto g = std::unique_ptr<Graph>(new Graph());
  g->opts_ = opts;
  Builder b(*g, g->opts_);
  b.create_nodes(spec.layers);
  if (opts.fuse_relu) b.fuse_relus();
  b.infer_shapes(spec.input);
  b.lay_out_params();
  b.plan_storages();
  b.plan_accumulation();
  b.allocate_and_bind();
  g->init_params(0);
  return g;
}

}  // namespace convpool
