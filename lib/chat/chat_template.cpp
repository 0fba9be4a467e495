// vramfit::ChatTemplate: the public face of the template engine (parser.cpp, render.cpp).
#include <charconv>

#include "chat/ast.hpp"
#include "chat/json.hpp"
#include "chat/render.hpp"
#include "common/error.hpp"
#include "vramfit/chat.hpp"
#include "vramfit/gguf.hpp"

namespace vramfit {

struct ChatTemplate::Impl {
  std::string source;
  std::string bos_token;
  std::string eos_token;
  bool is_default = false;
  std::shared_ptr<const chat::Template> parsed;
};

namespace {

constexpr const char *kChatML =
    "{%- for message in messages -%}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "{{- '<|im_start|>assistant\\n' -}}\n"
    "{%- endif -%}\n";

// The text of token `id_key`'s id in tokenizer.ggml.tokens, or "" when the file has none.
std::string token_text(const gguf::File &file, std::string_view id_key) {
  const gguf::Value *id = file.find(id_key);
  if (!id || !id->is_integer() || !file.has("tokenizer.ggml.tokens")) return {};
  const int64_t i = id->as_int(id_key);
  const std::vector<std::string_view> tokens = file.get_strings("tokenizer.ggml.tokens");
  return i >= 0 && i < int64_t(tokens.size()) ? std::string(tokens[size_t(i)]) : std::string();
}

chat::Value messages_value(std::span<const ChatMessage> messages) {
  chat::Array list;
  for (const ChatMessage &m : messages) {
    chat::Value item = chat::Value::object();
    item.as_object().set("role", chat::Value(m.role));
    item.as_object().set("content", chat::Value(m.content));
    list.push_back(std::move(item));
  }
  return chat::Value(std::move(list));
}

// Renders with the context transformers builds: messages, add_generation_prompt, the tokens
// that are set, then the caller's extra variables.
std::string render_with(const ChatTemplate::Impl &impl, std::optional<int64_t> now, chat::Value messages,
                        bool add_generation_prompt, std::string_view extra_variables_json) {
  chat::Value context = chat::Value::object();
  chat::Object &vars = context.as_object();
  vars.set("messages", std::move(messages));
  vars.set("add_generation_prompt", chat::Value(add_generation_prompt));
  if (!impl.bos_token.empty()) vars.set("bos_token", chat::Value(impl.bos_token));
  if (!impl.eos_token.empty()) vars.set("eos_token", chat::Value(impl.eos_token));
  if (!extra_variables_json.empty()) {
    const chat::Value extra = chat::parse_json(extra_variables_json, "extra template variables");
    if (!extra.is_object())
      detail::fail(ErrorCode::invalid_argument, "extra template variables: expected a JSON object, not {}", extra.type_name());
    for (const auto &[name, value] : extra.as_object().items) vars.set(name, value);
  }
  chat::RenderOptions options;
  if (now) options.now = std::chrono::sys_seconds(std::chrono::seconds(*now));
  return chat::render(*impl.parsed, context, options);
}

}  // namespace

std::vector<ChatMessage> parse_chat_messages(std::string_view json) {
  const chat::Value list = chat::parse_json(json, "chat messages");
  if (!list.is_array()) detail::fail(ErrorCode::invalid_argument, "chat messages: expected a JSON array of messages");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < list.as_array().size(); ++i) {
    const chat::Value &m = list.as_array()[i];
    auto field = [&](const char *name) {
      const chat::Value *v = m.is_object() ? m.as_object().find(name) : nullptr;
      if (!v || !v->is_string())
        detail::fail(ErrorCode::invalid_argument, "chat messages: message {} has no string \"{}\"", i, name);
      return v->as_string();
    };
    out.push_back(ChatMessage{field("role"), field("content")});
  }
  return out;
}

const char *ChatTemplate::default_source() noexcept { return kChatML; }

ChatTemplate::ChatTemplate(std::string_view source, std::string_view bos_token, std::string_view eos_token) {
  auto impl = std::make_shared<Impl>();
  impl->source = std::string(source);
  impl->bos_token = std::string(bos_token);
  impl->eos_token = std::string(eos_token);
  impl->parsed = chat::parse_template(source);
  impl_ = std::move(impl);
}

ChatTemplate ChatTemplate::from_gguf(const std::filesystem::path &path) { return from_gguf(gguf::File::open(path)); }

ChatTemplate ChatTemplate::from_gguf(const gguf::File &file) {
  const gguf::Value *source = file.find("tokenizer.chat_template");
  const std::string bos = token_text(file, "tokenizer.ggml.bos_token_id");
  const std::string eos = token_text(file, "tokenizer.ggml.eos_token_id");
  if (!source) {
    ChatTemplate t(kChatML, bos, eos);
    std::const_pointer_cast<Impl>(t.impl_)->is_default = true;
    return t;
  }
  return ChatTemplate(source->as_string("tokenizer.chat_template"), bos, eos);
}

bool ChatTemplate::is_default() const noexcept { return impl_->is_default; }
const std::string &ChatTemplate::source() const noexcept { return impl_->source; }
const std::string &ChatTemplate::bos_token() const noexcept { return impl_->bos_token; }
const std::string &ChatTemplate::eos_token() const noexcept { return impl_->eos_token; }

void ChatTemplate::set_date(std::string_view ymd) {
  auto number = [&](size_t at, size_t len, int &out) {
    auto [end, ec] = std::from_chars(ymd.data() + at, ymd.data() + at + len, out);
    return ec == std::errc() && end == ymd.data() + at + len;
  };
  int y = 0, m = 0, d = 0;
  const bool shaped = ymd.size() == 10 && ymd[4] == '-' && ymd[7] == '-' && number(0, 4, y) && number(5, 2, m) &&
                      number(8, 2, d);
  const std::chrono::year_month_day date{std::chrono::year(y), std::chrono::month(unsigned(m)),
                                         std::chrono::day(unsigned(d))};
  if (!shaped || !date.ok())
    detail::fail(ErrorCode::invalid_argument, "date '{}' is not a valid YYYY-MM-DD date", ymd);
  now_ = std::chrono::sys_days(date).time_since_epoch() / std::chrono::seconds(1);
}

void ChatTemplate::set_now(std::chrono::system_clock::time_point now) {
  now_ = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
}

std::string ChatTemplate::apply(std::span<const ChatMessage> messages, bool add_generation_prompt,
                                std::string_view extra_variables_json) const {
  return render_with(*impl_, now_, messages_value(messages), add_generation_prompt, extra_variables_json);
}

std::string ChatTemplate::apply_json(std::string_view messages_json, bool add_generation_prompt,
                                     std::string_view extra_variables_json) const {
  chat::Value messages = chat::parse_json(messages_json, "chat messages");
  if (!messages.is_array()) detail::fail(ErrorCode::invalid_argument, "chat messages: expected a JSON array");
  return render_with(*impl_, now_, std::move(messages), add_generation_prompt, extra_variables_json);
}

}  // namespace vramfit
