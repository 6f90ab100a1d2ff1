# tide_sanitizers: an INTERFACE target that carries -fsanitize flags chosen
# with -DTIDE_SANITIZERS=address,undefined (empty: none).
add_library(tide_sanitizers INTERFACE)
if(TIDE_SANITIZERS)
  string(REPLACE "," ";" _tide_san_list "${TIDE_SANITIZERS}")
  foreach(_san IN LISTS _tide_san_list)
    if(NOT _san MATCHES "^(address|undefined|thread|leak)$")
      message(FATAL_ERROR "TIDE_SANITIZERS: unknown sanitizer '${_san}'")
    endif()
  endforeach()
  target_compile_options(tide_sanitizers INTERFACE
    -fsanitize=${TIDE_SANITIZERS} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(tide_sanitizers INTERFACE -fsanitize=${TIDE_SANITIZERS})
endif()

# tide_defaults: what every tide target links.
add_library(tide_defaults INTERFACE)
target_link_libraries(tide_defaults INTERFACE tide_warnings tide_sanitizers)
target_compile_definitions(tide_defaults INTERFACE MSGPACK_NO_BOOST)
