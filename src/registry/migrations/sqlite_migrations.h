#pragma once

#include <span>

#include "registry/migrations/migration.h"

namespace devid::registry {

// SqliteMigrations returns the SQLite schema's steps in version order. The span refers to static
// storage and stays valid for the life of the program.
std::span<const Migration> SqliteMigrations();

}  // namespace devid::registry
