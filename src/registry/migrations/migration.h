#pragma once

#include <string_view>

namespace devid::registry {

// Migration is one numbered step of a store's schema. A back end applies the steps it has not yet
// recorded, in version order, each exactly once; a step is never edited after it ships (add a new
// one instead), because databases in the field already ran it.
struct Migration {
  int version;            // 1, 2, 3, ... with no gaps
  std::string_view name;  // what the step does, for the schema_migrations table and errors
  std::string_view sql;   // one or more statements in the back end's dialect
};

}  // namespace devid::registry
