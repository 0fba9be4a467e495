// Small helpers shared by the tests.
#pragma once

#include "vramfit/error.hpp"

namespace vramfit::test {

// The code of the Error that `fn` throws; ErrorCode::internal when it throws none, so a CHECK
// comparing it with the expected code fails.
inline ErrorCode error_code_of(auto &&fn) {
  try {
    fn();
  } catch (const Error &e) {
    return e.code();
  }
  return ErrorCode::internal;
}

}  // namespace vramfit::test
