# cmake -DCLI=vramfit -DMODEL=file.gguf -DWORK=dir -DMESSAGES="line;line;/reset;line" [-DARGS="--temp;0;..."]
#       [-DEXPECT_STDERR="regex;regex"] -P cli_chat.cmake
# Drives `vramfit chat` through piped stdin (one message per line) and requires:
#  - exit status 0 and one stats footer on stderr per message answered;
#  - greedy output that is deterministic: a second run prints the same bytes, and a run of the
#    first message alone prints the start of it;
#  - the second message reuses the whole KV cache the first turn left (footer 2's "reused" equals
#    footer 1's context used), and a message after /reset reuses nothing;
#  - when the last message repeats the first one right after /reset, the same answer again;
#  - each EXPECT_STDERR regex found on stderr.
file(MAKE_DIRECTORY ${WORK})
string(REPLACE ";" "\n" input "${MESSAGES}")
file(WRITE ${WORK}/messages.txt "${input}\n")
list(GET MESSAGES 0 first_message)
file(WRITE ${WORK}/first.txt "${first_message}\n")

function(run_chat input_file out_var err_var)
  execute_process(COMMAND ${CLI} chat -m ${MODEL} ${ARGS} INPUT_FILE ${input_file}
    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "vramfit chat failed (${rc}):\n${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
  set(${err_var} "${err}" PARENT_SCOPE)
endfunction()

run_chat(${WORK}/messages.txt out err)
message(STATUS "stdout:\n${out}\nstderr:\n${err}")
run_chat(${WORK}/messages.txt out_again err_again)
if(NOT out STREQUAL out_again)
  message(FATAL_ERROR "greedy chat is not deterministic:\n--- run 1:\n${out}\n--- run 2:\n${out_again}")
endif()
run_chat(${WORK}/first.txt first_answer first_err)
string(LENGTH "${first_answer}" first_length)
string(SUBSTRING "${out}" 0 ${first_length} start)
if(NOT start STREQUAL first_answer OR NOT first_answer MATCHES "\n$")
  message(FATAL_ERROR "the first answer differs when it is the only message:\n${first_answer}")
endif()

# One footer per answered message: [G tokens, R tok/s | prompt: U reused, D decoded, S tok/s | context C/N ...]
set(footer_regex "([0-9]+) tokens, [0-9.]+ tok/s \\| prompt: ([0-9]+) reused, ([0-9]+) decoded, [0-9.]+ tok/s \\| context ([0-9]+)/([0-9]+)")
string(REGEX MATCHALL "${footer_regex}" footers "${err}")
set(answered ${MESSAGES})
list(REMOVE_ITEM answered "/reset")
list(LENGTH answered n_answered)
list(LENGTH footers n_footers)
if(NOT n_footers EQUAL n_answered)
  message(FATAL_ERROR "${n_footers} stats footers for ${n_answered} messages")
endif()
set(reused "")
set(context "")
foreach(footer IN LISTS footers)
  string(REGEX MATCH "${footer_regex}" _ "${footer}")
  list(APPEND reused ${CMAKE_MATCH_2})
  list(APPEND context ${CMAKE_MATCH_4})
endforeach()
list(GET reused 1 reused_2)
list(GET context 0 context_1)
list(GET MESSAGES 1 second_message)
if(NOT second_message STREQUAL "/reset" AND NOT reused_2 EQUAL context_1)
  message(FATAL_ERROR "turn 2 reused ${reused_2} tokens of the ${context_1} turn 1 left in the cache")
endif()
message(STATUS "turn 2 reused all ${context_1} tokens of turn 1")

# A message right after /reset starts from an empty cache.
set(answer 0)
set(after_reset FALSE)
foreach(line IN LISTS MESSAGES)
  if(line STREQUAL "/reset")
    set(after_reset TRUE)
    continue()
  endif()
  list(GET reused ${answer} r)
  if(after_reset AND NOT r EQUAL 0)
    message(FATAL_ERROR "the message after /reset reused ${r} tokens")
  endif()
  set(after_reset FALSE)
  math(EXPR answer "${answer} + 1")
endforeach()

list(LENGTH MESSAGES n_messages)
math(EXPR before_last "${n_messages} - 2")
list(GET MESSAGES -1 last_message)
list(GET MESSAGES ${before_last} reset_line)
if(reset_line STREQUAL "/reset" AND last_message STREQUAL first_message)
  string(LENGTH "${out}" out_length)
  math(EXPR tail_at "${out_length} - ${first_length}")
  string(SUBSTRING "${out}" ${tail_at} -1 tail)
  if(NOT tail STREQUAL first_answer)
    message(FATAL_ERROR "after /reset the first message got another answer:\n${tail}")
  endif()
  message(STATUS "after /reset, the same answer to the same message")
endif()

foreach(regex IN LISTS EXPECT_STDERR)
  if(NOT err MATCHES "${regex}")
    message(FATAL_ERROR "stderr lacks '${regex}'")
  endif()
endforeach()
