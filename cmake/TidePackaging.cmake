# Debian packages: `cpack --config CPackConfig.cmake -G DEB` in a build dir
# produces tide-agent_<version>_<arch>.deb and tide-coordinator_<...>.deb.
# docs/packaging.md describes what goes where and the maintainer scripts.
#
# Binaries come from the targets' own install(TARGETS ... COMPONENT agent |
# coordinator) rules (agent/main.cmake, coordinator/main.cmake); this file adds
# units, configs, docs and the Debian metadata.

set(_pkg ${PROJECT_SOURCE_DIR}/packaging)
set(_ctl ${PROJECT_BINARY_DIR}/packaging)

set(TIDE_PACKAGE_MAINTAINER "tide maintainers <maintainers@tide-autoscaler.example>"
    CACHE STRING "Maintainer field of the .deb packages (a distributor puts its own here)")

# The Debian changelog is the one place the package's version and revision
# are written down, as in any Debian package: its first entry must be this
# project's version, and its revision becomes the packages' (-1).
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_pkg}/debian/changelog)
file(STRINGS ${_pkg}/debian/changelog _changelog_top LIMIT_COUNT 1)
if(NOT _changelog_top MATCHES "^tide \\(([0-9][^-) ]*)-([0-9A-Za-z.+~]+)\\) ")
  message(FATAL_ERROR "packaging/debian/changelog: the first line must read 'tide (<version>-<revision>) ...'; "
                      "it reads '${_changelog_top}'")
endif()
if(NOT CMAKE_MATCH_1 STREQUAL PROJECT_VERSION)
  message(FATAL_ERROR "packaging/debian/changelog: its newest entry is version ${CMAKE_MATCH_1} but the project "
                      "is ${PROJECT_VERSION}: add an entry for ${PROJECT_VERSION}-1 at the top")
endif()
set(_deb_revision ${CMAKE_MATCH_2})

# Compressed the way Debian's tools do it (gzip -9n: no name, no time stamp,
# so the package is reproducible). Man pages get the version filled in first.
find_program(TIDE_GZIP gzip REQUIRED)
function(_tide_gzip in out)
  get_filename_component(_dir ${out} DIRECTORY)
  file(MAKE_DIRECTORY ${_dir})
  execute_process(COMMAND ${TIDE_GZIP} -9n -c ${in} OUTPUT_FILE ${out} RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "gzip -9n ${in} failed: ${_rc}")
  endif()
endfunction()
_tide_gzip(${_pkg}/debian/changelog ${_ctl}/changelog.Debian.gz)
set(VERSION ${PROJECT_VERSION})
foreach(_man tide-agent.8 tide-coordinator.8)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_pkg}/man/${_man})
  configure_file(${_pkg}/man/${_man} ${_ctl}/man/${_man} @ONLY)
  _tide_gzip(${_ctl}/man/${_man} ${_ctl}/man/${_man}.gz)
endforeach()
install(FILES ${_ctl}/man/tide-agent.8.gz DESTINATION share/man/man8 COMPONENT agent)
install(FILES ${_ctl}/man/tide-coordinator.8.gz DESTINATION share/man/man8 COMPONENT coordinator)
foreach(_comp agent coordinator)
  install(FILES ${_ctl}/changelog.Debian.gz DESTINATION share/doc/tide-${_comp} COMPONENT ${_comp})
  install(FILES ${_pkg}/debian/lintian/tide-${_comp} DESTINATION share/lintian/overrides COMPONENT ${_comp})
endforeach()

# tidectl's manual page and its bash and zsh completions are made by the built
# tidectl itself, so they list exactly the commands and flags it has.
set(_gen ${_ctl}/tidectl)
find_program(TIDE_PYTHON3 python3 REQUIRED)
add_custom_command(
  OUTPUT ${_gen}/tidectl.1.gz ${_gen}/tidectl ${_gen}/_tidectl
  COMMAND ${CMAKE_COMMAND} -E make_directory ${_gen}
  COMMAND ${TIDE_PYTHON3} ${_pkg}/man/tidectl-man.py $<TARGET_FILE:tidectl> ${_pkg}/man/tidectl.1.in ${PROJECT_VERSION}
          ${_gen}/tidectl.1
  COMMAND ${TIDE_GZIP} -9nf ${_gen}/tidectl.1
  COMMAND $<TARGET_FILE:tidectl> completion bash > ${_gen}/tidectl
  COMMAND $<TARGET_FILE:tidectl> completion zsh > ${_gen}/_tidectl
  DEPENDS tidectl ${_pkg}/man/tidectl-man.py ${_pkg}/man/tidectl.1.in
  COMMENT "tidectl: manual page and shell completions"
  VERBATIM)
add_custom_target(tidectl-docs ALL DEPENDS ${_gen}/tidectl.1.gz ${_gen}/tidectl ${_gen}/_tidectl)
install(FILES ${_gen}/tidectl.1.gz DESTINATION share/man/man1 COMPONENT coordinator)
install(FILES ${_gen}/tidectl DESTINATION share/bash-completion/completions COMPONENT coordinator)
install(FILES ${_gen}/_tidectl DESTINATION share/zsh/vendor-completions COMPONENT coordinator)

