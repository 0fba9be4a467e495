# Warnings for our own code (never for third-party headers).
add_library(vramfit_warnings INTERFACE)
target_compile_options(vramfit_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:C,CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wno-unused-parameter>)
if(VRAMFIT_WERROR)
  target_compile_options(vramfit_warnings INTERFACE
    $<$<COMPILE_LANGUAGE:C,CXX>:-Werror>
    $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings -Xcompiler=-Wall,-Wextra,-Werror>)
endif()

add_library(vramfit_sanitize INTERFACE)
if(VRAMFIT_FUZZ)
  # Coverage instrumentation for libFuzzer in everything; the harnesses link its main.
  target_compile_options(vramfit_sanitize INTERFACE
    $<$<COMPILE_LANGUAGE:C,CXX>:-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer>)
  target_link_options(vramfit_sanitize INTERFACE -fsanitize=address,undefined)
elseif(VRAMFIT_SANITIZE STREQUAL "thread")
  target_compile_options(vramfit_sanitize INTERFACE $<$<COMPILE_LANGUAGE:C,CXX>:-fsanitize=thread -fno-omit-frame-pointer>)
  target_link_options(vramfit_sanitize INTERFACE -fsanitize=thread)
elseif(VRAMFIT_SANITIZE)
  target_compile_options(vramfit_sanitize INTERFACE
    $<$<COMPILE_LANGUAGE:C,CXX>:-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer>)
  target_link_options(vramfit_sanitize INTERFACE -fsanitize=address,undefined)
endif()
