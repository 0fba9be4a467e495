#include "response.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace vramfit::server {
namespace {

using nlohmann::json;

std::string dump(const json &j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json usage_json(const Usage &u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

bool is_chat(const ResponseHeader &h) { return h.endpoint == Endpoint::chat; }

json object_start(const ResponseHeader &h, const char *object) {
  return {{"id", h.id}, {"object", object}, {"created", h.created}, {"model", h.model},
          {"system_fingerprint", "vramfit"}};
}

// A streamed chunk with one choice: chat chunks carry a delta, completion chunks the text.
std::string chunk(const ResponseHeader &h, json delta_or_text, const json &finish, bool include_usage) {
  json choice = {{"index", 0}, {"finish_reason", finish}};
  if (is_chat(h)) {
    choice["delta"] = std::move(delta_or_text);
    choice["logprobs"] = nullptr;
  } else {
    choice["text"] = std::move(delta_or_text);
    choice["logprobs"] = nullptr;
  }
  json j = object_start(h, is_chat(h) ? "chat.completion.chunk" : "text_completion");
  j["choices"] = json::array({std::move(choice)});
  if (include_usage) j["usage"] = nullptr;
  return "data: " + dump(j) + "\n\n";
}

json memory_json(const DeviceMemory &d) {
  return {{"device", d.device},   {"weights", d.weights},   {"kv", d.kv},       {"scratch", d.scratch},
          {"staging", d.staging}, {"overhead", d.overhead}, {"total", d.total()}, {"peak", d.peak},
          {"budget", d.budget},
          {"planned",
           {{"weights", d.planned.weights},
            {"kv", d.planned.kv},
            {"scratch", d.planned.scratch},
            {"staging", d.planned.staging},
            {"overhead", d.planned.overhead},
            {"total", d.planned.total()}}}};
}

// Adds one more slot's memory to `sum`: its own KV cache and scratch (and on the host its staging
// copy); the weights, the device's overhead and its staging slots are the model's, counted once.
void add_slot(DeviceMemory &sum, const DeviceMemory &slot, bool on_device) {
  sum.kv += slot.kv;
  sum.scratch += slot.scratch;
  // A device's peak is the device's own (all slots'); each slot's host buffers are its own.
  if (!on_device) sum.staging += slot.staging, sum.peak += slot.peak;
  else sum.peak = std::max(sum.peak, slot.peak);
}

}  // namespace

const char *finish_reason(StopReason reason) {
  switch (reason) {
    case StopReason::eog:
    case StopReason::stop_string:
    case StopReason::callback: return "stop";
    case StopReason::max_tokens:
    case StopReason::context_full: return "length";
  }
  return "stop";
}

std::string completion_body(const ResponseHeader &h, std::string_view text, StopReason reason, const Usage &usage) {
  json j = object_start(h, is_chat(h) ? "chat.completion" : "text_completion");
  json choice = {{"index", 0}, {"finish_reason", finish_reason(reason)}, {"logprobs", nullptr}};
  if (is_chat(h)) choice["message"] = {{"role", "assistant"}, {"content", std::string(text)}, {"refusal", nullptr}};
  else choice["text"] = std::string(text);
  j["choices"] = json::array({std::move(choice)});
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string role_chunk(const ResponseHeader &h, bool include_usage) {
  return chunk(h, json{{"role", "assistant"}, {"content", ""}}, nullptr, include_usage);
}

std::string text_chunk(const ResponseHeader &h, std::string_view text, bool include_usage) {
  return chunk(h, is_chat(h) ? json{{"content", std::string(text)}} : json(std::string(text)), nullptr,
               include_usage);
}

std::string finish_chunk(const ResponseHeader &h, StopReason reason, bool include_usage) {
  return chunk(h, is_chat(h) ? json::object() : json(""), finish_reason(reason), include_usage);
}

std::string usage_chunk(const ResponseHeader &h, const Usage &usage) {
  json j = object_start(h, is_chat(h) ? "chat.completion.chunk" : "text_completion");
  j["choices"] = json::array();
  j["usage"] = usage_json(usage);
  return "data: " + dump(j) + "\n\n";
}

std::string error_event(const std::string &error_body) { return "data: " + error_body + "\n\n"; }

namespace {
json model_json(const std::string &model_id, int64_t created) {
  return {{"id", model_id}, {"object", "model"}, {"created", created}, {"owned_by", "vramfit"}};
}
}  // namespace

std::string models_body(const std::string &model_id, int64_t created) {
  return dump(json{{"object", "list"}, {"data", json::array({model_json(model_id, created)})}});
}

std::string model_body(const std::string &model_id, int64_t created) { return dump(model_json(model_id, created)); }

std::string memory_body(const std::vector<SlotMemory> &slots) {
  json devices = json::array();
  int busy = 0;
  if (!slots.empty()) {
    std::vector<DeviceMemory> sum = slots.front().report.devices;
    for (size_t s = 1; s < slots.size(); ++s)
      for (size_t d = 0; d < sum.size() && d < slots[s].report.devices.size(); ++d)
        add_slot(sum[d], slots[s].report.devices[d], d > 0);
    for (const DeviceMemory &d : sum) devices.push_back(memory_json(d));
  }
  for (const SlotMemory &s : slots) busy += s.busy;
  return dump(json{{"object", "memory"}, {"slots", slots.size()}, {"slots_busy", busy}, {"devices", devices}});
}

}  // namespace vramfit::server
