#include "ca/token_policy.h"

#include <algorithm>

namespace devid::ca {
namespace {

bool Contains(const std::vector<std::string>& list, std::string_view id) {
  return !id.empty() && std::any_of(list.begin(), list.end(), [&](const std::string& entry) {
    return entry == "*" || entry == id;
  });
}

bool MatchesFrom(const TokenRule& rule, const TokenParty& from) {
  return Contains(rule.from_devices, from.id) || Contains(rule.from_groups, from.group);
}

bool MatchesTo(const TokenRule& rule, const TokenParty& to) {
  if (to.service) return Contains(rule.to_services, to.id);
  return Contains(rule.to_devices, to.id) || Contains(rule.to_groups, to.group);
}

// IsScopeToken: RFC 6749 §3.3 scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
bool IsScopeToken(std::string_view word) {
  return !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x21 && u <= 0x7e && u != 0x22 && u != 0x5c;
  });
}

}  // namespace

Result<std::vector<std::string>> SplitScope(std::string_view scope) {
  std::vector<std::string> words;
  size_t start = 0;
  while (start <= scope.size()) {
    size_t end = std::min(scope.find(' ', start), scope.size());
    std::string_view word = scope.substr(start, end - start);
    if (!IsScopeToken(word)) {
      return std::unexpected(InvalidArgument(
          "the scope \"" + std::string(scope) +
          "\" must be words of printable ASCII without '\"' or '\\', separated by single spaces"));
    }
    if (std::find(words.begin(), words.end(), word) == words.end()) words.emplace_back(word);
    start = end + 1;
  }
  return words;
}

Status ValidateTokenPolicy(const TokenPolicy& policy, std::string_view section) {
  for (const std::string& service : policy.services) {
    if (service.empty() || service == "*") {
      return std::unexpected(InvalidArgument(std::string(section) +
                                             ".services: a service name must be a word, not \"" +
                                             service + "\""));
    }
  }
  for (size_t i = 0; i < policy.rules.size(); ++i) {
    const TokenRule& rule = policy.rules[i];
    std::string name = std::string(section) + ".rule[" + std::to_string(i) + "]";
    if (rule.from_devices.empty() && rule.from_groups.empty()) {
      return std::unexpected(
          InvalidArgument(name + ": needs from_devices or from_groups (who may ask)"));
    }
    if (rule.to_devices.empty() && rule.to_groups.empty() && rule.to_services.empty()) {
      return std::unexpected(InvalidArgument(
          name + ": needs to_devices, to_groups or to_services (for whom tokens are)"));
    }
    if (rule.scopes.empty()) {
      return std::unexpected(InvalidArgument(name + ".scopes: grants no scope"));
    }
    for (const std::string& scope : rule.scopes) {
      if (!IsScopeToken(scope)) {
        return std::unexpected(InvalidArgument(
            name + ".scopes: \"" + scope +
            "\" is not a scope word (printable ASCII, no space, '\"' or '\\', RFC 6749 §3.3)"));
      }
    }
    for (const std::string& service : rule.to_services) {
      if (service != "*" && std::find(policy.services.begin(), policy.services.end(), service) ==
                                policy.services.end()) {
        return std::unexpected(InvalidArgument(name + ".to_services: \"" + service +
                                               "\" is not in " + std::string(section) +
                                               ".services"));
      }
    }
  }
  return Ok();
}

Status AuthorizeToken(const TokenPolicy& policy, const TokenParty& from, const TokenParty& to,
                      const std::vector<std::string>& scopes) {
  for (const std::string& scope : scopes) {
    bool granted = std::any_of(policy.rules.begin(), policy.rules.end(), [&](const TokenRule& r) {
      return MatchesFrom(r, from) && MatchesTo(r, to) &&
             std::find(r.scopes.begin(), r.scopes.end(), scope) != r.scopes.end();
    });
    if (!granted) {
      return std::unexpected(PermissionDenied("the token policy does not let " + from.id +
                                              " obtain scope \"" + scope + "\" for " +
                                              (to.service ? "service " : "device ") + to.id));
    }
  }
  return Ok();
}

}  // namespace devid::ca
