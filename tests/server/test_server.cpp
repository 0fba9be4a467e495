// vramfit serve without sockets: request bodies to parameters, OpenAI's error bodies and chunk
// shapes, the slots' turns and queue, and whole answers from stories260K checked against
// llama.cpp's greedy tokens.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "api_error.hpp"
#include "request.hpp"
#include "response.hpp"
#include "service.hpp"
#include "slots.hpp"
#include "test_data.hpp"
#include "vramfit/model.hpp"

using namespace vramfit;
using namespace vramfit::server;
using nlohmann::json;

namespace {

// The ApiError a body gets.
ApiError error_of(Endpoint endpoint, const std::string &body) {
  try {
    parse_request(endpoint, body);
  } catch (const ApiError &e) {
    return e;
  }
  FAIL("no error for " << body);
  return {};
}

// The JSON objects of a server-sent event stream, and whether it ended with [DONE].
struct Events {
  std::vector<json> chunks;
  bool done = false;
};

Events parse_events(const std::string &stream) {
  Events out;
  size_t at = 0;
  while (at < stream.size()) {
    REQUIRE(stream.compare(at, 6, "data: ") == 0);
    const size_t end = stream.find("\n\n", at);
    REQUIRE(end != std::string::npos);
    const std::string data = stream.substr(at + 6, end - at - 6);
    if (data == "[DONE]") out.done = true;
    else out.chunks.push_back(json::parse(data));
    at = end + 2;
  }
  return out;
}

ServiceConfig config(int32_t n_slots = 1) {
  ServiceConfig c;
  c.model_id = "stories260K";
  c.n_slots = n_slots;
  c.context = ContextParams{.n_ctx = 128, .n_batch = 64, .n_threads = 1};
  return c;
}

ModelParams cpu() {
  ModelParams p;
  p.device = "cpu";
  return p;
}

// Runs a request through the service into a string.
std::string answer(Service &service, Endpoint endpoint, const std::string &body) {
  Job job = service.prepare(parse_request(endpoint, body));
  service.acquire_slot(job);
  std::string out;
  service.run(job, Sink{[&](std::string_view bytes) { return out += bytes, true; }, [] { return true; }});
  return out;
}

// llama.cpp's greedy continuation of "Once upon a time, there was a little" (reference logits).
constexpr const char *kGreedyStart = " girl named Lily. She loved to play outside in the park. One day";

}  // namespace

TEST_CASE("a chat request's fields become parameters; content parts are joined") {
  const CompletionRequest r = parse_request(Endpoint::chat, R"({
      "model": "m", "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "seed": 42, "stop": ["a", "b"],
      "stream": true, "stream_options": {"include_usage": true}, "n": 1, "unknown_field": [1, 2],
      "messages": [{"role": "system", "content": "Be brief."},
                   {"role": "user", "content": [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "you"}]},
                   {"role": "assistant", "content": null}]})");
  CHECK(r.model == "m");
  CHECK(r.max_tokens == 7);
  CHECK(r.temperature == 0.5f);
  CHECK(r.top_p == 0.9f);
  CHECK(r.seed == 42u);
  CHECK(r.stop == std::vector<std::string>{"a", "b"});
  CHECK(r.stream);
  CHECK(r.include_usage);
  const json messages = json::parse(r.messages_json);
  REQUIRE(messages.size() == 3);
  CHECK(messages[1]["content"] == "Hello, you");
  CHECK(messages[2]["content"] == "");

  const CompletionRequest c = parse_request(Endpoint::completion, R"({"prompt": ["Once"], "stop": "x",
                                                                      "max_completion_tokens": 3})");
  CHECK(c.prompt == "Once");
  CHECK(c.stop == std::vector<std::string>{"x"});
  CHECK(c.max_tokens == 3);
  CHECK_FALSE(c.stream);
  CHECK_FALSE(c.temperature.has_value());
}

