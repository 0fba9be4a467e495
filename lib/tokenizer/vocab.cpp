// Reading tokenizer.ggml.* into a Vocab, with llama.cpp's defaults and fix-ups (llama-vocab.cpp,
// llama_vocab::impl::load), so that ids, attributes and flags agree with it exactly.
#include "tokenizer/vocab.hpp"

#include <algorithm>
#include <cstdlib>
#include <initializer_list>

#include "common/error.hpp"
#include "common/log.hpp"
#include "tokenizer/unicode.hpp"

namespace vramfit::tokenizer {
namespace {

constexpr std::string_view kModel = "tokenizer.ggml.model";
constexpr std::string_view kPre = "tokenizer.ggml.pre";

struct PreTokenizerName {
  std::string_view name;
  PreTokenizer pre;
  bool ignore_merges = false;
  bool add_bos = false;
  bool clean_spaces = true;
};

// tokenizer.ggml.pre values we implement, with the flags llama.cpp sets for each.
constexpr PreTokenizerName kPreTokenizers[] = {
    {"default", PreTokenizer::default_},
    {"llama3", PreTokenizer::llama3, true, true},
    {"llama-v3", PreTokenizer::llama3, true, true},
    {"llama-bpe", PreTokenizer::llama3, true, true},
    {"falcon3", PreTokenizer::llama3, true, true},
    {"dbrx", PreTokenizer::llama3},
    {"smaug-bpe", PreTokenizer::llama3},
    {"deepseek-coder", PreTokenizer::deepseek_coder, false, false, false},
    {"deepseek-llm", PreTokenizer::deepseek_llm, false, false, false},
    {"falcon", PreTokenizer::falcon},
    {"mpt", PreTokenizer::gpt2},
    {"gpt-2", PreTokenizer::gpt2},
    {"phi-2", PreTokenizer::gpt2},
    {"jina-es", PreTokenizer::gpt2},
    {"jina-de", PreTokenizer::gpt2},
    {"gigachat", PreTokenizer::gpt2},
    {"olmo", PreTokenizer::gpt2},
    {"jais", PreTokenizer::gpt2},
    {"exaone4", PreTokenizer::gpt2},
    {"starcoder", PreTokenizer::starcoder},
    {"refact", PreTokenizer::starcoder},
    {"command-r", PreTokenizer::starcoder, false, false, false},
    {"smollm", PreTokenizer::starcoder, false, false, false},
    {"codeshell", PreTokenizer::starcoder},
    {"exaone", PreTokenizer::starcoder},
    {"minerva-7b", PreTokenizer::starcoder},
    {"qwen2", PreTokenizer::qwen2, false, false, false},
    {"deepseek-r1-qwen", PreTokenizer::qwen2, false, false, false},
    {"stablelm2", PreTokenizer::qwen2},
    {"megrez", PreTokenizer::qwen2},
    {"hunyuan", PreTokenizer::qwen2, false, false, false},
    {"gpt-4o", PreTokenizer::gpt4o, false, false, false},
    {"llama4", PreTokenizer::gpt4o, false, false, false},
    {"minimax-m2", PreTokenizer::gpt4o, false, false, false},
};

uint32_t attr_from_token_type(int32_t type) {
  switch (type) {
    case 1: return attr_normal;
    case 2: return attr_unknown;
    case 3: return attr_control;
    case 4: return attr_user_defined;
    case 5: return attr_unused;
    case 6: return attr_byte;
    default: return attr_undefined;
  }
}

void read_kind(const gguf::File &file, Vocab &v) {
  if (!file.has(kModel))
    detail::fail(ErrorCode::format, "{}: no tokenizer in this file ({} is missing)", file.name(), kModel);
  v.model_name = std::string(file.get<std::string_view>(kModel));
  v.pre_name = std::string(file.get_or<std::string_view>(kPre, ""));
  if (v.model_name == "llama") {
    v.kind = VocabKind::spm;
    v.bos = 1, v.eos = 2, v.unk = 0;
    v.add_space_prefix = true, v.add_bos = true;
  } else if (v.model_name == "bert") {
    v.kind = VocabKind::wpm;
    v.bos = 101, v.unk = 100, v.sep = 102, v.pad = 0, v.mask = 103;
    v.add_bos = true, v.add_sep = true, v.clean_spaces = true;
  } else if (v.model_name == "gpt2") {
    v.kind = VocabKind::bpe;
    v.bos = 11, v.eos = 11;
    v.clean_spaces = true;
    auto it = std::find_if(std::begin(kPreTokenizers), std::end(kPreTokenizers),
                           [&](const PreTokenizerName &p) { return p.name == v.pre_name; });
    if (it == std::end(kPreTokenizers)) {
      if (!v.pre_name.empty())
        detail::fail(ErrorCode::unsupported, "{}: {} = '{}' is not a pre-tokenizer vramfit implements",
                     file.name(), kPre, v.pre_name);
      detail::log_warn("{}: {} is missing; using the 'default' BPE pre-tokenizer", file.name(), kPre);
      it = std::begin(kPreTokenizers);
    }
    v.pre = it->pre;
    v.ignore_merges = it->ignore_merges;
    v.add_bos = it->add_bos;
    v.clean_spaces = it->clean_spaces;
  } else {
    detail::fail(ErrorCode::unsupported, "{}: {} = '{}' is not supported (llama, gpt2 and bert are)",
                 file.name(), kModel, v.model_name);
  }
  v.add_space_prefix = file.get_or<bool>("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
}

void read_tokens(const gguf::File &file, Vocab &v) {
  const std::vector<std::string_view> texts = file.get_strings("tokenizer.ggml.tokens");
  if (texts.empty() || texts.size() > static_cast<size_t>(INT32_MAX))
    detail::fail(ErrorCode::format, "{}: tokenizer.ggml.tokens has {} entries", file.name(), texts.size());
  std::vector<float> scores;
  if (file.has("tokenizer.ggml.scores")) scores = file.get_array<float>("tokenizer.ggml.scores");
  std::vector<int32_t> types;
  if (file.has("tokenizer.ggml.token_type")) types = file.get_array<int32_t>("tokenizer.ggml.token_type");
  if (!scores.empty() && scores.size() != texts.size())
    detail::fail(ErrorCode::format, "{}: tokenizer.ggml.scores has {} entries for {} tokens", file.name(),
                 scores.size(), texts.size());
  if (!types.empty() && types.size() != texts.size())
    detail::fail(ErrorCode::format, "{}: tokenizer.ggml.token_type has {} entries for {} tokens", file.name(),
                 types.size(), texts.size());

  v.tokens.resize(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    TokenData &t = v.tokens[i];
    t.text = texts[i].empty() ? "[EMPTY_" + std::to_string(i) + "]" : std::string(texts[i]);
    t.score = scores.empty() ? 0.0f : scores[i];
    t.attr = types.empty() ? attr_normal : attr_from_token_type(types[i]);
    v.max_token_len = std::max(v.max_token_len, t.text.size());
  }
  v.token_ids.reserve(v.tokens.size());
  for (size_t i = 0; i < v.tokens.size(); ++i)  // a repeated text maps to its last id, like llama.cpp
    v.token_ids[v.tokens[i].text] = static_cast<int32_t>(i);
}

void read_merges(const gguf::File &file, Vocab &v) {
  if (v.kind != VocabKind::bpe) return;
  if (!file.has("tokenizer.ggml.merges"))
    detail::fail(ErrorCode::format, "{}: BPE vocabulary without tokenizer.ggml.merges", file.name());
  const std::vector<std::string_view> merges = file.get_strings("tokenizer.ggml.merges");
  v.merge_ranks.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    // "left right", split at the first space after the first character; the first rank wins.
    if (merges[i].find(' ', 1) == std::string_view::npos) continue;
    v.merge_ranks.try_emplace(std::string(merges[i]), static_cast<int32_t>(i));
  }
}

void read_special_ids(const gguf::File &file, Vocab &v) {
  const std::pair<std::string_view, int32_t *> keys[] = {
      {"tokenizer.ggml.bos_token_id", &v.bos},          {"tokenizer.ggml.eos_token_id", &v.eos},
      {"tokenizer.ggml.eot_token_id", &v.eot},          {"tokenizer.ggml.eom_token_id", &v.eom},
      {"tokenizer.ggml.unknown_token_id", &v.unk},      {"tokenizer.ggml.seperator_token_id", &v.sep},
      {"tokenizer.ggml.padding_token_id", &v.pad},      {"tokenizer.ggml.mask_token_id", &v.mask},
      {"tokenizer.ggml.fim_pre_token_id", &v.fim_pre},  {"tokenizer.ggml.fim_suf_token_id", &v.fim_suf},
      {"tokenizer.ggml.fim_mid_token_id", &v.fim_mid},  {"tokenizer.ggml.fim_pad_token_id", &v.fim_pad},
      {"tokenizer.ggml.fim_rep_token_id", &v.fim_rep},  {"tokenizer.ggml.fim_sep_token_id", &v.fim_sep},
      {"tokenizer.ggml.prefix_token_id", &v.fim_pre},   {"tokenizer.ggml.suffix_token_id", &v.fim_suf},
      {"tokenizer.ggml.middle_token_id", &v.fim_mid},
  };
  for (const auto &[key, id] : keys) {
    if (!file.has(key)) continue;
    const int64_t value = file.get<int64_t>(key);
    if (value < 0 || static_cast<uint64_t>(value) >= v.tokens.size()) {
      detail::log_warn("{}: {} = {} is not a token id (n_vocab {}); using {}", file.name(), key, value,
                       v.tokens.size(), *id);
      continue;
    }
    *id = static_cast<int32_t>(value);
  }
  v.add_bos = file.get_or<bool>("tokenizer.ggml.add_bos_token", v.add_bos);
  v.add_eos = file.get_or<bool>("tokenizer.ggml.add_eos_token", v.add_eos);
  v.add_sep = file.get_or<bool>("tokenizer.ggml.add_sep_token", v.add_sep);
  // Defaults that point past a small vocabulary mean "absent".
  for (int32_t *id : {&v.bos, &v.eos, &v.unk, &v.sep, &v.pad, &v.mask})
    if (*id >= static_cast<int32_t>(v.tokens.size())) *id = -1;
}

// When the end-of-generation set holds <|return|> and <|call|> (o200k_harmony), <|end|> only ends
// a message: llama.cpp takes it out of the set and makes it user-defined.
void drop_harmony_end_from_eog(Vocab &v) {
  auto eog_with_text = [&](std::string_view text) {
    const auto it = std::find_if(v.eog_tokens.begin(), v.eog_tokens.end(),
                                 [&](int32_t id) { return v.tokens[id].text == text; });
    return it;
  };
  const auto end = eog_with_text("<|end|>");
  if (end == v.eog_tokens.end() || eog_with_text("<|return|>") == v.eog_tokens.end() ||
      eog_with_text("<|call|>") == v.eog_tokens.end())
    return;
  v.tokens[*end].attr = attr_user_defined;
  v.eog_tokens.erase(end);
}

// llama.cpp finds EOT / EOM / FIM tokens by their text and forces them to be control tokens,
// then collects the end-of-generation set the same way.
void detect_special_by_text(Vocab &v) {
  auto make_control = [&](int32_t id) { v.tokens[id].attr = attr_control; };
  struct Detected { int32_t *id; std::initializer_list<std::string_view> texts; };
  const Detected detected[] = {
      {&v.eot, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
                "_<EOT>", "<｜end▁of▁sentence｜>", "<end_of_utterance>"}},
      {&v.eom, {"<|eom_id|>"}},
      {&v.fim_pre, {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>"}},
      {&v.fim_suf, {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>"}},
      {&v.fim_mid, {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>"}},
      {&v.fim_pad, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>"}},
      {&v.fim_rep, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}},
      {&v.fim_sep, {"<|file_sep|>"}},
  };
  for (const Detected &d : detected) {
    if (*d.id != -1) continue;
    for (std::string_view text : d.texts) {
      const int32_t id = v.find(text);
      if (id < 0) continue;
      *d.id = id;  // llama.cpp walks a hash map, so which of several candidates wins is arbitrary
      make_control(id);
      break;
    }
  }

  std::vector<int32_t> eog;
  for (int32_t id : {v.fim_pad, v.fim_rep, v.fim_sep})
    if (id >= 0) eog.push_back(id);
  for (std::string_view text : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>",
                                "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>",
                                "<end_of_utterance>"}) {
    const int32_t id = v.find(text);
    if (id < 0) continue;
    eog.push_back(id);
    make_control(id);
  }
  // gpt-oss (Harmony): llama.cpp always renders these, which makes them user-defined, so they
  // are matched in text even without parse_special. This comes after the EOG loop above.
  for (std::string_view text : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"})
    if (const int32_t id = v.find(text); id >= 0) v.tokens[id].attr = attr_user_defined;
  for (int32_t id : {v.eos, v.eot, v.eom})
    if (id >= 0) eog.push_back(id);
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  v.eog_tokens = std::move(eog);
  drop_harmony_end_from_eog(v);
}

void build_special_cache(Vocab &v) {
  for (size_t id = 0; id < v.tokens.size(); ++id)
    if (v.tokens[id].attr & (attr_control | attr_user_defined | attr_unknown))
      v.special_tokens.push_back(static_cast<int32_t>(id));
  // Longest first, so that a special token is never cut by a shorter one it contains.
  std::stable_sort(v.special_tokens.begin(), v.special_tokens.end(), [&](int32_t a, int32_t b) {
    return v.tokens[a].text.size() > v.tokens[b].text.size();
  });
}

// The bytes a token stands for when rendered with render_special = true (llama.cpp's
// token_to_piece cache).
std::string piece_of(const Vocab &v, int32_t id) {
  const TokenData &t = v.tokens[id];
  if (t.attr & (attr_unknown | attr_control | attr_user_defined)) return t.text;
  if (v.kind == VocabKind::bpe) {
    if (!(t.attr & attr_normal)) return {};
    std::string out;
    for (uint32_t cp : utf8_to_codepoints(t.text)) {
      const int byte = unicode_to_byte(cp);
      if (byte >= 0) {
        out += static_cast<char>(byte);
      } else {  // not a byte-level token text: keep what llama.cpp prints
        out += "[UNK_BYTE_0x";
        for (unsigned char c : codepoint_to_utf8(cp)) out += fmt::format("{:02x}", c);
        out += t.text + "]";
      }
    }
    return out;
  }
  if (t.attr & attr_normal) {
    std::string out;
    std::string_view text = t.text;
    for (size_t pos = 0; pos < text.size();) {  // "▁" -> " "
      if (text.substr(pos, 3) == "\xE2\x96\x81") {
        out += ' ';
        pos += 3;
      } else {
        out += text[pos++];
      }
    }
    return out;
  }
  if ((t.attr & attr_byte) && t.text.size() == 6 && t.text.starts_with("<0x")) {
    return std::string(1, static_cast<char>(std::strtol(t.text.substr(3, 2).c_str(), nullptr, 16)));
  }
  return {};
}

}  // namespace

int Vocab::merge_rank(std::string_view left, std::string_view right) const {
  std::string key;
  key.reserve(left.size() + 1 + right.size());
  key.append(left).append(1, ' ').append(right);
  auto it = merge_ranks.find(key);
  return it == merge_ranks.end() ? -1 : it->second;
}

int32_t Vocab::byte_token(uint8_t byte) const {
  static constexpr char hex[] = "0123456789ABCDEF";
  const char name[6] = {'<', '0', 'x', hex[byte >> 4], hex[byte & 15], '>'};
  const int32_t id = find(std::string_view(name, 6));
  return id >= 0 ? id : find(std::string_view(reinterpret_cast<const char *>(&byte), 1));
}

Vocab Vocab::load(const gguf::File &file) {
  Vocab v;
  read_kind(file, v);
  read_tokens(file, v);
  read_merges(file, v);
  read_special_ids(file, v);
  detect_special_by_text(v);
  build_special_cache(v);
  v.pieces.resize(v.tokens.size());
  for (size_t id = 0; id < v.tokens.size(); ++id) v.pieces[id] = piece_of(v, static_cast<int32_t>(id));
  return v;
}

}  // namespace vramfit::tokenizer
