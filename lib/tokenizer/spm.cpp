// SentencePiece (BPE by score), as llama.cpp's llm_tokenizer_spm_session: start from UTF-8
// characters, repeatedly merge the adjacent pair whose concatenation is the best-scoring token,
// then emit each symbol; a symbol that is no token is split back along its merges, and what is
// left falls back to byte tokens <0xXX>.
#include <queue>
#include <unordered_map>

#include "tokenizer/unicode.hpp"
#include "tokenizer/vocab.hpp"

namespace vramfit::tokenizer {
namespace {

struct Symbol {
  int prev;
  int next;
  size_t offset;  // into the text
  size_t length;  // 0 once merged into its left neighbour
};

struct Bigram {
  int left;
  int right;
  float score;
  size_t length;
};

// Highest score first; on a tie the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram &a, const Bigram &b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

class SpmSession {
 public:
  SpmSession(const Vocab &vocab, std::string_view text) : vocab_(vocab), text_(text) {}

  void encode(std::vector<int32_t> &out) {
    split_into_characters();
    for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) try_add_bigram(i - 1, i);
    merge_best_pairs();
    for (int i = 0; i != -1 && !symbols_.empty(); i = symbols_[i].next) resegment(symbols_[i], out);
  }

 private:
  void split_into_characters() {
    for (size_t offset = 0; offset < text_.size();) {
      const size_t length = std::min(utf8_sequence_length(static_cast<uint8_t>(text_[offset])), text_.size() - offset);
      const int index = static_cast<int>(symbols_.size());
      symbols_.push_back({index - 1, offset + length == text_.size() ? -1 : index + 1, offset, length});
      offset += length;
    }
  }

  void merge_best_pairs() {
    while (!queue_.empty()) {
      const Bigram bigram = queue_.top();
      queue_.pop();
      Symbol &left = symbols_[bigram.left];
      Symbol &right = symbols_[bigram.right];
      if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.length) continue;  // stale
      left.length += right.length;
      right.length = 0;
      left.next = right.next;
      if (right.next >= 0) symbols_[right.next].prev = bigram.left;
      try_add_bigram(left.prev, bigram.left);
      try_add_bigram(bigram.left, left.next);
    }
  }

  std::string_view text_of(const Symbol &s) const { return text_.substr(s.offset, s.length); }

  void try_add_bigram(int left, int right) {
    if (left == -1 || right == -1) return;
    const std::string_view pair = text_.substr(symbols_[left].offset, symbols_[left].length + symbols_[right].length);
    const int32_t id = vocab_.find(pair);
    if (id < 0) return;
    queue_.push({left, right, vocab_.tokens[id].score, pair.size()});
    merges_[std::string(pair)] = {left, right};  // the latest pair that produced this text
  }

  void resegment(const Symbol &symbol, std::vector<int32_t> &out) const {
    const std::string_view text = text_of(symbol);
    if (const int32_t id = vocab_.find(text); id >= 0) {
      out.push_back(id);
      return;
    }
    auto it = merges_.find(std::string(text));
    if (it == merges_.end()) {
      for (char c : text) {
        const int32_t id = vocab_.byte_token(static_cast<uint8_t>(c));
        // llama.cpp aborts when a byte has no token; we fall back to <unk> (or drop the byte).
        if (id >= 0) out.push_back(id);
        else if (vocab_.unk >= 0) out.push_back(vocab_.unk);
      }
      return;
    }
    resegment(symbols_[it->second.first], out);
    resegment(symbols_[it->second.second], out);
  }

  const Vocab &vocab_;
  std::string_view text_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue_;
  std::unordered_map<std::string, std::pair<int, int>> merges_;
};

}  // namespace

void encode_spm(const Vocab &vocab, std::string_view text, std::vector<int32_t> &out) {
  SpmSession(vocab, text).encode(out);
}

}  // namespace vramfit::tokenizer
