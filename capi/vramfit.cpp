// The C ABI over the public C++ API. Every entry point runs its body through `guarded`, which turns
// any exception into a status plus the thread-local last-error message: nothing escapes.
#include "vramfit.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "vramfit/chat.hpp"
#include "vramfit/context.hpp"
#include "vramfit/error.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/log.hpp"
#include "vramfit/model.hpp"
#include "vramfit/offload.hpp"
#include "vramfit/sampler.hpp"

struct vramfit_model {
  vramfit::Model model;
};
struct vramfit_context {
  vramfit::Context context;
};
struct vramfit_sampler {
  vramfit::Sampler sampler;
};
struct vramfit_plan {
  vramfit::Plan plan;
  std::string json;
  std::string table;
};

namespace {

using vramfit::ErrorCode;

// The status values are the ErrorCode values, so the conversion is a cast.
static_assert(VRAMFIT_ERR_INVALID_ARGUMENT == int(ErrorCode::invalid_argument));
static_assert(VRAMFIT_ERR_IO == int(ErrorCode::io));
static_assert(VRAMFIT_ERR_FORMAT == int(ErrorCode::format));
static_assert(VRAMFIT_ERR_UNSUPPORTED == int(ErrorCode::unsupported));
static_assert(VRAMFIT_ERR_OUT_OF_MEMORY == int(ErrorCode::out_of_memory));
static_assert(VRAMFIT_ERR_BUDGET_EXCEEDED == int(ErrorCode::budget_exceeded));
static_assert(VRAMFIT_ERR_CONTEXT_FULL == int(ErrorCode::context_full));
static_assert(VRAMFIT_ERR_DEVICE == int(ErrorCode::device));
static_assert(VRAMFIT_ERR_INTERNAL == int(ErrorCode::internal));
static_assert(VRAMFIT_ERR_CANCELLED == int(ErrorCode::cancelled));

// Appending a field must never land in an older version's tail padding (the library would read
// the application's padding bytes as that field), so the structs that grow have none.
template <class T, class Last>
constexpr bool ends_without_padding(size_t last_offset) {
  return sizeof(T) == last_offset + sizeof(Last);
}
static_assert(ends_without_padding<vramfit_model_params, uint32_t>(offsetof(vramfit_model_params, reserved3)));
static_assert(ends_without_padding<vramfit_context_params, int32_t>(offsetof(vramfit_context_params, kv_type)));
static_assert(ends_without_padding<vramfit_offload_policy, int32_t>(offsetof(vramfit_offload_policy, n_cpu_moe)));
static_assert(offsetof(vramfit_offload_policy, cpu_moe) == offsetof(vramfit_offload_policy, reserved) + sizeof(uint32_t),
              "the appended MoE fields start right after the first version's struct, with no gap");
static_assert(ends_without_padding<vramfit_sampler_params, uint64_t>(offsetof(vramfit_sampler_params, seed)));
static_assert(ends_without_padding<vramfit_memory_report, uint64_t>(offsetof(vramfit_memory_report, device_total)));
static_assert(ends_without_padding<vramfit_chat_params, const char *>(offsetof(vramfit_chat_params, date)));

thread_local std::string t_last_error;

vramfit_status failed(vramfit_status status, const char *message) noexcept {
  try {
    t_last_error = message;
  } catch (...) {
    t_last_error.clear();  // no memory for the message; the status still tells
  }
  return status;
}

// A vramfit::Error thrown inside the C ABI's own checks.
[[noreturn]] void fail(ErrorCode code, const std::string &message) { throw vramfit::Error(code, message); }

template <class T>
void require(const T *pointer, const char *function, const char *name) {
  if (!pointer) fail(ErrorCode::invalid_argument, std::string(function) + ": " + name + " is NULL");
}

// Runs `body` (returning void or a status) and converts whatever it throws.
template <class Body>
vramfit_status guarded(Body &&body) noexcept {
  try {
    if constexpr (std::is_void_v<decltype(body())>) {
      body();
      return VRAMFIT_OK;
    } else {
      return body();
    }
  } catch (const vramfit::Error &e) {
    return failed(static_cast<vramfit_status>(e.code()), e.what());
  } catch (const std::bad_alloc &) {
    return failed(VRAMFIT_ERR_OUT_OF_MEMORY, "out of host memory");
  } catch (const std::exception &e) {
    return failed(VRAMFIT_ERR_INTERNAL, e.what());
  } catch (...) {
    return failed(VRAMFIT_ERR_INTERNAL, "unknown exception");
  }
}

// ---- struct_size: read and write only the bytes the caller's struct covers ----

template <class T>
T read_params(const T *user, const T &defaults, const char *what) {
  if (!user) return defaults;
  if (user->struct_size < sizeof(uint32_t))
    fail(ErrorCode::invalid_argument, std::string(what) + ": struct_size " + std::to_string(user->struct_size) +
                                          " is too small; start from its vramfit_*_default_* function");
  T out = defaults;
  std::memcpy(&out, user, std::min<size_t>(user->struct_size, sizeof(T)));
  out.struct_size = sizeof(T);
  return out;
}

template <class T>
vramfit_status init_params(T *user, uint32_t struct_size, const T &defaults, const char *function) {
  return guarded([&] {
    require(user, function, "p");
    if (struct_size < sizeof(uint32_t))
      fail(ErrorCode::invalid_argument, std::string(function) + ": struct_size " + std::to_string(struct_size) + " < 4");
    std::memcpy(user, &defaults, std::min<size_t>(struct_size, sizeof(T)));
    user->struct_size = struct_size;
  });
}

vramfit_offload_policy default_policy() {
  const vramfit::OffloadPolicy d;
  return {sizeof(vramfit_offload_policy), static_cast<int32_t>(d.strategy), d.vram_budget_bytes, d.reserve_bytes,
          d.n_gpu_layers, static_cast<int32_t>(d.kv_placement), nullptr, 0, d.min_ctx, 0, d.cpu_moe, {0, 0, 0},
          d.n_cpu_moe};
}

vramfit_model_params default_model_params() {
  const vramfit::ModelParams d;
  return {sizeof(vramfit_model_params), 0, nullptr, nullptr, nullptr, nullptr, static_cast<uint32_t>(d.n_ctx),
          static_cast<uint32_t>(d.n_batch), VRAMFIT_KV_F16, 0, static_cast<uint32_t>(d.n_contexts), 0};
}

vramfit_context_params default_context_params() {
  const vramfit::ContextParams d;
  return {sizeof(vramfit_context_params), static_cast<uint32_t>(d.n_ctx), static_cast<uint32_t>(d.n_batch),
          d.n_threads, VRAMFIT_KV_F16};
}

vramfit_sampler_params default_sampler_params() {
  const vramfit::SamplerParams d;
  return {sizeof(vramfit_sampler_params), d.temperature, d.top_k, d.top_p, d.min_p, d.typical_p,
          d.repeat_penalty, d.frequency_penalty, d.presence_penalty, d.penalty_last_n, d.seed};
}

vramfit_chat_params default_chat_params() {
  return {sizeof(vramfit_chat_params), 1, nullptr, nullptr, nullptr, nullptr, nullptr};
}

// ---- C structs -> C++ structs ----

template <class Enum>
Enum enum_in_range(int32_t value, int32_t count, const char *field) {
  if (value < 0 || value >= count)
    fail(ErrorCode::invalid_argument, std::string(field) + " = " + std::to_string(value) + " is not a valid value");
  return static_cast<Enum>(value);
}

vramfit::OffloadPolicy to_cpp(const vramfit_offload_policy *user) {
  const vramfit_offload_policy c = read_params(user, default_policy(), "vramfit_offload_policy");
  vramfit::OffloadPolicy p;
  p.vram_budget_bytes = c.vram_budget_bytes;
  p.reserve_bytes = c.reserve_bytes;
  p.strategy = enum_in_range<vramfit::OffloadStrategy>(c.strategy, 3, "vramfit_offload_policy.strategy");
  p.n_gpu_layers = c.n_gpu_layers;
  p.kv_placement = enum_in_range<vramfit::KvPlacement>(c.kv_placement, 3, "vramfit_offload_policy.kv_placement");
  p.min_ctx = c.min_ctx;
  p.cpu_moe = c.cpu_moe;
  if (c.n_cpu_moe < 0)
    fail(ErrorCode::invalid_argument, "vramfit_offload_policy.n_cpu_moe = " + std::to_string(c.n_cpu_moe) + " must be >= 0");
  p.n_cpu_moe = c.n_cpu_moe;
  if (c.n_rules > 0 && !c.rules) fail(ErrorCode::invalid_argument, "vramfit_offload_policy: rules is NULL but n_rules > 0");
  for (size_t i = 0; i < c.n_rules; ++i) {
    if (!c.rules[i].pattern)
      fail(ErrorCode::invalid_argument, "vramfit_offload_policy: rules[" + std::to_string(i) + "].pattern is NULL");
    p.rules.push_back({c.rules[i].pattern, c.rules[i].to_device});
  }
  return p;
}

int32_t to_int32(uint32_t value, const char *field) {
  if (value > uint32_t(INT32_MAX)) fail(ErrorCode::invalid_argument, std::string(field) + " is too large");
  return static_cast<int32_t>(value);
}

vramfit::GgmlType to_kv_type(int32_t kv_type, const char *field) {
  constexpr vramfit::GgmlType kv_types[] = {vramfit::GgmlType::F16, vramfit::GgmlType::F32, vramfit::GgmlType::Q8_0};
  return kv_types[enum_in_range<size_t>(kv_type, 3, field)];
}

vramfit::ModelParams to_cpp(const vramfit_model_params *user) {
  const vramfit_model_params c = read_params(user, default_model_params(), "vramfit_model_params");
  vramfit::ModelParams p;
  if (c.device) p.device = c.device;
  p.offload = to_cpp(c.offload);
  if (c.progress)
    p.progress = [callback = c.progress, user_data = c.progress_user_data](float fraction) {
      return callback(fraction, user_data);
    };
  p.n_ctx = to_int32(c.n_ctx, "vramfit_model_params.n_ctx");
  p.n_batch = to_int32(c.n_batch, "vramfit_model_params.n_batch");
  p.kv_type = to_kv_type(c.kv_type, "vramfit_model_params.kv_type");
  p.n_contexts = to_int32(c.n_contexts, "vramfit_model_params.n_contexts");
  return p;
}

vramfit::ContextParams to_cpp(const vramfit_context_params *user) {
  const vramfit_context_params c = read_params(user, default_context_params(), "vramfit_context_params");
  vramfit::ContextParams p;
  p.n_ctx = to_int32(c.n_ctx, "vramfit_context_params.n_ctx");
  p.n_batch = to_int32(c.n_batch, "vramfit_context_params.n_batch");
  p.n_threads = c.n_threads;
  p.kv_type = to_kv_type(c.kv_type, "vramfit_context_params.kv_type");
  return p;
}

vramfit::SamplerParams to_cpp(const vramfit_sampler_params *user) {
  const vramfit_sampler_params c = read_params(user, default_sampler_params(), "vramfit_sampler_params");
  vramfit::SamplerParams p;
  p.temperature = c.temperature;
  p.top_k = c.top_k;
  p.top_p = c.top_p;
  p.min_p = c.min_p;
  p.typical_p = c.typical_p;
  p.repeat_penalty = c.repeat_penalty;
  p.frequency_penalty = c.frequency_penalty;
  p.presence_penalty = c.presence_penalty;
  p.penalty_last_n = c.penalty_last_n;
  p.seed = c.seed;
  return p;
}

// ---- logging: the C callback behind the C++ one ----

std::mutex g_log_mutex;
vramfit_log_callback g_log_callback = nullptr;
void *g_log_user_data = nullptr;

void log_trampoline(vramfit::LogLevel level, const char *message, void *) {
  g_log_callback(static_cast<vramfit_log_level>(level), message, g_log_user_data);
}

// Row i of the last batch's logits (the context throws invalid_argument when there is none).
std::span<const float> logits_row(vramfit_context *ctx, int32_t i, const char *function) {
  require(ctx, function, "ctx");
  return ctx->context.logits(i);
}

// Copies text (and its NUL) to buf, or says how much room it needs.
vramfit_status copy_text(const std::string &text, char *buf, size_t capacity, size_t *n_out, const char *function) {
  *n_out = text.size();
  if (text.size() + 1 > capacity)
    return failed(VRAMFIT_ERR_BUFFER_TOO_SMALL, (std::string(function) + ": " + std::to_string(text.size() + 1) +
                                                 " bytes do not fit a capacity of " + std::to_string(capacity)).c_str());
  require(buf, function, "buf");
  std::memcpy(buf, text.c_str(), text.size() + 1);
  return VRAMFIT_OK;
}

// vramfit_tokenize and vramfit_tokenize_special: the tokens, or the capacity they need.
vramfit_status tokenize_into(const vramfit_model *model, const char *text, size_t len, bool add_special,
                             bool parse_special, vramfit_token *out, size_t capacity, size_t *n_out,
                             const char *function) {
  return guarded([&]() -> vramfit_status {
    require(model, function, "model");
    require(n_out, function, "n_out");
    if (!text && len > 0) fail(ErrorCode::invalid_argument, std::string(function) + ": text is NULL but len > 0");
    const auto tokens = model->model.tokenize(std::string_view(text ? text : "", len), add_special, parse_special);
    *n_out = tokens.size();
    if (tokens.size() > capacity)
      return failed(VRAMFIT_ERR_BUFFER_TOO_SMALL, (std::string(function) + ": " + std::to_string(tokens.size()) +
                                                   " tokens do not fit a capacity of " + std::to_string(capacity)).c_str());
    if (!tokens.empty()) {
      require(out, function, "out");
      std::copy(tokens.begin(), tokens.end(), out);
    }
    return VRAMFIT_OK;
  });
}

void require_token(const vramfit_model *model, vramfit_token token, const char *function) {
  if (token < 0 || token >= model->model.n_vocab())
    fail(ErrorCode::invalid_argument, std::string(function) + ": token " + std::to_string(token) +
                                          " is outside the vocabulary (" + std::to_string(model->model.n_vocab()) + ")");
}

// A JSON string literal of `text` (device names are ours, but quote them properly anyway).
std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\u00";
      out += hex[(c >> 4) & 0xf];
      out += hex[c & 0xf];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string memory_json(const vramfit::MemoryReport &report) {
  std::string out = "{\"devices\": [";
  for (size_t i = 0; i < report.devices.size(); ++i) {
    const vramfit::DeviceMemory &d = report.devices[i];
    const std::pair<const char *, uint64_t> fields[] = {
        {"weights", d.weights}, {"kv", d.kv},     {"scratch", d.scratch}, {"staging", d.staging},
        {"overhead", d.overhead}, {"peak", d.peak}, {"budget", d.budget},  {"total", d.total()}};
    out += i ? ", {\"device\": " : "{\"device\": ";
    out += json_string(d.device);
    for (const auto &[name, bytes] : fields) out += std::string(", \"") + name + "\": " + std::to_string(bytes);
    out += "}";
  }
  return out + "], \"total\": " + std::to_string(report.total()) + "}";
}

}  // namespace

