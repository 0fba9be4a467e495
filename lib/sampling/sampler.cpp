#include "vramfit/sampler.hpp"

#include <cmath>
#include <deque>
#include <random>
#include <vector>

#include "common/error.hpp"
#include "sampling/stages.hpp"

namespace vramfit {

using detail::fail;

namespace {

void check_params(const SamplerParams &p) {
  auto check = [](bool ok, const char *field, double value, const char *range) {
    if (!ok) fail(ErrorCode::invalid_argument, "sampler: {} = {} is out of range ({})", field, value, range);
  };
  check(!std::isnan(p.temperature), "temperature", p.temperature, "a number; <= 0 means greedy");
  check(p.top_p > 0 && p.top_p <= 1, "top_p", p.top_p, "(0, 1]");
  check(p.typical_p > 0 && p.typical_p <= 1, "typical_p", p.typical_p, "(0, 1]");
  check(p.min_p >= 0 && p.min_p <= 1, "min_p", p.min_p, "[0, 1]");
  check(p.repeat_penalty > 0 && std::isfinite(p.repeat_penalty), "repeat_penalty", p.repeat_penalty, "> 0");
  check(std::isfinite(p.frequency_penalty), "frequency_penalty", p.frequency_penalty, "finite");
  check(std::isfinite(p.presence_penalty), "presence_penalty", p.presence_penalty, "finite");
  check(p.penalty_last_n >= 0, "penalty_last_n", p.penalty_last_n, ">= 0");
}

std::mt19937 seeded_engine(uint64_t seed) {
  // seed_seq is specified exactly by the standard, so both halves of the seed count everywhere.
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  return std::mt19937(seq);
}

}  // namespace

struct Sampler::Impl {
  SamplerParams params;
  std::mt19937 rng;
  std::deque<int32_t> recent;  // the last penalty_last_n accepted tokens
  std::vector<float> scratch;  // the penalized copy of the logits

  bool penalties_on() const {
    return params.penalty_last_n > 0 &&
           (params.repeat_penalty != 1.0f || params.frequency_penalty != 0.0f || params.presence_penalty != 0.0f);
  }
};

Sampler::Sampler(const SamplerParams &params) {
  check_params(params);
  impl_ = std::make_unique<Impl>(Impl{params, seeded_engine(params.seed), {}, {}});
}
Sampler::Sampler(Sampler &&) noexcept = default;
Sampler &Sampler::operator=(Sampler &&) noexcept = default;
Sampler::~Sampler() = default;

int32_t Sampler::sample(std::span<const float> logits) {
  if (logits.empty()) fail(ErrorCode::invalid_argument, "sampler: empty logits");
  for (size_t i = 0; i < logits.size(); ++i)
    if (std::isnan(logits[i])) fail(ErrorCode::invalid_argument, "sampler: logit of token {} is NaN", i);

  Impl &s = *impl_;
  const SamplerParams &p = s.params;
  if (s.penalties_on()) {
    s.scratch.assign(logits.begin(), logits.end());
    std::vector<int32_t> window(s.recent.begin(), s.recent.end());
    sampling::apply_penalties(s.scratch, window, p.repeat_penalty, p.frequency_penalty, p.presence_penalty);
    logits = s.scratch;
  }
  sampling::Candidates c = sampling::finite_candidates(logits);
  if (c.empty()) fail(ErrorCode::invalid_argument, "sampler: every one of the {} logits is -inf", logits.size());

  if (p.temperature <= 0) {
    sampling::top_k(c, 1);  // greedy: the argmax (lowest id on ties)
    return c[0].id;
  }
  sampling::top_k(c, p.top_k);
  sampling::typical_p(c, p.typical_p);
  sampling::top_p(c, p.top_p);
  sampling::min_p(c, p.min_p);
  sampling::temperature(c, p.temperature);
  return sampling::draw(c, s.rng);
}

void Sampler::accept(int32_t token) {
  Impl &s = *impl_;
  if (s.params.penalty_last_n <= 0) return;
  s.recent.push_back(token);
  while (s.recent.size() > static_cast<size_t>(s.params.penalty_last_n)) s.recent.pop_front();
}

void Sampler::reset() {
  impl_->recent.clear();
  impl_->rng = seeded_engine(impl_->params.seed);
}

const SamplerParams &Sampler::params() const noexcept { return impl_->params; }

}  // namespace vramfit
