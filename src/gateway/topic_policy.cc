#include "gateway/topic_policy.h"

#include <algorithm>
#include <string>
#include <vector>

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

constexpr std::string_view kDeviceIdPlaceholder = "{deviceId}";

// Expand returns root with device_id in place of each {deviceId} level.
std::string Expand(std::string_view root, std::string_view device_id) {
  std::string out;
  size_t at = 0;
  for (size_t found; (found = root.find(kDeviceIdPlaceholder, at)) != std::string_view::npos;
       at = found + kDeviceIdPlaceholder.size()) {
    out.append(root.substr(at, found - at));
    out.append(device_id);
  }
  out.append(root.substr(at));
  return out;
}

bool UnderAny(std::string_view topic, const std::vector<std::string>& roots,
              std::string_view device_id) {
  for (const std::string& root : roots) {
    if (UnderRoot(topic, Expand(root, device_id))) return true;
  }
  return false;
}

// UnderRootOfSomeDevice tells whether topic lies strictly below root, a template with a
// `{deviceId}` level, for some device: each literal level equal, the `{deviceId}` level a valid
// device ID or, when plus_allowed, the single-level wildcard '+'.
bool UnderRootOfSomeDevice(std::string_view topic, std::string_view root, bool plus_allowed) {
  if (root.find(kDeviceIdPlaceholder) == std::string_view::npos) return false;
  size_t root_at = 0;
  size_t topic_at = 0;
  while (root_at <= root.size()) {
    size_t root_end = std::min(root.find('/', root_at), root.size());
    if (topic_at > topic.size()) return false;
    size_t topic_end = std::min(topic.find('/', topic_at), topic.size());
    std::string_view want = root.substr(root_at, root_end - root_at);
    std::string_view level = topic.substr(topic_at, topic_end - topic_at);
    bool matches = want == kDeviceIdPlaceholder
                       ? (plus_allowed && level == "+") || IsValidDeviceId(level)
                       : want == level;
    if (!matches) return false;
    root_at = root_end + 1;
    topic_at = topic_end + 1;
  }
  // Strictly below: the topic went on past the root's last level.
  return topic_at <= topic.size();
}

bool UnderRootOfSomeDevice(std::string_view topic, const std::vector<std::string>& roots,
                           bool plus_allowed) {
  for (const std::string& root : roots) {
    if (UnderRootOfSomeDevice(topic, root, plus_allowed)) return true;
  }
  return false;
}

Error BadTemplate(std::string_view option, std::string_view root, std::string_view why) {
  return InvalidArgument("devid plugin option plugin_opt_" + std::string(option) +
                         ": topic template \"" + std::string(root) + "\" " + std::string(why));
}

// CheckTemplate enforces TopicLayout::Parse's rules on one root.
Status CheckTemplate(std::string_view option, std::string_view root) {
  if (root.starts_with('/') || root.ends_with('/') || root.find("//") != std::string_view::npos) {
    return std::unexpected(BadTemplate(option, root, "has an empty topic level"));
  }
  if (root.find_first_of(std::string_view("+#\0", 3)) != std::string_view::npos) {
    return std::unexpected(BadTemplate(option, root, "holds a wildcard or NUL"));
  }
  bool names_device = false;
  size_t level_start = 0;
  while (level_start <= root.size()) {
    size_t level_end = root.find('/', level_start);
    if (level_end == std::string_view::npos) level_end = root.size();
    std::string_view level = root.substr(level_start, level_end - level_start);
    if (level == kDeviceIdPlaceholder) {
      names_device = true;
    } else if (level.find_first_of("{}") != std::string_view::npos) {
      return std::unexpected(
          BadTemplate(option, root, "may hold braces only as a whole level {deviceId}"));
    }
    level_start = level_end + 1;
  }
  if (!names_device && !root.starts_with('$')) {
    return std::unexpected(BadTemplate(
        option, root, "has no {deviceId} level (only $-roots may be shared by all devices)"));
  }
  return Ok();
}

}  // namespace

Result<std::vector<std::string>> ParseTopicRoots(std::string_view option, std::string_view list) {
  std::vector<std::string> roots;
  size_t at = 0;
  while (at < list.size()) {
    size_t end = list.find(' ', at);
    if (end == std::string_view::npos) end = list.size();
    std::string_view root = list.substr(at, end - at);
    if (!root.empty()) {
      DEVID_TRY(CheckTemplate(option, root));
      roots.emplace_back(root);
    }
    at = end + 1;
  }
  if (roots.empty()) {
    return std::unexpected(InvalidArgument("devid plugin option plugin_opt_" + std::string(option) +
                                           ": no topic template given"));
  }
  return roots;
}

bool IsValidDeviceId(std::string_view device_id) {
  if (device_id.empty() || device_id.size() > kMaxDeviceIdLength) return false;
  for (unsigned char c : device_id) {
    if (c < 0x20 || c == 0x7f || c == '/' || c == '+' || c == '#') return false;
  }
  return true;
}

TopicLayout TopicLayout::IotHub() {
  // The $iothub roots carry no device ID: IoT Hub routes them per connection, and on a shared
  // broker only the back end may publish to the receive ones (no device is allowed to).
  return TopicLayout{
      .publish_roots = {"devices/{deviceId}/messages/events", "$iothub/twin/GET",
                        "$iothub/twin/PATCH/properties/reported", "$iothub/methods/res"},
      .receive_roots = {"devices/{deviceId}/messages/devicebound", "$iothub/twin/res",
                        "$iothub/twin/PATCH/properties/desired", "$iothub/methods/POST"},
  };
}

bool IsTopicAllowed(const TopicLayout& layout, std::string_view device_id, TopicAccess access,
                    std::string_view topic) {
  if (!IsValidDeviceId(device_id)) return false;
  switch (access) {
    case TopicAccess::kUnsubscribe:
      return true;
    case TopicAccess::kPublish:
      if (HasWildcard(topic)) return false;
      return UnderAny(topic, layout.publish_roots, device_id);
    case TopicAccess::kReceive:
      if (HasWildcard(topic)) return false;
      [[fallthrough]];
    case TopicAccess::kSubscribe:
      return UnderAny(topic, layout.receive_roots, device_id);
  }
  return false;
}

bool IsBackEndTopicAllowed(const TopicLayout& layout, TopicAccess access, std::string_view topic) {
  switch (access) {
    case TopicAccess::kUnsubscribe:
      return true;
    case TopicAccess::kPublish:
      if (HasWildcard(topic)) return false;
      return UnderRootOfSomeDevice(topic, layout.receive_roots, /*plus_allowed=*/false);
    case TopicAccess::kReceive:
      if (HasWildcard(topic)) return false;
      return UnderRootOfSomeDevice(topic, layout.publish_roots, /*plus_allowed=*/false);
    case TopicAccess::kSubscribe:
      return UnderRootOfSomeDevice(topic, layout.publish_roots, /*plus_allowed=*/true);
  }
  return false;
}

bool IsTopicAllowed(std::string_view device_id, TopicAccess access, std::string_view topic) {
  static const TopicLayout* const iot_hub = new TopicLayout(TopicLayout::IotHub());
  return IsTopicAllowed(*iot_hub, device_id, access, topic);
}

}  // namespace devid::gateway