extern "C" {

const char *vramfit_version(void) {
#define VRAMFIT_STR2(x) #x
#define VRAMFIT_STR(x) VRAMFIT_STR2(x)
  return VRAMFIT_STR(VRAMFIT_VERSION_MAJOR) "." VRAMFIT_STR(VRAMFIT_VERSION_MINOR) "." VRAMFIT_STR(VRAMFIT_VERSION_PATCH);
}

int32_t vramfit_abi_version(void) { return VRAMFIT_ABI_VERSION; }

const char *vramfit_last_error(void) { return t_last_error.c_str(); }

const char *vramfit_status_string(vramfit_status status) {
  if (status == VRAMFIT_OK) return "ok";
  if (status == VRAMFIT_ERR_BUFFER_TOO_SMALL) return "buffer_too_small";
  if ((status >= VRAMFIT_ERR_INVALID_ARGUMENT && status <= VRAMFIT_ERR_INTERNAL) || status == VRAMFIT_ERR_CANCELLED)
    return vramfit::to_string(static_cast<ErrorCode>(status));
  return "unknown";
}

void vramfit_set_log_callback(vramfit_log_callback callback, void *user_data) {
  std::lock_guard lock(g_log_mutex);
  // Detach first: once set_log_callback returns, no message is being delivered with the old data.
  vramfit::set_log_callback(nullptr, nullptr);
  g_log_callback = callback;
  g_log_user_data = user_data;
  if (callback) vramfit::set_log_callback(log_trampoline, nullptr);
}

vramfit_status vramfit_model_params_init(vramfit_model_params *p, uint32_t struct_size) {
  return init_params(p, struct_size, default_model_params(), "vramfit_model_params_init");
}
vramfit_status vramfit_context_params_init(vramfit_context_params *p, uint32_t struct_size) {
  return init_params(p, struct_size, default_context_params(), "vramfit_context_params_init");
}
vramfit_status vramfit_offload_policy_init(vramfit_offload_policy *p, uint32_t struct_size) {
  return init_params(p, struct_size, default_policy(), "vramfit_offload_policy_init");
}
vramfit_status vramfit_sampler_params_init(vramfit_sampler_params *p, uint32_t struct_size) {
  return init_params(p, struct_size, default_sampler_params(), "vramfit_sampler_params_init");
}
vramfit_status vramfit_chat_params_init(vramfit_chat_params *p, uint32_t struct_size) {
  return init_params(p, struct_size, default_chat_params(), "vramfit_chat_params_init");
}

// ---- models ----

vramfit_status vramfit_model_load(const char *path, const vramfit_model_params *p, vramfit_model **out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(path, "vramfit_model_load", "path");
    require(out, "vramfit_model_load", "out");
    *out = new vramfit_model{vramfit::Model::load(path, to_cpp(p))};
  });
}

