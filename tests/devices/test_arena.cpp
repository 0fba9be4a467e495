#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "model/arena.hpp"
#include "vramfit/error.hpp"

using vramfit::Error;
using vramfit::ErrorCode;
using vramfit::model::Arena;

namespace {

// Runs f, which must throw Error(budget_exceeded); returns its message.
template <class F>
std::string budget_error_of(F &&f) {
  try {
    f();
  } catch (const Error &e) {
    CHECK(e.code() == ErrorCode::budget_exceeded);
    return e.what();
  }
  FAIL("expected Error(budget_exceeded)");
  return {};
}

}  // namespace

TEST_CASE("arena hands out aligned, disjoint ranges and counts rounded sizes") {
  Arena arena(4096, 256, "test");
  const uint64_t a = arena.reserve(100, "a");
  const uint64_t b = arena.reserve(256, "b");
  const uint64_t c = arena.reserve(0, "zero");  // still a distinct offset
  CHECK(a % 256 == 0);
  CHECK(b % 256 == 0);
  CHECK(c % 256 == 0);
  CHECK(a != b);
  CHECK(b != c);
  CHECK(a != c);
  CHECK(arena.in_use() == 3 * 256);
  CHECK(arena.n_live() == 3);
  CHECK(arena.rounded_size(257) == 512);
  CHECK(arena.purpose_of(b) == "b");
  CHECK(arena.purpose_of(12345).empty());
}

TEST_CASE("reserving past the budget throws budget_exceeded, names everything, reserves nothing") {
  Arena arena(1000, 64, "sim");
  arena.reserve(640, "blk.0.attn_q.weight");
  const std::string message = budget_error_of([&] { arena.reserve(500, "blk.1.ffn_down.weight"); });
  CHECK(message.find("sim") != std::string::npos);
  CHECK(message.find("blk.1.ffn_down.weight") != std::string::npos);
  CHECK(message.find("500 bytes") != std::string::npos);   // requested
  CHECK(message.find("640 of 1000") != std::string::npos);  // in use, budget
  CHECK(arena.in_use() == 640);
  CHECK(arena.n_live() == 1);
  // Still usable: what fits still fits, up to the last byte of the budget.
  CHECK(arena.largest_free() == 320);
  arena.reserve(320, "fits");
  CHECK(arena.in_use() == 960);
  budget_error_of([&] { arena.reserve(1, "one more"); });
}

TEST_CASE("a request larger than any representable size is refused, not wrapped around") {
  Arena arena(1 << 20, 256);
  budget_error_of([&] { arena.reserve(UINT64_MAX, "huge"); });
  budget_error_of([&] { arena.reserve(UINT64_MAX - 100, "huge"); });
  CHECK(arena.in_use() == 0);
}

TEST_CASE("release returns bytes, keeps the peak, and refuses unknown or double releases") {
  Arena arena(8192, 256);
  const uint64_t a = arena.reserve(1000, "a");  // 1024
  const uint64_t b = arena.reserve(2000, "b");  // 2048
  CHECK(arena.peak() == 3072);
  CHECK(arena.release(a));
  CHECK(arena.in_use() == 2048);
  CHECK(arena.peak() == 3072);
  CHECK_FALSE(arena.release(a));
  CHECK_FALSE(arena.release(7));
  CHECK(arena.in_use() == 2048);
  CHECK(arena.release(b));
  CHECK(arena.in_use() == 0);
  CHECK(arena.n_live() == 0);
  CHECK(arena.peak() == 3072);
  // Everything coalesced back into one range: the whole budget is available again.
  CHECK(arena.largest_free() == 8192);
  CHECK(arena.reserve(8192, "all") == 0);
}

TEST_CASE("fragmentation is reported as such, and freed neighbours coalesce") {
  Arena arena(4 * 256, 256);
  const uint64_t r0 = arena.reserve(256, "r0");
  const uint64_t r1 = arena.reserve(256, "r1");
  const uint64_t r2 = arena.reserve(256, "r2");
  arena.reserve(256, "r3");
  arena.release(r0);
  arena.release(r2);
  // 512 bytes free, but in two ranges of 256.
  const std::string message = budget_error_of([&] { arena.reserve(512, "pair"); });
  CHECK(message.find("fragmented") != std::string::npos);
  arena.release(r1);  // r0, r1, r2 merge into one range of 768
  CHECK(arena.largest_free() == 768);
  CHECK(arena.reserve(768, "triple") == r0);
}

TEST_CASE("alignment must be a power of two") {
  CHECK_THROWS_AS(Arena(1024, 0), Error);
  CHECK_THROWS_AS(Arena(1024, 48), Error);
}

TEST_CASE("random reserve/release keeps ranges disjoint, in budget, and the books balanced") {
  const uint64_t budget = 1 << 20;
  Arena arena(budget, 128);
  std::mt19937 rng(7);
  std::vector<std::pair<uint64_t, uint64_t>> live;  // offset, rounded size
  uint64_t expected_in_use = 0, expected_peak = 0;
  int refused = 0;
  for (int step = 0; step < 4000; ++step) {
    if (!live.empty() && rng() % 3 == 0) {
      const size_t i = rng() % live.size();
      REQUIRE(arena.release(live[i].first));
      expected_in_use -= live[i].second;
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      const uint64_t bytes = rng() % 40000;
      try {
        const uint64_t offset = arena.reserve(bytes, "random");
        const uint64_t size = arena.rounded_size(bytes);
        REQUIRE(offset % 128 == 0);
        REQUIRE(offset + size <= budget);
        for (const auto &[o, s] : live) REQUIRE((offset + size <= o || o + s <= offset));
        live.emplace_back(offset, size);
        expected_in_use += size;
        expected_peak = std::max(expected_peak, expected_in_use);
      } catch (const Error &e) {
        REQUIRE(e.code() == ErrorCode::budget_exceeded);
        REQUIRE(arena.rounded_size(bytes) > arena.largest_free());
        ++refused;
      }
    }
    REQUIRE(arena.in_use() == expected_in_use);
    REQUIRE(arena.n_live() == live.size());
  }
  CHECK(arena.peak() == expected_peak);
  CHECK(refused > 0);  // the budget was actually hit
  for (const auto &[o, s] : live) arena.release(o);
  CHECK(arena.largest_free() == budget);
}
