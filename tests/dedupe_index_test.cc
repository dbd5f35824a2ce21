#include <gtest/gtest.h>
#include <malloc.h>

#include <algorithm>
#include <map>
#include <random>
#include <tuple>
#include <vector>

#include "engine/dedupe.h"

namespace mbx {
namespace {

Digest D(uint8_t v) {
  Digest d{};
  d[0] = v;
  return d;
}
HeaderKey K(uint8_t v) {
  HeaderKey k{};
  k[0] = v;
  return k;
}

TEST(DedupeIndexTest, HeaderKeyCollisionWithDifferentDigestIsNotDuplicate) {
  DedupeIndex idx(DedupeRule::kAuto);
  auto no_load = [](uint64_t) -> Result<std::string> { return Status::NotFound("unused"); };
  EXPECT_FALSE(*idx.CheckAndInsert(1, K(1), D(1), no_load));
  EXPECT_FALSE(*idx.CheckAndInsert(1, K(1), D(2), no_load));
  EXPECT_TRUE(*idx.CheckAndInsert(1, K(1), D(2), no_load));
  EXPECT_TRUE(*idx.CheckAndInsert(1, K(1), D(1), no_load));
  EXPECT_FALSE(*idx.CheckAndInsert(2, K(1), D(1), no_load));  // another scope
}

TEST(DedupeIndexTest, ExistingDigestsAreLoadedLazilyOnlyOnCollision) {
  DedupeIndex idx(DedupeRule::kAuto);
  const std::string existing = "Subject: x\n\nbody\n";
  idx.AddExisting(1, K(7), 42);
  idx.AddExisting(1, K(8), 43);
  int loads = 0;
  auto load = [&](uint64_t loc) -> Result<std::string> {
    ++loads;
    EXPECT_EQ(loc, 42u);
    return existing;
  };
  EXPECT_FALSE(*idx.CheckAndInsert(1, K(9), D(1), load));
  EXPECT_EQ(loads, 0);
  EXPECT_TRUE(*idx.CheckAndInsert(1, K(7), ComputeDigest(existing, DedupeRule::kAuto), load));
  EXPECT_EQ(loads, 1);
  EXPECT_FALSE(*idx.CheckAndInsert(1, K(7), D(3), load));
  EXPECT_EQ(loads, 1);  // digest cached
}

TEST(DedupeIndexTest, LoaderErrorPropagates) {
  DedupeIndex idx(DedupeRule::kAuto);
  idx.AddExisting(0, K(1), 0);
  auto bad = [](uint64_t) -> Result<std::string> { return Status::IOError("gone"); };
  EXPECT_FALSE(idx.CheckAndInsert(0, K(1), D(1), bad).ok());
}

TEST(DedupeIndexTest, RollbackForgetsUncommittedInsertions) {
  DedupeIndex idx(DedupeRule::kAuto);
  auto no_load = [](uint64_t) -> Result<std::string> { return Status::NotFound("unused"); };
  EXPECT_FALSE(*idx.CheckAndInsert(0, K(1), D(1), no_load));
  idx.Commit();
  EXPECT_FALSE(*idx.CheckAndInsert(0, K(1), D(2), no_load));
  EXPECT_FALSE(*idx.CheckAndInsert(0, K(2), D(3), no_load));
  idx.Rollback();
  EXPECT_TRUE(*idx.CheckAndInsert(0, K(1), D(1), no_load));
  EXPECT_FALSE(*idx.CheckAndInsert(0, K(1), D(2), no_load));
  idx.UndoLast();
  EXPECT_FALSE(*idx.CheckAndInsert(0, K(1), D(2), no_load));
  EXPECT_FALSE(*idx.CheckAndInsert(0, K(2), D(3), no_load));
}

// Random keys and digests, as SHA-256 output would be.
struct Random {
  std::mt19937_64 rng;
  explicit Random(uint64_t seed) : rng(seed) {}
  template <typename A>
  A Bytes() {
    A a{};
    for (size_t i = 0; i < a.size(); i += 8) {
      uint64_t v = rng();
      for (size_t j = 0; j < 8 && i + j < a.size(); ++j)
        a[i + j] = static_cast<uint8_t>(v >> (8 * j));
    }
    return a;
  }
};

// Issue 7: the dedupe index costs at most 64 bytes per message, at any size.
TEST(DedupeIndexTest, CostsAtMostSixtyFourBytesPerMessage) {
  auto no_load = [](uint64_t) -> Result<std::string> { return Status::NotFound("unused"); };
  for (size_t n : {size_t{100000}, size_t{1000000}}) {
    Random r(n);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    // Large blocks are mmapped: hblkhd counts them, uordblks the rest.
    const size_t heap_before = mallinfo2().uordblks + mallinfo2().hblkhd;
#endif
    {
      DedupeIndex idx(DedupeRule::kAuto);
      for (size_t i = 0; i < n; ++i) {
        ASSERT_FALSE(*idx.CheckAndInsert(static_cast<uint32_t>(i % 5), r.Bytes<HeaderKey>(),
                                         r.Bytes<Digest>(), no_load));
        if (i % 1000 == 0) idx.Commit();
      }
      EXPECT_EQ(idx.size(), n);
      EXPECT_LE(idx.MemoryBytes(), n * 64)
          << n << " messages: " << idx.MemoryBytes() / n << " bytes each";
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
      // What the allocator really handed out, not what the index thinks it holds.
      const size_t used = mallinfo2().uordblks + mallinfo2().hblkhd - heap_before;
      EXPECT_LE(used, n * 64) << n << " messages: " << used / n << " heap bytes each";
#endif
    }
  }
}

// The open-addressing table against a plain model, with many collisions,
// rollbacks and undos (each one a backward-shift deletion).
TEST(DedupeIndexTest, AgreesWithAModelUnderRandomOperations) {
  auto no_load = [](uint64_t) -> Result<std::string> { return Status::NotFound("unused"); };
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    DedupeIndex idx(DedupeRule::kAuto);
    // Model: (scope, key, digest) -> count; committed vs pending insertions.
    std::multimap<std::tuple<uint32_t, uint8_t, uint8_t>, int> committed;
    std::vector<std::tuple<uint32_t, uint8_t, uint8_t>> pending;
    auto in_model = [&](const std::tuple<uint32_t, uint8_t, uint8_t>& t) {
      return committed.count(t) > 0 ||
             std::find(pending.begin(), pending.end(), t) != pending.end();
    };
    for (int step = 0; step < 5000; ++step) {
      int op = static_cast<int>(rng() % 100);
      if (op < 80) {
        // Few keys and digests: chains of equal slots and many duplicates.
        auto t = std::make_tuple(static_cast<uint32_t>(rng() % 3), static_cast<uint8_t>(rng() % 40),
                                 static_cast<uint8_t>(rng() % 3));
        HeaderKey k{};
        k[0] = std::get<1>(t);
        Digest d{};
        d[0] = std::get<2>(t);
        bool want = in_model(t);
        auto got = idx.CheckAndInsert(std::get<0>(t), k, d, no_load);
        ASSERT_TRUE(got.ok());
        ASSERT_EQ(*got, want) << "seed " << seed << " step " << step;
        if (!want) pending.push_back(t);
      } else if (op < 90) {
        idx.Commit();
        for (const auto& t : pending) committed.emplace(t, 0);
        pending.clear();
      } else if (op < 95) {
        idx.Rollback();
        pending.clear();
      } else {
        idx.UndoLast();
        if (!pending.empty()) pending.pop_back();
      }
      ASSERT_EQ(idx.size(), committed.size() + pending.size());
    }
  }
}

}  // namespace
}  // namespace mbx
