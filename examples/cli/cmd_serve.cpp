// `vramfit serve`: an OpenAI-compatible HTTP server (POST /v1/chat/completions, /v1/completions,
// GET /v1/models, /health) plus GET /v1/memory, the live memory report. The service itself
// (parsing, JSON, slots) is examples/server; this file is flags and HTTP.
#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "api_error.hpp"
#include "cli.hpp"
#include "options.hpp"
#include "request.hpp"
#include "service.hpp"
#include "vramfit/model.hpp"

namespace vramfit::cli {
namespace {

struct ServeOptions {
  CommonOptions common;
  server::ServiceConfig service;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;
  uint64_t max_body = 4ull << 20;
};

// --max-body takes small sizes ("64KiB"), unlike a VRAM budget (parse_size_flag).
uint64_t parse_body_size(std::string_view flag, std::string_view text) {
  const auto size = vramfit::parse_size(text);
  if (!size || *size == 0) throw UsageError{fmt::format("{}: '{}' is not a size (e.g. 64KiB, 4MiB)", flag, text)};
  return *size;
}

void add_serve_options(OptionParser &p, ServeOptions &o) {
  p.group("server");
  p.option({"--alias"}, "NAME", "the model's id in the API (default: the file name without .gguf)",
           [&o](std::string_view v) { o.service.model_id = v; });
  p.option({"--host"}, "ADDR", "address to listen on (default 127.0.0.1: this machine only)",
           [&o](std::string_view v) { o.host = v; });
  p.option({"--port"}, "N", "port (default 8080; 0: any free port, printed at start)", [&o](std::string_view v) {
    o.port = static_cast<int>(parse_integer("--port", v, 0, 65535));
  });
  p.option({"-np", "--parallel"}, "N",
           "requests generated at once, each in its own context (default 1); the plan\n"
           "reserves a KV cache and scratch for each inside the VRAM budget",
           [&o](std::string_view v) { o.service.n_slots = static_cast<int32_t>(parse_integer("-np", v, 1, 256)); });
  p.option({"--queue"}, "N", "requests that may wait for a slot (default 16); more get HTTP 503",
           [&o](std::string_view v) {
             o.service.max_queue = static_cast<int32_t>(parse_integer("--queue", v, 0, 4096));
           });
  p.option({"--api-key"}, "KEY", "require 'Authorization: Bearer KEY' on every request but /health",
           [&o](std::string_view v) { o.api_key = v; });
  p.option({"--max-body"}, "SIZE", "largest request body (default 4MiB); larger ones get HTTP 413",
           [&o](std::string_view v) { o.max_body = parse_body_size("--max-body", v); });
}

// ---------------------------------------------------------------- HTTP

void send_error(httplib::Response &res, const server::ApiError &error) {
  res.status = error.status;
  res.set_content(server::error_body(error), "application/json");
}

// Constant time, so the key cannot be guessed a byte at a time from response times.
bool same_key(std::string_view given, std::string_view key) {
  unsigned char diff = given.size() == key.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ key[i % key.size()]);
  return diff == 0;
}

bool authorized(const httplib::Request &req, const std::string &api_key) {
  if (api_key.empty() || req.path == "/health") return true;
  const std::string header = req.get_header_value("Authorization");
  constexpr std::string_view bearer = "Bearer ";
  return header.starts_with(bearer) && same_key(std::string_view(header).substr(bearer.size()), api_key);
}

void add_completion_route(httplib::Server &http, server::Service &service, const char *path,
                          server::Endpoint endpoint) {
  http.Post(path, [&service, endpoint](const httplib::Request &req, httplib::Response &res) {
    try {
      auto job = std::make_shared<server::Job>(service.prepare(server::parse_request(endpoint, req.body)));
      service.acquire_slot(*job);
      const bool stream = job->request.stream;
      if (stream) res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider(
          stream ? "text/event-stream" : "application/json", [&service, job](size_t, httplib::DataSink &sink) {
            const auto start = std::chrono::steady_clock::now();
            const server::Sink out{[&](std::string_view bytes) { return sink.write(bytes.data(), bytes.size()); },
                                   [&] { return sink.is_writable(); }};
            const int32_t generated = service.run(*job, out);
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            fmt::print(stderr, "{} slot {}: {} prompt + {} generated tokens in {:.3f} s\n", job->header.id,
                       job->lease->slot().index, job->prompt_tokens.size(), generated, seconds);
            sink.done();
            return true;
          });
    } catch (const server::ApiError &e) {
      send_error(res, e);
    }
  });
}

void add_routes(httplib::Server &http, server::Service &service, const ServeOptions &o) {
  http.set_pre_routing_handler([&o](const httplib::Request &req, httplib::Response &res) {
    if (authorized(req, o.api_key)) return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, server::ApiError{401, "Incorrect API key provided. Pass it as 'Authorization: Bearer KEY'.",
                                     "invalid_request_error", "", "invalid_api_key"});
    return httplib::Server::HandlerResponse::Handled;
  });
  http.Get("/health", [](const httplib::Request &, httplib::Response &res) {
    res.set_content(R"({"status":"ok"})", "application/json");
  });
  http.Get("/v1/models", [&service](const httplib::Request &, httplib::Response &res) {
    res.set_content(service.models_json(), "application/json");
  });
  http.Get(R"(/v1/models/(.+))", [&service](const httplib::Request &req, httplib::Response &res) {
    try {
      res.set_content(service.model_json(req.matches[1]), "application/json");
    } catch (const server::ApiError &e) {
      send_error(res, e);
    }
  });
  http.Get("/v1/memory", [&service](const httplib::Request &, httplib::Response &res) {
    res.set_content(service.memory_json(), "application/json");
  });
  add_completion_route(http, service, "/v1/chat/completions", server::Endpoint::chat);
  add_completion_route(http, service, "/v1/completions", server::Endpoint::completion);
  // Statuses cpp-httplib sets itself (no route, a body over the limit) get an OpenAI error body too.
  http.set_error_handler([&o](const httplib::Request &req, httplib::Response &res) {
    if (!res.body.empty()) return;
    if (res.status == 413)
      send_error(res, server::ApiError{413, fmt::format("The request body is larger than the server's limit of {} "
                                                        "bytes (--max-body).", o.max_body),
                                       "invalid_request_error", "", "request_too_large"});
    else if (res.status == 404)
      send_error(res, server::ApiError{404, fmt::format("Invalid URL ({} {})", req.method, req.path),
                                       "invalid_request_error", "", "unknown_url"});
    else
      send_error(res, server::ApiError{res.status, fmt::format("HTTP {} for {} {}", res.status, req.method, req.path),
                                       "invalid_request_error", "", ""});
  });
  http.set_exception_handler([](const httplib::Request &, httplib::Response &res, std::exception_ptr error) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception &e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, server::ApiError{500, "Internal error: " + what, "server_error", "", ""});
  });
}

