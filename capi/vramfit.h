/*
** vramfit.h — the stable C ABI of vramfit (C99).
**
** vramfit runs GGUF language models larger than the GPU under an exact VRAM byte budget. This
** header is the interface for C programs and for bindings (Python, C#, Go, Rust...).
**
** THE ABI PROMISE
**   Within one ABI major version (the SONAME: libvramfit.so.VRAMFIT_ABI_VERSION):
**   - no exported function is removed and no signature changes (capi/vramfit.symbols lists the
**     exported symbols; a test compares the built library with it);
**   - parameter structs only grow: new fields are appended, never inserted, removed or retyped.
**     Each starts with `uint32_t struct_size`, set by the vramfit_*_default_*() helpers to
**     the size the application was compiled with. The library reads (and writes) only the bytes
**     struct_size covers and uses its defaults for the rest, so an application built against an
**     older header keeps working with a newer library. (Maintainers: a growing struct must end
**     without tail padding, or a new field could land in an old struct's padding bytes; pad it
**     explicitly. capi/vramfit.cpp static_asserts this.) A larger struct_size (an application built
**     against a newer header) is accepted: the fields this library does not know are ignored.
**   The helpers vramfit_*_default_*() are static inline functions over the exported
**   vramfit_*_params_init(): a struct returned by value from the library would overflow an older
**   application's smaller variable, so the size must come from the application's compilation.
**
** ERRORS
**   Every call that can fail returns a vramfit_status. On failure, vramfit_last_error() returns
**   a message that names the problem and where (file offset, tensor name, parameter). No C++
**   exception, abort() or exit() ever crosses this interface; the library never prints (install
**   a log callback to see its messages).
**
** OWNERSHIP
**   Objects made by vramfit_X_create/_load are freed with vramfit_X_free (which accepts NULL).
**   Strings and arrays returned as `const` pointers belong to the object that returned them.
**
** THREAD-SAFETY
**   A model may be used from any number of threads at once (tokenize, create contexts...).
**   A context, a sampler or a plan is used by one thread at a time. The last-error message is
**   per thread.
*/
#ifndef VRAMFIT_H
#define VRAMFIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define VRAMFIT_CAPI
#else
#define VRAMFIT_CAPI __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- versions -------------------------------------------------------------------------------- */

/* The release (matches the CMake project version; checked at configure time). */
#define VRAMFIT_VERSION_MAJOR 0
#define VRAMFIT_VERSION_MINOR 1
#define VRAMFIT_VERSION_PATCH 0
/* The ABI major version: the SONAME suffix. It changes only when the promise above is broken. */
#define VRAMFIT_ABI_VERSION 1

/* The library's release as "MAJOR.MINOR.PATCH" (static string). May differ from the macros when
** the application was built against another header. Thread-safe. */
VRAMFIT_CAPI const char *vramfit_version(void);
/* The library's VRAMFIT_ABI_VERSION. Thread-safe. */
VRAMFIT_CAPI int32_t vramfit_abi_version(void);

/* ---- status and errors ----------------------------------------------------------------------- */

typedef enum vramfit_status {
  VRAMFIT_OK = 0,
  VRAMFIT_ERR_INVALID_ARGUMENT = 1, /* NULL where an object is needed, a value out of range */
  VRAMFIT_ERR_IO = 2,               /* the OS refused: open, read, mmap */
  VRAMFIT_ERR_FORMAT = 3,           /* not a valid GGUF file (truncated, corrupt) */
  VRAMFIT_ERR_UNSUPPORTED = 4,      /* valid, but not implemented (GGUF v1, an architecture) */
  VRAMFIT_ERR_OUT_OF_MEMORY = 5,    /* a host or device allocation failed */
  VRAMFIT_ERR_BUDGET_EXCEEDED = 6,  /* the VRAM budget cannot hold what is asked */
  VRAMFIT_ERR_CONTEXT_FULL = 7,     /* the KV cache has no room for the batch (nothing changed) */
  VRAMFIT_ERR_DEVICE = 8,           /* a CUDA / device runtime error */
  VRAMFIT_ERR_INTERNAL = 9,         /* a bug in vramfit: please report it with the message */
  VRAMFIT_ERR_BUFFER_TOO_SMALL = 10, /* an output buffer is too small; *n_out says what is needed */
  VRAMFIT_ERR_CANCELLED = 11         /* a callback asked to stop (the load progress callback) */
} vramfit_status;

