#pragma once

#include <string_view>

namespace devid::gateway {

// TopicAccess is what a client asks to do with a topic (Mosquitto's MOSQ_ACL_* access kinds).
enum class TopicAccess {
  kPublish,      // the client publishes to a topic name
  kSubscribe,    // the client subscribes with a topic filter (may hold + and #)
  kReceive,      // the broker delivers a message on a topic name to the client
  kUnsubscribe,  // the client removes a subscription
};

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

// IsValidDeviceId tells whether device_id can own MQTT topics: 1 to 128 bytes, none of them a
// control character or one of `/`, `+`, `#` (which would widen the device's topics).
bool IsValidDeviceId(std::string_view device_id);

}  // namespace devid::gateway
