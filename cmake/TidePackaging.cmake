# Debian packages (cpack -G DEB). Components are filled in as the agent and the
# coordinator gain install() rules.
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_VENDOR "tide")
set(CPACK_PACKAGE_CONTACT "tide maintainers <tide@localhost>")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
include(CPack)
