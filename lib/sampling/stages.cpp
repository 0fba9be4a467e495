#include "sampling/stages.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace vramfit::sampling {

void apply_penalties(std::span<float> logits, std::span<const int32_t> window, float repeat_penalty,
                     float frequency_penalty, float presence_penalty) {
  std::vector<int32_t> tokens(window.begin(), window.end());
  std::sort(tokens.begin(), tokens.end());
  for (size_t i = 0; i < tokens.size();) {
    size_t j = i;
    while (j < tokens.size() && tokens[j] == tokens[i]) ++j;
    const int32_t id = tokens[i];
    const auto count = static_cast<float>(j - i);
    i = j;
    if (id < 0 || static_cast<size_t>(id) >= logits.size()) continue;
    float &logit = logits[static_cast<size_t>(id)];
    // llama.cpp: shrink toward "less likely" on both sides of zero.
    logit = logit <= 0 ? logit * repeat_penalty : logit / repeat_penalty;
    logit -= count * frequency_penalty + presence_penalty;
  }
}

Candidates finite_candidates(std::span<const float> logits) {
  Candidates c;
  c.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i)
    if (logits[i] != -INFINITY) c.push_back({static_cast<int32_t>(i), logits[i]});
  return c;
}

namespace {
bool higher(const Candidate &a, const Candidate &b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);  // ties: lower id first
}
}  // namespace

void top_k(Candidates &c, int32_t k) {
  if (k <= 0 || static_cast<size_t>(k) >= c.size()) {
    std::sort(c.begin(), c.end(), higher);
    return;
  }
  std::partial_sort(c.begin(), c.begin() + k, c.end(), higher);
  c.resize(static_cast<size_t>(k));
}

std::vector<double> softmax(const Candidates &c) {
  std::vector<double> p(c.size());
  if (c.empty()) return p;
  float max_logit = c[0].logit;
  for (const Candidate &x : c) max_logit = std::max(max_logit, x.logit);
  double sum = 0;
  for (size_t i = 0; i < c.size(); ++i) sum += p[i] = std::exp(double(c[i].logit) - max_logit);
  for (double &x : p) x /= sum;
  return p;
}

void typical_p(Candidates &c, float p) {
  if (p >= 1.0f || c.size() <= 1) return;
  const std::vector<double> prob = softmax(c);
  double entropy = 0;
  for (double x : prob)
    if (x > 0) entropy -= x * std::log(x);
  std::vector<double> distance(c.size());
  for (size_t i = 0; i < c.size(); ++i) distance[i] = std::abs(-std::log(prob[i]) - entropy);
  std::vector<size_t> order(c.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return distance[a] < distance[b]; });
  double mass = 0;
  size_t keep = order.size();
  for (size_t i = 0; i < order.size(); ++i) {
    mass += prob[order[i]];
    if (mass > p) {
      keep = i + 1;
      break;
    }
  }
  Candidates kept;
  for (size_t i = 0; i < keep; ++i) kept.push_back(c[order[i]]);
  std::sort(kept.begin(), kept.end(), higher);  // restore the chain's order
  c = std::move(kept);
}

void top_p(Candidates &c, float p) {
  if (p >= 1.0f) return;
  const std::vector<double> prob = softmax(c);
  double mass = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    mass += prob[i];
    if (mass >= p) {
      c.resize(i + 1);
      return;
    }
  }
}

void min_p(Candidates &c, float p) {
  if (p <= 0.0f || c.empty()) return;
  // p_i >= p * p_max  <=>  logit_i >= logit_max + log(p)
  const float threshold = c[0].logit + std::log(p);
  size_t keep = 1;
  while (keep < c.size() && c[keep].logit >= threshold) ++keep;
  c.resize(keep);
}

void temperature(Candidates &c, float t) {
  for (Candidate &x : c) x.logit /= t;
}

int32_t draw(const Candidates &c, std::mt19937 &rng) {
  const std::vector<double> prob = softmax(c);
  const double u = static_cast<double>(rng()) / 4294967296.0;  // [0, 1)
  double cumulative = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    cumulative += prob[i];
    if (u < cumulative) return c[i].id;
  }
  return c.back().id;  // rounding left u just above the total
}

}  // namespace vramfit::sampling
