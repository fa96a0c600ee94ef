#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace devid::gateway {

// TopicAccess is what a client asks to do with a topic (Mosquitto's MOSQ_ACL_* access kinds).
enum class TopicAccess {
  kPublish,      // the client publishes to a topic name
  kSubscribe,    // the client subscribes with a topic filter (may hold + and #)
  kReceive,      // the broker delivers a message on a topic name to the client
  kUnsubscribe,  // the client removes a subscription
};

// TopicLayout is the topics devices may use, as roots: a device may publish below a publish root
// and subscribe to (and receive on) filters below a receive root. `{deviceId}` in a root stands
// for the device's own ID and fills one whole topic level.
struct TopicLayout {
  std::vector<std::string> publish_roots;
  std::vector<std::string> receive_roots;

  // IotHub is the IoT Hub MQTT layout (protocol notes §5.2), the default.
  static TopicLayout IotHub();
};

// ParseTopicRoots reads a space-separated list of root templates, the value of the plugin option
// named option (publish_topics, receive_topics). It fails with kInvalidArgument naming the option
// and the template when the list is empty or a template starts or ends with '/', has an empty
// level, holds '+', '#', a NUL or a brace other than in a whole level `{deviceId}`, or has no
// `{deviceId}` level while not starting with '$' (only a $-root, which `#` does not match, may be
// shared by all devices).
Result<std::vector<std::string>> ParseTopicRoots(std::string_view option, std::string_view list);

// IsTopicAllowed tells whether the device device_id may perform access on topic under layout: a
// topic name strictly below one of its roots (with device_id for `{deviceId}`), or a filter whose
// wildcards all lie below such a root. Unsubscribing is always allowed; everything else, and any
// device_id that IsValidDeviceId rejects, is denied.
bool IsTopicAllowed(const TopicLayout& layout, std::string_view device_id, TopicAccess access,
                    std::string_view topic);

// IsTopicAllowed tells whether the device device_id may perform access on topic under the IoT Hub
// MQTT layout (protocol notes §5.2). A device may publish only telemetry to
// `devices/{id}/messages/events/…`, twin requests `$iothub/twin/GET/…` and
// `$iothub/twin/PATCH/properties/reported/…`, and method responses `$iothub/methods/res/…`; it
// may subscribe to (and receive on) only `devices/{id}/messages/devicebound/…`,
// `$iothub/twin/res/…`, `$iothub/twin/PATCH/properties/desired/…` and `$iothub/methods/POST/…`.
// A subscription filter must name one of those roots literally (wildcards only below it), so
// `devices/#`, `devices/+/…` and `#` are refused. Unsubscribing is always allowed. Everything else,
// and any device_id that IsValidDeviceId rejects, is denied.
bool IsTopicAllowed(std::string_view device_id, TopicAccess access, std::string_view topic);

// IsBackEndTopicAllowed tells whether a back end (a service client, BackEndAuthenticator) may
// perform access on topic under layout. It sees every device's own topics, from the other side:
// it may subscribe to and receive what devices publish below a root with a `{deviceId}` level
// (telemetry, `devices/+/messages/events/#` in the IoT Hub layout; `+` or one device's ID in that
// level) and publish to a device below a receive root with a `{deviceId}` level (cloud-to-device,
// `devices/{id}/messages/devicebound/…`). Shared $-roots, wildcards at or above the device level
// (`#`, `devices/#`) and everything else are denied; unsubscribing is always allowed.
bool IsBackEndTopicAllowed(const TopicLayout& layout, TopicAccess access, std::string_view topic);

// IsValidDeviceId tells whether device_id can own MQTT topics: 1 to 128 bytes, none of them a
// control character or one of `/`, `+`, `#` (which would widen the device's topics).
bool IsValidDeviceId(std::string_view device_id);

}  // namespace devid::gateway
