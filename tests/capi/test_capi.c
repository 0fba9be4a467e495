/* The C ABI, driven from C99 (built with -std=c99 -Wall -Wextra -pedantic -Werror) against the
** shared library: the whole core reproduces llama.cpp's greedy tokens for stories260K, every error
** path returns a status and a message, and older (smaller) parameter structs get defaults. Run
** under ASan/LeakSanitizer in CI (label `sanitize`), so the error paths are also checked for leaks. */
#define _POSIX_C_SOURCE 200809L /* mkstemp */

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vramfit.h"

static int g_checks = 0;
static int g_failures = 0;

#define CHECK(cond)                                                                              \
  do {                                                                                           \
    ++g_checks;                                                                                  \
    if (!(cond)) {                                                                               \
      ++g_failures;                                                                              \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, #cond,    \
              vramfit_last_error());                                                             \
    }                                                                                            \
  } while (0)

/* A failing call: the expected status and a message that says something. */
#define CHECK_FAILS(call, status)                                                                \
  do {                                                                                           \
    vramfit_status got_ = (call);                                                                \
    CHECK(got_ == (status));                                                                     \
    CHECK(strlen(vramfit_last_error()) > 0);                                                     \
  } while (0)

#define CHECK_OK(call) CHECK((call) == VRAMFIT_OK)

/* ---- test data ---- */

static char g_shared[2048]; /* leaves room in the 4096-byte path buffers */

static const char *shared_path(const char *relative, char *buf, size_t size) {
  snprintf(buf, size, "%s/%s", g_shared, relative);
  return buf;
}

static int file_exists(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f) fclose(f);
  return f != NULL;
}

/* The VFRL reference: tokens (prompt + greedy) and the logits of every position. */
typedef struct {
  uint32_t n_vocab, n_prompt, n_total;
  int32_t *tokens;
  float *logits;
} reference;

static int read_reference(const char *path, reference *ref) {
  FILE *f = fopen(path, "rb");
  char magic[4];
  uint32_t header[4];
  size_t n_logits;
  int ok;
  if (!f) return 0;
  ok = fread(magic, 1, 4, f) == 4 && memcmp(magic, "VFRL", 4) == 0 && fread(header, 4, 4, f) == 4 &&
       header[0] == 1;
  if (ok) {
    ref->n_vocab = header[1];
    ref->n_prompt = header[2];
    ref->n_total = header[3];
    n_logits = (size_t)ref->n_total * ref->n_vocab;
    ref->tokens = malloc(sizeof(int32_t) * ref->n_total);
    ref->logits = malloc(sizeof(float) * n_logits);
    ok = ref->tokens && ref->logits && fread(ref->tokens, 4, ref->n_total, f) == ref->n_total &&
         fread(ref->logits, 4, n_logits, f) == n_logits;
  }
  fclose(f);
  return ok;
}

