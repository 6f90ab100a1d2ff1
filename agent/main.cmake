# tide-agent: the executable (little more than main; the agent is in io/).
add_executable(tide-agent ${CMAKE_CURRENT_LIST_DIR}/main.cpp)
target_link_libraries(tide-agent PRIVATE tide_agent_io CLI11::CLI11 spdlog::spdlog tide_defaults)
install(TARGETS tide-agent RUNTIME DESTINATION bin COMPONENT agent)
