#include "coordinator/io/store/sqlite.hpp"

#include <limits>
#include <utility>

#include <sqlite3.h>

#include "common/files/private_files.hpp"

namespace tide::coordinator::store {

std::string_view to_string(StoreError::Kind kind) {
  switch (kind) {
    case StoreError::Kind::Io:
      return "io";
    case StoreError::Kind::Corrupt:
      return "corrupt";
    case StoreError::Kind::Busy:
      return "busy";
    case StoreError::Kind::NewerSchema:
      return "newer_schema";
    case StoreError::Kind::NotFound:
      return "not_found";
    case StoreError::Kind::Constraint:
      return "constraint";
    case StoreError::Kind::InUse:
      return "in_use";
    case StoreError::Kind::Invalid:
      return "invalid";
    case StoreError::Kind::Internal:
      return "internal";
  }
  return "unknown";
}

namespace {

StoreError::Kind kind_of(int code) {
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return StoreError::Kind::Busy;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return StoreError::Kind::Corrupt;
    case SQLITE_CONSTRAINT:
      return StoreError::Kind::Constraint;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
      return StoreError::Kind::Io;
    default:
      return StoreError::Kind::Internal;
  }
}

StoreError make_error(std::string_view operation, int code, const char* detail) {
  std::string message(operation);
  message += ": ";
  message += detail != nullptr ? detail : sqlite3_errstr(code);
  if (detail != nullptr && code != 0) {
    message += " (";
    message += sqlite3_errstr(code);
    message += ")";
  }
  return StoreError{kind_of(code), std::move(message), code};
}

}  // namespace

// ---- Statement --------------------------------------------------------------

Statement::~Statement() {
  sqlite3_finalize(m_stmt);
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(m_stmt);
    m_stmt = std::exchange(other.m_stmt, nullptr);
  }
  return *this;
}