/* The message of the last failed call on the calling thread ("" when none failed yet). Valid
** until the next failing call on that thread; successful calls leave it unchanged. Never NULL. */
VRAMFIT_CAPI const char *vramfit_last_error(void);
/* Short stable name of a status: "ok", "invalid_argument", "io", ... (static string). */
VRAMFIT_CAPI const char *vramfit_status_string(vramfit_status status);

/* ---- logging --------------------------------------------------------------------------------- */

typedef enum vramfit_log_level {
  VRAMFIT_LOG_DEBUG = 0,
  VRAMFIT_LOG_INFO = 1,
  VRAMFIT_LOG_WARN = 2,
  VRAMFIT_LOG_ERROR = 3
} vramfit_log_level;

/* Receives each log message (no trailing newline). Called from whichever thread logs. */
typedef void (*vramfit_log_callback)(vramfit_log_level level, const char *message, void *user_data);

/* Sets the process-wide log callback; NULL (the default) drops messages. Thread-safe. */
VRAMFIT_CAPI void vramfit_set_log_callback(vramfit_log_callback callback, void *user_data);

/* ---- handles and tokens ---------------------------------------------------------------------- */

typedef struct vramfit_model vramfit_model;
typedef struct vramfit_context vramfit_context;
typedef struct vramfit_sampler vramfit_sampler;
typedef struct vramfit_plan vramfit_plan;
typedef int32_t vramfit_token;

/* ---- parameters ------------------------------------------------------------------------------ */

typedef enum vramfit_offload_strategy {
  VRAMFIT_OFFLOAD_FASTEST = 0, /* maximize predicted tokens/s (default) */
  VRAMFIT_OFFLOAD_LAYERS = 1,  /* whole layers front to back, like llama.cpp's -ngl */
  VRAMFIT_OFFLOAD_MANUAL = 2   /* exactly what rules and n_gpu_layers say */
} vramfit_offload_strategy;

typedef enum vramfit_kv_placement {
  VRAMFIT_KV_FOLLOW_LAYER = 0, /* each layer's KV cache lives where its weights live (default) */
  VRAMFIT_KV_HOST = 1,
  VRAMFIT_KV_DEVICE = 2
} vramfit_kv_placement;

typedef enum vramfit_kv_type {
  VRAMFIT_KV_F16 = 0, /* default */
  VRAMFIT_KV_F32 = 1,
  VRAMFIT_KV_Q8_0 = 2
} vramfit_kv_type;

/* One tensor-placement rule (llama.cpp's --override-tensor). This struct is used in arrays and
** therefore never grows. */
typedef struct vramfit_offload_rule {
  const char *pattern; /* ECMAScript regex searched in the tensor name; the first match decides */
  bool to_device;      /* true: the GPU; false: host memory */
} vramfit_offload_rule;

/* Where the weights and KV cache go, under which VRAM budget. */
typedef struct vramfit_offload_policy {
  uint32_t struct_size;
  int32_t strategy;            /* vramfit_offload_strategy; default FASTEST */
  uint64_t vram_budget_bytes;  /* hard cap of device bytes; 0 (default) = free memory - reserve */
  uint64_t reserve_bytes;      /* kept free when vram_budget_bytes is 0; default 512 MiB */
  int32_t n_gpu_layers;        /* LAYERS/MANUAL: layer count (-1, the default: unset) */
  int32_t kv_placement;        /* vramfit_kv_placement; default FOLLOW_LAYER */
  const vramfit_offload_rule *rules; /* MANUAL: applied before n_gpu_layers; copied at use */
  size_t n_rules;
  uint32_t min_ctx;            /* > 0: the planner may shrink n_ctx down to this to fit */
  uint32_t reserved;           /* 0 */
  /* Appended fields: a struct_size that ends before one gives it the default below. */
  /* Mixture-of-experts models (llama.cpp's --cpu-moe / --n-cpu-moe N): every layer's expert group
  ** (ffn_{gate,up,down}_exps), or those of layers 0 .. n_cpu_moe-1, stay in host memory, whatever
  ** the strategy, n_gpu_layers or the rules say. No effect on dense models. */
  bool cpu_moe;                /* default false */
  uint8_t reserved2[3];        /* 0 */
  int32_t n_cpu_moe;           /* >= 0; default 0 */
} vramfit_offload_policy;

