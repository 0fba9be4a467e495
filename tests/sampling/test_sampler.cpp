#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "sampling/stages.hpp"
#include "test_util.hpp"
#include "vramfit/error.hpp"
#include "vramfit/sampler.hpp"

using namespace vramfit;
using namespace vramfit::sampling;

namespace {

// Logits whose softmax is exactly `probs`.
std::vector<float> log_of(const std::vector<double> &probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

std::vector<int32_t> ids(const Candidates &c) {
  std::vector<int32_t> out;
  for (const Candidate &x : c) out.push_back(x.id);
  return out;
}

Candidates sorted_candidates(const std::vector<float> &logits) {
  Candidates c = finite_candidates(logits);
  top_k(c, 0);
  return c;
}

const std::vector<double> kProbs = {0.5, 0.3, 0.15, 0.05};

// Frequency of each token over n samples.
std::map<int32_t, double> frequencies(Sampler &s, const std::vector<float> &logits, int n) {
  std::map<int32_t, double> f;
  for (int i = 0; i < n; ++i) f[s.sample(logits)] += 1.0 / n;
  return f;
}

}  // namespace

TEST_CASE("penalties follow llama.cpp and touch exactly the tokens in the window") {
  std::vector<float> logits = {2.0f, -2.0f, 1.0f, 0.5f, 3.0f};
  const std::vector<int32_t> window = {0, 1, 0, 99, -1};  // 99 and -1 are outside the row: ignored
  apply_penalties(logits, window, 2.0f, 0.5f, 0.25f);
  CHECK(logits[0] == doctest::Approx(2.0 / 2 - (2 * 0.5 + 0.25)));   // positive: divided; seen twice
  CHECK(logits[1] == doctest::Approx(-2.0 * 2 - (1 * 0.5 + 0.25)));  // negative: multiplied
  CHECK(logits[2] == 1.0f);
  CHECK(logits[3] == 0.5f);
  CHECK(logits[4] == 3.0f);
}

TEST_CASE("top-k keeps the k highest, sorted; k beyond the vocabulary keeps all") {
  Candidates c = finite_candidates(std::vector<float>{1, 3, 2, 5, 4});
  top_k(c, 3);
  CHECK(ids(c) == std::vector<int32_t>{3, 4, 1});
  c = finite_candidates(std::vector<float>{1, 3, 2, 5, 4});
  top_k(c, 100);
  CHECK(ids(c) == std::vector<int32_t>{3, 4, 1, 2, 0});
}

TEST_CASE("softmax of log-probabilities gives the probabilities back") {
  std::vector<double> p = softmax(sorted_candidates(log_of(kProbs)));
  for (size_t i = 0; i < kProbs.size(); ++i) CHECK(p[i] == doctest::Approx(kProbs[i]).epsilon(1e-6));
}

TEST_CASE("top-p keeps the smallest prefix reaching p") {
  Candidates c = sorted_candidates(log_of(kProbs));
  top_p(c, 0.75f);  // 0.5 + 0.3 >= 0.75
  CHECK(ids(c) == std::vector<int32_t>{0, 1});
  c = sorted_candidates(log_of(kProbs));
  top_p(c, 0.81f);  // needs 0.5 + 0.3 + 0.15
  CHECK(ids(c) == std::vector<int32_t>{0, 1, 2});
  c = sorted_candidates(log_of(kProbs));
  top_p(c, 1.0f);  // off
  CHECK(c.size() == 4);
}

TEST_CASE("min-p keeps tokens at least p times as likely as the best") {
  Candidates c = sorted_candidates(log_of(kProbs));
  min_p(c, 0.2f);  // threshold 0.1: 0.5, 0.3, 0.15
  CHECK(ids(c) == std::vector<int32_t>{0, 1, 2});
  c = sorted_candidates(log_of(kProbs));
  min_p(c, 0.35f);  // threshold 0.175: 0.5, 0.3
  CHECK(ids(c) == std::vector<int32_t>{0, 1});
}

TEST_CASE("typical-p keeps tokens whose surprise is closest to the entropy") {
  // H = 1.1421 nats; |surprise - H| = 0.449 (p .5), 0.062 (p .3), 0.755 (p .15), 1.854 (p .05):
  // the typical order is token 1, 0, 2, 3.
  Candidates c = sorted_candidates(log_of(kProbs));
  typical_p(c, 0.2f);  // 0.3 > 0.2 already: only token 1, not the most likely one
  CHECK(ids(c) == std::vector<int32_t>{1});
  c = sorted_candidates(log_of(kProbs));
  typical_p(c, 0.5f);  // 0.3 + 0.5 > 0.5
  CHECK(ids(c) == std::vector<int32_t>{0, 1});
  c = sorted_candidates(log_of(kProbs));
  typical_p(c, 0.85f);  // 0.3 + 0.5 + 0.15 > 0.85
  CHECK(ids(c) == std::vector<int32_t>{0, 1, 2});
}

TEST_CASE("temperature divides the logits") {
  Candidates c = finite_candidates(std::vector<float>{2.0f, 1.0f});
  temperature(c, 0.5f);
  CHECK(c[0].logit == 4.0f);
  CHECK(c[1].logit == 2.0f);
}

TEST_CASE("the draw follows the softmax distribution") {
  const Candidates c = sorted_candidates(log_of(kProbs));
  std::mt19937 rng(7);
  std::map<int32_t, double> f;
  const int n = 40000;
  for (int i = 0; i < n; ++i) f[draw(c, rng)] += 1.0 / n;
  // 4 standard errors of the largest share: 4 * sqrt(0.25 / n) = 0.01
  for (size_t i = 0; i < kProbs.size(); ++i) CHECK(std::abs(f[int32_t(i)] - kProbs[i]) < 0.01);
}

TEST_CASE("the whole chain: top-k then min-p then temperature gives the hand-computed distribution") {
  SamplerParams p;
  p.top_k = 3;         // {.5, .3, .15}
  p.top_p = 1.0f;
  p.min_p = 0.4f;      // threshold 0.2: {.5, .3}
  p.temperature = 0.5f;  // squares the ratio: .25/.34 and .09/.34
  p.seed = 42;
  Sampler s(p);
  auto f = frequencies(s, log_of(kProbs), 40000);
  // 4 standard errors of a 0.74 / 0.26 split over 40000 draws: 0.009
  CHECK(std::abs(f[0] - 0.25 / 0.34) < 0.01);
  CHECK(std::abs(f[1] - 0.09 / 0.34) < 0.01);
  CHECK(f.count(2) == 0);
  CHECK(f.count(3) == 0);
}

TEST_CASE("greedy returns the argmax") {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> logits(512);
  for (float &x : logits) x = normal(rng);
  SamplerParams p;
  p.temperature = 0;
  Sampler s(p);
  const auto argmax = std::max_element(logits.begin(), logits.end()) - logits.begin();
  for (int i = 0; i < 3; ++i) CHECK(s.sample(logits) == argmax);
}

TEST_CASE("same seed, same sequence; another seed, another sequence; reset replays") {
  std::vector<float> flat(512, 0.0f);
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  auto run = [&](Sampler &s) {
    std::vector<int32_t> out;
    for (int i = 0; i < 32; ++i) out.push_back(s.sample(flat));
    return out;
  };
  p.seed = 1234;
  Sampler a(p), b(p);
  p.seed = 1235;
  Sampler c(p);
  const auto first = run(a);
  CHECK(first == run(b));
  CHECK(first != run(c));
  a.reset();
  CHECK(run(a) == first);
}

TEST_CASE("a repeat penalty moves greedy off a token in the window, and only while it is there") {
  SamplerParams p;
  p.temperature = 0;
  p.repeat_penalty = 2.0f;
  p.penalty_last_n = 2;
  Sampler s(p);
  const std::vector<float> logits = {3.0f, 2.0f, 1.0f};
  CHECK(s.sample(logits) == 0);
  s.accept(0);
  CHECK(s.sample(logits) == 1);  // 3 / 2 < 2
  s.accept(2);
  s.accept(2);  // token 0 left the window of 2
  CHECK(s.sample(logits) == 0);
}

TEST_CASE("edge cases: one finite logit, top-k beyond the vocabulary, NaN, all -inf, bad params") {
  const float inf = INFINITY;
  std::vector<float> one = {-inf, -inf, 0.5f, -inf};
  Sampler sampled;  // defaults: temperature 0.8, top-k 40
  for (int i = 0; i < 10; ++i) CHECK(sampled.sample(one) == 2);
  SamplerParams greedy;
  greedy.temperature = 0;
  CHECK(Sampler(greedy).sample(one) == 2);

  SamplerParams big;
  big.top_k = 1000;
  Sampler s(big);
  const int32_t t = s.sample(std::vector<float>{0.0f, 1.0f, 0.5f});
  CHECK((t >= 0 && t < 3));

  using test::error_code_of;
  CHECK(error_code_of([&] { sampled.sample(std::vector<float>{0.0f, NAN}); }) == ErrorCode::invalid_argument);
  CHECK(error_code_of([&] { sampled.sample(std::vector<float>{-inf, -inf}); }) == ErrorCode::invalid_argument);
  CHECK(error_code_of([&] { sampled.sample(std::vector<float>{}); }) == ErrorCode::invalid_argument);
  SamplerParams bad;
  bad.top_p = 0;
  CHECK(error_code_of([&] { Sampler x(bad); }) == ErrorCode::invalid_argument);
  bad = {};
  bad.penalty_last_n = -1;
  CHECK(error_code_of([&] { Sampler x(bad); }) == ErrorCode::invalid_argument);
}