static int32_t argmax(const float *x, int32_t n) {
  int32_t best = 0, i;
  for (i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

static double g_max_rms = 0; /* the worst row, printed for the record */

/* Relative RMS of the mean-centred difference (as the reference README compares logits). */
static double centred_relative_rms(const float *got, const float *want, int32_t n) {
  double mean_got = 0, mean_want = 0, diff = 0, norm = 0;
  int32_t i;
  for (i = 0; i < n; ++i) {
    mean_got += got[i];
    mean_want += want[i];
  }
  mean_got /= n;
  mean_want /= n;
  for (i = 0; i < n; ++i) {
    double a = got[i] - mean_got, b = want[i] - mean_want;
    diff += (a - b) * (a - b);
    norm += b * b;
  }
  diff = sqrt(diff / norm);
  if (diff > g_max_rms) g_max_rms = diff;
  return diff;
}

/* stories260K runs in f32 KV (as the reference was made) on one thread. */
static vramfit_context_params small_context(uint32_t n_ctx) {
  vramfit_context_params p = vramfit_context_default_params();
  p.n_ctx = n_ctx;
  p.n_threads = 1;
  p.kv_type = VRAMFIT_KV_F32;
  return p;
}

/* ---- the core against llama.cpp ---- */

static const char *kPrompt = "Once upon a time, there was a little";
/* Mean-centred relative RMS bar per logits row: the README measures 4e-7 for an exact float64
** engine; 1e-5 leaves room for f32 accumulation order, and is far below what a wrong kernel gives. */
static const double kLogitsBar = 1e-5;

static void test_core_reproduces_llama_cpp(vramfit_model *model, const reference *ref) {
  vramfit_token tokens[64];
  size_t n = 0;
  uint32_t i;
  int32_t n_vocab = vramfit_model_n_vocab(model);
  vramfit_context *ctx = NULL;
  vramfit_context_params cp = small_context(0);
  vramfit_sampler_params sp = vramfit_sampler_default_params();
  vramfit_sampler *greedy = NULL;
  char text[1024];
  size_t text_len = 0;

  CHECK(n_vocab == (int32_t)ref->n_vocab);
  CHECK_OK(vramfit_tokenize(model, kPrompt, strlen(kPrompt), true, tokens, 64, &n));
  CHECK(n == ref->n_prompt);
  for (i = 0; i < ref->n_prompt && i < n; ++i) CHECK(tokens[i] == ref->tokens[i]);

  CHECK_OK(vramfit_context_create(model, &cp, &ctx));
  if (!ctx) return;
  CHECK(vramfit_context_n_ctx(ctx) == vramfit_model_n_ctx_train(model)); /* n_ctx 0 = trained */
  sp.temperature = 0;
  CHECK_OK(vramfit_sampler_create(&sp, &greedy));

  /* Prompt in one batch, then greedy generation one token at a time. */
  CHECK_OK(vramfit_decode(ctx, ref->tokens, ref->n_prompt, false));
  for (i = ref->n_prompt; i < ref->n_total; ++i) {
    const float *logits = vramfit_get_logits(ctx, -1);
    vramfit_token next = -1;
    CHECK(logits != NULL);
    if (!logits) break;
    CHECK(centred_relative_rms(logits, ref->logits + (size_t)(i - 1) * ref->n_vocab, n_vocab) < kLogitsBar);
    CHECK_OK(vramfit_sampler_sample(greedy, ctx, -1, &next));
    CHECK(next == argmax(logits, n_vocab));
    CHECK(next == ref->tokens[i]);
    CHECK_OK(vramfit_decode(ctx, &next, 1, false));
  }
  CHECK(vramfit_context_n_past(ctx) == (int32_t)ref->n_total);

  /* The whole sequence as one batch with every position's logits (how the reference was made). */
  vramfit_context_clear(ctx);
  CHECK(vramfit_context_n_past(ctx) == 0);
  CHECK_OK(vramfit_decode(ctx, ref->tokens, ref->n_total, true));
  for (i = 0; i < ref->n_total; ++i) {
    const float *row = vramfit_get_logits(ctx, (int32_t)i);
    CHECK(row != NULL);
    if (!row) break;
    CHECK(centred_relative_rms(row, ref->logits + (size_t)i * ref->n_vocab, n_vocab) < kLogitsBar);
    if (i + 1 >= ref->n_prompt && i + 1 < ref->n_total) CHECK(argmax(row, n_vocab) == ref->tokens[i + 1]);
  }
  CHECK(vramfit_get_logits(ctx, (int32_t)ref->n_total) == NULL);
  CHECK(strlen(vramfit_last_error()) > 0);

  /* The generated text reads as a story. */
  CHECK_OK(vramfit_detokenize(model, ref->tokens + ref->n_prompt, ref->n_total - ref->n_prompt, text,
                              sizeof text, &text_len));
  CHECK(text_len > 20 && strlen(text) == text_len);
  printf("greedy continuation: \"%s", kPrompt);
  for (i = ref->n_prompt; i < ref->n_total; ++i) { /* pieces keep their leading spaces */
    char piece[64];
    size_t piece_len = 0;
    CHECK_OK(vramfit_token_to_piece(model, ref->tokens[i], piece, sizeof piece, &piece_len));
    CHECK(piece_len > 0 && strstr(text, piece[0] == ' ' ? piece + 1 : piece) != NULL);
    printf("%s", piece);
  }
  printf("\"\n");
  CHECK_FAILS(vramfit_token_to_piece(model, -1, text, sizeof text, &text_len), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_detokenize(model, ref->tokens, ref->n_total, text, 4, &text_len), VRAMFIT_ERR_BUFFER_TOO_SMALL);
  CHECK(text_len > 4);

  vramfit_sampler_free(greedy);
  vramfit_context_free(ctx);
}

/* ---- reusing the KV cache: the tokens it holds, cuts, a conversation decoded again ---- */

static void test_prefix_reuse(vramfit_model *model, const reference *ref) {
  const int32_t n_vocab = vramfit_model_n_vocab(model);
  vramfit_context_params cp = small_context(64);
  vramfit_context *ctx = NULL, *fresh = NULL;
  const vramfit_token *held = NULL;
  const float *logits = NULL;
  float *want = NULL;
  size_t n_held = 0, i;
  int32_t n_reused = -1;

  CHECK(ref->n_total <= 64);
  CHECK_OK(vramfit_context_create(model, &cp, &ctx));
  CHECK_OK(vramfit_context_create(model, &cp, &fresh));
  want = (float *)malloc((size_t)n_vocab * sizeof *want);
  if (!ctx || !fresh || !want) goto done;

  /* Turn 1 held the prompt; turn 2 is the whole sequence: only what follows the prompt is decoded. */
  CHECK_OK(vramfit_decode(ctx, ref->tokens, ref->n_prompt, false));
  held = vramfit_context_tokens(ctx, &n_held);
  CHECK(held != NULL && n_held == ref->n_prompt);
  for (i = 0; held && i < n_held; ++i) CHECK(held[i] == ref->tokens[i]);
  CHECK_OK(vramfit_decode_reusing_prefix(ctx, ref->tokens, ref->n_total, &n_reused));
  CHECK(n_reused == (int32_t)ref->n_prompt);
  CHECK(vramfit_context_n_past(ctx) == (int32_t)ref->n_total);
  logits = vramfit_get_logits(ctx, -1);
  CHECK(logits != NULL);
  if (!logits) goto done;
  CHECK(centred_relative_rms(logits, ref->logits + (size_t)(ref->n_total - 1) * ref->n_vocab, n_vocab) < kLogitsBar);
  /* Bit-identical to a fresh context decoding the same chunks. */
  memcpy(want, logits, (size_t)n_vocab * sizeof *want);
  CHECK_OK(vramfit_decode(fresh, ref->tokens, ref->n_prompt, false));
  CHECK_OK(vramfit_decode(fresh, ref->tokens + ref->n_prompt, ref->n_total - ref->n_prompt, false));
  logits = vramfit_get_logits(fresh, -1);
  CHECK(logits != NULL && memcmp(logits, want, (size_t)n_vocab * sizeof *want) == 0);

  /* Cuts: back to the prompt (its logits are gone), never past the ends. */
  CHECK(vramfit_context_truncate_floor(ctx) == 0); /* llama: no sliding window */
  CHECK_OK(vramfit_context_truncate(ctx, (int32_t)ref->n_prompt));
  CHECK(vramfit_context_n_past(ctx) == (int32_t)ref->n_prompt);
  CHECK(vramfit_get_logits(ctx, -1) == NULL);
  CHECK_FAILS(vramfit_context_truncate(ctx, -1), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_context_truncate(ctx, (int32_t)ref->n_prompt + 1), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vramfit_last_error(), "truncate") != NULL);
  CHECK(vramfit_context_n_past(ctx) == (int32_t)ref->n_prompt);

  /* Errors change nothing. */
  CHECK_FAILS(vramfit_decode_reusing_prefix(ctx, NULL, 3, NULL), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_decode_reusing_prefix(ctx, ref->tokens, 0, NULL), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_decode_reusing_prefix(ctx, ref->tokens, 65, NULL), VRAMFIT_ERR_CONTEXT_FULL);
  CHECK(vramfit_context_n_past(ctx) == (int32_t)ref->n_prompt);
  CHECK_FAILS(vramfit_context_truncate(NULL, 0), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK(vramfit_context_tokens(NULL, &n_held) == NULL && n_held == 0);
  CHECK(vramfit_context_truncate_floor(NULL) == 0);

done:
  free(want);
  vramfit_context_free(fresh);
  vramfit_context_free(ctx);
}

/* ---- struct_size: an application built against an older, smaller header ---- */

/* The first fields of two structs, as an older vramfit.h could have declared them. */
typedef struct {
  uint32_t struct_size;
  uint32_t n_ctx;
} old_context_params;
typedef struct {
  uint32_t struct_size;
  float temperature;
} old_sampler_params;

static void test_older_struct_sizes(vramfit_model *model) {
  /* The library reads only the bytes struct_size covers: the 0xFF bytes behind would be invalid
  ** values (n_batch 2^32-1, kv_type -1, top_p NaN) if it read them. */
  union {
    vramfit_context_params params;
    unsigned char bytes[sizeof(vramfit_context_params) + 16];
  } ctx_buf;
  union {
    vramfit_sampler_params params;
    unsigned char bytes[sizeof(vramfit_sampler_params) + 16];
  } sampler_buf;
  old_context_params old_ctx = {sizeof(old_context_params), 32};
  old_sampler_params old_sampler = {sizeof(old_sampler_params), 0.0f};
  vramfit_context_params full = vramfit_context_default_params();
  vramfit_context *a = NULL, *b = NULL;
  vramfit_memory_report ra, rb;
  vramfit_sampler *sampler = NULL;
  vramfit_sampler_params partial;
  const float logits[4] = {0.5f, 2.0f, -1.0f, 1.0f};
  vramfit_token token = -1;

  memset(ctx_buf.bytes, 0xFF, sizeof ctx_buf.bytes);
  memcpy(ctx_buf.bytes, &old_ctx, sizeof old_ctx);
  CHECK_OK(vramfit_context_create(model, &ctx_buf.params, &a));
  full.n_ctx = 32;
  CHECK_OK(vramfit_context_create(model, &full, &b));
  if (a && b) {
    CHECK(vramfit_context_n_ctx(a) == 32);
    memset(&ra, 0, sizeof ra);
    memset(&rb, 0, sizeof rb);
    ra.struct_size = rb.struct_size = sizeof ra;
    CHECK_OK(vramfit_context_memory(a, &ra));
    CHECK_OK(vramfit_context_memory(b, &rb));
    CHECK(ra.kv == rb.kv && ra.scratch == rb.scratch && ra.total == rb.total); /* defaults: f16 KV */
  }
  vramfit_context_free(a);
  vramfit_context_free(b);

  memset(sampler_buf.bytes, 0xFF, sizeof sampler_buf.bytes);
  memcpy(sampler_buf.bytes, &old_sampler, sizeof old_sampler);
  CHECK_OK(vramfit_sampler_create(&sampler_buf.params, &sampler));
  CHECK_OK(vramfit_sampler_sample_logits(sampler, logits, 4, &token));
  CHECK(token == 1); /* temperature 0 from the old struct: greedy */
  vramfit_sampler_free(sampler);

  /* Initialising a smaller struct writes its bytes only. */
  memset(&partial, 0xAB, sizeof partial);
  CHECK_OK(vramfit_sampler_params_init(&partial, (uint32_t)offsetof(vramfit_sampler_params, top_p)));
  CHECK(partial.struct_size == offsetof(vramfit_sampler_params, top_p));
  CHECK(partial.temperature == 0.8f && partial.top_k == 40);
  CHECK(((const unsigned char *)&partial)[offsetof(vramfit_sampler_params, top_p)] == 0xAB);
  CHECK(((const unsigned char *)&partial)[sizeof partial - 1] == 0xAB);
}

/* ---- every error path: a status, a message, nothing leaked (LeakSanitizer checks that) ---- */

static void test_error_paths(vramfit_model *model) {
  char path[4096];
  char bad[] = "/tmp/vramfit-capi-XXXXXX";
  vramfit_model *m = (vramfit_model *)&m; /* must be reset to NULL on failure */
  vramfit_context *ctx = NULL;
  vramfit_plan *plan = NULL;
  vramfit_sampler *sampler = NULL;
  vramfit_context_params cp = small_context(16);
  vramfit_model_params mp = vramfit_model_default_params();
  vramfit_offload_policy policy = vramfit_offload_default_policy();
  vramfit_token tokens[17] = {0};
  vramfit_token out = 0;
  size_t n = 0;
  int fd;

  /* Missing file: I/O, and the message names the path. */
  CHECK_FAILS(vramfit_model_load("/nonexistent/no-such-model.gguf", NULL, &m), VRAMFIT_ERR_IO);
  CHECK(m == NULL);
  CHECK(strstr(vramfit_last_error(), "no-such-model.gguf") != NULL);

  /* Not GGUF, and an obsolete GGUF v1. */
  fd = mkstemp(bad);
  CHECK(fd >= 0);
  if (fd >= 0) {
    static const char junk[] = "GGUF\x03\0\0\0 this is not a model, only a few bytes of junk";
    CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
    close(fd);
    CHECK_FAILS(vramfit_model_load(bad, NULL, &m), VRAMFIT_ERR_FORMAT);
    CHECK_FAILS(vramfit_plan_create(bad, NULL, NULL, &plan), VRAMFIT_ERR_FORMAT);
    unlink(bad);
  }
  CHECK_FAILS(vramfit_model_load(shared_path("models/edge-gguf-v1-stories260K.gguf", path, sizeof path), NULL, &m),
              VRAMFIT_ERR_UNSUPPORTED);
  CHECK(m == NULL);

  /* A budget too small for anything. */
  policy.vram_budget_bytes = 1;
  mp.offload = &policy;
  CHECK_FAILS(vramfit_plan_create(shared_path("models/header-only/llama2-70b-Q4_K_M.gguf", path, sizeof path), &mp,
                                  NULL, &plan),
              VRAMFIT_ERR_BUDGET_EXCEEDED);
  CHECK(plan == NULL);

  /* Context full: nothing changes, and what fits still works. */
  CHECK_OK(vramfit_context_create(model, &cp, &ctx));
  if (ctx) {
    CHECK_FAILS(vramfit_decode(ctx, tokens, 17, false), VRAMFIT_ERR_CONTEXT_FULL);
    CHECK(vramfit_context_n_past(ctx) == 0);
    CHECK_OK(vramfit_decode(ctx, tokens, 16, false));
    CHECK_FAILS(vramfit_decode(ctx, tokens, 1, false), VRAMFIT_ERR_CONTEXT_FULL);
    CHECK(vramfit_context_n_past(ctx) == 16);
    tokens[0] = 1 << 20;
    vramfit_context_clear(ctx);
    CHECK_FAILS(vramfit_decode(ctx, tokens, 1, false), VRAMFIT_ERR_INVALID_ARGUMENT); /* not in the vocab */
    CHECK_FAILS(vramfit_decode(ctx, tokens, 0, false), VRAMFIT_ERR_INVALID_ARGUMENT);
  }
  vramfit_context_free(ctx);
  ctx = NULL;

  /* Bad parameters. */
  cp.kv_type = 7;
  CHECK_FAILS(vramfit_context_create(model, &cp, &ctx), VRAMFIT_ERR_INVALID_ARGUMENT);
  cp = small_context(16);
  cp.struct_size = 0;
  CHECK_FAILS(vramfit_context_create(model, &cp, &ctx), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK(ctx == NULL);
  {
    vramfit_sampler_params sp = vramfit_sampler_default_params();
    const float nan_logits[2] = {0.0f, NAN};
    sp.top_p = 0;
    CHECK_FAILS(vramfit_sampler_create(&sp, &sampler), VRAMFIT_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vramfit_last_error(), "top_p") != NULL);
    CHECK_OK(vramfit_sampler_create(NULL, &sampler));
    CHECK_FAILS(vramfit_sampler_sample_logits(sampler, nan_logits, 2, &out), VRAMFIT_ERR_INVALID_ARGUMENT);
    vramfit_sampler_free(sampler);
  }
  CHECK_FAILS(vramfit_tokenize(model, kPrompt, strlen(kPrompt), true, tokens, 2, &n), VRAMFIT_ERR_BUFFER_TOO_SMALL);
  CHECK(n == 10);

  /* NULL arguments. */
  CHECK_FAILS(vramfit_model_load(NULL, NULL, &m), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_model_load(path, NULL, NULL), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_tokenize(NULL, "a", 1, true, tokens, 17, &n), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_tokenize(model, NULL, 1, true, tokens, 17, &n), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_tokenize(model, "a", 1, true, tokens, 17, NULL), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_detokenize(NULL, tokens, 1, NULL, 0, &n), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_context_create(NULL, NULL, &ctx), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_context_create(model, NULL, NULL), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_decode(NULL, tokens, 1, false), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK(vramfit_get_logits(NULL, -1) == NULL);
  CHECK_FAILS(vramfit_context_memory(NULL, NULL), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_sampler_create(NULL, NULL), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_sampler_sample(NULL, NULL, -1, &out), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_sampler_sample_logits(NULL, NULL, 0, &out), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_plan_create(NULL, NULL, NULL, &plan), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_model_params_init(NULL, sizeof mp), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_offload_policy_init(&policy, 0), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK(vramfit_model_n_vocab(NULL) == 0);
  CHECK(vramfit_plan_json(NULL) == NULL);
  vramfit_model_free(NULL);
  vramfit_context_free(NULL);
  vramfit_sampler_free(NULL);
  vramfit_plan_free(NULL);
  vramfit_context_clear(NULL);
  vramfit_sampler_accept(NULL, 1);
  vramfit_sampler_reset(NULL);

  /* Fresh context: no logits yet. */
  cp = small_context(16);
  CHECK_OK(vramfit_context_create(model, &cp, &ctx));
  CHECK(vramfit_get_logits(ctx, -1) == NULL);
  vramfit_context_free(ctx);
}

/* ---- planning from a header-only 70B file ---- */

static void test_plan(void) {
  char path[4096];
  vramfit_plan *plan = NULL;
  vramfit_model_params mp = vramfit_model_default_params();
  vramfit_offload_policy policy = vramfit_offload_default_policy();
  vramfit_context_params cp = vramfit_context_default_params();
  policy.vram_budget_bytes = (uint64_t)12 << 30;
  mp.offload = &policy;
  cp.n_ctx = 4096;
  CHECK_OK(vramfit_plan_create(shared_path("models/header-only/llama2-70b-Q4_K_M.gguf", path, sizeof path), &mp, &cp,
                               &plan));
  if (!plan) return;
  CHECK(vramfit_plan_budget_bytes(plan) == (uint64_t)12 << 30);
  CHECK(vramfit_plan_device_bytes(plan) > 0);
  CHECK(vramfit_plan_device_bytes(plan) <= vramfit_plan_budget_bytes(plan));
  CHECK(strstr(vramfit_plan_json(plan), "\"device_total_bytes\"") != NULL);
  CHECK(strstr(vramfit_plan_json(plan), "\"tensors\"") != NULL);
  CHECK(strlen(vramfit_plan_table(plan)) > 0);
  vramfit_plan_free(plan);
}

/* ---- mixture of experts: cpu_moe / n_cpu_moe on Qwen3-30B-A3B's header ---- */

/* The plan's JSON "expert_groups": {"device": N, ...}; -1 when absent. */
static long device_expert_groups(const vramfit_plan *plan) {
  const char *at = plan ? strstr(vramfit_plan_json(plan), "\"expert_groups\": {\"device\": ") : NULL;
  return at ? strtol(at + strlen("\"expert_groups\": {\"device\": "), NULL, 10) : -1;
}

static long plan_expert_groups(const char *path, const vramfit_offload_policy *policy) {
  vramfit_plan *plan = NULL;
  vramfit_model_params mp = vramfit_model_default_params();
  vramfit_context_params cp = vramfit_context_default_params();
  long groups;
  mp.offload = policy;
  cp.n_ctx = 4096;
  CHECK_OK(vramfit_plan_create(path, &mp, &cp, &plan));
  groups = device_expert_groups(plan);
  vramfit_plan_free(plan);
  return groups;
}

static void test_plan_moe(void) {
  char path[4096];
  vramfit_plan *plan = NULL;
  vramfit_model_params mp = vramfit_model_default_params();
  vramfit_offload_policy policy = vramfit_offload_default_policy();
  union {
    vramfit_offload_policy policy;
    unsigned char bytes[sizeof(vramfit_offload_policy)];
  } old;
  CHECK(!policy.cpu_moe && policy.n_cpu_moe == 0);
  shared_path("models/header-only/qwen3-30b-a3b-Q4_K_M.gguf", path, sizeof path);
  policy.vram_budget_bytes = (uint64_t)12 << 30;
  CHECK(plan_expert_groups(path, &policy) > 0); /* fastest fills what is left with experts */
  policy.cpu_moe = true;
  CHECK(plan_expert_groups(path, &policy) == 0);
  policy.cpu_moe = false;
  policy.strategy = VRAMFIT_OFFLOAD_LAYERS;
  policy.n_gpu_layers = 49; /* all 48 layers and the head... */
  policy.n_cpu_moe = 46;    /* ...but the experts of layers 0-45 */
  CHECK(plan_expert_groups(path, &policy) == 2);
  policy.n_cpu_moe = -1;
  mp.offload = &policy;
  CHECK_FAILS(vramfit_plan_create(path, &mp, NULL, &plan), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vramfit_last_error(), "n_cpu_moe") != NULL);
  CHECK(plan == NULL);
  /* An application built before the MoE fields: struct_size ends before them, and the 0xFF bytes
  ** behind (cpu_moe "true", n_cpu_moe -1) are not read. */
  policy = vramfit_offload_default_policy();
  policy.vram_budget_bytes = (uint64_t)12 << 30;
  memset(old.bytes, 0xFF, sizeof old.bytes);
  memcpy(old.bytes, &policy, offsetof(vramfit_offload_policy, cpu_moe));
  old.policy.struct_size = (uint32_t)offsetof(vramfit_offload_policy, cpu_moe);
  CHECK(plan_expert_groups(path, &old.policy) == plan_expert_groups(path, &policy));
}

/* ---- a simulated device: the split runs under the budget, with the CPU's logits ---- */

/* vramfit_context_memory_json lists each memory of the report and the same total. */
static void check_memory_json(const vramfit_context *ctx, const vramfit_memory_report *report) {
  char json[2048], expected_total[64];
  const char *at;
  size_t n = 0;
  uint32_t n_devices = 0;
  CHECK_FAILS(vramfit_context_memory_json(ctx, NULL, 0, &n), VRAMFIT_ERR_BUFFER_TOO_SMALL);
  CHECK(n > 0 && n < sizeof json);
  CHECK_FAILS(vramfit_context_memory_json(ctx, json, n, &n), VRAMFIT_ERR_BUFFER_TOO_SMALL);
  CHECK_OK(vramfit_context_memory_json(ctx, json, sizeof json, &n));
  CHECK(n == strlen(json));
  CHECK(strncmp(json, "{\"devices\": [{\"device\": \"cpu\", \"weights\": ", 42) == 0);
  for (at = strstr(json, "\"device\": "); at; at = strstr(at + 1, "\"device\": ")) ++n_devices;
  CHECK(n_devices == report->n_devices);
  snprintf(expected_total, sizeof expected_total, "], \"total\": %llu}", (unsigned long long)report->total);
  CHECK(n >= strlen(expected_total) && strcmp(json + n - strlen(expected_total), expected_total) == 0);
  CHECK_FAILS(vramfit_context_memory_json(NULL, json, sizeof json, &n), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_context_memory_json(ctx, json, sizeof json, NULL), VRAMFIT_ERR_INVALID_ARGUMENT);
}

static void last_logits(vramfit_model *model, const vramfit_token *tokens, size_t n, float *out, int32_t n_vocab,
                        vramfit_memory_report *report) {
  vramfit_context *ctx = NULL;
  vramfit_context_params cp = vramfit_context_default_params();
  const float *logits;
  cp.n_ctx = 64;
  cp.n_threads = 1;
  CHECK_OK(vramfit_context_create(model, &cp, &ctx));
  if (!ctx) return;
  CHECK_OK(vramfit_decode(ctx, tokens, n, false));
  logits = vramfit_get_logits(ctx, -1);
  CHECK(logits != NULL);
  if (logits) memcpy(out, logits, (size_t)n_vocab * sizeof *out);
  report->struct_size = sizeof *report;
  CHECK_OK(vramfit_context_memory(ctx, report));
  check_memory_json(ctx, report);
  vramfit_context_free(ctx);
}

static void test_sim_device(void) {
  char path[4096];
  vramfit_model *cpu = NULL, *sim = NULL, *none = NULL;
  vramfit_model_params mp = vramfit_model_default_params();
  vramfit_offload_policy policy = vramfit_offload_default_policy();
  vramfit_memory_report cpu_report, sim_report;
  vramfit_token tokens[32];
  size_t n = 0;
  int32_t n_vocab;
  float *expected, *got;
  const uint64_t budget = (uint64_t)48 << 20;

  shared_path("models/synth-Q4_K_M.gguf", path, sizeof path);
  mp.device = "cpu";
  CHECK_OK(vramfit_model_load(path, &mp, &cpu));
  policy.strategy = VRAMFIT_OFFLOAD_LAYERS;
  policy.vram_budget_bytes = budget;
  mp.device = "sim:64MiB";
  mp.offload = &policy;
  CHECK_OK(vramfit_model_load(path, &mp, &sim));
  if (!cpu || !sim) {
    vramfit_model_free(cpu);
    vramfit_model_free(sim);
    return;
  }
  CHECK_OK(vramfit_tokenize(cpu, kPrompt, strlen(kPrompt), true, tokens, 32, &n));
  n_vocab = vramfit_model_n_vocab(cpu);
  expected = (float *)calloc((size_t)n_vocab, sizeof *expected);
  got = (float *)calloc((size_t)n_vocab, sizeof *got);
  last_logits(cpu, tokens, n, expected, n_vocab, &cpu_report);
  last_logits(sim, tokens, n, got, n_vocab, &sim_report);
  CHECK(memcmp(expected, got, (size_t)n_vocab * sizeof *got) == 0); /* the CPU's kernels either way */
  CHECK(cpu_report.n_devices == 1 && cpu_report.device_total == 0);
  CHECK(sim_report.n_devices == 2);
  CHECK(sim_report.device_total > 0 && sim_report.device_total <= budget);
  free(expected);
  free(got);

  /* Too small a budget, and a budget beyond the device: refused with a status and a message. */
  policy.vram_budget_bytes = 4096;
  CHECK_FAILS(vramfit_model_load(path, &mp, &none), VRAMFIT_ERR_BUDGET_EXCEEDED);
  CHECK(strstr(vramfit_last_error(), "smallest budget") != NULL);
  policy.vram_budget_bytes = (uint64_t)128 << 20;
  CHECK_FAILS(vramfit_model_load(path, &mp, &none), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK(none == NULL);
  vramfit_model_free(cpu);
  vramfit_model_free(sim);
}

/* ---- model load progress: called, rising, ends at 1; false cancels and leaks nothing ---- */

typedef struct {
  float seen[512];
  int n;
  int cancel_at; /* the call that returns false; -1: never */
} progress_log;

static bool record_progress(float fraction, void *user_data) {
  progress_log *log = (progress_log *)user_data;
  if (log->n < (int)(sizeof log->seen / sizeof log->seen[0])) log->seen[log->n] = fraction;
  return log->n++ != log->cancel_at;
}

/* A device destroyed with allocations still live says so in a warning. */
static void count_device_leaks(vramfit_log_level level, const char *message, void *n_leaks) {
  (void)level;
  if (strstr(message, "live allocations")) ++*(int *)n_leaks;
}

static int rises_from_0_to_1(const progress_log *log) {
  int i;
  if (log->n < 2 || log->seen[0] != 0.0f || log->seen[log->n - 1] != 1.0f) return 0;
  for (i = 1; i < log->n; ++i)
    if (log->seen[i] < log->seen[i - 1]) return 0;
  return 1;
}

static void test_load_progress(void) {
  char path[4096];
  vramfit_model *model = (vramfit_model *)&model;
  vramfit_model_params mp = vramfit_model_default_params();
  vramfit_offload_policy policy = vramfit_offload_default_policy();
  progress_log log;
  int n_device_calls, cancel_at, n_leaks = 0;

  shared_path("models/synth-Q4_K_M.gguf", path, sizeof path);
  memset(&log, 0, sizeof log);
  log.cancel_at = -1;
  mp.device = "cpu";
  mp.progress = record_progress;
  mp.progress_user_data = &log;
  CHECK_OK(vramfit_model_load(path, &mp, &model)); /* the CPU alone: the two ends */
  CHECK(log.n == 2 && rises_from_0_to_1(&log));
  vramfit_model_free(model);

  memset(&log, 0, sizeof log);
  log.cancel_at = -1;
  policy.strategy = VRAMFIT_OFFLOAD_LAYERS;
  mp.device = "sim:64MiB";
  mp.offload = &policy;
  CHECK_OK(vramfit_model_load(path, &mp, &model)); /* a device: once per uploaded weight too */
  CHECK(log.n > 4 && rises_from_0_to_1(&log));
  vramfit_model_free(model);
  n_device_calls = log.n;

  /* Cancelled at the start, half-way through the uploads and at the end: a status, a message,
  ** *out = NULL, no call after the cancel, and nothing leaked: no device allocation (the device
  ** would warn) nor host memory (LeakSanitizer). */
  vramfit_set_log_callback(count_device_leaks, &n_leaks);
  for (cancel_at = 0; cancel_at < n_device_calls; cancel_at += n_device_calls / 2 > 0 ? n_device_calls / 2 : 1) {
    memset(&log, 0, sizeof log);
    log.cancel_at = cancel_at;
    model = (vramfit_model *)&model;
    CHECK_FAILS(vramfit_model_load(path, &mp, &model), VRAMFIT_ERR_CANCELLED);
    CHECK(model == NULL);
    CHECK(log.n == cancel_at + 1);
    CHECK(strstr(vramfit_last_error(), "cancelled") != NULL);
  }
  vramfit_set_log_callback(NULL, NULL);
  CHECK(n_leaks == 0);
  CHECK(strcmp(vramfit_status_string(VRAMFIT_ERR_CANCELLED), "cancelled") == 0);
}

/* ---- the plan's shape from vramfit_model_params, and its defaults for an older struct ---- */

static void test_model_params_plan_shape(void) {
  char path[4096];
  char needle[64];
  vramfit_model *model = NULL;
  vramfit_context *ctx = NULL;
  vramfit_plan *plan = NULL;
  vramfit_offload_policy policy = vramfit_offload_default_policy();
  vramfit_model_params mp = vramfit_model_default_params();
  vramfit_context_params cp = vramfit_context_default_params();
  union {
    vramfit_model_params params;
    unsigned char bytes[sizeof(vramfit_model_params) + 16];
  } old;
  uint32_t default_n_ctx;

  shared_path("models/synth-Q4_K_M.gguf", path, sizeof path);
  CHECK(mp.n_ctx == 0 && mp.n_batch == 512 && mp.kv_type == VRAMFIT_KV_F16 && mp.progress == NULL);
  policy.strategy = VRAMFIT_OFFLOAD_LAYERS;

  /* An application built before the fields existed: struct_size ends before them and the 0xFF
  ** bytes behind (a wild callback, n_ctx 2^32-1, kv_type -1) are never read. */
  memset(old.bytes, 0xFF, sizeof old.bytes);
  memcpy(old.bytes, &mp, offsetof(vramfit_model_params, progress));
  old.params.struct_size = (uint32_t)offsetof(vramfit_model_params, progress);
  old.params.device = "sim:64MiB";
  old.params.offload = &policy;
  CHECK_OK(vramfit_model_load(path, &old.params, &model));
  CHECK_OK(vramfit_context_create(model, NULL, &ctx)); /* n_ctx 0: the planned one */
  default_n_ctx = (uint32_t)vramfit_model_n_ctx_train(model) < 4096 ? (uint32_t)vramfit_model_n_ctx_train(model) : 4096;
  CHECK(vramfit_context_n_ctx(ctx) == (int32_t)default_n_ctx);
  vramfit_context_free(ctx);
  ctx = NULL;
  vramfit_model_free(model);
  model = NULL;
  CHECK_OK(vramfit_plan_create(path, &old.params, NULL, &plan));
  snprintf(needle, sizeof needle, "\"n_ctx\": %u, \"n_batch\": 512, \"kv_type\": \"f16\"", (unsigned)default_n_ctx);
  CHECK(plan && strstr(vramfit_plan_json(plan), needle) != NULL);
  vramfit_plan_free(plan);
  plan = NULL;

  /* Set: the plan reserves for that shape, and a context may not ask for more. */
  mp.device = "sim:64MiB";
  mp.offload = &policy;
  mp.n_ctx = 64;
  mp.n_batch = 16;
  mp.kv_type = VRAMFIT_KV_Q8_0;
  CHECK_OK(vramfit_plan_create(path, &mp, NULL, &plan));
  CHECK(plan && strstr(vramfit_plan_json(plan), "\"n_ctx\": 64, \"n_batch\": 16, \"kv_type\": \"q8_0\"") != NULL);
  vramfit_plan_free(plan);
  CHECK_OK(vramfit_model_load(path, &mp, &model));
  cp.n_batch = 16;
  cp.kv_type = VRAMFIT_KV_Q8_0;
  CHECK_OK(vramfit_context_create(model, &cp, &ctx)); /* n_ctx 0: the plan's 64 */
  CHECK(vramfit_context_n_ctx(ctx) == 64);
  vramfit_context_free(ctx);
  ctx = NULL;
  cp.n_ctx = 128;
  CHECK_FAILS(vramfit_context_create(model, &cp, &ctx), VRAMFIT_ERR_BUDGET_EXCEEDED);
  CHECK(strstr(vramfit_last_error(), "n_ctx") != NULL);
  cp.n_ctx = 64;
  cp.n_batch = 32;
  CHECK_FAILS(vramfit_context_create(model, &cp, &ctx), VRAMFIT_ERR_BUDGET_EXCEEDED);
  CHECK(strstr(vramfit_last_error(), "n_batch") != NULL);
  vramfit_model_free(model);

  mp.kv_type = 5;
  CHECK_FAILS(vramfit_model_load(path, &mp, &model), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vramfit_last_error(), "kv_type") != NULL);
  mp.kv_type = VRAMFIT_KV_Q8_0;

  /* n_contexts: 1 by default (and for a struct that ends before it); two contexts fit a plan for
  ** two, a third does not; a budget too small for them says how many fit. */
  CHECK(vramfit_model_default_params().n_contexts == 1);
  mp.n_contexts = 2;
  CHECK_OK(vramfit_plan_create(path, &mp, NULL, &plan));
  CHECK(plan && strstr(vramfit_plan_json(plan), "\"kv_type\": \"q8_0\", \"n_contexts\": 2") != NULL);
  vramfit_plan_free(plan);
  plan = NULL;
  CHECK_OK(vramfit_model_load(path, &mp, &model));
  {
    vramfit_context *second = NULL;
    cp.n_batch = 16;
    CHECK_OK(vramfit_context_create(model, &cp, &ctx));
    CHECK_OK(vramfit_context_create(model, &cp, &second));
    vramfit_context_free(second);
    vramfit_context_free(ctx);
    ctx = NULL;
  }
  vramfit_model_free(model);
  model = NULL;
  mp.n_contexts = 0;
  CHECK_FAILS(vramfit_model_load(path, &mp, &model), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vramfit_last_error(), "n_contexts") != NULL);
}

/* ---- a plan that puts nothing on the device: no device, the host alone in the report ---- */

static void test_plan_without_device(void) {
  char path[4096];
  vramfit_model *model = NULL;
  vramfit_context *ctx = NULL;
  vramfit_model_params mp = vramfit_model_default_params();
  vramfit_offload_policy policy = vramfit_offload_default_policy();
  vramfit_memory_report report;

  shared_path("models/synth-Q4_K_M.gguf", path, sizeof path);
  policy.strategy = VRAMFIT_OFFLOAD_LAYERS;
  policy.n_gpu_layers = 0;
  mp.device = "sim:64MiB";
  mp.offload = &policy;
  CHECK_OK(vramfit_model_load(path, &mp, &model));
  CHECK_OK(vramfit_context_create(model, NULL, &ctx));
  memset(&report, 0, sizeof report);
  report.struct_size = sizeof report;
  CHECK_OK(vramfit_context_memory(ctx, &report));
  CHECK(report.n_devices == 1 && report.device_total == 0);
  vramfit_context_free(ctx);
  vramfit_model_free(model);
}

/* ---- the last error is per thread ---- */

static void *fail_on_another_thread(void *status) {
  vramfit_model *m = NULL;
  *(vramfit_status *)status = vramfit_model_load("/nonexistent/other-thread.gguf", NULL, &m);
  return NULL;
}

static void test_last_error_is_per_thread(void) {
  vramfit_sampler *s = NULL;
  vramfit_status other = VRAMFIT_OK;
  pthread_t thread;
  CHECK_FAILS(vramfit_sampler_create(NULL, NULL), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK(pthread_create(&thread, NULL, fail_on_another_thread, &other) == 0);
  CHECK(pthread_join(thread, NULL) == 0);
  CHECK(other == VRAMFIT_ERR_IO);
  CHECK(strstr(vramfit_last_error(), "vramfit_sampler_create") != NULL); /* this thread's message */
  CHECK(strstr(vramfit_last_error(), "other-thread") == NULL);
  CHECK_OK(vramfit_sampler_create(NULL, &s));                 /* success leaves it unchanged */
  CHECK(strstr(vramfit_last_error(), "vramfit_sampler_create") != NULL);
  vramfit_sampler_free(s);
}

static int g_log_calls = 0;
static void count_logs(vramfit_log_level level, const char *message, void *user_data) {
  (void)level;
  (void)message;
  ++*(int *)user_data;
}

/* Chat templates: a template string (Llama 3's, as in ../shared/chat/llama3.json), the model's
** default format (stories260K has no template), the size protocol and the errors. */
static void test_chat_templates(const vramfit_model *model) {
  static const char *kLlama3 =
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
      "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
      "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
      "{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}";
  static const char *kExpected =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  vramfit_chat_message messages[2];
  vramfit_chat_params p = vramfit_chat_default_params();
  char buf[1024];
  size_t n = 0;
  messages[0].role = "system";
  messages[0].content = "You are a helpful assistant.";
  messages[1].role = "user";
  messages[1].content = "What is the capital of France?";

  CHECK(p.add_generation_prompt == 1 && p.chat_template == NULL && p.date == NULL);
  p.chat_template = kLlama3;
  p.bos_token = "<|begin_of_text|>";
  CHECK_OK(vramfit_chat_apply(NULL, &p, messages, 2, buf, sizeof buf, &n));
  CHECK(strcmp(buf, kExpected) == 0 && n == strlen(kExpected));
  /* The size protocol: capacity 0 tells the length, a buffer one byte short is refused. */
  CHECK_FAILS(vramfit_chat_apply(NULL, &p, messages, 2, NULL, 0, &n), VRAMFIT_ERR_BUFFER_TOO_SMALL);
  CHECK(n == strlen(kExpected));
  CHECK_FAILS(vramfit_chat_apply(NULL, &p, messages, 2, buf, n, &n), VRAMFIT_ERR_BUFFER_TOO_SMALL);

  /* A model without a template: ChatML, with the model's tokens available to a template. */
  CHECK(!vramfit_model_has_chat_template(model));
  CHECK(!vramfit_model_has_chat_template(NULL));
  CHECK_OK(vramfit_chat_apply(model, NULL, messages + 1, 1, buf, sizeof buf, &n));
  CHECK(strcmp(buf, "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n") == 0);
  p = vramfit_chat_default_params();
  p.add_generation_prompt = 0;
  p.chat_template = "{{ bos_token }}|{{ eos_token }}|{{ messages | length }}|{{ add_generation_prompt }}|{{ x }}|"
                    "{{ strftime_now('%d.%m.%Y') }}";
  p.extra_json = "{\"x\": [1, \"two\"]}";
  p.date = "2025-08-05";
  CHECK_OK(vramfit_chat_apply(model, &p, messages, 2, buf, sizeof buf, &n));
  CHECK(strcmp(buf, "<s>|</s>|2|False|[1, 'two']|05.08.2025") == 0);

  /* Errors name the problem; template errors name the line. */
  p = vramfit_chat_default_params();
  CHECK_FAILS(vramfit_chat_apply(NULL, &p, messages, 2, buf, sizeof buf, &n), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_chat_apply(model, NULL, NULL, 2, buf, sizeof buf, &n), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_chat_apply(model, NULL, messages, 2, buf, sizeof buf, NULL), VRAMFIT_ERR_INVALID_ARGUMENT);
  p.chat_template = "ok\n{% for m in messages %}";
  CHECK_FAILS(vramfit_chat_apply(NULL, &p, messages, 2, buf, sizeof buf, &n), VRAMFIT_ERR_FORMAT);
  CHECK(strstr(vramfit_last_error(), "line 2") != NULL);
  p.chat_template = "{{ messages | frobnicate }}";
  CHECK_FAILS(vramfit_chat_apply(NULL, &p, messages, 2, buf, sizeof buf, &n), VRAMFIT_ERR_UNSUPPORTED);
  CHECK(strstr(vramfit_last_error(), "unknown filter 'frobnicate'") != NULL);
  p.chat_template = "{% if messages[0].role != 'user' %}{{ raise_exception('first must be user') }}{% endif %}";
  CHECK_FAILS(vramfit_chat_apply(NULL, &p, messages, 2, buf, sizeof buf, &n), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vramfit_last_error(), "line 1: raise_exception: first must be user") != NULL);
  p.chat_template = "{{ x }}";
  p.extra_json = "{\"x\": ";
  CHECK_FAILS(vramfit_chat_apply(NULL, &p, messages, 2, buf, sizeof buf, &n), VRAMFIT_ERR_INVALID_ARGUMENT);
  p.extra_json = NULL;
  p.date = "2025-13-01";
  CHECK_FAILS(vramfit_chat_apply(NULL, &p, messages, 2, buf, sizeof buf, &n), VRAMFIT_ERR_INVALID_ARGUMENT);
  p.date = NULL;
  messages[1].content = NULL;
  CHECK_FAILS(vramfit_chat_apply(NULL, &p, messages, 2, buf, sizeof buf, &n), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vramfit_last_error(), "messages[1] has a NULL content") != NULL);
}

/* ---- what bindings need: control tokens in chat prompts, budget strings ---- */

static void test_binding_helpers(const vramfit_model *model) {
  static const char kChat[] = "<s>Once";
  vramfit_token with[16], without[16], once[16];
  size_t n_with = 0, n_without = 0, n_once = 0, n_needed = 0;
  uint64_t bytes = 0;

  /* parse_special turns "<s>" into BOS (id 1); without it the text is spelled out. */
  CHECK_OK(vramfit_tokenize_special(model, kChat, strlen(kChat), false, true, with, 16, &n_with));
  CHECK_OK(vramfit_tokenize_special(model, kChat, strlen(kChat), false, false, without, 16, &n_without));
  CHECK_OK(vramfit_tokenize(model, "Once", 4, true, once, 16, &n_once));
  CHECK(n_with == n_once && memcmp(with, once, n_once * sizeof *once) == 0 && with[0] == vramfit_model_bos(model));
  CHECK(n_without > n_with && without[0] != vramfit_model_bos(model));
  /* add_special = false without parse_special is vramfit_tokenize exactly. */
  CHECK_OK(vramfit_tokenize(model, kChat, strlen(kChat), false, once, 16, &n_once));
  CHECK(n_once == n_without && memcmp(once, without, n_once * sizeof *once) == 0);
  CHECK_FAILS(vramfit_tokenize_special(model, kChat, strlen(kChat), false, true, with, 1, &n_needed),
              VRAMFIT_ERR_BUFFER_TOO_SMALL);
  CHECK(n_needed == n_with);
  CHECK_FAILS(vramfit_tokenize_special(NULL, kChat, 1, false, true, with, 16, &n_with), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vramfit_last_error(), "vramfit_tokenize_special: model is NULL") != NULL);

  CHECK_OK(vramfit_parse_size("11.5GiB", &bytes));
  CHECK(bytes == 12348030976ull);
  CHECK_OK(vramfit_parse_size("800MB", &bytes));
  CHECK(bytes == 800000000ull);
  CHECK_OK(vramfit_parse_size("4096", &bytes));
  CHECK(bytes == 4096);
  CHECK_FAILS(vramfit_parse_size("12XB", &bytes), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vramfit_last_error(), "'12XB' is not a size") != NULL);
  CHECK_FAILS(vramfit_parse_size("", &bytes), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_parse_size(NULL, &bytes), VRAMFIT_ERR_INVALID_ARGUMENT);
  CHECK_FAILS(vramfit_parse_size("1GiB", NULL), VRAMFIT_ERR_INVALID_ARGUMENT);
}

