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
  int32_t id;     // token or symbol id of its text (Vocab::find_symbol), -1 when none
};

struct Bigram {
  int left;
  int right;
  int rank;
  size_t length;  // left + right when queued: texts only grow, so another length means stale
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
    if (vocab_.ignore_merges) {
      if (const int32_t id = vocab_.find(word_); id >= 0) {
        out.push_back(id);
        return;
      }
    }
    for (size_t offset = 0; offset < word_.size();) {
      const size_t length = std::min(utf8_sequence_length(static_cast<uint8_t>(word_[offset])), word_.size() - offset);
      const int index = static_cast<int>(symbols_.size());
      const int32_t id = vocab_.find_symbol(word_.substr(offset, length));
      symbols_.push_back({index - 1, offset + length == word_.size() ? -1 : index + 1, offset, length, id});
      offset += length;
    }
    for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) add_bigram(i - 1, i);
    merge();
    for (const Symbol &s : symbols_)
      if (s.length > 0) emit(s, out);
  }

 private:
  std::string_view text_of(const Symbol &s) const { return word_.substr(s.offset, s.length); }

  void add_bigram(int left, int right) {
    if (left == -1 || right == -1) return;
    const Symbol &l = symbols_[left];
    const Symbol &r = symbols_[right];
    if (l.id < 0 || r.id < 0) return;  // a text no merge names
    const int rank = vocab_.merge_rank(l.id, r.id);
    if (rank < 0) return;
    queue_.push({left, right, rank, l.length + r.length});
  }

  void merge() {
    while (!queue_.empty()) {
      const Bigram bigram = queue_.top();
      queue_.pop();
      Symbol &left = symbols_[bigram.left];
      Symbol &right = symbols_[bigram.right];
      if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.length) continue;  // stale
      left.length += right.length;
      left.id = vocab_.find_symbol(text_of(left));
      right.length = 0;
      left.next = right.next;
      if (right.next >= 0) symbols_[right.next].prev = bigram.left;
      add_bigram(left.prev, bigram.left);
      add_bigram(bigram.left, left.next);
    }
  }

  // A symbol that is no token is emitted byte by byte, skipping bytes that are no token either.
  void emit(const Symbol &s, std::vector<int32_t> &out) const {
    if (s.id >= 0 && s.id < vocab_.n_vocab()) {
      out.push_back(s.id);
      return;
    }
    for (char c : text_of(s))
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