void vramfit_model_free(vramfit_model *model) { delete model; }

int32_t vramfit_model_n_vocab(const vramfit_model *model) { return model ? model->model.n_vocab() : 0; }
int32_t vramfit_model_n_ctx_train(const vramfit_model *model) { return model ? model->model.n_ctx_train() : 0; }
vramfit_token vramfit_model_bos(const vramfit_model *model) { return model ? model->model.bos() : -1; }
vramfit_token vramfit_model_eos(const vramfit_model *model) { return model ? model->model.eos() : -1; }
bool vramfit_model_is_eog(const vramfit_model *model, vramfit_token token) {
  return model && model->model.is_eog(token);
}

// ---- tokens and text ----

vramfit_status vramfit_tokenize(const vramfit_model *model, const char *text, size_t len, bool add_special,
                                vramfit_token *out, size_t capacity, size_t *n_out) {
  return tokenize_into(model, text, len, add_special, false, out, capacity, n_out, "vramfit_tokenize");
}

vramfit_status vramfit_tokenize_special(const vramfit_model *model, const char *text, size_t len, bool add_special,
                                        bool parse_special, vramfit_token *out, size_t capacity, size_t *n_out) {
  return tokenize_into(model, text, len, add_special, parse_special, out, capacity, n_out, "vramfit_tokenize_special");
}

