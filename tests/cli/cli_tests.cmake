# The command line as a llama.cpp user drives it (issue 11): one option parser for every command.
# No GPU needed: offload goes to the sim device. Included from tests/CMakeLists.txt when the test
# data is there.
#
# vramfit_cli_test(NAME [RC n] ARGS ... [OUT regex] [ERR regex] [NOT_ERR regex] [STDOUT_FILE f])
function(vramfit_cli_test name)
  cmake_parse_arguments(T "" "RC;OUT;ERR;NOT_ERR;STDOUT_FILE" "ARGS" ${ARGN})
  # add_test splits on ';': the arguments travel joined by "^^" and cli_expect.cmake splits them.
  string(REPLACE ";" "^^" joined "${T_ARGS}")
  set(defs -DCLI=$<TARGET_FILE:vramfit_cli> "-DARGS=${joined}")
  if(DEFINED T_RC)
    list(APPEND defs -DRC=${T_RC})
  endif()
  foreach(key OUT ERR NOT_ERR STDOUT_FILE)
    if(DEFINED T_${key})
      list(APPEND defs "-D${key}=${T_${key}}")
    endif()
  endforeach()
  add_test(NAME ${name} COMMAND ${CMAKE_COMMAND} ${defs} -P ${CMAKE_CURRENT_SOURCE_DIR}/cli/cli_expect.cmake)
endfunction()

set(stories ${VRAMFIT_SHARED}/models/stories260K.gguf)
set(once "Once upon a time, there was a little")
set(greedy_text "girl named Lily. She loved to play outside in the park. One day")

# ---- the shared parser: both flag forms, shared defaults ----
vramfit_cli_test(cli_opt_equals_form ARGS run -m=${stories} --prompt=${once} -n=24 --temp=0 -t=1
  OUT "^${once} ${greedy_text}" ERR "generation: 24 tokens")
vramfit_cli_test(cli_opt_switch_with_value RC 2 ARGS run -m ${stories} -p hi --cpu-moe=1
  ERR "^vramfit run: error: --cpu-moe takes no value \\(got '1'\\)")
vramfit_cli_test(cli_opt_needs_value RC 2 ARGS run -m ${stories} -p
  ERR "^vramfit run: error: -p needs a value: -p TEXT")
vramfit_cli_test(cli_opt_unknown RC 2 ARGS run -m ${stories} -p hi --frobnicate
  ERR "^vramfit run: error: unknown option '--frobnicate' \\(see `vramfit run --help`\\)")
vramfit_cli_test(cli_run_bad_kv_type RC 2 ARGS run -m ${stories} -p hi --kv-type f8
  ERR "--kv-type: 'f8' is not one of f16, f32, q8_0")
# The default context: 4096, or the trained length (2048 for stories260K) when smaller.
vramfit_cli_test(cli_run_default_ctx ARGS run -m ${stories} -p hi -n 1 -t 1
  ERR "n_ctx 2048 \\(trained 2048\\)")
vramfit_cli_test(cli_run_ctx_over_trained ARGS run -m ${stories} -p hi -n 1 -t 1 -c 4096
  ERR "warning: -c 4096 exceeds the 2048 tokens")

# ---- placement flags in run: -ngl alone, -ot, --kv-placement, --min-ctx, --reserve ----
vramfit_cli_test(cli_run_ngl_layers ARGS run -m ${stories} -p Once -n 2 --temp 0 -t 1 -c 64 --device sim:64MiB -ngl 1
  ERR "offload: layers \\(-ngl 1\\), 1 of 5 layers")
vramfit_cli_test(cli_run_override_tensor ARGS run -m ${stories} -p ${once} -n 24 --temp 0 -t 1 -c 128
  --device sim:64MiB -ot "blk\\.[01]\\.=gpu" -ot "output=gpu"
  OUT "^${once} ${greedy_text}" ERR "offload: manual[^\n]*2 of 5 layers entirely on sim")
# run takes --kv-placement as plan does; the executor runs attention where its KV cache is, and says so.
vramfit_cli_test(cli_run_kv_host RC 1 ARGS run -m ${stories} -p hi -n 1 -t 1 -c 128 --device sim:64MiB -ngl 6
  --kv-placement host ERR "layer 0's KV cache on the host and its attention on the device; .*--kv-placement follow")
vramfit_cli_test(cli_run_min_ctx_shrinks ARGS run -m ${stories} -p hi -n 1 -t 1 --device sim:3MiB -ngl 6 --min-ctx 256
  ERR "note: context [0-9]+ tokens \\(shrunk from 2048 to fit the VRAM budget; --min-ctx 256\\)")
vramfit_cli_test(cli_run_device_case ARGS run -m ${stories} -p hi -n 1 -t 1 --device CPU ERR "generation: 1 tokens")

# ---- seeds: default and -1 are random and printed; a printed seed repeats the run ----
vramfit_cli_test(cli_run_seed_random ARGS run -m ${stories} -p hi -n 1 -t 1 --seed -1
  ERR "seed [0-9]+ \\(random: --seed [0-9]+ repeats this run\\)")
vramfit_cli_test(cli_run_seed_fixed ARGS run -m ${stories} -p hi -n 1 -t 1 --seed 42 ERR "seed 42, |seed 42\n"
  NOT_ERR "random")

# ---- what run decided prints before the first token; context full is said ----
vramfit_cli_test(cli_run_context_full ARGS run -m ${stories} -p ${once} -n 100 -c 32 --temp 0 -t 1
  ERR "stopped: context full\\).*context full: the 32 tokens of -c 32 are used")
vramfit_cli_test(cli_run_write_error RC 1 ARGS run -m ${stories} -p hi -n 4 -t 1 STDOUT_FILE /dev/full
  ERR "error: writing to stdout failed: No space left on device")
vramfit_cli_test(cli_run_prompt_file_missing RC 2 ARGS run -m ${stories} -f /nonexistent/prompt.txt
  ERR "-f: cannot read '/nonexistent/prompt.txt': No such file or directory")
vramfit_cli_test(cli_run_prompt_file_dir RC 2 ARGS run -m ${stories} -f ${VRAMFIT_SHARED}
  ERR "-f: cannot read '[^']*': Is a directory")
vramfit_cli_test(cli_run_no_prompt RC 2 ARGS run -m ${stories} ERR "no prompt: pass -p TEXT or -f FILE")
vramfit_cli_test(cli_run_threads_clamped ARGS run -m ${stories} -p hi -n 1 -t 100000
  ERR "warning: -t 100000: this machine has [0-9]+ hardware threads; using [0-9]+")
vramfit_cli_test(cli_run_budget_bare_small RC 2 ARGS run -m ${stories} -p hi --device sim:64MiB --vram-budget 11.5
  ERR "--vram-budget: '11.5' without a unit is a byte count below 1 MiB, surely a forgotten unit: write one \\(e.g. 6GiB")

# ---- top level: --version, help COMMAND ----
vramfit_cli_test(cli_version ARGS --version OUT "^vramfit [0-9]+\\.[0-9]+\\.[0-9]+ ")
vramfit_cli_test(cli_help_command ARGS help run OUT "^usage: vramfit run .*model and placement:.*--override-tensor")
vramfit_cli_test(cli_run_budget_with_space ARGS run -m ${stories} -p hi -n 1 -t 1 -c 128 --device sim:64MiB
  "--vram-budget=11.5 MB" -ngl 6 ERR "sim \\(11500000 bytes\\): peak [0-9]+ bytes of a 11500000 byte budget")