TEST_CASE("bad bodies get a 400 naming the field, in OpenAI's words") {
  struct Case {
    Endpoint endpoint;
    const char *body, *param, *code, *message;
  };
  const Case cases[] = {
      {Endpoint::chat, "{bad", "", "invalid_json", "We could not parse the JSON body"},
      {Endpoint::chat, "[1]", "body", "invalid_type", "expected an object, but got an array"},
      {Endpoint::chat, R"({"model": "m"})", "messages", "missing_required_parameter", "'messages'"},
      {Endpoint::chat, R"({"messages": []})", "messages", "empty_array", "minimum length 1"},
      {Endpoint::chat, R"({"messages": "hi"})", "messages", "invalid_type", "expected an array, but got a string"},
      {Endpoint::chat, R"({"messages": [{"content": "hi"}]})", "messages[0].role", "missing_required_parameter", ""},
      {Endpoint::chat, R"({"messages": [{"role": 1}]})", "messages[0].role", "invalid_type", "got an integer"},
      {Endpoint::chat, R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content", "invalid_type", ""},
      {Endpoint::chat, R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
       "messages[0].content[0].type", "invalid_value", "only \"text\""},
      {Endpoint::chat, R"({"messages": [{"role": "user"}], "max_tokens": "9"})", "max_tokens", "invalid_type",
       "Invalid type for 'max_tokens': expected an integer, but got a string instead."},
      {Endpoint::chat, R"({"messages": [{"role": "user"}], "max_tokens": 0})", "max_tokens",
       "integer_below_min_value", ""},
      {Endpoint::chat, R"({"messages": [{"role": "user"}], "temperature": 3})", "temperature", "invalid_value",
       "between 0 and 2"},
      {Endpoint::chat, R"({"messages": [{"role": "user"}], "top_p": "high"})", "top_p", "invalid_type", ""},
      {Endpoint::chat, R"({"messages": [{"role": "user"}], "seed": 1.5})", "seed", "invalid_type", "a decimal"},
      {Endpoint::chat, R"({"messages": [{"role": "user"}], "stop": ["a","b","c","d","e"]})", "stop", "invalid_value",
       "at most 4"},
      {Endpoint::chat, R"({"messages": [{"role": "user"}], "stop": [1]})", "stop[0]", "invalid_type", ""},
      {Endpoint::chat, R"({"messages": [{"role": "user"}], "n": 2})", "n", "invalid_value", "n = 1"},
      {Endpoint::chat, R"({"messages": [{"role": "user"}], "stream": "yes"})", "stream", "invalid_type", ""},
      {Endpoint::chat, R"({"messages": [{"role": "user"}], "stream_options": {"include_usage": true}})",
       "stream_options", "invalid_value", "only allowed when 'stream' is enabled"},
      {Endpoint::chat, R"({"messages": [{"role": "user"}], "model": 3})", "model", "invalid_type", ""},
      {Endpoint::completion, R"({"model": "m"})", "prompt", "missing_required_parameter", ""},
      {Endpoint::completion, R"({"prompt": [1, 2, 3]})", "prompt", "invalid_value", "no token ids"},
      {Endpoint::completion, R"({"prompt": 12})", "prompt", "invalid_type", ""},
  };
  for (const Case &c : cases) {
    CAPTURE(c.body);
    const ApiError e = error_of(c.endpoint, c.body);
    CHECK(e.status == 400);
    CHECK(e.type == "invalid_request_error");
    CHECK(e.param == c.param);
    CHECK(e.code == c.code);
    CHECK(e.message.find(c.message) != std::string::npos);
  }
}

TEST_CASE("error bodies: {error: {message, type, param, code}}, null where unset") {
  const json body = json::parse(error_body(ApiError{401, "Incorrect API key provided.", "invalid_request_error", "",
                                                    "invalid_api_key"}));
  CHECK(body == json::parse(R"({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                          "param": null, "code": "invalid_api_key"}})"));
  const json field = json::parse(error_body(invalid_field("top_p", "bad \xff byte")));  // invalid UTF-8 replaced
  CHECK(field["error"]["param"] == "top_p");
  CHECK(field["error"]["code"] == "invalid_value");
}

TEST_CASE("chunks: chat deltas, completion text, finish reason, usage, [DONE]") {
  const ResponseHeader chat{Endpoint::chat, "chatcmpl-1", 1700000000, "m"};
  const Events events = parse_events(role_chunk(chat, true) + text_chunk(chat, "Hi", true) +
                                     finish_chunk(chat, StopReason::max_tokens, true) +
                                     usage_chunk(chat, Usage{5, 1}) + std::string(done_event));
  REQUIRE(events.chunks.size() == 4);
  CHECK(events.done);
  for (const json &c : events.chunks) {
    CHECK(c["object"] == "chat.completion.chunk");
    CHECK(c["id"] == "chatcmpl-1");
    CHECK(c["created"] == 1700000000);
    CHECK(c["model"] == "m");
  }
  CHECK(events.chunks[0]["choices"][0]["delta"] == json::parse(R"({"role": "assistant", "content": ""})"));
  CHECK(events.chunks[0]["usage"].is_null());
  CHECK(events.chunks[1]["choices"][0]["delta"]["content"] == "Hi");
  CHECK(events.chunks[1]["choices"][0]["finish_reason"].is_null());
  CHECK(events.chunks[2]["choices"][0]["delta"] == json::object());
  CHECK(events.chunks[2]["choices"][0]["finish_reason"] == "length");
  CHECK(events.chunks[3]["choices"] == json::array());
  CHECK(events.chunks[3]["usage"] == json::parse(R"({"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6})"));

  const ResponseHeader completion{Endpoint::completion, "cmpl-1", 1, "m"};
  const json text = parse_events(text_chunk(completion, "x", false)).chunks.at(0);
  CHECK(text["object"] == "text_completion");
  CHECK(text["choices"][0]["text"] == "x");
  CHECK_FALSE(text.contains("usage"));
  const json whole = json::parse(completion_body(completion, "abc", StopReason::eog, Usage{2, 3}));
  CHECK(whole["choices"][0]["text"] == "abc");
  CHECK(whole["choices"][0]["finish_reason"] == "stop");
  CHECK(whole["usage"]["total_tokens"] == 5);
  CHECK(std::string(finish_reason(StopReason::stop_string)) == "stop");
  CHECK(std::string(finish_reason(StopReason::context_full)) == "length");
}

TEST_CASE("decode turns go in arrival order: the caller that just decoded queues behind the others") {
  DecodeTurns turns;
  std::vector<char> order;
  std::atomic<bool> a_running{false}, release_a{false};
  auto wait_until_waiting = [&](uint64_t n) {
    while (turns.waiting() < n) std::this_thread::yield();
  };
  std::thread a([&] {
    turns.run([&] {
      a_running = true;
      while (!release_a) std::this_thread::yield();
      order.push_back('a');
    });
    turns.run([&] { order.push_back('a'); });  // asks again at once
  });
  while (!a_running) std::this_thread::yield();
  std::thread b([&] { turns.run([&] { order.push_back('b'); }); });
  wait_until_waiting(1);
  std::thread c([&] { turns.run([&] { order.push_back('c'); }); });
  wait_until_waiting(2);
  release_a = true;
  a.join();
  b.join();
  c.join();
  CHECK(order == std::vector<char>{'a', 'b', 'c', 'a'});
  CHECK(turns.waiting() == 0);
}

TEST_CASE("a turn is passed on when its function throws") {
  DecodeTurns turns;
  CHECK_THROWS_AS(turns.run([] { throw std::runtime_error("decode failed"); }), std::runtime_error);
  bool ran = false;
  turns.run([&] { ran = true; });
  CHECK(ran);
}

TEST_CASE("slots: a request waits for a free slot in order; past the queue's bound it gets 503") {
  auto path = test::test_data("models/stories260K.gguf");
  if (!path) return;
  const Model model = Model::load(*path, cpu());
  SlotPool pool(model, 1, ContextParams{.n_ctx = 32, .n_threads = 1}, 1);
  auto first = pool.acquire();
  CHECK(pool.memory().at(0).busy);
  std::atomic<bool> second_got_it{false};
  std::thread second([&] {
    auto lease = pool.acquire();  // waits in the queue
    second_got_it = true;
  });
  while (pool.waiting() == 0) std::this_thread::yield();
  try {  // the queue (bound 1) is full
    auto third = pool.acquire();
    FAIL("a third request got the slot");
  } catch (const ApiError &e) {
    CHECK(e.status == 503);
    CHECK(e.code == "server_busy");
    CHECK(e.message.find("all 1 slots are generating and 1 requests are waiting") != std::string::npos);
  }
  CHECK_FALSE(second_got_it);
  first.reset();
  second.join();
  CHECK(second_got_it);
  CHECK_FALSE(pool.memory().at(0).busy);
}

TEST_CASE("service: greedy completion and chat, streamed and not, reproduce llama.cpp's tokens") {
  auto path = test::test_data("models/stories260K.gguf");
  if (!path) return;
  Service service(Model::load(*path, cpu()), config());

  const std::string prompt = R"("prompt": "Once upon a time, there was a little", "temperature": 0, "max_tokens": 24)";
  const json whole = json::parse(answer(service, Endpoint::completion, "{" + prompt + "}"));
  CHECK(whole["object"] == "text_completion");
  CHECK(whole["model"] == "stories260K");
  const std::string text = whole["choices"][0]["text"];
  CHECK(text.starts_with(kGreedyStart));
  CHECK(whole["choices"][0]["finish_reason"] == "length");
  CHECK(whole["usage"] == json::parse(R"({"prompt_tokens": 10, "completion_tokens": 24, "total_tokens": 34})"));

  const std::string streamed_body = "{" + prompt + R"(, "stream": true, "stream_options": {"include_usage": true}})";
  const Events events = parse_events(answer(service, Endpoint::completion, streamed_body));
  CHECK(events.done);
  std::string streamed;
  for (size_t i = 0; i + 2 < events.chunks.size(); ++i) streamed += events.chunks[i]["choices"][0]["text"];
  CHECK(streamed == text);
  CHECK(events.chunks.at(events.chunks.size() - 2)["choices"][0]["finish_reason"] == "length");
  CHECK(events.chunks.back()["usage"]["completion_tokens"] == 24);

  // Chat: the model has no template, so ChatML; the stop string cuts the answer short.
  const json chat = json::parse(answer(service, Endpoint::chat, R"({"model": "stories260K", "temperature": 0,
      "max_tokens": 40, "stop": ["."], "messages": [{"role": "user", "content": "Tell me a story."}]})"));
  CHECK(chat["object"] == "chat.completion");
  CHECK(chat["choices"][0]["message"]["role"] == "assistant");
  const std::string content = chat["choices"][0]["message"]["content"];
  CHECK_FALSE(content.empty());
  CHECK(content.find('.') == std::string::npos);
  CHECK(chat["choices"][0]["finish_reason"] == "stop");
  CHECK(chat["usage"]["prompt_tokens"] > 5);
}

TEST_CASE("service: a prompt decoded n_batch tokens per turn gives the same greedy tokens") {
  auto path = test::test_data("models/stories260K.gguf");
  if (!path) return;
  ServiceConfig c = config();
  c.context.n_batch = 4;  // the 10 prompt tokens in 3 turns
  Service service(Model::load(*path, cpu()), c);
  const json whole = json::parse(answer(service, Endpoint::completion,
                                        R"({"prompt": "Once upon a time, there was a little", "temperature": 0,
                                            "max_tokens": 24})"));
  CHECK(std::string(whole["choices"][0]["text"]).starts_with(kGreedyStart));
  CHECK(whole["usage"]["prompt_tokens"] == 10);
}

TEST_CASE("service: another model's name is 404, a prompt longer than the context 400") {
  auto path = test::test_data("models/stories260K.gguf");
  if (!path) return;
  Service service(Model::load(*path, cpu()), config());
  try {
    service.prepare(parse_request(Endpoint::chat, R"({"model": "gpt-4o", "messages": [{"role": "user"}]})"));
    FAIL("no error");
  } catch (const ApiError &e) {
    CHECK(e.status == 404);
    CHECK(e.code == "model_not_found");
    CHECK(e.param == "model");
  }
  std::string long_prompt;
  for (int i = 0; i < 200; ++i) long_prompt += "Once upon a time ";
  try {
    service.prepare(parse_request(Endpoint::completion, json{{"prompt", long_prompt}}.dump()));
    FAIL("no error");
  } catch (const ApiError &e) {
    CHECK(e.status == 400);
    CHECK(e.code == "context_length_exceeded");
    CHECK(e.message.find("maximum context length is 128 tokens") != std::string::npos);
  }
}

TEST_CASE("service: a client that goes away ends its generation, and the slot serves the next request") {
  auto path = test::test_data("models/stories260K.gguf");
  if (!path) return;
  Service service(Model::load(*path, cpu()), config());
  Job job = service.prepare(parse_request(Endpoint::chat, R"({"messages": [{"role": "user", "content": "Hi"}],
                                                              "stream": true, "max_tokens": 100, "temperature": 0})"));
  service.acquire_slot(job);
  int writes = 0;
  bool open = true;
  const int32_t generated =
      service.run(job, Sink{[&](std::string_view) { return ++writes < 3; }, [&] { return open; }});
  CHECK(generated == 0);
  CHECK(writes == 3);
  CHECK(service.n_cancelled() == 1);
  job.lease.reset();

  // Gone between tokens (is_open false) without a failed write: also cancelled.
  Job next = service.prepare(parse_request(Endpoint::completion, R"({"prompt": "Once", "max_tokens": 50})"));
  service.acquire_slot(next);
  int turns = 0;
  service.run(next, Sink{[](std::string_view) { return true; }, [&] { return ++turns < 4; }});
  CHECK(service.n_cancelled() == 2);
  next.lease.reset();
  CHECK(json::parse(answer(service, Endpoint::completion, R"({"prompt": "Once", "max_tokens": 5})"))["usage"]
            ["completion_tokens"] == 5);
}

TEST_CASE("service: /v1/memory adds up every slot on a sim device, inside the budget") {
  auto path = test::test_data("models/synth-Q4_K_M.gguf");
  if (!path) return;
  ModelParams p;
  p.device = "sim:64MiB";
  p.n_ctx = 128;
  p.n_batch = 64;
  p.n_contexts = 3;
  const Model model = Model::load(*path, p);
  ServiceConfig c = config(3);
  c.model_id = "synth";
  Service service(model, c);
  answer(service, Endpoint::completion, R"({"prompt": "Once upon a time", "max_tokens": 8})");
  const json memory = json::parse(service.memory_json());
  CHECK(memory["slots"] == 3);
  CHECK(memory["slots_busy"] == 0);
  REQUIRE(memory["devices"].size() == 2);
  const json &device = memory["devices"][1];
  const Plan &plan = *model.plan();
  CHECK(device["kv"] == plan.device.kv);  // three contexts' caches, as planned
  CHECK(device["scratch"] == plan.device.scratch);
  CHECK(device["weights"] == plan.device.weights);
  CHECK(device["total"].get<uint64_t>() <= device["budget"].get<uint64_t>());
  CHECK(device["peak"].get<uint64_t>() <= device["budget"].get<uint64_t>());
  CHECK(device["budget"] == 64ull << 20);
}
