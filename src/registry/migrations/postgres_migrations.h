#pragma once

#include <span>

#include "registry/migrations/migration.h"

namespace devid::registry {

// PostgresMigrations returns the PostgreSQL schema's steps in version order, mirroring
// SqliteMigrations() step for step and column for column. The span refers to static storage and
// stays valid for the life of the program.
std::span<const Migration> PostgresMigrations();

}  // namespace devid::registry
