# `cmake --install` (component "vramfit"): headers, libvramfit.so + libvramfit.a, a CMake package
# (find_package(vramfit CONFIG) -> vramfit::vramfit, vramfit::vramfit_static) and vramfit.pc.
# Included from capi/CMakeLists.txt, where the targets are defined.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS vramfit vramfit_static COMPONENT vramfit
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_COMPONENT vramfit
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${PROJECT_SOURCE_DIR}/capi/vramfit.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT vramfit)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/vramfit DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT vramfit FILES_MATCHING PATTERN "*.hpp")

# What a static link needs besides libvramfit.a (the shared library records its own).
set(VRAMFIT_STATIC_DEPS "Threads::Threads;fmt::fmt")
set(VRAMFIT_PC_PRIVATE "-lfmt -lstdc++ -lm -lpthread")
if(VRAMFIT_HAVE_CUDA)
  list(APPEND VRAMFIT_STATIC_DEPS CUDA::cudart CUDA::cublas)
  string(APPEND VRAMFIT_PC_PRIVATE " -lcudart -lcublas")
endif()
set(VRAMFIT_SONAME ${CMAKE_SHARED_LIBRARY_PREFIX}vramfit${CMAKE_SHARED_LIBRARY_SUFFIX}.${VRAMFIT_ABI_VERSION})
set(VRAMFIT_STATIC_FILE ${CMAKE_STATIC_LIBRARY_PREFIX}vramfit${CMAKE_STATIC_LIBRARY_SUFFIX})

set(config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/vramfit)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/vramfitConfig.cmake.in
  ${PROJECT_BINARY_DIR}/vramfitConfig.cmake INSTALL_DESTINATION ${config_dir}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR)
# One ABI major per SONAME: a consumer asking for 0.1 accepts any later 0.x.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/vramfitConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/vramfitConfig.cmake ${PROJECT_BINARY_DIR}/vramfitConfigVersion.cmake
  DESTINATION ${config_dir} COMPONENT vramfit)

# pkg-config: paths relative to the .pc file, so the installed tree can be moved.
set(pc_dir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH VRAMFIT_PC_TO_PREFIX /root/${pc_dir} /root)
configure_file(${PROJECT_SOURCE_DIR}/cmake/vramfit.pc.in ${PROJECT_BINARY_DIR}/vramfit.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/vramfit.pc DESTINATION ${pc_dir} COMPONENT vramfit)
