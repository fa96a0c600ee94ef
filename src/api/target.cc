#include "api/target.h"

#include <strings.h>

#include "base/url.h"

namespace devid::api {

bool Target::SegmentIs(size_t i, std::string_view word) const {
  return i < segments.size() && segments[i].size() == word.size() &&
         strncasecmp(segments[i].data(), word.data(), word.size()) == 0;
}

std::string_view Target::QueryValue(const std::string& name) const {
  auto it = query.find(name);
  return it == query.end() ? std::string_view() : std::string_view(it->second);
}

Result<Target> ParseTarget(std::string_view target) {
  if (target.empty() || target.front() != '/') {
    return std::unexpected(InvalidArgument("the request target must start with '/'"));
  }
  Target out;
  size_t question = target.find('?');
  std::string_view path = target.substr(0, question);
  out.path = std::string(path);
  path.remove_prefix(1);
  while (true) {
    size_t slash = path.find('/');
    auto segment = PercentDecode(path.substr(0, slash));
    if (!segment) return std::unexpected(InvalidArgument("the request path has a bad escape"));
    out.segments.push_back(std::move(*segment));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  if (question != std::string_view::npos) {
    std::string_view query = target.substr(question + 1);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      size_t eq = pair.find('=');
      auto name = PercentDecode(pair.substr(0, eq), true);
      auto value = PercentDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
      if (!name || !value) {
        return std::unexpected(InvalidArgument("the query string has a bad escape"));
      }
      if (!name->empty()) out.query.emplace(std::move(*name), std::move(*value));
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  return out;
}

}  // namespace devid::api
