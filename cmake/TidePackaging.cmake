# Debian packages: `cpack --config CPackConfig.cmake -G DEB` in a build dir
# produces tide-agent_<version>_<arch>.deb and tide-coordinator_<...>.deb.
# docs/packaging.md describes what goes where and the maintainer scripts.
#
# Binaries come from the targets' own install(TARGETS ... COMPONENT agent |
# coordinator) rules (agent/main.cmake, coordinator/main.cmake); this file adds
# units, configs, docs and the Debian metadata.

set(_pkg ${PROJECT_SOURCE_DIR}/packaging)

# Units go where Debian 12 packages put them (not /usr/lib: bookworm's
# merged-/usr moratorium), hence absolute destinations. Configs in /etc are
# conffiles (listed below) so an admin's edits survive upgrades.
install(FILES ${_pkg}/tide-agent.service DESTINATION /lib/systemd/system COMPONENT agent)
install(FILES ${_pkg}/agent.yaml.example DESTINATION /etc/tide RENAME agent.yaml COMPONENT agent)
install(FILES ${_pkg}/agent.yaml.example ${_pkg}/image/cloud-init.yaml
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
install(FILES ${_pkg}/debian/copyright ${PROJECT_SOURCE_DIR}/docs/packaging.md
        DESTINATION share/doc/tide-coordinator COMPONENT coordinator)
foreach(_doc providers.md haproxy.md lifecycle.md store.md)
  if(EXISTS ${PROJECT_SOURCE_DIR}/docs/${_doc})
    install(FILES ${PROJECT_SOURCE_DIR}/docs/${_doc} DESTINATION share/doc/tide-coordinator COMPONENT coordinator)
  endif()
endforeach()

# Control-archive extras per package: maintainer scripts plus a generated
# conffiles list.
set(_ctl ${PROJECT_BINARY_DIR}/packaging)
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
set(CPACK_PACKAGE_CONTACT "tide maintainers <tide@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
# RelWithDebInfo binaries are ~10x larger with their debug info.
set(CPACK_STRIP_FILES ON)
set(CPACK_COMPONENTS_ALL agent coordinator)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from dpkg-shlibdeps; these are what the
# maintainer scripts and the daemons call at run time.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# 0755 scripts / 0644 conffiles whatever the source tree's modes are.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "init-system-helpers (>= 1.54)")
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
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_RECOMMENDS "tide-agent (= ${PROJECT_VERSION}-1)")
set(CPACK_DEBIAN_COORDINATOR_DESCRIPTION "tide autoscaler coordinator and tidectl
tide-coordinator runs scaling policies (scheduled, alarm, target tracking)
for groups of servers, launches and terminates instances through a provider
(local processes or exec scripts for any cloud CLI) and puts an instance into
HAProxy only while its agent reports the application ready. tidectl is the
command-line client of its HTTP/JSON admin API.")

include(CPack)
