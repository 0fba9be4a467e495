// vramfit::parse_size: budgets as users write them (issue 11: "11.5" meant 11 bytes, "11.5 GB" was
// refused).
#include <doctest/doctest.h>

#include <cstdint>

#include "vramfit/offload.hpp"

using vramfit::parse_size;

TEST_CASE("parse_size: units in powers of 1000 and 1024, any case") {
  CHECK(parse_size("4096") == 4096u);
  CHECK(parse_size("4096b") == 4096u);
  CHECK(parse_size("12GB") == 12'000'000'000u);
  CHECK(parse_size("12g") == 12'000'000'000u);
  CHECK(parse_size("800MiB") == 800ull << 20);
  CHECK(parse_size("800mib") == 800ull << 20);
  CHECK(parse_size("2KiB") == 2048u);
  CHECK(parse_size("1TiB") == 1ull << 40);
  CHECK(parse_size("3kb") == 3000u);
}

TEST_CASE("parse_size: a fraction with a unit rounds to the nearest byte") {
  CHECK(parse_size("11.5GiB") == 12'348'030'976u);  // 11.5 * 2^30 exactly
  CHECK(parse_size("1.5k") == 1500u);
  CHECK(parse_size("0.5KiB") == 512u);
  CHECK(parse_size("1.0001kb") == 1000u);  // 1000.1 bytes
}

TEST_CASE("parse_size: spaces between the number and the unit, and around, are accepted") {
  CHECK(parse_size("11.5 GB") == 11'500'000'000u);
  CHECK(parse_size("800 MiB") == 800ull << 20);
  CHECK(parse_size(" 6GiB ") == 6ull << 30);
  CHECK(parse_size("6\tGiB") == 6ull << 30);
}

TEST_CASE("parse_size: a fraction of a byte count is no size") {
  CHECK_FALSE(parse_size("11.5"));
  CHECK_FALSE(parse_size("11.5b"));
  CHECK_FALSE(parse_size("0.5 B"));
}

TEST_CASE("parse_size: malformed and out of range") {
  CHECK_FALSE(parse_size(""));
  CHECK_FALSE(parse_size("   "));
  CHECK_FALSE(parse_size("GiB"));
  CHECK_FALSE(parse_size("12XB"));
  CHECK_FALSE(parse_size("-1GiB"));
  CHECK_FALSE(parse_size("1.2.3GiB"));
  CHECK_FALSE(parse_size("1 2GiB"));
  CHECK_FALSE(parse_size("."));
  CHECK_FALSE(parse_size("18446744073709551616"));  // 2^64
  CHECK(parse_size("18446744073709551615") == UINT64_MAX);  // exact, beyond a double's 2^53
  CHECK_FALSE(parse_size("17TiB0"));
  CHECK_FALSE(parse_size("20000000TiB"));  // > 2^64 bytes
  CHECK_FALSE(parse_size("1e9"));
}
