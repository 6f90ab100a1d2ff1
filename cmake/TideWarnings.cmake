# tide_warnings: an INTERFACE target that carries the project's warning flags.
# Every tide target links it; third-party headers are included as SYSTEM so
# their warnings do not leak into ours.
add_library(tide_warnings INTERFACE)
target_compile_options(tide_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
  -Wswitch-enum -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Woverloaded-virtual -Wnull-dereference -Wdouble-promotion -Wformat=2
  -Wimplicit-fallthrough -Wmisleading-indentation)
if(TIDE_WERROR)
  target_compile_options(tide_warnings INTERFACE -Werror)
endif()