/* Receives the fraction of a model load done, rising from 0 to 1, on the loading thread: 0 once
** the file is validated, after each weight uploaded to the device (by bytes), 1 when loaded.
** Return false to cancel: vramfit_model_load then frees what it made and returns
** VRAMFIT_ERR_CANCELLED. */
typedef bool (*vramfit_progress_callback)(float fraction, void *user_data);

/* How to load a model. */
typedef struct vramfit_model_params {
  uint32_t struct_size;
  uint32_t reserved; /* 0 */
  /* "auto" (default, also when NULL), "cpu", "cuda[:N]" or "sim[:CAPACITY]" (host memory behind a
  ** byte capacity, to exercise a GPU/CPU split without a GPU). Copied by the callee. */
  const char *device;
  /* The offload policy (NULL, the default: vramfit_offload_default_policy()). Copied by the
  ** callee. A pointer, not a member, so that either struct can grow on its own. */
  const vramfit_offload_policy *offload;
  /* Appended fields: a struct_size that ends before one gives it the default below. */
  vramfit_progress_callback progress; /* NULL (default): no progress reports */
  void *progress_user_data;           /* passed to progress */
  /* The contexts the plan reserves device memory for (the budget holds weights, KV cache and
  ** scratch together). A context may ask for less, never more (VRAMFIT_ERR_BUDGET_EXCEEDED), and
  ** its n_ctx 0 then means this n_ctx. Unused on the CPU alone. */
  uint32_t n_ctx;   /* 0 (default) = the trained context length, at most 4096 */
  uint32_t n_batch; /* tokens per forward pass; default 512 */
  int32_t kv_type;  /* vramfit_kv_type; default F16 */
  uint32_t reserved2; /* 0; keeps the struct free of tail padding */
  /* Contexts of n_ctx that will exist at the same time (a server's parallel slots): the plan
  ** reserves a KV cache and scratch for each inside the budget; vramfit_model_load fails with
  ** VRAMFIT_ERR_BUDGET_EXCEEDED, its message saying how many fit, when it cannot hold them all.
  ** 0 is VRAMFIT_ERR_INVALID_ARGUMENT. */
  uint32_t n_contexts; /* default 1 */
  uint32_t reserved3;  /* 0 */
} vramfit_model_params;

/* How to size an inference context. */
typedef struct vramfit_context_params {
  uint32_t struct_size;
  uint32_t n_ctx;    /* tokens the KV cache holds; 0 (default) = the model's trained length */
  uint32_t n_batch;  /* tokens per forward pass while decoding a long batch; default 512 */
  int32_t n_threads; /* CPU threads; 0 (default) = all cores */
  int32_t kv_type;   /* vramfit_kv_type; default F16 */
} vramfit_context_params;

/* The sampler chain: penalties -> top-k -> typical-p -> top-p -> min-p -> temperature -> draw. */
typedef struct vramfit_sampler_params {
  uint32_t struct_size;
  float temperature;       /* <= 0: greedy (argmax); default 0.8 */
  int32_t top_k;           /* <= 0: off; default 40 */
  float top_p;             /* 1: off; default 0.95 */
  float min_p;             /* 0: off; default 0.05 */
  float typical_p;         /* 1: off (default) */
  float repeat_penalty;    /* 1: off (default); divides positive logits, multiplies negative */
  float frequency_penalty; /* 0: off (default) */
  float presence_penalty;  /* 0: off (default) */
  int32_t penalty_last_n;  /* recent tokens the penalties look at; default 64 */
  uint64_t seed;           /* same seed, same tokens; default 0xFFFFFFFF (an ordinary seed) */
} vramfit_sampler_params;

