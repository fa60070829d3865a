# Used by bench/ttrpc/run.sh only while the top-level CMakeLists.txt does not add bench/ itself.
# It is included inside project(katana) (CMAKE_PROJECT_katana_INCLUDE); the deferred include
# reads bench/ttrpc/CMakeLists.txt once the top-level directory is fully processed, when
# katana's targets exist (deferred code may not add subdirectories, so it is included instead).
# EVAL: deferred arguments would otherwise be expanded only when the call runs.
cmake_language(EVAL CODE "cmake_language(DEFER DIRECTORY \"${CMAKE_SOURCE_DIR}\"
  CALL include \"${CMAKE_CURRENT_LIST_DIR}/ttrpc/CMakeLists.txt\")")
