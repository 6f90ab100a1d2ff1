# Every dependency is a Debian 12 package (scripts/install-deps installs them).
find_package(PkgConfig REQUIRED)
if(TIDE_BUILD_TESTS)
  find_package(Catch2 2 REQUIRED)         # catch2 (v2)
endif()
find_package(Threads REQUIRED)

find_package(cppzmq REQUIRED)              # cppzmq-dev (pulls libzmq3-dev)
find_package(msgpack REQUIRED CONFIG)      # libmsgpack-cxx-dev (target msgpackc-cxx)
find_package(tl-expected REQUIRED)         # libexpected-dev
find_package(spdlog REQUIRED)              # libspdlog-dev
find_package(yaml-cpp REQUIRED)            # libyaml-cpp-dev
find_package(nlohmann_json REQUIRED)       # nlohmann-json3-dev
find_package(CLI11 REQUIRED)                  # libcli11-dev (header only)
find_package(CURL REQUIRED)                # libcurl4-openssl-dev
find_package(date REQUIRED)                   # libhowardhinnant-date-dev

pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)

# One name per dependency, whatever its package calls it.
add_library(tide::msgpack INTERFACE IMPORTED)
target_link_libraries(tide::msgpack INTERFACE msgpackc-cxx)
add_library(tide::uv ALIAS PkgConfig::LIBUV)
add_library(tide::sqlite3 ALIAS PkgConfig::SQLITE3)

# cpp-httplib (libcpp-httplib-dev): tidectl's and the tests' HTTP client, the
# webhook test servers.
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
add_library(tide::httplib ALIAS PkgConfig::HTTPLIB)
# GNU libmicrohttpd (libmicrohttpd-dev): the admin API's HTTP server, one
# epoll thread for every connection (slow clients hold no worker).
pkg_check_modules(MICROHTTPD REQUIRED IMPORTED_TARGET libmicrohttpd)
add_library(tide::microhttpd ALIAS PkgConfig::MICROHTTPD)