vramfit_status vramfit_detokenize(const vramfit_model *model, const vramfit_token *tokens, size_t n, char *buf,
                                  size_t capacity, size_t *n_out) {
  return guarded([&]() -> vramfit_status {
    require(model, "vramfit_detokenize", "model");
    require(n_out, "vramfit_detokenize", "n_out");
    if (!tokens && n > 0) fail(ErrorCode::invalid_argument, "vramfit_detokenize: tokens is NULL but n > 0");
    const std::span<const vramfit_token> ids(tokens, n);
    for (vramfit_token token : ids) require_token(model, token, "vramfit_detokenize");
    return copy_text(n > 0 ? model->model.detokenize(ids) : std::string(), buf, capacity, n_out, "vramfit_detokenize");
  });
}

vramfit_status vramfit_token_to_piece(const vramfit_model *model, vramfit_token token, char *buf, size_t capacity,
                                      size_t *n_out) {
  return guarded([&]() -> vramfit_status {
    require(model, "vramfit_token_to_piece", "model");
    require(n_out, "vramfit_token_to_piece", "n_out");
    require_token(model, token, "vramfit_token_to_piece");
    return copy_text(model->model.token_to_piece(token), buf, capacity, n_out, "vramfit_token_to_piece");
  });
}

// ---- contexts ----

