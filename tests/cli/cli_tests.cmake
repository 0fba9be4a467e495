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
  ERR "offload: context shrunk from 2048 to 1024 tokens to fit the budget \\(--min-ctx 256\\)")
vramfit_cli_test(cli_run_device_case ARGS run -m ${stories} -p hi -n 1 -t 1 --device CPU ERR "generation: 1 tokens")

# ---- seeds: default and -1 are random and printed; a printed seed repeats the run ----
vramfit_cli_test(cli_run_seed_random ARGS run -m ${stories} -p hi -n 1 -t 1 --seed -1
  ERR "seed [0-9]+ \\(random: --seed [0-9]+ repeats this run\\)")
vramfit_cli_test(cli_run_seed_fixed ARGS run -m ${stories} -p hi -n 1 -t 1 --seed 42 ERR "seed 42, |seed 42\n"
  NOT_ERR "random")

# ---- what run decided prints before the first token; context full is said ----
vramfit_cli_test(cli_run_context_full ARGS run -m ${stories} -p ${once} -n 100 -c 32 --temp 0 -t 1
  ERR "stopped: context full\\)\ncontext full: all 32 positions of -c 32 are used")
vramfit_cli_test(cli_run_write_error RC 1 ARGS run -m ${stories} -p hi -n 4 -t 1 STDOUT_FILE /dev/full
  ERR "error: writing to stdout failed: No space left on device")
vramfit_cli_test(cli_run_prompt_file_missing RC 2 ARGS run -m ${stories} -f /nonexistent/prompt.txt
  ERR "-f: cannot read '/nonexistent/prompt.txt': No such file or directory")
vramfit_cli_test(cli_run_prompt_file_dir RC 2 ARGS run -m ${stories} -f ${VRAMFIT_SHARED}
  ERR "-f: cannot read '[^']*': Is a directory")
# -f FILE: the prompt's bytes as stored (no newline added or removed), as -p would give them.
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/cli-prompt.txt "${once}")
vramfit_cli_test(cli_run_prompt_file ARGS run -m ${stories} -f ${CMAKE_CURRENT_BINARY_DIR}/cli-prompt.txt -n 24
  --temp 0 -t 1 OUT "^${once} ${greedy_text}")
vramfit_cli_test(cli_run_prompt_twice RC 2 ARGS run -m ${stories} -p hi -f ${CMAKE_CURRENT_BINARY_DIR}/cli-prompt.txt
  ERR "give the prompt once: -p TEXT or -f FILE")
vramfit_cli_test(cli_run_no_prompt RC 2 ARGS run -m ${stories} ERR "no prompt: pass -p TEXT or -f FILE")
vramfit_cli_test(cli_run_threads_clamped ARGS run -m ${stories} -p hi -n 1 -t 100000
  ERR "warning: -t 100000: this machine has [0-9]+ hardware threads; using [0-9]+")
vramfit_cli_test(cli_run_budget_bare_small RC 2 ARGS run -m ${stories} -p hi --device sim:64MiB --vram-budget 11.5
  ERR "--vram-budget: '11.5' has no unit, and a byte count is a whole number: write a unit \\(e.g. 6GiB, 11.5GB, \"800 MiB\", 1073741824 \\(bytes\\)\\)")
vramfit_cli_test(cli_run_budget_bare_bytes RC 2 ARGS run -m ${stories} -p hi --device sim:64MiB --vram-budget 4096
  ERR "--vram-budget: 4096 bytes is below 1 MiB, surely a forgotten unit: write one \\(e.g. 6GiB")
vramfit_cli_test(cli_plan_budget_bare_large ARGS plan -m ${stories} --vram-budget 1073741824 OUT "budget 1.00 GiB \\(1073741824 bytes\\)")

# ---- top level: --version, help COMMAND ----
vramfit_cli_test(cli_version ARGS --version OUT "^vramfit [0-9]+\\.[0-9]+\\.[0-9]+ ")
vramfit_cli_test(cli_help_command ARGS help run OUT "^usage: vramfit run .*model and placement:.*--override-tensor")
vramfit_cli_test(cli_run_budget_with_space ARGS run -m ${stories} -p hi -n 1 -t 1 -c 128 --device sim:64MiB
  "--vram-budget=11.5 MB" -ngl 6 ERR "sim \\(11500000 bytes\\): peak [0-9]+ bytes of a 11500000 byte budget")

# ---- plan: the same parser, the shared default context, machine facts measured / given / assumed ----
set(llama70b ${VRAMFIT_SHARED}/models/header-only/llama2-70b-Q4_K_M.gguf)
vramfit_cli_test(cli_plan_machine_assumed ARGS plan -m ${llama70b}
  OUT "note: budget: 12.00 GiB device memory \\(assumed, no GPU was measured\\) minus a 0.50 GiB reserve.*machine facts the plan used:\n  gpu memory 12.00 GiB +assumed\n.*  host read bandwidth 40.0 GB/s +assumed\n.*  host memory [0-9.]+ GiB available of [0-9.]+ GiB +measured\n")
