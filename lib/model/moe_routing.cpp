#include "model/moe_routing.hpp"

#include <algorithm>
#include <numeric>

#include "cpu/nn.hpp"

namespace vramfit::model {
namespace {

// The k best of `score` (descending, lower id first on ties) into `out`.
void top_k(const float *score, int64_t n_expert, int64_t k, int32_t *out) {
  std::vector<int32_t> ids(static_cast<size_t>(n_expert));
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](int32_t a, int32_t b) { return score[a] > score[b] || (score[a] == score[b] && a < b); });
  std::copy(ids.begin(), ids.begin() + k, out);
}

// ggml_sum_rows (double accumulation), clamped as llama.cpp clamps it, then ggml_div.
void renormalise(float *w, int64_t k) {
  double sum = 0.0;
  for (int64_t j = 0; j < k; ++j) sum += w[j];
  const float total = std::max(static_cast<float>(sum), 6.103515625e-5f);
  for (int64_t j = 0; j < k; ++j) w[j] /= total;
}

void group_by_expert(Routing &r, int64_t n_tokens, int64_t n_expert) {
  std::vector<int32_t> batch_of(static_cast<size_t>(n_expert), -1);
  for (int32_t e : r.selected) batch_of[static_cast<size_t>(e)] = 0;
  for (int64_t e = 0; e < n_expert; ++e)
    if (batch_of[static_cast<size_t>(e)] == 0) {
      batch_of[static_cast<size_t>(e)] = static_cast<int32_t>(r.by_expert.size());
      r.by_expert.push_back(ExpertBatch{static_cast<int32_t>(e), {}, {}, {}});
    }
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t j = 0; j < r.k; ++j) {
      const size_t i = static_cast<size_t>(t * r.k + j);
      ExpertBatch &b = r.by_expert[static_cast<size_t>(batch_of[static_cast<size_t>(r.selected[i])])];
      b.tokens.push_back(static_cast<int32_t>(t));
      b.slot_rows.push_back(static_cast<int32_t>(j * n_tokens + t));
      b.weights.push_back(r.weights[i]);
    }
}

}  // namespace

Routing route(Gating gating, const float *logits, int64_t n_tokens, int64_t n_expert, int64_t k) {
  Routing r;
  r.k = k;
  r.selected.resize(static_cast<size_t>(n_tokens * k));
  r.weights.resize(static_cast<size_t>(n_tokens * k));
  std::vector<float> p(static_cast<size_t>(n_expert));
  for (int64_t t = 0; t < n_tokens; ++t) {
    int32_t *sel = r.selected.data() + t * k;
    float *w = r.weights.data() + t * k;
    std::copy(logits + t * n_expert, logits + (t + 1) * n_expert, p.begin());
    if (gating == Gating::softmax_top_k) {
      cpu::softmax(p.data(), n_expert);
      top_k(p.data(), n_expert, k, sel);
      for (int64_t j = 0; j < k; ++j) w[j] = p[static_cast<size_t>(sel[j])];
      renormalise(w, k);
    } else {
      top_k(p.data(), n_expert, k, sel);
      for (int64_t j = 0; j < k; ++j) w[j] = p[static_cast<size_t>(sel[j])];
      cpu::softmax(w, k);
    }
  }
  group_by_expert(r, n_tokens, n_expert);
  return r;
}

}  // namespace vramfit::model
