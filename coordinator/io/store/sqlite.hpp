// Thin RAII layer over the SQLite C API for the coordinator's store.
//
// Every failure comes back as a StoreError whose message names the operation
// ("insert instance i-1: UNIQUE constraint failed: ..."); nothing here throws
// and nothing aborts on a corrupt, locked or missing database file.
//
// Not thread-safe: one Database belongs to the coordinator's loop thread
// (the connection is opened with SQLITE_OPEN_NOMUTEX).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <tl/expected.hpp>

struct sqlite3;
struct sqlite3_stmt;

namespace tide::coordinator::store {

struct StoreError {
  enum class Kind : std::uint8_t {
    Io,           // cannot open/read/write the file, disk full, ...
    Corrupt,      // not a database, or a damaged one
    Busy,         // another connection holds the lock longer than the busy timeout
    NewerSchema,  // the file was written by a newer tide; refused, never downgraded
    NotFound,     // the row asked for does not exist
    Constraint,   // unique / foreign key / check constraint refused the change
    InUse,        // delete or update refused: other rows still use this one
    Invalid,      // the value handed in is invalid (model validation), or a row is unreadable
    Internal,     // misuse of the SQLite API: a bug
  };
  Kind kind = Kind::Internal;
  std::string message;  // "<operation>: <detail>"
  int sqlite_code = 0;  // extended result code when SQLite reported the error, else 0
};

[[nodiscard]] std::string_view to_string(StoreError::Kind kind);

template <class T>
using Result = tl::expected<T, StoreError>;

[[nodiscard]] inline tl::unexpected<StoreError> store_error(StoreError::Kind kind,
                                                            std::string message,
                                                            int sqlite_code = 0) {
  return tl::unexpected<StoreError>(StoreError{kind, std::move(message), sqlite_code});
}

// A prepared statement. Owned by Database's cache; reset on every use.
class Statement {
 public:
  Statement() = default;
  explicit Statement(sqlite3_stmt* stmt) : m_stmt(stmt) {}
  ~Statement();
  Statement(Statement&& other) noexcept : m_stmt(other.m_stmt) { other.m_stmt = nullptr; }
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binds are 1-based, as in SQLite. A nullopt binds NULL.
  void bind(int index, std::int64_t value);
  void bind(int index, double value);
  void bind(int index, std::string_view value);
  void bind_null(int index);
  void bind_optional(int index, const std::optional<std::string_view>& value);
  void bind_optional(int index, const std::optional<std::int64_t>& value);

  // Column readers for the row step() just produced; 0-based.
  [[nodiscard]] std::int64_t column_int(int index) const;
  [[nodiscard]] double column_double(int index) const;
  [[nodiscard]] std::string column_text(int index) const;
  [[nodiscard]] bool column_is_null(int index) const;

  // Ends the statement's use: releases its read snapshot. Every caller that
  // stops reading before SQLITE_DONE must call it (ResetOnExit does).
  void reset();

  [[nodiscard]] sqlite3_stmt* get() const { return m_stmt; }

 private:
  sqlite3_stmt* m_stmt = nullptr;
};

// Resets a cached statement when the scope ends.
class ResetOnExit {
 public:
  explicit ResetOnExit(Statement* statement) : m_statement(statement) {}
  ~ResetOnExit() { m_statement->reset(); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  Statement* m_statement;
};

// How often SQLite fsyncs (docs/store.md, "Durability"). In WAL mode Normal
// never corrupts the file and loses nothing on a process crash; only a power
// loss or kernel crash can drop the last commits. Full fsyncs the WAL on every
// commit (~8 ms on this machine's disk, against ~50 us).
enum class Synchronous : std::uint8_t { Normal, Full };

struct OpenOptions {
  std::int32_t busy_timeout_ms = 2000;  // wait this long for a lock before Busy
  Synchronous synchronous = Synchronous::Normal;
  // Commits that precede an external action (Store::begin_provider_call)
  // are made with synchronous=FULL even when `synchronous` is Normal, so a
  // power loss cannot forget a launch that may have happened. The sync also
  // makes every earlier commit durable (the WAL is written in order).
  bool sync_before_provider_calls = true;
  bool create = true;  // create the file when missing
};

class Database {
 public:
  // Opens (or creates) the file and sets the connection's pragmas:
  // journal_mode=WAL, foreign_keys=ON, busy_timeout, synchronous. Fails with
  // Corrupt when the file is not a SQLite database.
  [[nodiscard]] static Result<Database> open(const std::string& path, const OpenOptions& options);

  Database() = default;
  ~Database();
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs SQL text with no parameters and no result rows (may hold several
  // statements). `operation` names the caller's action in the error.
  [[nodiscard]] Result<void> exec(std::string_view operation, const std::string& sql);

  // A cached prepared statement for `sql`, reset and with its bindings
  // cleared. `sql` must be a string with static storage (a literal): the
  // cache keys on its address.
  [[nodiscard]] Result<Statement*> prepare(std::string_view operation, const char* sql);

  // Steps once: true when a row is ready, false when done.
  [[nodiscard]] Result<bool> step(std::string_view operation, Statement& statement);
  // Steps a statement that returns no rows.
  [[nodiscard]] Result<void> run(std::string_view operation, Statement& statement);

  // An integer scalar (PRAGMA user_version, SELECT count(*) ...).
  [[nodiscard]] Result<std::int64_t> query_int(std::string_view operation, const std::string& sql);
  [[nodiscard]] Result<std::string> query_text(std::string_view operation, const std::string& sql);

  [[nodiscard]] std::int64_t changes() const;
  [[nodiscard]] bool in_transaction() const;

  // The error SQLite holds for the last call, as a StoreError.
  [[nodiscard]] StoreError last_error(std::string_view operation, int code) const;

  [[nodiscard]] sqlite3* handle() const { return m_db; }
  [[nodiscard]] const std::string& path() const { return m_path; }

 private:
  sqlite3* m_db = nullptr;
  std::string m_path;
  // Keyed on the SQL literal's address. unique_ptr keeps Statement* stable.
  std::unordered_map<const char*, std::unique_ptr<Statement>> m_statements;
  void close();
};

// RAII transaction. The outermost one is BEGIN IMMEDIATE (the write lock is
// taken up front, so a busy database fails at begin, not half way); nested
// ones are SAVEPOINTs. Rolls back unless commit() succeeded.
class Transaction {
 public:
  [[nodiscard]] static Result<Transaction> begin(Database& db, std::string_view operation);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  [[nodiscard]] Result<void> commit();

 private:
  Transaction(Database* db, std::string operation, bool nested)
      : m_db(db), m_operation(std::move(operation)), m_nested(nested) {}
  void rollback() noexcept;
  Database* m_db = nullptr;
  std::string m_operation;
  bool m_nested = false;
  bool m_done = false;
};

}  // namespace tide::coordinator::store
