#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace devid::api {

// Target is a parsed request-target: percent-decoded path segments and query parameters.
struct Target {
  std::vector<std::string> segments;  // "/a/b/" → {"a", "b", ""}
  std::map<std::string, std::string> query;
  std::string path;  // the raw path, without the query

  // SegmentIs tells whether segment i exists and equals word, ignoring ASCII case (the Azure SDKs
  // send some route words in lowercase, e.g. "enrollmentgroups").
  bool SegmentIs(size_t i, std::string_view word) const;

  // Query returns the parameter's value, or "" when absent.
  std::string_view QueryValue(const std::string& name) const;
};

// ParseTarget splits "/path?query" into a Target. Fails with kInvalidArgument on a target that
// is not origin-form or has a bad percent escape.
Result<Target> ParseTarget(std::string_view target);

}  // namespace devid::api