/* Fill *p with the library's defaults for the first struct_size bytes (the rest of *p is not
** touched) and set p->struct_size = struct_size. Use the inline helpers below instead, unless
** you bind the library from another language: then pass the size of your declaration.
** VRAMFIT_ERR_INVALID_ARGUMENT when p is NULL or struct_size < 4. Thread-safe. */
VRAMFIT_CAPI vramfit_status vramfit_model_params_init(vramfit_model_params *p, uint32_t struct_size);
VRAMFIT_CAPI vramfit_status vramfit_context_params_init(vramfit_context_params *p, uint32_t struct_size);
VRAMFIT_CAPI vramfit_status vramfit_offload_policy_init(vramfit_offload_policy *p, uint32_t struct_size);
VRAMFIT_CAPI vramfit_status vramfit_sampler_params_init(vramfit_sampler_params *p, uint32_t struct_size);

/* The defaults, sized for the header the application is compiled with. */
static inline vramfit_model_params vramfit_model_default_params(void) {
  vramfit_model_params p;
  vramfit_model_params_init(&p, (uint32_t)sizeof p);
  return p;
}
static inline vramfit_context_params vramfit_context_default_params(void) {
  vramfit_context_params p;
  vramfit_context_params_init(&p, (uint32_t)sizeof p);
  return p;
}
static inline vramfit_offload_policy vramfit_offload_default_policy(void) {
  vramfit_offload_policy p;
  vramfit_offload_policy_init(&p, (uint32_t)sizeof p);
  return p;
}
static inline vramfit_sampler_params vramfit_sampler_default_params(void) {
  vramfit_sampler_params p;
  vramfit_sampler_params_init(&p, (uint32_t)sizeof p);
  return p;
}

/* ---- models ---------------------------------------------------------------------------------- */

/* Memory-maps and validates the GGUF file at `path` (weights are used from the map, not copied)
** and stores a new model in *out (*out = NULL on failure). p may be NULL for the defaults.
** Errors: INVALID_ARGUMENT (NULL path/out, bad params), IO (cannot open), FORMAT (not GGUF, a
** missing tensor), UNSUPPORTED (architecture, tensor type, GGUF v1), BUDGET_EXCEEDED, DEVICE,
** CANCELLED (p->progress returned false). */
VRAMFIT_CAPI vramfit_status vramfit_model_load(const char *path, const vramfit_model_params *p,
                                               vramfit_model **out);
/* Releases the model handle (NULL is a no-op). Contexts made from it stay valid: they keep the
** loaded model alive until they are freed. */
VRAMFIT_CAPI void vramfit_model_free(vramfit_model *model);

/* Vocabulary size, trained context length, special tokens; 0 / -1 for a NULL model. */
VRAMFIT_CAPI int32_t vramfit_model_n_vocab(const vramfit_model *model);
VRAMFIT_CAPI int32_t vramfit_model_n_ctx_train(const vramfit_model *model);
VRAMFIT_CAPI vramfit_token vramfit_model_bos(const vramfit_model *model);
VRAMFIT_CAPI vramfit_token vramfit_model_eos(const vramfit_model *model);
/* True when `token` ends generation (EOS, EOT...). */
VRAMFIT_CAPI bool vramfit_model_is_eog(const vramfit_model *model, vramfit_token token);

/* ---- tokens and text ------------------------------------------------------------------------- */

/* Tokenizes `len` bytes of `text` (UTF-8; need not be NUL-terminated) into out[0..capacity).
** add_special prepends BOS when the vocabulary asks for it. *n_out receives the number of tokens
** (also on BUFFER_TOO_SMALL, where nothing is written: call again with that capacity; out may
** be NULL when capacity is 0). Errors: INVALID_ARGUMENT (NULL model/n_out, NULL text with
** len > 0), BUFFER_TOO_SMALL. Thread-safe. */
VRAMFIT_CAPI vramfit_status vramfit_tokenize(const vramfit_model *model, const char *text, size_t len,
                                             bool add_special, vramfit_token *out, size_t capacity,
                                             size_t *n_out);
