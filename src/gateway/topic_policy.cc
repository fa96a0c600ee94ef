#include "gateway/topic_policy.h"

#include <array>
#include <string>

namespace devid::gateway {
namespace {

constexpr size_t kMaxDeviceIdLength = 128;  // IoT Hub's limit on device IDs

bool HasWildcard(std::string_view topic) {
  return topic.find_first_of("+#") != std::string_view::npos;
}

// UnderRoot tells whether topic lies strictly below root ("root/…"). root is compared literally,
// so a wildcard can only appear in the part after it.
bool UnderRoot(std::string_view topic, std::string_view root) {
  return topic.size() > root.size() && topic.starts_with(root) && topic[root.size()] == '/';
}

// Topics a device may publish to, as roots; the device's own telemetry root is added per call.
constexpr std::array<std::string_view, 3> kSharedPublishRoots = {
    "$iothub/twin/GET",
    "$iothub/twin/PATCH/properties/reported",
    "$iothub/methods/res",
};

// Topics a device may subscribe to and receive on; its own devicebound root is added per call.
// The $iothub roots carry no device ID: IoT Hub routes them per connection, and on a shared broker
// only the back end may publish to them (no device is allowed to).
constexpr std::array<std::string_view, 3> kSharedReceiveRoots = {
    "$iothub/twin/res",
    "$iothub/twin/PATCH/properties/desired",
    "$iothub/methods/POST",
};

template <size_t N>
bool UnderAny(std::string_view topic, const std::array<std::string_view, N>& roots) {
  for (std::string_view root : roots) {
    if (UnderRoot(topic, root)) return true;
  }
  return false;
}

}  // namespace

bool IsValidDeviceId(std::string_view device_id) {
  if (device_id.empty() || device_id.size() > kMaxDeviceIdLength) return false;
  for (unsigned char c : device_id) {
    if (c < 0x20 || c == 0x7f || c == '/' || c == '+' || c == '#') return false;
  }
  return true;
}

bool IsTopicAllowed(std::string_view device_id, TopicAccess access, std::string_view topic) {
  if (!IsValidDeviceId(device_id)) return false;
  std::string own = "devices/" + std::string(device_id) + "/messages/";
  switch (access) {
    case TopicAccess::kUnsubscribe:
      return true;
    case TopicAccess::kPublish:
      if (HasWildcard(topic)) return false;
      return UnderRoot(topic, own + "events") || UnderAny(topic, kSharedPublishRoots);
    case TopicAccess::kReceive:
      if (HasWildcard(topic)) return false;
      [[fallthrough]];
    case TopicAccess::kSubscribe:
      return UnderRoot(topic, own + "devicebound") || UnderAny(topic, kSharedReceiveRoots);
  }
  return false;
}

}  // namespace devid::gateway