// SIGINT / SIGTERM stop the server cleanly: the signals are blocked in every thread and one
// thread waits for them (a signal handler may not call stop()).
class StopOnSignal {
 public:
  explicit StopOnSignal(httplib::Server &http) {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
    waiter_ = std::thread([this, &http] {
      int signal = 0;
      sigwait(&signals_, &signal);
      http.stop();
    });
  }
  ~StopOnSignal() {
    pthread_kill(waiter_.native_handle(), SIGTERM);
    waiter_.join();
  }

 private:
  sigset_t signals_;
  std::thread waiter_;
};

int serve(std::span<const std::string_view> args) {
  ServeOptions o;
  o.common.generate.max_tokens = -1;  // a request without max_tokens: until the end, as OpenAI
  OptionParser parser("serve", "-m MODEL [options]",
                      "An OpenAI-compatible server: POST /v1/chat/completions and /v1/completions (streamed as "
                      "server-sent events or not), GET /v1/models, GET /health, and GET /v1/memory (the memory of "
                      "every slot by device and category). A request's max_tokens, temperature, top_p and seed "
                      "override -n (default here: -1, until the end), --temp, --top-p and --seed.");
  add_model_options(parser, o.common);
  add_context_options(parser, o.common);
  add_sampling_options(parser, o.common);
  add_serve_options(parser, o);
  if (auto exit_code = parser.parse(args)) return *exit_code;
  if (o.service.model_id.empty()) {
    const std::filesystem::path path(o.common.model_path);
    o.service.model_id = path.extension() == ".gguf" ? path.stem().string() : path.filename().string();
  }
  o.common.model.n_contexts = o.service.n_slots;  // the plan reserves every slot's context

  httplib::Server http;
  StopOnSignal stop_on_signal(http);  // before any thread starts, so all inherit the mask

  const Model model = load_model(o.common);
  o.service.context = o.common.context;
  o.service.sampler = o.common.sampler;
  o.service.random_seed = o.common.seed_is_random;
  o.service.default_max_tokens = o.common.generate.max_tokens;
  server::Service service(model, o.service);
  if (const Plan *plan = model.plan())
    fmt::print(stderr, "offload: {}, {} of {} layers on the device, {} contexts planned: {} of {} budget bytes\n",
               plan->chosen_by, plan->n_device_layers, plan->n_layer, plan->n_contexts, plan->device.total(),
               plan->budget_bytes);
  if (const Plan *plan = model.plan())
    for (const std::string &note : plan->notes) fmt::print(stderr, "offload: {}\n", note);

  // One thread per slot and per queued request, plus a few for /health, /v1/models, /v1/memory.
  const auto n_threads = static_cast<size_t>(o.service.n_slots + o.service.max_queue + 4);
  http.new_task_queue = [n_threads] { return new httplib::ThreadPool(n_threads); };
  http.set_payload_max_length(o.max_body);
  add_routes(http, service, o);

  const int port = o.port == 0 ? http.bind_to_any_port(o.host) : (http.bind_to_port(o.host, o.port) ? o.port : -1);
  if (port < 0) {
    fmt::print(stderr, "vramfit serve: cannot listen on {}:{} (in use, or not an address of this machine)\n", o.host,
               o.port);
    return 1;
  }
  fmt::print(stderr, "vramfit serve: listening on http://{}:{}/v1 (model '{}', {} slots of n_ctx {})\n", o.host, port,
             o.service.model_id, o.service.n_slots, service.n_ctx());
  std::fflush(stderr);
  http.listen_after_bind();
  fmt::print(stderr, "vramfit serve: stopped ({} requests cancelled by their client)\n", service.n_cancelled());
  return 0;
}

}  // namespace

VRAMFIT_COMMAND("serve", "an OpenAI-compatible HTTP server (chat, completions, streaming, /v1/memory)", serve);

}  // namespace vramfit::cli