/* Writes the text of tokens[0..n) to buf as a NUL-terminated string. *n_out receives its length
** without the NUL (also on BUFFER_TOO_SMALL, which needs capacity >= *n_out + 1; buf may be NULL
** when capacity is 0). A single token may be part of a UTF-8 character. Errors:
** INVALID_ARGUMENT (NULL model/n_out, NULL tokens with n > 0, a token outside the vocabulary),
** BUFFER_TOO_SMALL. Thread-safe. */
VRAMFIT_CAPI vramfit_status vramfit_detokenize(const vramfit_model *model, const vramfit_token *tokens,
                                               size_t n, char *buf, size_t capacity, size_t *n_out);

/* Writes the text of one token (its bytes as generated: possibly part of a UTF-8 character, with
** its leading space) to buf, NUL-terminated, for streaming output. *n_out, capacity and errors as
** vramfit_detokenize. Thread-safe. */
VRAMFIT_CAPI vramfit_status vramfit_token_to_piece(const vramfit_model *model, vramfit_token token, char *buf,
                                                   size_t capacity, size_t *n_out);

/* ---- contexts -------------------------------------------------------------------------------- */

/* Creates an inference context (KV cache, scratch, thread pool) over `model` in *out (*out = NULL
** on failure). p may be NULL for the defaults. Errors: INVALID_ARGUMENT, OUT_OF_MEMORY,
** BUDGET_EXCEEDED, DEVICE. Thread-safe with respect to the model. */
VRAMFIT_CAPI vramfit_status vramfit_context_create(vramfit_model *model, const vramfit_context_params *p,
                                                   vramfit_context **out);
/* Releases the context and everything it allocated (NULL is a no-op). */
VRAMFIT_CAPI void vramfit_context_free(vramfit_context *ctx);

/* Appends tokens[0..n) after what the context holds and runs the model over them. all_logits
** keeps the logits of every token of this batch (else only the last one's). Errors:
** INVALID_ARGUMENT (NULL, n == 0, a token outside the vocabulary), CONTEXT_FULL (nothing
** changed: vramfit_context_clear() or a larger n_ctx), OUT_OF_MEMORY, DEVICE. */
VRAMFIT_CAPI vramfit_status vramfit_decode(vramfit_context *ctx, const vramfit_token *tokens, size_t n,
                                           bool all_logits);
/* The n_vocab logits of token i of the last vramfit_decode() batch (i = -1: its last token),
** owned by the context and valid until its next decode/clear/free. NULL (with a message in
** vramfit_last_error()) when there is no such row: no decode yet, i out of range, or i not the
** last token of a batch decoded without all_logits. */
VRAMFIT_CAPI const float *vramfit_get_logits(vramfit_context *ctx, int32_t i);

/* Tokens in the KV cache, and its capacity; 0 for NULL. */
VRAMFIT_CAPI int32_t vramfit_context_n_past(const vramfit_context *ctx);
VRAMFIT_CAPI int32_t vramfit_context_n_ctx(const vramfit_context *ctx);
/* Forgets every token (the KV cache stays allocated). NULL is a no-op. */
VRAMFIT_CAPI void vramfit_context_clear(vramfit_context *ctx);

/* ---- reusing the KV cache (multi-turn chat, a server's sessions) ---- */