vramfit_status vramfit_context_create(vramfit_model *model, const vramfit_context_params *p, vramfit_context **out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(model, "vramfit_context_create", "model");
    require(out, "vramfit_context_create", "out");
    *out = new vramfit_context{vramfit::Context(model->model, to_cpp(p))};
  });
}

void vramfit_context_free(vramfit_context *ctx) { delete ctx; }

vramfit_status vramfit_decode(vramfit_context *ctx, const vramfit_token *tokens, size_t n, bool all_logits) {
  return guarded([&] {
    require(ctx, "vramfit_decode", "ctx");
    require(tokens, "vramfit_decode", "tokens");
    if (n == 0) fail(ErrorCode::invalid_argument, "vramfit_decode: empty batch (n = 0)");
    ctx->context.decode(std::span<const vramfit_token>(tokens, n), all_logits);
  });
}

const float *vramfit_get_logits(vramfit_context *ctx, int32_t i) {
  const float *row = nullptr;
  guarded([&] { row = logits_row(ctx, i, "vramfit_get_logits").data(); });
  return row;
}

int32_t vramfit_context_n_past(const vramfit_context *ctx) { return ctx ? ctx->context.n_past() : 0; }
int32_t vramfit_context_n_ctx(const vramfit_context *ctx) { return ctx ? ctx->context.n_ctx() : 0; }
void vramfit_context_clear(vramfit_context *ctx) {
  if (ctx) ctx->context.clear();
}

