# cmake -DLIBRARY=libvramfit.so -DEXPECTED=capi/vramfit.symbols -DNM=nm -P check_symbols.cmake
# Fails when the C symbols the library exports differ from the checked-in list (an accidental ABI
# change), or when it exports anything outside the C ABI and the vramfit:: C++ API.
execute_process(COMMAND ${NM} -D --defined-only --format=posix ${LIBRARY}
  OUTPUT_VARIABLE nm_output RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} failed on ${LIBRARY}")
endif()
string(REPLACE "\n" ";" lines "${nm_output}")
set(c_symbols "")
set(foreign "")
foreach(line IN LISTS lines)
  string(REGEX REPLACE " .*" "" name "${line}")  # posix format: "name type value size"
  string(REGEX REPLACE "@.*" "" name "${name}")  # the version node: name@@VRAMFIT_1
  if(name STREQUAL "" OR name STREQUAL "VRAMFIT_1")
    continue()
  elseif(name MATCHES "^vramfit_")
    list(APPEND c_symbols ${name})
  elseif(NOT name MATCHES "^_Z(N|NK|TIN|TSN|TVN)7vramfit")
    list(APPEND foreign ${name})
  endif()
endforeach()
list(SORT c_symbols)

file(STRINGS ${EXPECTED} expected REGEX "^vramfit_")
list(SORT expected)
set(missing ${expected})
list(REMOVE_ITEM missing ${c_symbols})
set(added ${c_symbols})
list(REMOVE_ITEM added ${expected})
if(missing OR added OR foreign)
  message(FATAL_ERROR "exported symbols differ from ${EXPECTED}:\n"
    "  missing (an ABI break): ${missing}\n"
    "  not in the list (add them on purpose): ${added}\n"
    "  outside vramfit_* and vramfit:: (a visibility leak): ${foreign}")
endif()
list(LENGTH c_symbols n)
message(STATUS "${n} C symbols match ${EXPECTED}")