vramfit_cli_test(cli_plan_machine_given ARGS plan -m ${llama70b} --host-memory 64GiB --host-bandwidth=80GB
  "--device-memory=24 GiB"
  OUT "host memory: fits \\([0-9.]+ GiB needed, 64.00 GiB available\\).*  gpu memory 24.00 GiB +given\n.*  host read bandwidth 80.0 GB/s +given\n.*  host memory 64.00 GiB available of 64.00 GiB +given\n")
vramfit_cli_test(cli_plan_machine_json ARGS plan ${llama70b} --vram-budget 11.5GiB --host-memory 64GiB --json
  OUT "\"machine_sources\": {\"device_memory\": \"assumed\", [^\n]*\"host_memory\": \"given\", \"host_kernels\": \"assumed\"}")
# --measure: the CPU kernels' speed for the model's weight types (header only: the types suffice).
vramfit_cli_test(cli_plan_measure_kernels ARGS plan -m ${llama70b} --measure -t 1
  OUT "host read bandwidth [0-9.]+ GB/s +measured\n.*  host Q4_K kernels: mat-vec [0-9.]+ GB/s, matmul [0-9]+ Gflop/s +measured\n")
# plan and run share the default context (the trained 2048 of stories260K here) and shrink it alike.
vramfit_cli_test(cli_plan_sim_like_run ARGS plan -m ${stories} --device sim:3MiB -ngl 6
  OUT "n_ctx 1024, n_batch 512.*budget 0.00 GiB \\(3145728 bytes\\).*context shrunk from 2048 to 1024 tokens")
vramfit_cli_test(cli_plan_default_ctx ARGS plan -m ${stories} --vram-budget 1GiB OUT "n_ctx 2048, n_batch 512")
# The advice in a too-small budget error works: -ngl 0 runs on the CPU.
vramfit_cli_test(cli_run_ngl0_advice ARGS run -m ${stories} -p hi -n 2 -t 1 --device sim:1MiB -ngl 0
  ERR "offload: layers \\(-ngl 0\\), 0 of 5 layers.*generation: 2 tokens")
vramfit_cli_test(cli_plan_device_cpu RC 2 ARGS plan -m ${stories} --device cpu ERR "--device cpu: nothing to plan")
# -np N (shared placement group): plan reserves N contexts, says how many fit a budget too small for N,
# and run plans for N but decodes in one (the placement one slot of serve -np N gets).
add_test(NAME cli_plan_np4_reserves_4_contexts COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:vramfit_cli>
  -DMODEL=${stories} -DN=4 -P ${CMAKE_CURRENT_SOURCE_DIR}/cli/cli_plan_contexts.cmake)
vramfit_cli_test(cli_plan_np4_table ARGS plan -m ${stories} --vram-budget 1GiB -c 256 --parallel=4
  OUT "n_ctx 256, n_batch 512, KV cache f16, 4 contexts \\(each its own KV cache and scratch\\)")
vramfit_cli_test(cli_plan_np_too_many RC 1 ARGS plan -m ${stories} --device sim:4MiB -c 256 -np 4
  ERR "for 4 contexts.*this budget holds 2 of the 4 contexts asked for \\(n_ctx=256 each\\)")
vramfit_cli_test(cli_plan_np_zero RC 2 ARGS plan -m ${stories} -np 0
  ERR "^vramfit plan: error: -np: 0 is outside 1..256")
vramfit_cli_test(cli_run_np2_plans_two ARGS run -m ${stories} -p ${once} -n 24 --temp 0 -t 1 --device sim:8MiB
  -c 256 -np 2
  OUT "^${once} ${greedy_text}" ERR "2 contexts.*generation: 24 tokens")

# ---- every command: the same shared groups in --help, the same parser ----
add_test(NAME cli_help_shared_placement COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:vramfit_cli>
  "-DCOMMANDS=bench^^plan" "-DGROUPS=model and placement^^context" "-DIF_PRESENT=chat^^serve"
  -P ${CMAKE_CURRENT_SOURCE_DIR}/cli/cli_help_groups.cmake)
add_test(NAME cli_help_shared_sampling COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:vramfit_cli>
  "-DCOMMANDS=run" "-DGROUPS=sampling" "-DIF_PRESENT=chat^^serve"
  -P ${CMAKE_CURRENT_SOURCE_DIR}/cli/cli_help_groups.cmake)
vramfit_cli_test(cli_info_dash_m ARGS info -m ${stories} OUT "architecture: +llama")
vramfit_cli_test(cli_info_two_models RC 2 ARGS info ${stories} ${stories} ERR "unexpected argument")
vramfit_cli_test(cli_tokenize_dash_p ARGS tokenize -m ${stories} -p "Hello world" OUT "^1 [0-9 ]+\n$")
vramfit_cli_test(cli_tokenize_file_dir RC 2 ARGS tokenize -m ${stories} -f ${VRAMFIT_SHARED}
  ERR "-f: cannot read '[^']*': Is a directory")
