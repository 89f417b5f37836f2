# Release files: the man page, shell completions and the optional bmaptool
# alias. Included from the top-level CMakeLists.txt after
# include(GNUInstallDirs). Paths are relative to this file, so
# tests/e2e/release_docs.sh can include it from a scratch project.
get_filename_component(BMAPTK_RELEASE_ROOT "${CMAKE_CURRENT_LIST_DIR}/.."
                       ABSOLUTE)

option(BMAPTK_BMAPTOOL_ALIAS
       "Install bmaptool as a symlink to bmaptk (bmaptool 3.9's command line)"
       OFF)

install(FILES ${BMAPTK_RELEASE_ROOT}/docs/bmaptk.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
set(BMAPTK_BASH_COMPLETION_DIR
    "${CMAKE_INSTALL_DATADIR}/bash-completion/completions")
install(FILES ${BMAPTK_RELEASE_ROOT}/completions/bmaptk.bash
        DESTINATION ${BMAPTK_BASH_COMPLETION_DIR} RENAME bmaptk)
install(FILES ${BMAPTK_RELEASE_ROOT}/completions/_bmaptk
        DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)

# Relative symlinks made at install time, under DESTDIR when it is set, so
# staged installs (packages) point inside the package.
function(bmaptk_install_symlink target dir name)
  if(IS_ABSOLUTE "${dir}")
    set(full "${dir}")
  else()
    set(full "\${CMAKE_INSTALL_PREFIX}/${dir}")
  endif()
  install(CODE "
    set(link \"\$ENV{DESTDIR}${full}/${name}\")
    message(STATUS \"Installing: \${link} -> ${target}\")
    file(MAKE_DIRECTORY \"\$ENV{DESTDIR}${full}\")
    file(REMOVE \"\${link}\")
    file(CREATE_LINK \"${target}\" \"\${link}\" SYMBOLIC)")
endfunction()

if(BMAPTK_BMAPTOOL_ALIAS)
  bmaptk_install_symlink(bmaptk "${CMAKE_INSTALL_BINDIR}" bmaptool)
  bmaptk_install_symlink(bmaptk.1 "${CMAKE_INSTALL_MANDIR}/man1" bmaptool.1)
  bmaptk_install_symlink(bmaptk "${BMAPTK_BASH_COMPLETION_DIR}" bmaptool)
endif()