/* The token ids in the context's KV cache, in order: *n_out of them (= vramfit_context_n_past).
** Owned by the context and valid until its next decode/truncate/clear/free. NULL (with
** *n_out = 0 and a message in vramfit_last_error()) for a NULL ctx or n_out. Not thread-safe with
** respect to the context. */
VRAMFIT_CAPI const vramfit_token *vramfit_context_tokens(const vramfit_context *ctx, size_t *n_out);
/* Forgets every token after the first n: the next vramfit_decode() continues at position n. Cheap
** (nothing is recomputed or allocated); the last decode's logits are dropped. On a model with
** sliding-window layers (gpt-oss) whose window caches have moved on, a cut must keep at least
** vramfit_context_truncate_floor() tokens (or 0). Errors: INVALID_ARGUMENT (NULL, n outside
** [0, n_past], 0 < n < the floor), with nothing changed. */
VRAMFIT_CAPI vramfit_status vramfit_context_truncate(vramfit_context *ctx, int32_t n);
/* The smallest n > 0 vramfit_context_truncate() accepts now: 0 when every cut works (no sliding
** window, or none has moved yet). 0 for NULL. */
VRAMFIT_CAPI int32_t vramfit_context_truncate_floor(const vramfit_context *ctx);
/* Makes the KV cache hold exactly tokens[0..n) (e.g. the whole conversation, rendered and
** tokenized again each turn) and leaves the logits of its last token for vramfit_get_logits(ctx,
** -1): keeps the longest prefix the cache already holds that a cut may keep (else starts over)
** and decodes only the rest, always at least the last token. *n_reused (may be NULL) receives the
** number of tokens kept. The logits are bit-identical to a fresh context decoding the same chunks
** (on the CPU: the whole sequence at once). Errors: INVALID_ARGUMENT (NULL tokens, n == 0, a token
** outside the vocabulary), CONTEXT_FULL (n > n_ctx; nothing changed), OUT_OF_MEMORY, DEVICE. */
VRAMFIT_CAPI vramfit_status vramfit_decode_reusing_prefix(vramfit_context *ctx, const vramfit_token *tokens, size_t n,
                                                          int32_t *n_reused);

/* Bytes a context uses, summed over its devices. An output struct: set struct_size = sizeof
** before the call; the library writes only the bytes struct_size covers. */
typedef struct vramfit_memory_report {
  uint32_t struct_size;
  uint32_t n_devices;    /* memories the context uses (the host counts as one) */
  uint64_t weights;      /* weights read (on the host: views into the memory map) */
  uint64_t kv;           /* KV cache */
  uint64_t scratch;      /* activations, attention and logits buffers */
  uint64_t total;        /* weights + kv + scratch */
  uint64_t device_total; /* the part of total outside host memory (GPU, sim) */
} vramfit_memory_report;

/* Fills *out. Errors: INVALID_ARGUMENT (NULL, struct_size < 4). */
VRAMFIT_CAPI vramfit_status vramfit_context_memory(const vramfit_context *ctx, vramfit_memory_report *out);

/* ---- sampling -------------------------------------------------------------------------------- */

/* Creates a sampler (p NULL: defaults) in *out. Errors: INVALID_ARGUMENT naming the field. */
VRAMFIT_CAPI vramfit_status vramfit_sampler_create(const vramfit_sampler_params *p, vramfit_sampler **out);
VRAMFIT_CAPI void vramfit_sampler_free(vramfit_sampler *sampler);
/* Runs the chain on row i of the context's logits (as vramfit_get_logits) and stores the token
** in *out. Does not record it: call vramfit_sampler_accept(). Errors: INVALID_ARGUMENT (NULL, no
** such row, NaN logits). */
VRAMFIT_CAPI vramfit_status vramfit_sampler_sample(vramfit_sampler *sampler, vramfit_context *ctx,
                                                   int32_t i, vramfit_token *out);
/* The same on a caller's row of n logits (not modified). */
VRAMFIT_CAPI vramfit_status vramfit_sampler_sample_logits(vramfit_sampler *sampler, const float *logits,
                                                          size_t n, vramfit_token *out);
/* Records a token (prompt or generated) for the repetition penalties. NULL is a no-op. */
VRAMFIT_CAPI void vramfit_sampler_accept(vramfit_sampler *sampler, vramfit_token token);
/* Forgets recorded tokens and re-seeds: the next draws repeat the first ones. NULL: no-op. */
VRAMFIT_CAPI void vramfit_sampler_reset(vramfit_sampler *sampler);

