#include "request.hpp"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "api_error.hpp"

namespace vramfit::server {
namespace {

using nlohmann::json;

// OpenAI's names for JSON types in "expected an integer, but got a string instead".
const char *type_name(const json &v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a decimal";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "an unknown value";
  }
}

[[noreturn]] void wrong_type(const std::string &param, const json &v, std::string_view expected) {
  throw invalid_field(param, fmt::format("Invalid type for '{}': expected {}, but got {} instead.", param, expected,
                                         type_name(v)),
                      "invalid_type");
}

// The member `name` unless it is absent or null.
const json *field(const json &body, const char *name) {
  const auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

int64_t integer(const json &v, const std::string &param) {
  if (!v.is_number_integer()) wrong_type(param, v, "an integer");
  return v.get<int64_t>();
}

double number(const json &v, const std::string &param, double low, double high) {
  if (!v.is_number()) wrong_type(param, v, "a number");
  const double x = v.get<double>();
  if (!(x >= low && x <= high))
    throw invalid_field(param, fmt::format("Invalid '{}': {} is not between {} and {}.", param, x, low, high));
  return x;
}

bool boolean(const json &v, const std::string &param) {
  if (!v.is_boolean()) wrong_type(param, v, "a boolean");
  return v.get<bool>();
}

// content: a string, null, or (newer clients) an array of parts of which vramfit reads the text.
std::string message_text(const json &content, const std::string &param) {
  if (content.is_null()) return {};
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) wrong_type(param, content, "a string or an array of content parts");
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const json &part = content[i];
    const std::string where = fmt::format("{}[{}]", param, i);
    if (!part.is_object()) wrong_type(where, part, "an object");
    const json *type = field(part, "type");
    if (!type || !type->is_string() || *type != "text")
      throw invalid_field(where + ".type", fmt::format("Invalid '{}.type': only \"text\" parts are supported.", where));
    const json *part_text = field(part, "text");
    if (!part_text || !part_text->is_string()) wrong_type(where + ".text", part_text ? *part_text : json(), "a string");
    text += part_text->get<std::string>();
  }
  return text;
}

std::string parse_messages(const json &body) {
  const json *messages = field(body, "messages");
  if (!messages)
    throw invalid_field("messages", "Missing required parameter: 'messages'.", "missing_required_parameter");
  if (!messages->is_array()) wrong_type("messages", *messages, "an array");
  if (messages->empty())
    throw invalid_field("messages", "Invalid 'messages': empty array. Expected an array with minimum length 1.",
                        "empty_array");
  json normalized = json::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    const json &m = (*messages)[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object()) wrong_type(where, m, "an object");
    const json *role = field(m, "role");
    if (!role) throw invalid_field(where + ".role", fmt::format("Missing required parameter: '{}.role'.", where),
                                   "missing_required_parameter");
    if (!role->is_string()) wrong_type(where + ".role", *role, "a string");
    json out = m;  // other members (name, tool_calls ...) reach the template as they are
    out["content"] = message_text(m.contains("content") ? m["content"] : json(), where + ".content");
    normalized.push_back(std::move(out));
  }
  return normalized.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string parse_prompt(const json &body) {
  const json *prompt = field(body, "prompt");
  if (!prompt) throw invalid_field("prompt", "Missing required parameter: 'prompt'.", "missing_required_parameter");
  if (prompt->is_string()) return prompt->get<std::string>();
  if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) return (*prompt)[0].get<std::string>();
  if (prompt->is_array())
    throw invalid_field("prompt", "Invalid 'prompt': vramfit takes one prompt string per request (no batches, "
                                  "no token ids).");
  wrong_type("prompt", *prompt, "a string");
}

std::vector<std::string> parse_stop(const json &stop) {
  if (stop.is_string()) return {stop.get<std::string>()};
  if (!stop.is_array()) wrong_type("stop", stop, "a string or an array of strings");
  if (stop.size() > 4)
    throw invalid_field("stop", fmt::format("Invalid 'stop': {} sequences given, at most 4 are allowed.", stop.size()));
  std::vector<std::string> out;
  for (size_t i = 0; i < stop.size(); ++i) {
    if (!stop[i].is_string()) wrong_type(fmt::format("stop[{}]", i), stop[i], "a string");
    out.push_back(stop[i].get<std::string>());
  }
  return out;
}

void parse_sampling(const json &body, CompletionRequest &r) {
  for (const char *name : {"max_tokens", "max_completion_tokens"})
    if (const json *v = field(body, name)) {
      const int64_t n = integer(*v, name);
      if (n < 1 || n > INT32_MAX)
        throw invalid_field(name, fmt::format("Invalid '{}': integer below minimum value. Expected a value >= 1, "
                                              "but got {} instead.", name, n), "integer_below_min_value");
      r.max_tokens = static_cast<int32_t>(n);
    }
  if (const json *v = field(body, "temperature")) r.temperature = static_cast<float>(number(*v, "temperature", 0, 2));
  if (const json *v = field(body, "top_p")) r.top_p = static_cast<float>(number(*v, "top_p", 0, 1));
  if (const json *v = field(body, "seed")) r.seed = static_cast<uint64_t>(integer(*v, "seed"));
  if (const json *v = field(body, "stop")) r.stop = parse_stop(*v);
  if (const json *v = field(body, "n"); v && integer(*v, "n") != 1)
    throw invalid_field("n", "Invalid 'n': vramfit generates one choice per request (n = 1).");
}

}  // namespace

CompletionRequest parse_request(Endpoint endpoint, std::string_view text) {
  json body;
  try {
    body = json::parse(text);
  } catch (const json::parse_error &e) {
    throw ApiError{400, fmt::format("We could not parse the JSON body of your request: {}", e.what()),
                   "invalid_request_error", "", "invalid_json"};
  }
  if (!body.is_object()) wrong_type("body", body, "an object");
  CompletionRequest r;
  r.endpoint = endpoint;
  if (const json *model = field(body, "model")) {
    if (!model->is_string()) wrong_type("model", *model, "a string");
    r.model = model->get<std::string>();
  }
  if (endpoint == Endpoint::chat) r.messages_json = parse_messages(body);
  else r.prompt = parse_prompt(body);
  parse_sampling(body, r);
  if (const json *v = field(body, "stream")) r.stream = boolean(*v, "stream");
  if (const json *options = field(body, "stream_options")) {
    if (!options->is_object()) wrong_type("stream_options", *options, "an object");
    if (const json *v = field(*options, "include_usage")) r.include_usage = boolean(*v, "stream_options.include_usage");
    if (!r.stream)
      throw invalid_field("stream_options",
                          "Invalid value for 'stream_options': Setting stream_options is only allowed when 'stream' is "
                          "enabled.");
  }
  return r;
}

}  // namespace vramfit::server