// Bind errors can only be an out-of-range index or SQLITE_NOMEM: the first is
// a bug in a literal SQL string, the second surfaces at step().
void Statement::bind(int index, std::int64_t value) {
  sqlite3_bind_int64(m_stmt, index, value);
}
void Statement::bind(int index, double value) {
  sqlite3_bind_double(m_stmt, index, value);
}
void Statement::bind(int index, std::string_view value) {
  // SQLITE_TRANSIENT: SQLite copies, so temporaries are fine.
  sqlite3_bind_text64(m_stmt, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}
void Statement::bind_null(int index) {
  sqlite3_bind_null(m_stmt, index);
}
void Statement::bind_optional(int index, const std::optional<std::string_view>& value) {
  if (value) {
    bind(index, *value);
  } else {
    bind_null(index);
  }
}
void Statement::bind_optional(int index, const std::optional<std::int64_t>& value) {
  if (value) {
    bind(index, *value);
  } else {
    bind_null(index);
  }
}

void Statement::reset() {
  if (m_stmt != nullptr) sqlite3_reset(m_stmt);
}

std::int64_t Statement::column_int(int index) const {
  return sqlite3_column_int64(m_stmt, index);
}
double Statement::column_double(int index) const {
  return sqlite3_column_double(m_stmt, index);
}
std::string Statement::column_text(int index) const {
  const auto* text = sqlite3_column_text(m_stmt, index);
  const int size = sqlite3_column_bytes(m_stmt, index);
  if (text == nullptr || size <= 0) return {};
  return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
}
bool Statement::column_is_null(int index) const {
  return sqlite3_column_type(m_stmt, index) == SQLITE_NULL;
}

// ---- Database ---------------------------------------------------------------

namespace {

// A file name rather than ":memory:", "" (a temporary database) or a URI.
bool is_plain_file_path(const std::string& path) {
  return !path.empty() && path != ":memory:" && path.rfind("file:", 0) != 0;
}

}  // namespace

Result<Database> Database::open(const std::string& path, const OpenOptions& options) {
  Database db;
  db.m_path = path;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (options.create) flags |= SQLITE_OPEN_CREATE;
  const std::string operation = "open " + path;
  // The database and its -wal and -shm files hold secrets (launch
  // configurations' environments, notification keys). SQLite creates a new
  // database 0644 whatever the umask, and gives the -wal and -shm files the
  // database's mode: so the file is made 0600 before SQLite opens it.
  if (is_plain_file_path(path)) {
    if (auto made = options.create ? files::ensure_private_file(path) : files::tighten_mode(path, files::kPrivateFile);
        !made) {
      return store_error(StoreError::Kind::Io, operation + ": " + made.error());
    }
    for (const char* suffix : {"-wal", "-shm"}) {
      if (auto tightened = files::tighten_mode(path + suffix, files::kPrivateFile); !tightened) {
        return store_error(StoreError::Kind::Io, operation + ": " + tightened.error());
      }
    }
  }
  const int rc = sqlite3_open_v2(path.c_str(), &db.m_db, flags, nullptr);
  if (rc != SQLITE_OK) {
    StoreError error =
        db.m_db != nullptr ? db.last_error(operation, rc) : make_error(operation, rc, nullptr);
    return tl::unexpected(std::move(error));
  }
  sqlite3_extended_result_codes(db.m_db, 1);
  sqlite3_busy_timeout(db.m_db, options.busy_timeout_ms);

  // journal_mode answers with the mode it ended up in; anything but "wal"
  // (e.g. a read-only directory) is an error rather than a silent downgrade.
  // This is the first read of the file, so a non-database fails here.
  auto mode = db.query_text(operation + ": set journal_mode=WAL", "PRAGMA journal_mode=WAL");
  if (!mode) return tl::unexpected(mode.error());
  if (*mode != "wal") {
    return store_error(StoreError::Kind::Io,
                       operation + ": journal_mode is '" + *mode + "', WAL could not be enabled");
  }
  const char* sync = options.synchronous == Synchronous::Full ? "PRAGMA synchronous=FULL"
                                                              : "PRAGMA synchronous=NORMAL";
  if (auto r = db.exec(operation + ": set synchronous", sync); !r) return tl::unexpected(r.error());
  if (auto r = db.exec(operation + ": enable foreign keys", "PRAGMA foreign_keys=ON"); !r) {
    return tl::unexpected(r.error());
  }
  auto fk = db.query_int(operation + ": check foreign keys", "PRAGMA foreign_keys");
  if (!fk) return tl::unexpected(fk.error());
  if (*fk != 1) {
    return store_error(StoreError::Kind::Internal,
                       operation + ": this SQLite build cannot enforce foreign keys");
  }
  return db;
}

Database::~Database() {
  close();
}

Database::Database(Database&& other) noexcept
    : m_db(std::exchange(other.m_db, nullptr)),
      m_path(std::move(other.m_path)),
      m_statements(std::move(other.m_statements)) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    close();
    m_db = std::exchange(other.m_db, nullptr);
    m_path = std::move(other.m_path);
    m_statements = std::move(other.m_statements);
  }
  return *this;
}

void Database::close() {
  // Statements first: sqlite3_close refuses while any is unfinalized.
  m_statements.clear();
  if (m_db != nullptr) {
    sqlite3_close(m_db);
    m_db = nullptr;
  }
}

StoreError Database::last_error(std::string_view operation, int code) const {
  return make_error(operation, code, m_db != nullptr ? sqlite3_errmsg(m_db) : nullptr);
}

Result<void> Database::exec(std::string_view operation, const std::string& sql) {
  if (m_db == nullptr)
    return store_error(StoreError::Kind::Internal, std::string(operation) + ": database is closed");
  char* message = nullptr;
  const int rc = sqlite3_exec(m_db, sql.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    StoreError error = make_error(operation, sqlite3_extended_errcode(m_db),
                                  message != nullptr ? message : sqlite3_errmsg(m_db));
    sqlite3_free(message);
    return tl::unexpected(std::move(error));
  }
  return {};
}