# Units go where Debian 12 packages put them (not /usr/lib: bookworm's
# merged-/usr moratorium), hence absolute destinations. Configs in /etc are
# conffiles (listed below) so an admin's edits survive upgrades.
install(FILES ${_pkg}/tide-agent.service DESTINATION /lib/systemd/system COMPONENT agent)
install(FILES ${_pkg}/agent.yaml.example DESTINATION /etc/tide RENAME agent.yaml COMPONENT agent)
install(FILES ${_pkg}/agent.yaml.example ${_pkg}/image/cloud-init.yaml ${_pkg}/tide-agent.polkit.rules.example
        DESTINATION share/doc/tide-agent/examples COMPONENT agent)
install(FILES ${_pkg}/debian/copyright ${PROJECT_SOURCE_DIR}/docs/packaging.md ${_pkg}/image/README.md
        DESTINATION share/doc/tide-agent COMPONENT agent)
if(EXISTS ${PROJECT_SOURCE_DIR}/docs/agent.md)
  install(FILES ${PROJECT_SOURCE_DIR}/docs/agent.md DESTINATION share/doc/tide-agent COMPONENT agent)
endif()

install(FILES ${_pkg}/tide-coordinator.service DESTINATION /lib/systemd/system COMPONENT coordinator)
install(FILES ${_pkg}/coordinator.yaml.example DESTINATION /etc/tide RENAME coordinator.yaml COMPONENT coordinator)
install(FILES ${_pkg}/coordinator.yaml.example DESTINATION share/doc/tide-coordinator/examples COMPONENT coordinator)
install(FILES ${_pkg}/fleet.yaml.example DESTINATION share/doc/tide-coordinator/examples RENAME fleet.yaml COMPONENT coordinator)
install(FILES ${_pkg}/monitoring/tide-dashboard.json ${_pkg}/monitoring/tide-alerts.yml DESTINATION share/doc/tide-coordinator/monitoring COMPONENT coordinator)
install(FILES ${_pkg}/debian/copyright ${PROJECT_SOURCE_DIR}/docs/packaging.md
        DESTINATION share/doc/tide-coordinator COMPONENT coordinator)
foreach(_doc providers.md haproxy.md lifecycle.md store.md metrics.md)
  if(EXISTS ${PROJECT_SOURCE_DIR}/docs/${_doc})
    install(FILES ${PROJECT_SOURCE_DIR}/docs/${_doc} DESTINATION share/doc/tide-coordinator COMPONENT coordinator)
  endif()
endforeach()

# Control-archive extras per package: maintainer scripts plus a generated
# conffiles list.
file(WRITE ${_ctl}/agent/conffiles "/etc/tide/agent.yaml\n")
file(WRITE ${_ctl}/coordinator/conffiles "/etc/tide/coordinator.yaml\n")
foreach(_comp agent coordinator)
  string(TOUPPER ${_comp} _COMP)
  set(CPACK_DEBIAN_${_COMP}_PACKAGE_CONTROL_EXTRA
      ${_pkg}/debian/${_comp}/postinst ${_pkg}/debian/${_comp}/prerm ${_pkg}/debian/${_comp}/postrm
      ${_ctl}/${_comp}/conffiles)
  set(CPACK_DEBIAN_${_COMP}_PACKAGE_NAME tide-${_comp})
  set(CPACK_DEBIAN_${_COMP}_FILE_NAME DEB-DEFAULT)
  set(CPACK_DEBIAN_${_COMP}_PACKAGE_SHLIBDEPS ON)
endforeach()

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "tide")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "tide")
set(CPACK_PACKAGE_CONTACT "${TIDE_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
# RelWithDebInfo binaries are ~10x larger with their debug info.
set(CPACK_STRIP_FILES ON)
set(CPACK_COMPONENTS_ALL agent coordinator)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${_deb_revision})
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from dpkg-shlibdeps; these are what the
# maintainer scripts and the daemons call at run time.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# 0755 scripts / 0644 conffiles whatever the source tree's modes are.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# adduser: postinst creates the tide-agent user.
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "adduser, init-system-helpers (>= 1.54)")
set(CPACK_DEBIAN_AGENT_PACKAGE_SUGGESTS "cloud-init")
set(CPACK_DEBIAN_AGENT_DESCRIPTION "tide autoscaler agent
tide-agent runs on every server of a tide scaling group. It reports the
application's readiness (HTTP/TCP/exec probes or sd_notify READY=1), health
and load to the tide coordinator over ZeroMQ (CURVE-encrypted), and runs the
coordinator's drain, hook and shutdown commands. Bake it into a server
image; cloud-init writes /etc/tide/agent.env with the per-instance values.")

# haproxy: the embedded load-balancer driver starts it. adduser: postinst
# creates the tide user. tide-agent: the local provider starts one beside each
# instance.
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_DEPENDS "haproxy (>= 2.6), adduser, init-system-helpers (>= 1.54)")
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_RECOMMENDS "tide-agent (= ${PROJECT_VERSION}-${_deb_revision})")
set(CPACK_DEBIAN_COORDINATOR_DESCRIPTION "tide autoscaler coordinator and tidectl
tide-coordinator runs scaling policies (scheduled, alarm, target tracking)
for groups of servers, launches and terminates instances through a provider
(local processes or exec scripts for any cloud CLI) and puts an instance into
HAProxy only while its agent reports the application ready. tidectl is the
command-line client of its HTTP/JSON admin API.")

include(CPack)
