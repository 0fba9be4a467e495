// `vramfit serve`: an OpenAI-compatible HTTP server (POST /v1/chat/completions, /v1/completions,
// GET /v1/models, /health) plus GET /v1/memory, the live memory report. The service itself
// (parsing, JSON, slots) is examples/server; this file is flags and HTTP.
#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "api_error.hpp"
#include "cli.hpp"
#include "request.hpp"
#include "service.hpp"
#include "vramfit/model.hpp"

namespace vramfit::cli {
namespace {

constexpr const char *kUsage = R"(usage: vramfit serve -m MODEL [options]

An OpenAI-compatible server: POST /v1/chat/completions, POST /v1/completions (streamed or not),
GET /v1/models, GET /health, and GET /v1/memory (the memory of every slot by device and category).

  -m, --model FILE         GGUF model
      --alias NAME         the model's id in the API (default: the file name without .gguf)
      --host ADDR          address to listen on (default 127.0.0.1: this machine only)
      --port N             port (default 8080; 0: any free port, printed at start)
  -np, --parallel N        requests generated at once, each in its own context (default 1); the
                           offload plan reserves a KV cache and scratch for each inside the budget
      --queue N            requests that may wait for a slot (default 16); more get HTTP 503
      --api-key KEY        require "Authorization: Bearer KEY" (all but /health)
      --max-body SIZE      largest request body (default 4MiB); larger ones get HTTP 413
  -c, --ctx-size N         context size of each slot in tokens (default 0: the trained length, at
                           most 4096 with a device)
  -b, --batch-size N       prompt tokens per forward pass (default 512)
  -t, --threads N          CPU threads (default: all cores; the slots take turns, never at once)
      --kv-type T          KV cache type: f16 (default), f32, q8_0
      --device D           cuda[:N], sim[:CAPACITY] or cpu (default: cuda when a GPU exists)
      --vram-budget SIZE   everything vramfit allocates on the device, e.g. 6GiB
      --strategy S         fastest (default), layers, manual
  -ngl, --n-gpu-layers N   whole layers on the device
      --cpu-moe            keep every expert group of a MoE model in host memory
      --n-cpu-moe N        keep the expert groups of layers 0..N-1 in host memory
      --temp T             default temperature of a request that gives none (default 0.8)
      --top-k K            (default 40; 0: off)    --top-p P   default top_p (default 0.95)
      --min-p P            (default 0.05; 0: off)  --repeat-penalty R (default 1.0: off)
)";

struct BadFlag {
  std::string message;
};

template <class T>
T parse_number(std::string_view flag, std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    throw BadFlag{fmt::format("{}: '{}' is not a valid number", flag, text)};
  return value;
}

template <class T>
T parse_at_least(std::string_view flag, std::string_view text, T low) {
  const T n = parse_number<T>(flag, text);
  if (n < low) throw BadFlag{fmt::format("{}: '{}' must be at least {}", flag, text, low)};
  return n;
}

uint64_t parse_size_flag(std::string_view flag, std::string_view text) {
  const auto size = parse_size(text);
  if (!size) throw BadFlag{fmt::format("{}: '{}' is not a size (e.g. 6GiB, 800MB)", flag, text)};
  return *size;
}

GgmlType parse_kv_type(std::string_view text) {
  if (text == "f16") return GgmlType::F16;
  if (text == "f32") return GgmlType::F32;
  if (text == "q8_0") return GgmlType::Q8_0;
  throw BadFlag{fmt::format("--kv-type: '{}' is not one of f16, f32, q8_0", text)};
}

OffloadStrategy parse_strategy(std::string_view text) {
  for (auto s : {OffloadStrategy::fastest, OffloadStrategy::layers, OffloadStrategy::manual})
    if (text == to_string(s)) return s;
  throw BadFlag{fmt::format("--strategy: '{}' is not one of fastest, layers, manual", text)};
}

struct ServeOptions {
  std::string model_path;
  ModelParams model_params;
  server::ServiceConfig service;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;
  uint64_t max_body = 4ull << 20;
};

// Model, placement and context flags (shared with `vramfit run`'s meaning); false: not one.
bool parse_model_flag(ServeOptions &o, std::string_view flag, const std::function<std::string_view()> &value,
                      bool &strategy_given) {
  OffloadPolicy &offload = o.model_params.offload;
  ContextParams &context = o.service.context;
  if (flag == "-m" || flag == "--model") o.model_path = value();
  else if (flag == "-c" || flag == "--ctx-size") context.n_ctx = parse_at_least<int32_t>(flag, value(), 0);
  else if (flag == "-b" || flag == "--batch-size") context.n_batch = parse_at_least<int32_t>(flag, value(), 1);
  else if (flag == "-t" || flag == "--threads") context.n_threads = parse_at_least<int32_t>(flag, value(), 0);
  else if (flag == "--kv-type") context.kv_type = parse_kv_type(value());
  else if (flag == "--device") o.model_params.device = value();
  else if (flag == "--vram-budget") offload.vram_budget_bytes = parse_size_flag(flag, value());
  else if (flag == "--strategy") offload.strategy = parse_strategy(value()), strategy_given = true;
  else if (flag == "-ngl" || flag == "--n-gpu-layers") offload.n_gpu_layers = parse_number<int32_t>(flag, value());
  else if (flag == "--cpu-moe") offload.cpu_moe = true;
  else if (flag == "--n-cpu-moe") offload.n_cpu_moe = parse_at_least<int32_t>(flag, value(), 0);
  else return false;
  return true;
}

bool parse_sampling_flag(ServeOptions &o, std::string_view flag, const std::function<std::string_view()> &value) {
  SamplerParams &s = o.service.sampler;
  if (flag == "--temp") s.temperature = parse_number<float>(flag, value());
  else if (flag == "--top-k") s.top_k = parse_number<int32_t>(flag, value());
  else if (flag == "--top-p") s.top_p = parse_number<float>(flag, value());
  else if (flag == "--min-p") s.min_p = parse_number<float>(flag, value());
  else if (flag == "--repeat-penalty") s.repeat_penalty = parse_number<float>(flag, value());
  else return false;
  return true;
}

ServeOptions parse(std::span<const std::string_view> args) {
  ServeOptions o;
  bool strategy_given = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view flag = args[i];
    const std::function<std::string_view()> value = [&]() -> std::string_view {
      if (i + 1 >= args.size()) throw BadFlag{fmt::format("{} needs a value", flag)};
      return args[++i];
    };
    if (parse_model_flag(o, flag, value, strategy_given) || parse_sampling_flag(o, flag, value)) continue;
    if (flag == "--alias") o.service.model_id = value();
    else if (flag == "--host") o.host = value();
    else if (flag == "--port") o.port = parse_at_least<int>(flag, value(), 0);
    else if (flag == "-np" || flag == "--parallel") o.service.n_slots = parse_at_least<int32_t>(flag, value(), 1);
    else if (flag == "--queue") o.service.max_queue = parse_at_least<int32_t>(flag, value(), 0);
    else if (flag == "--api-key") o.api_key = value();
    else if (flag == "--max-body") o.max_body = parse_size_flag(flag, value());
    else throw BadFlag{fmt::format("unknown option '{}' (see vramfit serve --help)", flag)};
  }
  if (o.model_path.empty()) throw BadFlag{"-m MODEL is required"};
  if (o.port > 65535) throw BadFlag{fmt::format("--port: {} is not a port (0..65535)", o.port)};
  if (!strategy_given && o.model_params.offload.n_gpu_layers >= 0)
    o.model_params.offload.strategy = OffloadStrategy::layers;
  if (o.service.model_id.empty()) {
    const std::filesystem::path path(o.model_path);
    o.service.model_id = path.extension() == ".gguf" ? path.stem().string() : path.filename().string();
  }
  // The plan reserves what every slot's context will use.
  o.model_params.n_ctx = o.service.context.n_ctx;
  o.model_params.n_batch = o.service.context.n_batch;
  o.model_params.kv_type = o.service.context.kv_type;
  o.model_params.n_contexts = o.service.n_slots;
  return o;
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
  if (asks_for_help(args)) {
    fmt::print("{}", kUsage);
    return 0;
  }
  ServeOptions o;
  try {
    o = parse(args);
  } catch (const BadFlag &bad) {
    fmt::print(stderr, "vramfit serve: {}\n", bad.message);
    return 2;
  }
  httplib::Server http;
  StopOnSignal stop_on_signal(http);  // before any thread starts, so all inherit the mask

  const Model model = Model::load(o.model_path, o.model_params);
  server::Service service(model, o.service);
  if (const Plan *plan = model.plan())
    fmt::print(stderr, "offload: {}, {} of {} layers on the device, {} contexts planned: {} of {} budget bytes\n",
               plan->chosen_by, plan->n_device_layers, plan->n_layer, plan->n_contexts, plan->device.total(),
               plan->budget_bytes);

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
