# Each folder of lib/ is one component: an OBJECT library named vramfit_<name>.
# Object files of an OBJECT library reach only targets that link it directly, so components
# record their dependencies and vramfit_link_components() links the whole closure.

function(vramfit_add_component name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LIBS" ${ARGN})
  if(NOT ARG_SOURCES)
    message(STATUS "vramfit: component ${name} has no sources yet; skipped")
    return()
  endif()
  add_library(vramfit_${name} OBJECT ${ARG_SOURCES})
  target_include_directories(vramfit_${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/lib>
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/capi>)
  target_compile_definitions(vramfit_${name} PRIVATE VRAMFIT_BUILDING_LIBRARY)
  target_link_libraries(vramfit_${name} PRIVATE vramfit_warnings PUBLIC vramfit_sanitize)
  foreach(dep IN LISTS ARG_DEPS)
    if(NOT TARGET vramfit_${dep})
      message(FATAL_ERROR "component ${name} depends on ${dep}, which is not defined (yet)")
    endif()
    target_link_libraries(vramfit_${name} PUBLIC vramfit_${dep})
  endforeach()
  if(ARG_LIBS)
    target_link_libraries(vramfit_${name} PUBLIC ${ARG_LIBS})
  endif()
  set_property(GLOBAL PROPERTY VRAMFIT_DEPS_${name} ${ARG_DEPS})
  set_property(GLOBAL APPEND PROPERTY VRAMFIT_COMPONENTS ${name})
endfunction()

function(_vramfit_closure out)
  set(result "")
  set(todo ${ARGN})
  while(todo)
    list(POP_FRONT todo c)
    if(NOT c IN_LIST result)
      list(APPEND result ${c})
      get_property(deps GLOBAL PROPERTY VRAMFIT_DEPS_${c})
      list(APPEND todo ${deps})
    endif()
  endwhile()
  set(${out} ${result} PARENT_SCOPE)
endfunction()

# vramfit_link_components(target comp...) links the objects of comp and everything it needs.
function(vramfit_link_components target)
  _vramfit_closure(all ${ARGN})
  foreach(c IN LISTS all)
    if(TARGET vramfit_${c})
      target_link_libraries(${target} PRIVATE vramfit_${c})
    endif()
  endforeach()
endfunction()

# vramfit_add_test(name SOURCES ... COMPONENTS ...): a doctest executable run by ctest.
function(vramfit_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;COMPONENTS;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES} ${PROJECT_SOURCE_DIR}/tests/doctest_main.cpp)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE doctest::doctest vramfit_warnings vramfit_sanitize ${ARG_LIBS})
  vramfit_link_components(${name} ${ARG_COMPONENTS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${ARG_TIMEOUT}
    ENVIRONMENT "VRAMFIT_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()