Result<Statement*> Database::prepare(std::string_view operation, const char* sql) {
  if (m_db == nullptr)
    return store_error(StoreError::Kind::Internal, std::string(operation) + ": database is closed");
  auto found = m_statements.find(sql);
  if (found != m_statements.end()) {
    sqlite3_reset(found->second->get());
    sqlite3_clear_bindings(found->second->get());
    return found->second.get();
  }
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(m_db, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(raw);
    return tl::unexpected(last_error(operation, rc));
  }
  auto inserted = m_statements.emplace(sql, std::make_unique<Statement>(raw));
  return inserted.first->second.get();
}

Result<bool> Database::step(std::string_view operation, Statement& statement) {
  const int rc = sqlite3_step(statement.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  StoreError error = last_error(operation, rc);
  // Reset so the statement releases its locks and can be reused.
  sqlite3_reset(statement.get());
  return tl::unexpected(std::move(error));
}

Result<void> Database::run(std::string_view operation, Statement& statement) {
  auto stepped = step(operation, statement);
  if (!stepped) return tl::unexpected(stepped.error());
  sqlite3_reset(statement.get());
  return {};
}

Result<std::int64_t> Database::query_int(std::string_view operation, const std::string& sql) {
  if (m_db == nullptr)
    return store_error(StoreError::Kind::Internal, std::string(operation) + ": database is closed");
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(m_db, sql.c_str(), -1, &raw, nullptr);
  Statement statement(raw);
  if (rc != SQLITE_OK) return tl::unexpected(last_error(operation, rc));
  auto row = step(operation, statement);
  if (!row) return tl::unexpected(row.error());
  if (!*row) return store_error(StoreError::Kind::Internal, std::string(operation) + ": no row");
  return statement.column_int(0);
}

Result<std::string> Database::query_text(std::string_view operation, const std::string& sql) {
  if (m_db == nullptr)
    return store_error(StoreError::Kind::Internal, std::string(operation) + ": database is closed");
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(m_db, sql.c_str(), -1, &raw, nullptr);
  Statement statement(raw);
  if (rc != SQLITE_OK) return tl::unexpected(last_error(operation, rc));
  auto row = step(operation, statement);
  if (!row) return tl::unexpected(row.error());
  if (!*row) return store_error(StoreError::Kind::Internal, std::string(operation) + ": no row");
  return statement.column_text(0);
}

std::int64_t Database::changes() const {
  return m_db != nullptr ? sqlite3_changes64(m_db) : 0;
}

bool Database::in_transaction() const {
  return m_db != nullptr && sqlite3_get_autocommit(m_db) == 0;
}

// ---- Transaction ------------------------------------------------------------

Result<Transaction> Transaction::begin(Database& db, std::string_view operation) {
  const bool nested = db.in_transaction();
  std::string op(operation);
  auto r = db.exec(op + ": begin", nested ? "SAVEPOINT tide_nested" : "BEGIN IMMEDIATE");
  if (!r) return tl::unexpected(r.error());
  return Transaction(&db, std::move(op), nested);
}

Transaction::Transaction(Transaction&& other) noexcept
    : m_db(std::exchange(other.m_db, nullptr)),
      m_operation(std::move(other.m_operation)),
      m_nested(other.m_nested),
      m_done(std::exchange(other.m_done, true)) {}

Transaction::~Transaction() {
  if (!m_done) rollback();
}

Result<void> Transaction::commit() {
  if (m_done || m_db == nullptr) {
    return store_error(StoreError::Kind::Internal,
                       m_operation + ": commit of a finished transaction");
  }
  auto r = m_db->exec(m_operation + ": commit", m_nested ? "RELEASE tide_nested" : "COMMIT");
  if (!r) {
    rollback();
    return r;
  }
  m_done = true;
  return {};
}

void Transaction::rollback() noexcept {
  m_done = true;
  if (m_db == nullptr) return;
  if (m_nested) {
    (void)m_db->exec(m_operation + ": rollback", "ROLLBACK TO tide_nested; RELEASE tide_nested");
  } else if (m_db->in_transaction()) {
    (void)m_db->exec(m_operation + ": rollback", "ROLLBACK");
  }
}

}  // namespace tide::coordinator::store