const vramfit_token *vramfit_context_tokens(const vramfit_context *ctx, size_t *n_out) {
  const vramfit_token *tokens = nullptr;
  if (n_out) *n_out = 0;
  guarded([&] {
    require(ctx, "vramfit_context_tokens", "ctx");
    require(n_out, "vramfit_context_tokens", "n_out");
    const std::span<const int32_t> held = ctx->context.tokens();
    tokens = held.data();
    *n_out = held.size();
  });
  return tokens;
}

vramfit_status vramfit_context_truncate(vramfit_context *ctx, int32_t n) {
  return guarded([&] {
    require(ctx, "vramfit_context_truncate", "ctx");
    ctx->context.truncate(n);
  });
}

int32_t vramfit_context_truncate_floor(const vramfit_context *ctx) {
  return ctx ? ctx->context.truncate_floor() : 0;
}

vramfit_status vramfit_decode_reusing_prefix(vramfit_context *ctx, const vramfit_token *tokens, size_t n,
                                             int32_t *n_reused) {
  return guarded([&] {
    require(ctx, "vramfit_decode_reusing_prefix", "ctx");
    require(tokens, "vramfit_decode_reusing_prefix", "tokens");
    const vramfit::PrefixReuse r = ctx->context.decode_reusing_prefix(std::span<const vramfit_token>(tokens, n));
    if (n_reused) *n_reused = r.n_reused;
  });
}