/* ---- planning -------------------------------------------------------------------------------- */

/* Plans where each tensor and KV layer of the model at `path` would go under model_params'
** offload policy (NULL: defaults) for context_params' n_ctx, n_batch and kv_type (n_ctx 0 = the
** trained length), or when context_params is NULL for model_params' (as vramfit_model_load
** plans them). Reads only the file's header, so it works on
** header-only files and needs no GPU (the machine is a documented default profile plus this
** host's memory). Errors: INVALID_ARGUMENT, IO, FORMAT, BUDGET_EXCEEDED (the message names the
** smallest budget that works). Thread-safe. */
VRAMFIT_CAPI vramfit_status vramfit_plan_create(const char *path, const vramfit_model_params *model_params,
                                                const vramfit_context_params *context_params,
                                                vramfit_plan **out);
/* The plan as JSON (budget_bytes, device_total_bytes, host_total_bytes, n_ctx,
** predicted_pp_tok_s, predicted_tg_tok_s, by_category, bytes_read_per_token {device, host},
** expert_groups {device, total}, layers [{layer, attention, ffn, experts, kv}], tensors, ...),
** owned by the plan; NULL for a NULL plan. */
VRAMFIT_CAPI const char *vramfit_plan_json(const vramfit_plan *plan);
/* The plan as a human-readable table, owned by the plan; NULL for a NULL plan. */
VRAMFIT_CAPI const char *vramfit_plan_table(const vramfit_plan *plan);
/* Device bytes the plan uses (<= its budget), and the budget it keeps; 0 for NULL. */
VRAMFIT_CAPI uint64_t vramfit_plan_device_bytes(const vramfit_plan *plan);
VRAMFIT_CAPI uint64_t vramfit_plan_budget_bytes(const vramfit_plan *plan);
VRAMFIT_CAPI void vramfit_plan_free(vramfit_plan *plan);

/* ---- chat templates -------------------------------------------------------------------------- */

/* One turn of a conversation (OpenAI-style). Used in arrays, so this struct never grows. */
typedef struct vramfit_chat_message {
  const char *role;    /* "system", "user", "assistant", "tool" ... (UTF-8, NUL-terminated) */
  const char *content; /* UTF-8, NUL-terminated */
} vramfit_chat_message;

/* How vramfit_chat_apply renders. Every pointer is read during the call only. */
typedef struct vramfit_chat_params {
  uint32_t struct_size;
  int32_t add_generation_prompt; /* nonzero (default 1): end with the header of the assistant's turn */
  /* Jinja source of the template; NULL (default): the model's `tokenizer.chat_template`, or, for
  ** a model without one, the default ChatML format (see vramfit_model_has_chat_template). */
  const char *chat_template;
  /* The texts the template sees as `bos_token` / `eos_token`; NULL (default): the model's BOS /
  ** EOS token text (none without a model); "" leaves the variable undefined. */
  const char *bos_token;
  const char *eos_token;
  /* NULL (default) or a JSON object whose members become template variables, e.g.
  ** {"enable_thinking": false} for Qwen3. */
  const char *extra_json;
  /* "YYYY-MM-DD": what strftime_now() formats (that day, 00:00 UTC), for reproducible prompts;
  ** NULL (default): the local time now. */
  const char *date;
} vramfit_chat_params;

/* Fill *p with the defaults (see vramfit_model_params_init). Thread-safe. */
VRAMFIT_CAPI vramfit_status vramfit_chat_params_init(vramfit_chat_params *p, uint32_t struct_size);
static inline vramfit_chat_params vramfit_chat_default_params(void) {
  vramfit_chat_params p;
  vramfit_chat_params_init(&p, (uint32_t)sizeof p);
  return p;
}

