#include "engine/dedupe.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace mbx
