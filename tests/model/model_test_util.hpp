// Helpers shared by the model tests.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <type_traits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "test_data.hpp"
#include "vramfit/context.hpp"
#include "vramfit/model.hpp"

namespace vramfit::test {

// The CPU reference path, explicitly: "auto" would pick a GPU where there is one (the GPU path is
// tests/devices/test_cuda_device.cpp).
inline ModelParams cpu_only() {
  ModelParams p;
  p.device = "cpu";
  return p;
}

// Copies every weight in `weights` to `device` (an allocation each, recorded in `copies`) and
// points the views there.
template <class Device, class Weights>
void upload_to(Device &device, const Weights &weights, std::vector<void *> &copies) {
  for (const auto *c : weights) {
    auto &w = const_cast<std::remove_cvref_t<decltype(*c)> &>(*c);
    const uint64_t bytes = w.bytes();
    void *copy = device.allocate(bytes, "weights");
    device.upload(copy, w.data, bytes);
    copies.push_back(copy);
    w.data = copy;
    w.device = &device;
  }
}

// The prompt of every reference in ../shared/reference/logits.
inline constexpr const char *kPrompt = "Once upon a time, there was a little";

// A reference/logits/*.logits.bin file (VFRL v1): the tokens and llama.cpp's logits of each position.
struct Reference {
  int32_t n_vocab = 0, n_prompt = 0;
  std::vector<int32_t> tokens;
  std::vector<float> logits;  // [n_total][n_vocab]
  std::span<const float> row(size_t i) const { return {logits.data() + i * n_vocab, static_cast<size_t>(n_vocab)}; }
};

inline Reference read_reference(const std::filesystem::path &path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  char magic[4];
  uint32_t header[4];
  in.read(magic, 4);
  in.read(reinterpret_cast<char *>(header), sizeof header);
  REQUIRE(std::string_view(magic, 4) == "VFRL");
  REQUIRE(header[0] == 1);
  Reference r;
  r.n_vocab = static_cast<int32_t>(header[1]);
  r.n_prompt = static_cast<int32_t>(header[2]);
  r.tokens.resize(header[3]);
  r.logits.resize(size_t{header[3]} * header[1]);
  in.read(reinterpret_cast<char *>(r.tokens.data()), static_cast<std::streamsize>(r.tokens.size() * 4));
  in.read(reinterpret_cast<char *>(r.logits.data()), static_cast<std::streamsize>(r.logits.size() * 4));
  REQUIRE(in);
  return r;
}

// Mean-centred relative RMS of a - b: subtract each row's mean, then ||a-b|| / ||b||.
inline double centred_rel_rms(std::span<const float> a, std::span<const float> b) {
  double mean_a = 0, mean_b = 0;
  for (size_t i = 0; i < a.size(); ++i) mean_a += a[i], mean_b += b[i];
  mean_a /= static_cast<double>(a.size());
  mean_b /= static_cast<double>(b.size());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = a[i] - mean_a, y = b[i] - mean_b;
    diff += (x - y) * (x - y);
    norm += y * y;
  }
  return std::sqrt(diff / norm);
}

inline size_t argmax(std::span<const float> x) { return static_cast<size_t>(std::max_element(x.begin(), x.end()) - x.begin()); }

inline float top2_margin(std::span<const float> x) {
  std::vector<float> v(x.begin(), x.end());
  std::partial_sort(v.begin(), v.begin() + 2, v.end(), std::greater<>());
  return v[0] - v[1];
}

struct Agreement {
  double max_rms = 0;
  int argmax_mismatches = 0;  // where the reference's top-2 margin exceeds `margin`
};

inline Agreement compare(const Reference &ref, const std::vector<std::vector<float>> &rows, float margin) {
  Agreement a;
  for (size_t i = 0; i < rows.size(); ++i) {
    a.max_rms = std::max(a.max_rms, centred_rel_rms(rows[i], ref.row(i)));
    if (top2_margin(ref.row(i)) > margin && argmax(rows[i]) != argmax(ref.row(i))) ++a.argmax_mismatches;
  }
  return a;
}

inline std::vector<std::vector<float>> eval_batch(Context &ctx, std::span<const int32_t> tokens) {
  ctx.clear();
  ctx.decode(tokens, /*all_logits=*/true);
  std::vector<std::vector<float>> rows;
  for (size_t i = 0; i < tokens.size(); ++i) {
    auto l = ctx.logits(static_cast<int32_t>(i));
    rows.emplace_back(l.begin(), l.end());
  }
  return rows;
}

inline std::vector<std::vector<float>> eval_incremental(Context &ctx, std::span<const int32_t> tokens) {
  ctx.clear();
  std::vector<std::vector<float>> rows;
  for (int32_t t : tokens) {
    auto l = ctx.decode(std::span<const int32_t>(&t, 1));
    rows.emplace_back(l.begin(), l.end());
  }
  return rows;
}

// ../shared's model `name` on the CPU and llama.cpp's reference logits for it, the prompt's
// tokenization checked against the reference's; nullopt when the data is missing (test_data()
// fails under CI=true).
struct ModelAndReference {
  Model model;
  Reference ref;
};
inline std::optional<ModelAndReference> load_with_reference(const std::string &name) {
  auto model_path = test_data("models/" + name + ".gguf");
  auto ref_path = test_data("reference/logits/" + name + ".logits.bin");
  if (!model_path || !ref_path) return std::nullopt;
  ModelAndReference out{Model::load(*model_path, cpu_only()), read_reference(*ref_path)};
  REQUIRE(out.model.n_vocab() == out.ref.n_vocab);
  CHECK(out.model.tokenize(kPrompt, true, false) ==
        std::vector<int32_t>(out.ref.tokens.begin(), out.ref.tokens.begin() + out.ref.n_prompt));
  return out;
}

}  // namespace vramfit::test
