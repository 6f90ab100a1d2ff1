// Versioned schema migrations for the coordinator's store.
//
// The schema version is SQLite's PRAGMA user_version (0 = empty file). At
// open, every migration above the file's version is applied in order, each in
// its own BEGIN IMMEDIATE transaction together with the user_version bump, so
// a crash mid-migration leaves the file at the previous version, intact. A file
// whose version is above latest_schema_version() was written by a newer tide
// and is refused (StoreError::Kind::NewerSchema): never downgraded, never
// guessed at. docs/store.md lists the versions.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "coordinator/io/store/sqlite.hpp"

namespace tide::coordinator::store {

struct Migration {
  std::int64_t version;          // 1, 2, ...: the user_version after it ran
  std::string_view description;  // one line, for logs and docs
  const char* sql;               // statements run inside the migration's transaction
};

// All migrations, ascending by version, starting at 1, without gaps.
[[nodiscard]] std::span<const Migration> migrations();
[[nodiscard]] std::int64_t latest_schema_version();

// PRAGMA user_version of the open file.
[[nodiscard]] Result<std::int64_t> schema_version(Database& db);

// Applies the migrations above the file's version up to `target_version`
// (tests pass a lower target to build an old file). Returns the version the
// file is at afterwards. Refuses a file newer than latest_schema_version().
[[nodiscard]] Result<std::int64_t> migrate(Database& db, std::int64_t target_version);
[[nodiscard]] inline Result<std::int64_t> migrate(Database& db) {
  return migrate(db, latest_schema_version());
}

}  // namespace tide::coordinator::store
