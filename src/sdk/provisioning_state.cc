#include "devid/provisioning_state.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "base/file.h"

namespace devid::sdk {

using nlohmann::json;

Result<std::optional<Assignment>> LoadAssignment(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::optional<Assignment>();
  DEVID_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  json saved = json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto field = [&saved](const char* name) -> const json* {
    auto it = saved.find(name);
    return it != saved.end() && it->is_string() ? &*it : nullptr;
  };
  const json* registration_id = saved.is_object() ? field("registrationId") : nullptr;
  const json* hub = saved.is_object() ? field("assignedHub") : nullptr;
  const json* device_id = saved.is_object() ? field("deviceId") : nullptr;
  if (registration_id == nullptr || hub == nullptr || device_id == nullptr) {
    return std::unexpected(InvalidArgument(
        "the provisioning state " + path +
        " is not one devid wrote (it needs registrationId, assignedHub and deviceId)"));
  }
  Assignment out;
  out.registration_id = registration_id->get<std::string>();
  out.assigned_hub = hub->get<std::string>();
  out.device_id = device_id->get<std::string>();
  if (const json* substatus = field("substatus")) out.substatus = substatus->get<std::string>();
  return std::optional<Assignment>(std::move(out));
}

Status SaveAssignment(const std::string& path, const Assignment& assignment) {
  json saved = {{"registrationId", assignment.registration_id},
                {"assignedHub", assignment.assigned_hub},
                {"deviceId", assignment.device_id},
                {"substatus", assignment.substatus}};
  return WriteFileAtomically(path, saved.dump(2) + "\n", 0600);
}

bool HubMoved(const std::optional<Assignment>& previous, const Assignment& current) {
  return previous && previous->assigned_hub != current.assigned_hub;
}

}  // namespace devid::sdk
