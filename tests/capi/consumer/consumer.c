/* Loads a model through the installed library and prints the greedy next token of a prompt. */
#include <stdio.h>
#include <string.h>

#include <vramfit.h>

int main(int argc, char **argv) {
  vramfit_model *model = NULL;
  vramfit_context *ctx = NULL;
  vramfit_context_params cp = vramfit_context_default_params();
  vramfit_token tokens[32], next = 0;
  size_t n = 0;
  const float *logits;
  int32_t i;
  printf("vramfit %s (ABI %d)\n", vramfit_version(), (int)vramfit_abi_version());
  if (argc < 2) return 0;
  cp.n_ctx = 64;
  cp.n_threads = 1;
  if (vramfit_model_load(argv[1], NULL, &model) != VRAMFIT_OK ||
      vramfit_tokenize(model, "Once upon a time", 16, true, tokens, 32, &n) != VRAMFIT_OK ||
      vramfit_context_create(model, &cp, &ctx) != VRAMFIT_OK || vramfit_decode(ctx, tokens, n, false) != VRAMFIT_OK) {
    fprintf(stderr, "consumer: %s\n", vramfit_last_error());
    vramfit_context_free(ctx);
    vramfit_model_free(model);
    return 1;
  }
  logits = vramfit_get_logits(ctx, -1);
  for (i = 1; i < vramfit_model_n_vocab(model); ++i)
    if (logits[i] > logits[next]) next = i;
  printf("next token after %zu prompt tokens: %d\n", n, (int)next);
  vramfit_context_free(ctx);
  vramfit_model_free(model);
  return 0;
}