/* Formats messages[0..n_messages) into the prompt text the model was trained on, by rendering a
** Jinja chat template as Hugging Face transformers' apply_chat_template does (variables
** `messages`, `add_generation_prompt`, `bos_token`, `eos_token`, p->extra_json's members;
** functions raise_exception() and strftime_now()). The template is p->chat_template, else the
** model's; model may be NULL when p->chat_template is set. p may be NULL for the defaults.
** The text is written to buf NUL-terminated; *n_out receives its length without the NUL (also on
** BUFFER_TOO_SMALL, which needs capacity >= *n_out + 1; buf may be NULL when capacity is 0: call
** once with capacity 0 to learn the size, at the cost of rendering twice). The text starts with
** the BOS text when the template writes it: tokenize it with add_special = false.
** Errors: INVALID_ARGUMENT (NULL n_out, no model and no template, a NULL role or content, bad
** extra_json or date, the template called raise_exception() — its message follows — or exceeded
** the engine's limits), FORMAT (a template syntax or type error; the message names the template
** line and the construct), UNSUPPORTED (a Jinja statement, filter or test vramfit does not
** implement), BUFFER_TOO_SMALL. Thread-safe with respect to the model. */
VRAMFIT_CAPI vramfit_status vramfit_chat_apply(const vramfit_model *model, const vramfit_chat_params *p,
                                               const vramfit_chat_message *messages, size_t n_messages, char *buf,
                                               size_t capacity, size_t *n_out);

/* True when the model's GGUF file carries a chat template (tokenizer.chat_template); false for a
** NULL model or a model without one, which vramfit_chat_apply formats as ChatML:
** "<|im_start|>ROLE\nCONTENT<|im_end|>\n" per message, then "<|im_start|>assistant\n". */
VRAMFIT_CAPI bool vramfit_model_has_chat_template(const vramfit_model *model);

/* ---- for bindings: chat prompts, sizes, memory by device --------------------------------------- */

/* As vramfit_tokenize, and parse_special recognizes the control tokens written in the text
** ("<s>", "<|im_start|>", "<|eot_id|>"...) as those tokens instead of spelling them out. A prompt
** made by vramfit_chat_apply needs it (with add_special = false); leave it off for text a user
** typed, so that it cannot forge a turn. User-defined tokens ("<think>") are matched either way,
** as llama.cpp does. *n_out, capacity and errors as vramfit_tokenize. Thread-safe. */
VRAMFIT_CAPI vramfit_status vramfit_tokenize_special(const vramfit_model *model, const char *text, size_t len,
                                                     bool add_special, bool parse_special, vramfit_token *out,
                                                     size_t capacity, size_t *n_out);

/* Parses a byte size as the CLI's --vram-budget takes it: a number with an optional unit, "11.5GiB",
** "12GB", "800MiB", "4096" (bytes); units b, k/kb, m/mb, g/gb, t/tb (powers of 1000) and kib, mib,
** gib, tib (powers of 1024), any letter case, no spaces. Stores the bytes (rounded to the nearest)
** in *out. Errors: INVALID_ARGUMENT (NULL text/out, not a size; the message quotes the text).
** Thread-safe. */
VRAMFIT_CAPI vramfit_status vramfit_parse_size(const char *text, uint64_t *out);

/* The context's memory per device and category as JSON, NUL-terminated in buf (*n_out, capacity
** and BUFFER_TOO_SMALL as vramfit_detokenize):
**   {"devices": [{"device": "cpu", "weights": N, "kv": N, "scratch": N, "staging": N,
**                 "overhead": N, "peak": N, "budget": N, "total": N}, ...], "total": N}
** in bytes; the host comes first, then the device of the model's plan (when it has one; "budget"
** is 0 on the host). On a device every figure is arena bytes, so they add up to what the device
** handed out. "staging" is the host copy of activations crossing devices; "overhead" the device
** runtime's fixed reservations. Errors: INVALID_ARGUMENT (NULL ctx/n_out), BUFFER_TOO_SMALL. */
VRAMFIT_CAPI vramfit_status vramfit_context_memory_json(const vramfit_context *ctx, char *buf, size_t capacity,
                                                        size_t *n_out);

#ifdef __cplusplus
}
#endif

#endif /* VRAMFIT_H */