vramfit_status vramfit_context_memory(const vramfit_context *ctx, vramfit_memory_report *out) {
  return guarded([&] {
    require(ctx, "vramfit_context_memory", "ctx");
    require(out, "vramfit_context_memory", "out");
    if (out->struct_size < sizeof(uint32_t))
      fail(ErrorCode::invalid_argument, "vramfit_context_memory: out->struct_size must be set to sizeof(vramfit_memory_report)");
    const vramfit::MemoryReport report = ctx->context.memory_report();
    vramfit_memory_report r{};
    r.n_devices = static_cast<uint32_t>(report.devices.size());
    for (const vramfit::DeviceMemory &d : report.devices) {
      r.weights += d.weights;
      r.kv += d.kv;
      r.scratch += d.scratch;
      if (d.device != "cpu") r.device_total += d.total();
    }
    r.total = report.total();
    const uint32_t size = out->struct_size;
    r.struct_size = size;
    std::memcpy(out, &r, std::min<size_t>(size, sizeof r));
  });
}

// ---- sampling ----

vramfit_status vramfit_sampler_create(const vramfit_sampler_params *p, vramfit_sampler **out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out, "vramfit_sampler_create", "out");
    *out = new vramfit_sampler{vramfit::Sampler(to_cpp(p))};
  });
}

void vramfit_sampler_free(vramfit_sampler *sampler) { delete sampler; }

vramfit_status vramfit_sampler_sample(vramfit_sampler *sampler, vramfit_context *ctx, int32_t i, vramfit_token *out) {
  return guarded([&] {
    require(sampler, "vramfit_sampler_sample", "sampler");
    require(out, "vramfit_sampler_sample", "out");
    *out = sampler->sampler.sample(logits_row(ctx, i, "vramfit_sampler_sample"));
  });
}

vramfit_status vramfit_sampler_sample_logits(vramfit_sampler *sampler, const float *logits, size_t n,
                                             vramfit_token *out) {
  return guarded([&] {
    require(sampler, "vramfit_sampler_sample_logits", "sampler");
    require(logits, "vramfit_sampler_sample_logits", "logits");
    require(out, "vramfit_sampler_sample_logits", "out");
    *out = sampler->sampler.sample(std::span<const float>(logits, n));
  });
}

void vramfit_sampler_accept(vramfit_sampler *sampler, vramfit_token token) {
  if (sampler) sampler->sampler.accept(token);
}

void vramfit_sampler_reset(vramfit_sampler *sampler) {
  if (sampler) sampler->sampler.reset();
}

// ---- planning ----

vramfit_status vramfit_plan_create(const char *path, const vramfit_model_params *model_params,
                                   const vramfit_context_params *context_params, vramfit_plan **out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(path, "vramfit_plan_create", "path");
    require(out, "vramfit_plan_create", "out");
    const vramfit_model_params mp = read_params(model_params, default_model_params(), "vramfit_model_params");
    const vramfit::gguf::File header = vramfit::gguf::File::open(path);
    const vramfit::ModelShape shape = vramfit::ModelShape::from_gguf(header);

    // The context's shape when given, else the one vramfit_model_load would plan for.
    vramfit::PlanRequest request;
    if (context_params) {
      const vramfit_context_params cp = read_params(context_params, default_context_params(), "vramfit_context_params");
      request.n_ctx = cp.n_ctx > 0 ? cp.n_ctx : shape.n_ctx_train;
      request.n_batch = cp.n_batch;
      request.kv_type = enum_in_range<vramfit::KvType>(cp.kv_type, 3, "vramfit_context_params.kv_type");
    } else {
      request.n_ctx = mp.n_ctx > 0 ? mp.n_ctx : std::min<uint32_t>(shape.n_ctx_train, 4096);
      request.n_batch = mp.n_batch;
      request.kv_type = enum_in_range<vramfit::KvType>(mp.kv_type, 3, "vramfit_model_params.kv_type");
    }
    static_assert(int(vramfit::KvType::f16) == VRAMFIT_KV_F16 && int(vramfit::KvType::q8_0) == VRAMFIT_KV_Q8_0);
    request.policy = to_cpp(mp.offload);
    request.n_contexts = mp.n_contexts;
    vramfit::probe_host_memory(request.machine);

    auto plan = std::make_unique<vramfit_plan>();
    plan->plan = vramfit::make_plan(shape, request);
    plan->json = plan->plan.to_json();
    plan->table = plan->plan.to_table();
    *out = plan.release();
  });
}