vramfit_cli_test(cli_bench_model_sim ARGS bench -m ${stories} -p 32 -n 8 -r 1 -t 1 --device=sim:64MiB -ngl 3
  OUT "pp32: [0-9.]+ tok/s\ntg8: [0-9.]+ tok/s = [0-9.]+ GB/s of weights .* read bandwidth [0-9.]+ GB/s.*\nplanner's CPU-only prediction \\(plan -ngl 0 --measure\\): pp [0-9.]+ tok/s \\([-+][0-9]+%\\), tg [0-9.]+"
  ERR "\nsim +[0-9.]+ ")
vramfit_cli_test(cli_bench_ctx_too_small RC 2 ARGS bench -m ${stories} -p 32 -n 8 -c 16
  ERR "-c 16 cannot hold -p 32 \\+ -n 8 tokens")
# -d: the context starts each test holding that many tokens (llama-bench's label).
vramfit_cli_test(cli_bench_depth ARGS bench -m ${stories} -p 8 -n 4 -d 40 -r 1 -t 1
  OUT "pp8 @ d40: [0-9.]+ tok/s\ntg4 @ d40: [0-9.]+ tok/s")
vramfit_cli_test(cli_bench_depth_ctx_too_small RC 2 ARGS bench -m ${stories} -p 8 -n 4 -d 40 -c 50
  ERR "-c 50 cannot hold -d 40 \\+ -p 8 \\+ -n 4 tokens")
# quantize: -t as everywhere, one summary warning for every requantized tensor.
vramfit_cli_test(cli_quantize_requant_summary ARGS quantize ${VRAMFIT_SHARED}/models/synth-Q8_0.gguf
  ${CMAKE_CURRENT_BINARY_DIR}/cli-requant-Q4_K_S.gguf Q4_K_S -t 1
  OUT "23 of them requantized" ERR "warning: requantizing 23 of 30 tensors"
  NOT_ERR "warning: [^\n]*\n[^\n]*warning: ")

# ---- messages in the user's terms: the flag, the file, the OS reason ----
vramfit_cli_test(cli_run_ctx_negative RC 2 ARGS run -m ${stories} -p hi -c -1 ERR "^vramfit run: error: -c: -1 is below the least value, 1")
vramfit_cli_test(cli_run_batch_zero RC 2 ARGS run -m ${stories} -p hi -b 0 ERR "^vramfit run: error: -b: 0 is below the least value, 1")
vramfit_cli_test(cli_run_model_dir RC 1 ARGS run -m ${VRAMFIT_SHARED} -p hi ERR "^vramfit run: error: '[^']*' is not a regular file\n$")
vramfit_cli_test(cli_run_model_missing RC 1 ARGS run -m /nonexistent/model.gguf -p hi
  ERR "^vramfit run: error: cannot open '/nonexistent/model.gguf': No such file or directory\n$")
# An empty prompt is a prompt: generation starts from BOS.
vramfit_cli_test(cli_run_empty_prompt ARGS run -m ${stories} --prompt= -n 3 -t 1 --seed 1 ERR "prompt: 1 tokens")

# Ctrl-C stops generation after the current token and still prints the timings (exit code 130).
add_test(NAME cli_run_interrupt COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/cli_interrupt.sh
  $<TARGET_FILE:vramfit_cli> ${stories} ${CMAKE_CURRENT_BINARY_DIR}/cli-interrupt)
add_test(NAME cli_stdout_closed COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/cli_stdout_closed.sh
  $<TARGET_FILE:vramfit_cli> ${stories})
vramfit_cli_test(cli_info_write_error RC 1 ARGS info ${stories} STDOUT_FILE /dev/full
  ERR "^vramfit info: error: writing to stdout failed: No space left on device\n$")
# A model file of 330 MB (F16, vocab 70000), written once, for the load bar shown on a terminal.
add_test(NAME cli_synth_big COMMAND vramfit_cli synth --n-embd 1024 --n-layer 2 --n-head 8 --n-ff 2048
  --n-vocab 70000 --type F16 -o ${CMAKE_CURRENT_BINARY_DIR}/cli-big.gguf)
set_tests_properties(cli_synth_big PROPERTIES FIXTURES_SETUP cli_big_model)
add_test(NAME cli_run_load_bar COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/cli_load_bar.sh
  $<TARGET_FILE:vramfit_cli> ${CMAKE_CURRENT_BINARY_DIR}/cli-big.gguf)
set_tests_properties(cli_run_load_bar PROPERTIES FIXTURES_REQUIRED cli_big_model)
add_test(NAME cli_synth_big_remove COMMAND ${CMAKE_COMMAND} -E rm -f ${CMAKE_CURRENT_BINARY_DIR}/cli-big.gguf)
set_tests_properties(cli_synth_big_remove PROPERTIES FIXTURES_CLEANUP cli_big_model)
