/* simple.c — load a model, tokenize a prompt, generate greedily, print, free.
**
**   simple MODEL.gguf ["prompt"] [n_tokens]
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vramfit.h>

static int fail(const char *what) {
  fprintf(stderr, "simple: %s: %s\n", what, vramfit_last_error());
  return 1;
}

int main(int argc, char **argv) {
  const char *prompt = argc > 2 ? argv[2] : "Once upon a time";
  int n_generate = argc > 3 ? atoi(argv[3]) : 32;
  vramfit_model *model = NULL;
  vramfit_context *ctx = NULL;
  vramfit_sampler *sampler = NULL;
  vramfit_token tokens[512];
  size_t n_prompt = 0;
  int i, status = 0;

  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL.gguf [\"prompt\"] [n_tokens]\n", argv[0]);
    return 2;
  }
  if (vramfit_model_load(argv[1], NULL, &model) != VRAMFIT_OK) return fail("load");
  if (vramfit_tokenize(model, prompt, strlen(prompt), true, tokens, 512, &n_prompt) != VRAMFIT_OK) {
    status = fail("tokenize");
    goto done;
  }
  if (vramfit_context_create(model, NULL, &ctx) != VRAMFIT_OK) {
    status = fail("context");
    goto done;
  }
  {
    vramfit_sampler_params sp = vramfit_sampler_default_params();
    sp.temperature = 0; /* greedy */
    if (vramfit_sampler_create(&sp, &sampler) != VRAMFIT_OK) {
      status = fail("sampler");
      goto done;
    }
  }

  printf("%s", prompt);
  if (vramfit_decode(ctx, tokens, n_prompt, false) != VRAMFIT_OK) {
    status = fail("decode");
    goto done;
  }
  for (i = 0; i < n_generate; ++i) {
    vramfit_token next;
    char piece[256];
    size_t len;
    if (vramfit_sampler_sample(sampler, ctx, -1, &next) != VRAMFIT_OK) {
      status = fail("sample");
      break;
    }
    if (vramfit_model_is_eog(model, next)) break;
    if (vramfit_token_to_piece(model, next, piece, sizeof piece, &len) == VRAMFIT_OK) fputs(piece, stdout);
    fflush(stdout);
    if (vramfit_decode(ctx, &next, 1, false) != VRAMFIT_OK) {
      status = fail("decode");
      break;
    }
  }
  printf("\n");

done:
  vramfit_sampler_free(sampler);
  vramfit_context_free(ctx);
  vramfit_model_free(model);
  return status;
}