// ---- chat templates ----

vramfit_status vramfit_chat_apply(const vramfit_model *model, const vramfit_chat_params *p,
                                  const vramfit_chat_message *messages, size_t n_messages, char *buf, size_t capacity,
                                  size_t *n_out) {
  return guarded([&]() -> vramfit_status {
    require(n_out, "vramfit_chat_apply", "n_out");
    if (!messages && n_messages > 0) fail(ErrorCode::invalid_argument, "vramfit_chat_apply: messages is NULL but n_messages > 0");
    const vramfit_chat_params c = read_params(p, default_chat_params(), "vramfit_chat_params");
    if (!model && !c.chat_template)
      fail(ErrorCode::invalid_argument, "vramfit_chat_apply: no model and no p->chat_template: nothing to format with");
    std::vector<vramfit::ChatMessage> list;
    for (size_t i = 0; i < n_messages; ++i) {
      if (!messages[i].role || !messages[i].content) {
        std::string message = "vramfit_chat_apply: messages[";
        message += std::to_string(i);
        message += messages[i].role ? "] has a NULL content" : "] has a NULL role";
        fail(ErrorCode::invalid_argument, message);
      }
      list.push_back({messages[i].role, messages[i].content});
    }
    // The model's template and tokens, each replaced by the caller's where given.
    std::optional<vramfit::ChatTemplate> tmpl;
    if (model) tmpl = vramfit::ChatTemplate::from_model(model->model);
    if (c.chat_template || c.bos_token || c.eos_token) {
      const std::string source = c.chat_template ? c.chat_template : tmpl->source();
      const std::string bos = c.bos_token ? c.bos_token : tmpl ? tmpl->bos_token() : "";
      const std::string eos = c.eos_token ? c.eos_token : tmpl ? tmpl->eos_token() : "";
      tmpl.emplace(source, bos, eos);
    }
    if (c.date) tmpl->set_date(c.date);
    const std::string text = tmpl->apply(list, c.add_generation_prompt != 0, c.extra_json ? c.extra_json : "");
    return copy_text(text, buf, capacity, n_out, "vramfit_chat_apply");
  });
}

bool vramfit_model_has_chat_template(const vramfit_model *model) {
  if (!model) return false;
  try {
    return !vramfit::ChatTemplate::from_model(model->model).is_default();
  } catch (...) {
    return true;  // there is one, it just does not parse
  }
}

const char *vramfit_plan_json(const vramfit_plan *plan) { return plan ? plan->json.c_str() : nullptr; }
const char *vramfit_plan_table(const vramfit_plan *plan) { return plan ? plan->table.c_str() : nullptr; }
uint64_t vramfit_plan_device_bytes(const vramfit_plan *plan) { return plan ? plan->plan.device_total_bytes() : 0; }
uint64_t vramfit_plan_budget_bytes(const vramfit_plan *plan) { return plan ? plan->plan.budget_bytes : 0; }
void vramfit_plan_free(vramfit_plan *plan) { delete plan; }

// ---- for bindings ----

vramfit_status vramfit_parse_size(const char *text, uint64_t *out) {
  return guarded([&] {
    require(text, "vramfit_parse_size", "text");
    require(out, "vramfit_parse_size", "out");
    const std::optional<uint64_t> bytes = vramfit::parse_size(text);
    if (!bytes)
      fail(ErrorCode::invalid_argument, std::string("vramfit_parse_size: '") + text +
                                            "' is not a size (a number with an optional unit: 11.5GiB, 12GB, 800MiB, 4096)");
    *out = *bytes;
  });
}

vramfit_status vramfit_context_memory_json(const vramfit_context *ctx, char *buf, size_t capacity, size_t *n_out) {
  return guarded([&]() -> vramfit_status {
    require(ctx, "vramfit_context_memory_json", "ctx");
    require(n_out, "vramfit_context_memory_json", "n_out");
    return copy_text(memory_json(ctx->context.memory_report()), buf, capacity, n_out, "vramfit_context_memory_json");
  });
}

}  // extern "C"
