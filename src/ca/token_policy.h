#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace devid::ca {

// TokenRule grants scopes to requesters matching from_* for audiences matching to_* (one list of
// each kind must match; "*" in a list matches any ID). An empty list matches nothing.
struct TokenRule {
  std::vector<std::string> from_devices;  // requesting device IDs
  std::vector<std::string> from_groups;   // enrollment groups the requester registered through
  std::vector<std::string> to_devices;    // audience device IDs
  std::vector<std::string> to_groups;     // enrollment groups of audience devices
  std::vector<std::string> to_services;   // audience service names (TokenPolicy::services)
  std::vector<std::string> scopes;        // scope words granted (RFC 6749 §3.3)
};

// TokenPolicy decides who may ask the token authority for a token to whom (docs/tokens.md):
// deny by default, each requested scope word granted by some rule matching the pair.
struct TokenPolicy {
  std::vector<std::string> services;  // named services that may be audiences
  std::vector<TokenRule> rules;
};

// TokenParty is one side of a token request, as the authority resolved it.
struct TokenParty {
  std::string id;     // device ID or service name
  std::string group;  // enrollment group ID; "" for individual enrollments and services
  bool service = false;
};

// ValidateTokenPolicy checks policy at load time. Fails with kInvalidArgument naming the field
// ("tokens.rule[2].scopes: ...") when a rule has no from_* or to_* entry or no scope, a scope
// word is not an RFC 6749 §3.3 scope-token, or a rule names a service not in services.
Status ValidateTokenPolicy(const TokenPolicy& policy, std::string_view section = "tokens");

// SplitScope splits a space-separated scope (RFC 6749 §3.3) into its words, in order, without
// duplicates. Fails with kInvalidArgument when it is empty or a word has a character §3.3 does
// not allow.
Result<std::vector<std::string>> SplitScope(std::string_view scope);

// AuthorizeToken tells whether policy lets from obtain a token for to with every word of scopes.
// Fails with kPermissionDenied naming the pair and the first scope word no rule grants.
Status AuthorizeToken(const TokenPolicy& policy, const TokenParty& from, const TokenParty& to,
                      const std::vector<std::string>& scopes);

}  // namespace devid::ca
