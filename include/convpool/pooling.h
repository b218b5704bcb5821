// Pooling methods: the catalogue users choose from (`pool METHOD ...` in a model file, or
// `--pool METHOD[:key=value,...]` to override every pooling layer), generated from the one
// table in kernels/pool_methods.cuh.
#pragma once
#include <array>
#include <string>

#include "convpool/model.h"
#include "convpool/pool_methods.h"

namespace convpool {

class Layer;

// Replaces the method (and method parameters) of every `pool` layer by `override`, e.g.
// "avgtopk:k=3" or "lp:p=3"; window size, stride and padding are kept.
void apply_pool_override(ModelSpec& spec, const std::string& override_text);
// Replaces the model's last `pool` layer (its head's pooling: ResNet-20's global average,
// VGG-BN's last 2x2 max) by a global encoder, "gem_pool:p=3" or "attention_pool:heads=2"
// (global_encoder_ops()), keeping its name and inputs. The model text is rewritten too (the
// layer's line, and a closing comment naming what it replaced), so a checkpoint's model is
// the one trained. Bad input is a one-line error.
void apply_global_pool_override(ModelSpec& spec, const std::string& override_text);

// The parsed configuration of a `pool` layer, as the ONNX planner reads it (the layer
// parses its parameters once); null for any other layer.
struct PoolLayerConfig {
  const PoolMethodSpec* method;
  bool global;
  int kh, kw, sh, sw, ph, pw;
  std::array<double, kPoolParamSlots> params;  // by PoolParamSlot, as parsed
  double param(PoolParamSlot slot) const { return params[size_t(slot)]; }
};
const PoolLayerConfig* pool_layer_config(const Layer& layer);

}  // namespace convpool
