// Byte-level BPE, as llama.cpp's llm_tokenizer_bpe_session: pre-tokenize into words, write each
// word's bytes as GPT-2's printable code points, then merge adjacent symbols by merge rank
// (lowest first, leftmost on a tie) until no ranked pair is left.
#include <queue>

#include "tokenizer/unicode.hpp"
#include "tokenizer/vocab.hpp"

namespace vramfit::tokenizer {
namespace {

struct Symbol {
  int prev;
  int next;
  size_t offset;
  size_t length;  // 0 once merged into its left neighbour
};

struct Bigram {
  int left;
  int right;
  int rank;
  std::string text;  // left + right when queued; a merge that no longer spells this is stale
};

struct BigramOrder {
  bool operator()(const Bigram &a, const Bigram &b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

std::string byte_encode(std::string_view word) {
  std::string out;
  out.reserve(word.size() * 2);
  for (char c : word) out += byte_to_unicode(static_cast<uint8_t>(c));
  return out;
}

class BpeWord {
 public:
  BpeWord(const Vocab &vocab, std::string_view word) : vocab_(vocab), word_(word) {}

  void encode(std::vector<int32_t> &out) {
    if (vocab_.ignore_merges && vocab_.find(word_) >= 0) {
      out.push_back(vocab_.find(word_));
      return;
    }
    for (size_t offset = 0; offset < word_.size();) {
      const size_t length = std::min(utf8_sequence_length(static_cast<uint8_t>(word_[offset])), word_.size() - offset);
      const int index = static_cast<int>(symbols_.size());
      symbols_.push_back({index - 1, offset + length == word_.size() ? -1 : index + 1, offset, length});
      offset += length;
    }
    for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) add_bigram(i - 1, i);
    merge();
    for (const Symbol &s : symbols_)
      if (s.length > 0) emit(text_of(s), out);
  }

 private:
  std::string_view text_of(const Symbol &s) const { return word_.substr(s.offset, s.length); }

  void add_bigram(int left, int right) {
    if (left == -1 || right == -1) return;
    const std::string_view l = text_of(symbols_[left]);
    const std::string_view r = text_of(symbols_[right]);
    const int rank = vocab_.merge_rank(l, r);
    if (rank < 0) return;
    queue_.push({left, right, rank, std::string(l).append(r)});
  }

  void merge() {
    while (!queue_.empty()) {
      const Bigram bigram = queue_.top();
      queue_.pop();
      Symbol &left = symbols_[bigram.left];
      Symbol &right = symbols_[bigram.right];
      if (left.length == 0 || right.length == 0) continue;
      if (left.offset + left.length != right.offset ||
          word_.substr(left.offset, left.length + right.length) != bigram.text)
        continue;  // stale
      left.length += right.length;
      right.length = 0;
      left.next = right.next;
      if (right.next >= 0) symbols_[right.next].prev = bigram.left;
      add_bigram(left.prev, bigram.left);
      add_bigram(bigram.left, left.next);
    }
  }

  // A symbol that is no token is emitted byte by byte, skipping bytes that are no token either.
  void emit(std::string_view text, std::vector<int32_t> &out) const {
    if (const int32_t id = vocab_.find(text); id >= 0) {
      out.push_back(id);
      return;
    }
    for (char c : text)
      if (const int32_t id = vocab_.find(std::string_view(&c, 1)); id >= 0) out.push_back(id);
  }

  const Vocab &vocab_;
  std::string_view word_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue_;
};

}  // namespace

void encode_bpe(const Vocab &vocab, std::string_view text, std::vector<int32_t> &out) {
  for (const std::string &word : pretokenize(vocab.pre, text)) {
    const std::string encoded = byte_encode(word);
    BpeWord(vocab, encoded).encode(out);
  }
}

}  // namespace vramfit::tokenizer
