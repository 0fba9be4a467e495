// libFuzzer: the chat-template engine (lib/chat) and its JSON inputs. Byte 0 picks the mode:
//   0: the rest is a template's source, rendered over a fixed conversation;
//   1: the rest is a messages JSON array, rendered by a real template (byte 1 picks which);
//   2: the rest is "MESSAGES\0EXTRA": parse_chat_messages, then ChatML with extra variables.
// A render either returns text or throws vramfit::Error; the engine's bounds (steps, depth,
// string and list sizes) keep every input from hanging or exhausting memory.
#include <cstddef>
#include <cstdint>

#include "chat/json.hpp"
#include "fuzz_util.hpp"
#include "vramfit/chat.hpp"

namespace {

using namespace vramfit;

struct SharedTemplate {
  std::string source, bos, eos;
  std::vector<std::string> messages_json;  // each case's messages, for seeds
};

std::vector<SharedTemplate> read_shared_templates() {
  std::vector<SharedTemplate> out;
  for (const auto &path : fuzz::shared_files("chat", ".json")) {
    const chat::Value doc = chat::parse_json(*fuzz::read_file(path), path.string());
    auto text = [&](const char *key) {
      const chat::Value *v = doc.as_object().find(key);
      return v && v->is_string() ? v->as_string() : std::string();
    };
    SharedTemplate t{text("template"), text("bos_token"), text("eos_token"), {}};
    if (const chat::Value *cases = doc.as_object().find("cases"); cases && cases->is_array())
      for (const chat::Value &c : cases->as_array())
        if (const chat::Value *m = c.is_object() ? c.as_object().find("messages") : nullptr) t.messages_json.push_back(chat::dump_json(*m));
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<ChatTemplate> &templates() {
  static std::vector<ChatTemplate> all;
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  fuzz::write_seeds_if_asked([](fuzz::SeedWriter &seeds) {
    unsigned n = 0;
    for (const SharedTemplate &t : read_shared_templates()) {
      seeds.add(std::string(1, '\0') + t.source);
      for (const std::string &m : t.messages_json) seeds.add(std::string{'\1', static_cast<char>(n++)} + m);
      if (!t.messages_json.empty()) seeds.add("\2" + t.messages_json.front() + '\0' + "{\"enable_thinking\": false}");
    }
    seeds.add(std::string(1, '\0') + ChatTemplate::default_source());
  });
  for (const SharedTemplate &t : read_shared_templates()) {
    templates().emplace_back(t.source, t.bos, t.eos);
    templates().back().set_date("2025-08-05");  // strftime_now() must not depend on the clock
  }
  templates().emplace_back(ChatTemplate::default_source());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char *>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      fuzz::refused_or_done([&] {
        ChatTemplate t(rest, "<s>", "</s>");
        t.set_date("2025-08-05");
        const std::vector<ChatMessage> conversation{
            {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "2+2?"}};
        (void)t.apply(conversation, true, R"({"enable_thinking": false, "tools": [{"name": "f"}]})");
      });
      break;
    case 1: {
      if (rest.empty()) return 0;
      const ChatTemplate &t = templates()[static_cast<uint8_t>(rest[0]) % templates().size()];
      fuzz::refused_or_done([&] { (void)t.apply_json(rest.substr(1), rest[0] & 1); });
      break;
    }
    default: {
      const size_t nul = rest.find('\0');
      const std::string_view messages = rest.substr(0, nul);
      const std::string_view extra = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
      fuzz::refused_or_done([&] { (void)templates().back().apply(parse_chat_messages(messages), true, extra); });
      break;
    }
  }
  return 0;
}
