// The stages of the sampler chain, each a small function over a candidate list, so each can be
// checked on its own against a hand-computed distribution. Semantics follow llama.cpp's
// samplers (src/llama-sampling.cpp) with min_keep = 1.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace vramfit::sampling {

struct Candidate {
  int32_t id;
  float logit;
};
using Candidates = std::vector<Candidate>;

// Repetition / frequency / presence penalties on a full row of logits (index = token id), for
// the tokens of `window` only. Tokens outside the row are ignored.
void apply_penalties(std::span<float> logits, std::span<const int32_t> window, float repeat_penalty,
                     float frequency_penalty, float presence_penalty);

// The finite logits of the row as candidates, in token order (-inf entries are impossible tokens).
Candidates finite_candidates(std::span<const float> logits);

// Sorts by logit, highest first, and keeps the k best (k <= 0 or k >= size: keeps all, sorted).
// Every later stage expects (and keeps) this order.
void top_k(Candidates &c, int32_t k);
// Locally typical sampling: keeps the tokens whose surprise is closest to the entropy until
// their probability mass exceeds p. p >= 1: off.
void typical_p(Candidates &c, float p);
// Nucleus: keeps the smallest prefix whose probability mass reaches p. p >= 1: off.
void top_p(Candidates &c, float p);
// Keeps tokens whose probability is at least p times the best one's. p <= 0: off.
void min_p(Candidates &c, float p);
// Divides logits by t (t > 0).
void temperature(Candidates &c, float t);

// Probabilities of the candidates (softmax of their logits), same order.
std::vector<double> softmax(const Candidates &c);
// Draws one candidate's id with probability softmax(logit), by inverse CDF on one 32-bit draw.
int32_t draw(const Candidates &c, std::mt19937 &rng);

}  // namespace vramfit::sampling
