#include "registry/sqlite/snapshot_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace devid::registry::sqlite {
namespace {

TEST(SnapshotCacheTest, Finds_OnlyAtTheCountItWasRemembered) {
  SnapshotCache<std::string> cache;
  EXPECT_FALSE(cache.Find("dev-1", 0).has_value());
  cache.Remember("dev-1", 7, "row at 7");
  EXPECT_EQ(cache.Find("dev-1", 7), "row at 7");
  EXPECT_FALSE(cache.Find("dev-1", 8).has_value()) << "a newer snapshot may differ";
  EXPECT_FALSE(cache.Find("dev-1", 6).has_value()) << "so may an older one";
  EXPECT_FALSE(cache.Find("dev-2", 7).has_value());
}

TEST(SnapshotCacheTest, Remember_AtAHigherCountForgetsTheRest) {
  SnapshotCache<std::string> cache;
  cache.Remember("dev-1", 7, "row at 7");
  cache.Remember("dev-2", 8, "row at 8");
  EXPECT_EQ(cache.Find("dev-2", 8), "row at 8");
  EXPECT_FALSE(cache.Find("dev-1", 8).has_value());
  EXPECT_FALSE(cache.Find("dev-1", 7).has_value());
}

TEST(SnapshotCacheTest, Remember_IgnoresAReaderOnAnOlderSnapshot) {
  SnapshotCache<std::string> cache;
  cache.Remember("dev-1", 8, "row at 8");
  cache.Remember("dev-2", 7, "row at 7");
  EXPECT_FALSE(cache.Find("dev-2", 7).has_value());
  EXPECT_EQ(cache.Find("dev-1", 8), "row at 8");
}

TEST(SnapshotCacheTest, Remember_PastCapacityStartsOver) {
  SnapshotCache<std::string> cache(/*capacity=*/2);
  cache.Remember("dev-1", 1, "a");
  cache.Remember("dev-2", 1, "b");
  cache.Remember("dev-3", 1, "c");
  EXPECT_FALSE(cache.Find("dev-1", 1).has_value());
  EXPECT_FALSE(cache.Find("dev-2", 1).has_value());
  EXPECT_EQ(cache.Find("dev-3", 1), "c");
  cache.Remember("dev-3", 1, "c2");  // replacing an entry is not growing
  EXPECT_EQ(cache.Find("dev-3", 1), "c2");
}

}  // namespace
}  // namespace devid::registry::sqlite
