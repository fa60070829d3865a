# Runs protoc with the plugin on the golden input and compares with the committed output.
# UPDATE=1 rewrites the expected file instead.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
execute_process(
  COMMAND ${PROTOC} --plugin=protoc-gen-katana-ttrpc=${PLUGIN} --katana-ttrpc_out=${WORK_DIR}
          -I ${GOLDEN_DIR} ${GOLDEN_DIR}/echo.proto
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "protoc failed (${rc}): ${err}")
endif()
if(UPDATE)
  file(COPY_FILE ${WORK_DIR}/echo.ttrpc.hpp ${GOLDEN_DIR}/echo.ttrpc.hpp.golden)
  return()
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${WORK_DIR}/echo.ttrpc.hpp
                        ${GOLDEN_DIR}/echo.ttrpc.hpp.golden RESULT_VARIABLE same)
if(NOT same EQUAL 0)
  execute_process(COMMAND diff -u ${GOLDEN_DIR}/echo.ttrpc.hpp.golden ${WORK_DIR}/echo.ttrpc.hpp)
  message(FATAL_ERROR "generated echo.ttrpc.hpp differs from the golden file "
    "(rerun with -DUPDATE=1 if the change is intended)")
endif()
