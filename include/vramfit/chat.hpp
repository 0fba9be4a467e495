// vramfit::ChatTemplate — turns a conversation into the prompt text a model was trained on, by
// rendering the model's Jinja chat template (`tokenizer.chat_template` in the GGUF file) the way
// Hugging Face transformers' apply_chat_template does: jinja2 semantics with trim_blocks and
// lstrip_blocks, variables `messages`, `add_generation_prompt`, `bos_token`, `eos_token`, plus
// any extra variables (e.g. {"enable_thinking": false} for Qwen3), and the functions
// raise_exception() and strftime_now(). The engine is vramfit's own (no Python, no third-party
// code); it implements the statements, filters, tests and methods real chat templates use.
//
// The result starts with the BOS text when the template writes `bos_token` (Llama 3, Gemma 3,
// DeepSeek-V3 ...): tokenize it without adding another BOS (Model::tokenize(prompt, false, true)).
//
// Errors: a template that does not parse throws Error(format) naming the line and the construct
// (also for blocks and expressions nested over 100 deep), Error(unsupported) for a jinja
// statement, filter or test vramfit does not implement. A render that fails throws Error naming
// the line: invalid_argument when the template calls raise_exception() (its message follows) or
// exceeds a bound on its work (10 million steps, calls nested 200 deep, strings of 64 MiB, lists
// of 2^20 items), format for a type error ('int' + 'str', an attribute of an undefined value,
// walking a value nested over 256 deep). The bounds keep a hostile template from hanging,
// exhausting memory or overflowing the stack.
//
// Thread-safety: a ChatTemplate is a cheap handle on an immutable parsed template; apply() is
// const and may run on any number of threads at once. set_date()/set_now() change only the handle
// they are called on.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/error.hpp"
#include "vramfit/export.hpp"

namespace vramfit {

class Model;
namespace gguf {
class File;
}

// One turn of a conversation, OpenAI-style.
struct ChatMessage {
  std::string role;     // "system", "user", "assistant", "tool" ...
  std::string content;
};

// Reads an OpenAI-style JSON array of messages, [{"role": "user", "content": "Hi"}, ...] (other
// keys are ignored; role and content must be strings). Error(invalid_argument) naming the
// position and the problem.
VRAMFIT_API std::vector<ChatMessage> parse_chat_messages(std::string_view json);

class VRAMFIT_API ChatTemplate {
 public:
  // The format used when a model has no chat template: ChatML, as llama.cpp's "chatml" —
  //   <|im_start|>{role}\n{content}<|im_end|>\n   for each message, then, with
  //   add_generation_prompt, <|im_start|>assistant\n
  static const char *default_source() noexcept;

  // Parses `source` (Jinja). bos_token / eos_token are the texts the template sees as `bos_token`
  // and `eos_token`; empty leaves the variable undefined (as transformers does for a null token).
  explicit ChatTemplate(std::string_view source, std::string_view bos_token = {}, std::string_view eos_token = {});

  // The template of a GGUF file (`tokenizer.chat_template`) with its BOS / EOS token texts
  // (tokenizer.ggml.tokens at tokenizer.ggml.bos_token_id / eos_token_id). A file without a
  // template gets default_source(), and is_default() is then true. Vocab-only and header-only
  // files work. Error(io) / Error(format) as gguf::File::open.
  static ChatTemplate from_gguf(const std::filesystem::path &path);
  static ChatTemplate from_gguf(const gguf::File &file);
  // The same for a loaded model.
  static ChatTemplate from_model(const Model &model);

  // True when this is default_source() standing in for a template the model does not have.
  bool is_default() const noexcept;
  const std::string &source() const noexcept;
  const std::string &bos_token() const noexcept;
  const std::string &eos_token() const noexcept;

  // What strftime_now() formats (Llama 3.x, gpt-oss write today's date into the prompt): by
  // default the local time at each apply(). set_date("2025-08-05") fixes it at that day's
  // midnight UTC (Error(invalid_argument) for anything but a valid YYYY-MM-DD), set_now() at any
  // instant (formatted in UTC), for reproducible prompts.
  void set_date(std::string_view yyyy_mm_dd);
  void set_now(std::chrono::system_clock::time_point now);

  // Renders the conversation. add_generation_prompt: end with the header of the assistant's next
  // turn (what a model should continue from). extra_variables_json: empty, or a JSON object whose
  // members become template variables (they may override add_generation_prompt and the tokens).
  std::string apply(std::span<const ChatMessage> messages, bool add_generation_prompt = true,
                    std::string_view extra_variables_json = {}) const;
  // The same with the messages as JSON text: an array of objects passed to the template as they
  // are, so messages may carry more than role and content (tool_calls, content parts ...).
  std::string apply_json(std::string_view messages_json, bool add_generation_prompt = true,
                         std::string_view extra_variables_json = {}) const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
  std::optional<int64_t> now_;  // seconds since the epoch for strftime_now(); unset: the clock
};

}  // namespace vramfit
