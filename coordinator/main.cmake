# Executables: tidectl (the CLI) and tide-coordinator (the daemon, once its
# server library exists).
add_executable(tidectl
  tidectl/main.cpp
  tidectl/client.cpp
  tidectl/table.cpp
  tidectl/schedule_preview.cpp
  tidectl/specs.cpp
  tidectl/cost.cpp
  tidectl/history.cpp
  tidectl/apply.cpp
  tidectl/rollout.cpp
  tidectl/completion.cpp
  tidectl/launch_config.cpp
  tidectl/yaml_output.cpp)
target_include_directories(tidectl PRIVATE ${PROJECT_SOURCE_DIR})
target_compile_definitions(tidectl PRIVATE TIDE_VERSION="${PROJECT_VERSION}")
target_link_libraries(tidectl PRIVATE CLI11::CLI11 nlohmann_json::nlohmann_json tide::httplib tide_defaults)
# schedule preview: the coordinator's cron code (pure) and date-tz.
target_link_libraries(tidectl PRIVATE tide_coordinator_core date::date-tz)
# apply: fleet files are YAML.
target_link_libraries(tidectl PRIVATE yaml-cpp)
install(TARGETS tidectl RUNTIME DESTINATION bin COMPONENT coordinator)

if(TARGET tide_coordinator_server)
  add_executable(tide-coordinator main.cpp)
  target_compile_definitions(tide-coordinator PRIVATE TIDE_VERSION="${PROJECT_VERSION}")
  target_link_libraries(tide-coordinator PRIVATE tide_coordinator_server tide_private_files tide_sd_notify tide_logging CLI11::CLI11
                        tide_defaults)
  install(TARGETS tide-coordinator RUNTIME DESTINATION bin COMPONENT coordinator)
endif()