int main(void) {
  const char *env = getenv("VRAMFIT_TEST_DATA");
  const char *src = getenv("VRAMFIT_SOURCE_DIR");
  const char *ci = getenv("CI");
  char path[4096];
  char version[32];
  reference ref = {0, 0, 0, NULL, NULL};
  vramfit_model *model = NULL;
  vramfit_model_params cpu = vramfit_model_default_params();

  if (env && *env)
    snprintf(g_shared, sizeof g_shared, "%s", env);
  else
    snprintf(g_shared, sizeof g_shared, "%s/../shared", src && *src ? src : ".");

  snprintf(version, sizeof version, "%d.%d.%d", VRAMFIT_VERSION_MAJOR, VRAMFIT_VERSION_MINOR, VRAMFIT_VERSION_PATCH);
  CHECK(strcmp(vramfit_version(), version) == 0);
  CHECK(vramfit_abi_version() == VRAMFIT_ABI_VERSION);
  CHECK(strcmp(vramfit_status_string(VRAMFIT_ERR_CONTEXT_FULL), "context_full") == 0);
  CHECK(strcmp(vramfit_last_error(), "") == 0);

  if (!file_exists(shared_path("models/stories260K.gguf", path, sizeof path))) {
    fprintf(stderr, "%s: test data not found at %s (set VRAMFIT_TEST_DATA)\n",
            ci && strcmp(ci, "true") == 0 ? "FAILED" : "skipped", path);
    return ci && strcmp(ci, "true") == 0 ? 1 : 0;
  }
  vramfit_set_log_callback(count_logs, &g_log_calls);
  cpu.device = "cpu"; /* the CPU against llama.cpp: "auto" would pick a GPU where there is one */
  CHECK_OK(vramfit_model_load(path, &cpu, &model));
  vramfit_set_log_callback(NULL, NULL);
  CHECK(read_reference(shared_path("reference/logits/stories260K.logits.bin", path, sizeof path), &ref));
  if (model && ref.tokens) {
    test_core_reproduces_llama_cpp(model, &ref);
    test_older_struct_sizes(model);
    test_error_paths(model);
    test_chat_templates(model);
    test_binding_helpers(model);
    test_prefix_reuse(model, &ref);
  }
  test_plan();
  test_plan_moe();
  test_sim_device();
  test_load_progress();
  test_model_params_plan_shape();
  test_plan_without_device();
  test_last_error_is_per_thread();
  vramfit_model_free(model);
  free(ref.tokens);
  free(ref.logits);

  printf("worst logits row vs llama.cpp: mean-centred relative RMS %.3g (bar %.0e)\n", g_max_rms, kLogitsBar);
  printf("test_capi: %d checks, %d failed\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
