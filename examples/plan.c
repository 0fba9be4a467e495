/* plan.c — print where a model would go under a VRAM budget, from the file's header alone (no GPU
** needed; works on header-only files).
**
**   plan MODEL.gguf BUDGET_GIB [n_ctx] [--json]
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vramfit.h>

int main(int argc, char **argv) {
  vramfit_model_params mp = vramfit_model_default_params();
  vramfit_offload_policy policy = vramfit_offload_default_policy();
  vramfit_context_params cp = vramfit_context_default_params();
  vramfit_plan *plan = NULL;
  int json = argc > 1 && strcmp(argv[argc - 1], "--json") == 0;
  int n_args = json ? argc - 1 : argc;
  double budget_gib;

  if (n_args < 3) {
    fprintf(stderr, "usage: %s MODEL.gguf BUDGET_GIB [n_ctx] [--json]\n", argv[0]);
    return 2;
  }
  budget_gib = atof(argv[2]);
  if (budget_gib <= 0) {
    fprintf(stderr, "plan: budget '%s' is not a positive number of GiB\n", argv[2]);
    return 2;
  }
  policy.vram_budget_bytes = (uint64_t)(budget_gib * 1024 * 1024 * 1024);
  mp.offload = &policy;
  cp.n_ctx = n_args > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 4096;

  if (vramfit_plan_create(argv[1], &mp, &cp, &plan) != VRAMFIT_OK) {
    fprintf(stderr, "plan: %s\n", vramfit_last_error());
    return 1;
  }
  printf("%s\n", json ? vramfit_plan_json(plan) : vramfit_plan_table(plan));
  vramfit_plan_free(plan);
  return 0;
}
