// The KEK message is a wire contract between the authority and every device: pin its bytes.

#include "pki/peer_kek.h"

#include <gtest/gtest.h>

namespace devid::pki {
namespace {

TEST(PeerKekMessageTest, IsTheLabelFollowedByTheAudience) {
  EXPECT_EQ(PeerKekMessage("door-1"), "devid peer kekdoor-1");
  EXPECT_EQ(PeerKekMessage(""), "devid peer kek");
}

}  // namespace
}  // namespace devid::pki
