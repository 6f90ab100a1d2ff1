// The log line format both daemons share (common/logging): time and level,
// or journald's priority prefix; JOURNAL_STREAM matched against the real
// stream; the rate limit of lines a peer can provoke.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <regex>
#include <string>

#include <catch2/catch.hpp>

#include "common/logging/logging.hpp"

using namespace tide::logging;

TEST_CASE("a plain line has an RFC 3339 time with milliseconds and offset, then the level name", "[logging]") {
  const std::string line = format_message(Format::Plain, spdlog::level::warn, 1'796'540'462'345, "instance i-1 lost");
  INFO(line);
  CHECK(std::regex_match(line, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.345[+-]\d{2}:\d{2} warning instance i-1 lost\n)")));
  CHECK(format_message(Format::Plain, spdlog::level::err, 0, "x").find(" error x\n") != std::string::npos);
  CHECK(format_message(Format::Plain, spdlog::level::critical, 0, "x").find(" critical x\n") != std::string::npos);
}

TEST_CASE("a journal line carries the sd-daemon priority and no time", "[logging]") {
  CHECK(format_message(Format::Journal, spdlog::level::warn, 123, "w") == "<4>w\n");
  CHECK(format_message(Format::Journal, spdlog::level::info, 123, "i") == "<6>i\n");
  CHECK(format_message(Format::Journal, spdlog::level::err, 123, "e") == "<3>e\n");
  CHECK(format_message(Format::Journal, spdlog::level::critical, 123, "c") == "<2>c\n");
  CHECK(format_message(Format::Journal, spdlog::level::debug, 123, "d") == "<7>d\n");
  CHECK(format_message(Format::Journal, spdlog::level::trace, 123, "t") == "<7>t\n");
}

TEST_CASE("a message of several lines becomes as many prefixed lines", "[logging]") {
  CHECK(format_message(Format::Journal, spdlog::level::err, 0, "haproxy -c failed:\n[ALERT] a\r\nb\n") ==
        "<3>haproxy -c failed:\n<3>[ALERT] a\n<3>b\n");
}

TEST_CASE("JOURNAL_STREAM matches only the stream it names", "[logging]") {
  char path[] = "/tmp/tide-logging-test-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  const std::string dev_ino = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  CHECK(is_journal_stream(dev_ino, fd));
  CHECK_FALSE(is_journal_stream(std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1), fd));
  CHECK_FALSE(is_journal_stream("", fd));
  CHECK_FALSE(is_journal_stream("garbage", fd));
  CHECK_FALSE(is_journal_stream(dev_ino + "x", fd));
  CHECK_FALSE(is_journal_stream(":" + std::to_string(st.st_ino), fd));
  ::close(fd);
  ::unlink(path);
  CHECK_FALSE(is_journal_stream(dev_ino, fd));  // closed
}

TEST_CASE("the rate limit lets a burst through per window and counts what it held back", "[logging]") {
  RateLimit limit(3, 1'000);
  CHECK(limit.admit(10) == 0U);
  CHECK(limit.admit(20) == 0U);
  CHECK(limit.admit(30) == 0U);
  for (int i = 0; i < 100; ++i) CHECK_FALSE(limit.admit(40 + static_cast<std::uint64_t>(i)).has_value());
  CHECK_FALSE(limit.admit(1'009).has_value());
  // The next window: the first line says how many were held back.
  CHECK(limit.admit(1'010) == 101U);
  CHECK(limit.admit(1'011) == 0U);
  CHECK(suppressed_note(0).empty());
  CHECK(suppressed_note(1) == " (1 similar line suppressed)");
  CHECK(suppressed_note(101) == " (101 similar lines suppressed)");
}
