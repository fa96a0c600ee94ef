#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace devid::cli {

// OutputFormat is what --output selects: aligned columns for people, or the server's JSON.
enum class OutputFormat { kTable, kJson };

// PrintJson writes json indented by two spaces, then a newline.
void PrintJson(std::ostream& out, const nlohmann::json& json);

// PrintTable writes headers and rows as columns separated by two spaces, each as wide as its
// widest cell; an empty cell is shown as "-" so that every row has as many words as columns.
void PrintTable(std::ostream& out, const std::vector<std::string>& headers,
                const std::vector<std::vector<std::string>>& rows);

// PrintFields writes "Label:  value" lines with the values aligned, skipping empty values.
void PrintFields(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& fields);

// The table views of the service API's objects (protocol notes §6 JSON model). The list views
// never show keys; the single-object views show symmetric keys only when with_keys is set.
void PrintEnrollmentList(std::ostream& out, const nlohmann::json& enrollments);
void PrintEnrollment(std::ostream& out, const nlohmann::json& enrollment, bool with_keys);
void PrintGroupList(std::ostream& out, const nlohmann::json& groups);
void PrintGroup(std::ostream& out, const nlohmann::json& group, bool with_keys);
void PrintRegistrationList(std::ostream& out, const nlohmann::json& registrations);
void PrintRegistration(std::ostream& out, const nlohmann::json& registration);
void PrintCertificateList(std::ostream& out, const nlohmann::json& certificates);
// PrintCertificate shows one inventory record and, when the server sent it, its PEM.
void PrintCertificate(std::ostream& out, const nlohmann::json& certificate);

}  // namespace devid::cli
