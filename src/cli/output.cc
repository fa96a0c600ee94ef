#include "cli/output.h"

#include <algorithm>

namespace devid::cli {
namespace {

using nlohmann::json;

// Text renders member key of object: strings as they are, other values as compact JSON, and ""
// when absent or null.
std::string Text(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

// Member returns object[key], or null when object is not an object or lacks key.
const json& Member(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

std::string Joined(const json& object, const char* key) {
  const json& list = Member(object, key);
  if (!list.is_array()) return "";
  std::string out;
  for (const auto& item : list) {
    if (!out.empty()) out += ",";
    out += item.is_string() ? item.get<std::string>() : item.dump();
  }
  return out;
}

std::string AttestationType(const json& item) { return Text(Member(item, "attestation"), "type"); }

// Settings are the fields individual enrollments and groups share, after their identifiers.
void AddSettings(std::vector<std::pair<std::string, std::string>>& fields, const json& item,
                 bool with_keys) {
  fields.emplace_back("Attestation", AttestationType(item));
  if (with_keys && AttestationType(item) == "symmetricKey") {
    const json& keys = Member(Member(item, "attestation"), "symmetricKey");
    fields.emplace_back("Primary key", Text(keys, "primaryKey"));
    fields.emplace_back("Secondary key", Text(keys, "secondaryKey"));
  }
  fields.emplace_back("Status", Text(item, "provisioningStatus"));
  fields.emplace_back("Allocation", Text(item, "allocationPolicy"));
  fields.emplace_back("Hubs", Joined(item, "iotHubs"));
  fields.emplace_back("IoT Hub host name", Text(item, "iotHubHostName"));
  fields.emplace_back("IoT Edge", Text(Member(item, "capabilities"), "iotEdge"));
  fields.emplace_back("Initial twin", Text(item, "initialTwin"));
  fields.emplace_back("Created", Text(item, "createdDateTimeUtc"));
  fields.emplace_back("Updated", Text(item, "lastUpdatedDateTimeUtc"));
  fields.emplace_back("ETag", Text(item, "etag"));
}

}  // namespace

void PrintJson(std::ostream& out, const json& json) {
  out << json.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

void PrintTable(std::ostream& out, const std::vector<std::string>& headers,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(headers.size());
  for (size_t i = 0; i < headers.size(); ++i) widths[i] = headers[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], std::max<size_t>(row[i].size(), 1));
    }
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < widths.size(); ++i) {
      std::string cell = i < row.size() && !row[i].empty() ? row[i] : "-";
      if (i + 1 < widths.size()) cell.resize(widths[i] + 2, ' ');
      line += cell;
    }
    out << line << "\n";
  };
  print_row(headers);
  for (const auto& row : rows) print_row(row);
}

void PrintFields(std::ostream& out,
                 const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t width = 0;
  for (const auto& [label, value] : fields) {
    if (!value.empty()) width = std::max(width, label.size() + 1);
  }
  for (const auto& [label, value] : fields) {
    if (value.empty()) continue;
    std::string head = label + ":";
    head.resize(width + 2, ' ');
    out << head << value << "\n";
  }
}

void PrintEnrollmentList(std::ostream& out, const json& enrollments) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : enrollments) {
    rows.push_back({Text(e, "registrationId"), Text(e, "deviceId"), AttestationType(e),
                    Text(e, "provisioningStatus"), Joined(e, "iotHubs"), Text(e, "etag")});
  }
  PrintTable(out, {"REGISTRATION ID", "DEVICE ID", "ATTESTATION", "STATUS", "HUBS", "ETAG"}, rows);
}

void PrintEnrollment(std::ostream& out, const json& enrollment, bool with_keys) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"Registration ID", Text(enrollment, "registrationId")},
      {"Device ID", Text(enrollment, "deviceId")},
  };
  AddSettings(fields, enrollment, with_keys);
  const json& state = Member(enrollment, "registrationState");
  fields.emplace_back("Registration", Text(state, "status"));
  fields.emplace_back("Assigned hub", Text(state, "assignedHub"));
  PrintFields(out, fields);
}

