# tide-agent: the executable (little more than main; the agent is in io/).
add_executable(tide-agent ${CMAKE_CURRENT_LIST_DIR}/main.cpp)
target_link_libraries(tide-agent PRIVATE tide_agent_io tide_logging CLI11::CLI11 spdlog::spdlog tide_defaults)
install(TARGETS tide-agent RUNTIME DESTINATION bin COMPONENT agent)
# Footprint (RSS <= 8 MB is a target): drop unused code and let the linker
# skip libraries nothing references; file-backed pages count towards RSS.
target_link_options(tide-agent PRIVATE -Wl,--gc-sections -Wl,--as-needed -Wl,-O1)
foreach(t tide-agent tide_agent_io tide_agent_core)
  target_compile_options(${t} PRIVATE -ffunction-sections -fdata-sections)
endforeach()