void PrintGroupList(std::ostream& out, const json& groups) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& g : groups) {
    rows.push_back({Text(g, "enrollmentGroupId"), Text(g, "registrationIdPrefix"),
                    AttestationType(g), Text(g, "provisioningStatus"), Joined(g, "iotHubs"),
                    Text(g, "etag")});
  }
  PrintTable(out, {"GROUP ID", "PREFIX", "ATTESTATION", "STATUS", "HUBS", "ETAG"}, rows);
}

void PrintGroup(std::ostream& out, const json& group, bool with_keys) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"Group ID", Text(group, "enrollmentGroupId")},
      {"Registration ID prefix", Text(group, "registrationIdPrefix")},
  };
  AddSettings(fields, group, with_keys);
  PrintFields(out, fields);
}

void PrintRegistrationList(std::ostream& out, const json& registrations) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : registrations) {
    rows.push_back({Text(r, "registrationId"), Text(r, "deviceId"), Text(r, "status"),
                    Text(r, "assignedHub"), Text(r, "lastUpdatedDateTimeUtc"), Text(r, "etag")});
  }
  PrintTable(out, {"REGISTRATION ID", "DEVICE ID", "STATUS", "ASSIGNED HUB", "UPDATED", "ETAG"},
             rows);
}

void PrintRegistration(std::ostream& out, const json& registration) {
  std::string group = Text(Member(registration, "symmetricKey"), "enrollmentGroupId");
  std::string error;
  if (!Member(registration, "errorCode").is_null()) {
    error = Text(registration, "errorMessage") + " (" + Text(registration, "errorCode") + ")";
  }
  PrintFields(out, {
                       {"Registration ID", Text(registration, "registrationId")},
                       {"Device ID", Text(registration, "deviceId")},
                       {"Status", Text(registration, "status")},
                       {"Substatus", Text(registration, "substatus")},
                       {"Assigned hub", Text(registration, "assignedHub")},
                       {"Group", group},
                       {"Error", error},
                       {"Payload", Text(registration, "payload")},
                       {"Created", Text(registration, "createdDateTimeUtc")},
                       {"Updated", Text(registration, "lastUpdatedDateTimeUtc")},
                       {"ETag", Text(registration, "etag")},
                   });
}

void PrintCertificateList(std::ostream& out, const json& certificates) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : certificates) {
    rows.push_back({Text(c, "serialNumber"), Text(c, "subject"), Text(c, "deviceId"),
                    Text(c, "notAfter"), Text(c, "status"), Text(c, "source")});
  }
  PrintTable(out, {"SERIAL", "SUBJECT", "DEVICE ID", "NOT AFTER", "STATUS", "SOURCE"}, rows);
}

void PrintCertificate(std::ostream& out, const json& certificate) {
  PrintFields(out, {
                       {"Subject", Text(certificate, "subject")},
                       {"Issuer", Text(certificate, "issuer")},
                       {"Serial", Text(certificate, "serialNumber")},
                       {"SHA-256", Text(certificate, "sha256Thumbprint")},
                       {"SHA-1", Text(certificate, "sha1Thumbprint")},
                       {"Not before", Text(certificate, "notBefore")},
                       {"Not after", Text(certificate, "notAfter")},
                       {"Device ID", Text(certificate, "deviceId")},
                       {"Profile", Text(certificate, "profile")},
                       {"Source", Text(certificate, "source")},
                       {"Status", Text(certificate, "status")},
                       {"Revoked", Text(certificate, "revokedAt")},
                       {"Reason", Text(certificate, "revocationReason")},
                       {"First seen", Text(certificate, "firstSeen")},
                       {"Last seen", Text(certificate, "lastSeen")},
                   });
  std::string pem = Text(certificate, "certificate");
  if (!pem.empty()) out << pem;
}

}  // namespace devid::cli
