# katana_generate_ttrpc(TARGET <target> PROTOS <file.proto>... IMPORT_DIRS <dir>...
#                       [STRIP_GOGO] [LITE] [OUT_DIR <dir>])
#
# Runs protoc with --cpp_out and protoc-gen-katana-ttrpc on each proto, adds the .pb.cc files to
# <target> and the output directory to its include path. Output paths mirror the proto's path
# below its import dir: <out>/<rel>.pb.h, .pb.cc, .ttrpc.hpp. List every proto the given ones
# import (except google/protobuf/*). STRIP_GOGO first copies the protos with gogoproto and
# containerd fieldpath imports and options removed (protoc's C++ generator refuses `import weak`),
# as containerd's own .proto files in Debian need. LITE generates code for libprotobuf-lite
# (protoc's `lite` option: no descriptors, nothing registered at start-up); the
# google/protobuf/*.proto files imported must then be listed too, as their full-runtime
# classes in libprotobuf are not lite.
# Outputs are rebuilt when a proto, protoc or the plugin changes.
function(katana_generate_ttrpc)
  cmake_parse_arguments(arg "STRIP_GOGO;LITE" "TARGET;OUT_DIR" "PROTOS;IMPORT_DIRS" ${ARGN})
  if(NOT arg_TARGET OR NOT arg_PROTOS OR NOT arg_IMPORT_DIRS)
    message(FATAL_ERROR "katana_generate_ttrpc: TARGET, PROTOS and IMPORT_DIRS are required")
  endif()
  if(NOT arg_OUT_DIR)
    set(arg_OUT_DIR ${CMAKE_CURRENT_BINARY_DIR}/${arg_TARGET}_gen)
  endif()
  if(TARGET protoc-gen-katana-ttrpc)
    set(plugin protoc-gen-katana-ttrpc)
  else()
    set(plugin katana::protoc-gen-katana-ttrpc)
  endif()
  set(src_root ${arg_OUT_DIR}/src)
  if(arg_LITE)
    set(cpp_out lite:${arg_OUT_DIR})
    set(runtime protobuf::libprotobuf-lite)
  else()
    set(cpp_out ${arg_OUT_DIR})
    set(runtime protobuf::libprotobuf)
  endif()

  set(rels)
  foreach(proto IN LISTS arg_PROTOS)
    get_filename_component(proto ${proto} ABSOLUTE)
    set(rel)
    foreach(dir IN LISTS arg_IMPORT_DIRS)
      get_filename_component(dir ${dir} ABSOLUTE)
      file(RELATIVE_PATH candidate ${dir} ${proto})
      if(NOT candidate MATCHES "^\\.\\.")
        set(rel ${candidate})
        break()
      endif()
    endforeach()
    if(NOT rel)
      message(FATAL_ERROR "katana_generate_ttrpc: ${proto} is not below any IMPORT_DIRS")
    endif()
    list(APPEND rels ${rel})
    if(arg_STRIP_GOGO)
      get_filename_component(dst_dir ${src_root}/${rel} DIRECTORY)
      add_custom_command(OUTPUT ${src_root}/${rel}
        COMMAND ${CMAKE_COMMAND} -E make_directory ${dst_dir}
        COMMAND sed -E
          -e "/^[[:space:]]*import[[:space:]]+weak[[:space:]]/d"
          -e "/^[[:space:]]*option[[:space:]]+\\((gogoproto|containerd\\.plugin)\\.[^)]*\\)/d"
          -e "s/[[:space:]]*\\[\\((gogoproto|containerd\\.plugin)\\.[^]]*\\]//g"
          ${proto} > ${src_root}/${rel}
        DEPENDS ${proto}
        COMMENT "Stripping gogoproto from ${rel}" VERBATIM)
    else()
      get_filename_component(dst_dir ${src_root}/${rel} DIRECTORY)
      add_custom_command(OUTPUT ${src_root}/${rel}
        COMMAND ${CMAKE_COMMAND} -E make_directory ${dst_dir}
        COMMAND ${CMAKE_COMMAND} -E copy ${proto} ${src_root}/${rel}
        DEPENDS ${proto} VERBATIM)
    endif()
  endforeach()

  set(all_inputs)
  foreach(rel IN LISTS rels)
    list(APPEND all_inputs ${src_root}/${rel})
  endforeach()
  set(sources)
  foreach(rel IN LISTS rels)
    string(REGEX REPLACE "\\.proto$" "" base ${rel})
    set(outs ${arg_OUT_DIR}/${base}.pb.h ${arg_OUT_DIR}/${base}.pb.cc ${arg_OUT_DIR}/${base}.ttrpc.hpp)
    add_custom_command(OUTPUT ${outs}
      COMMAND protobuf::protoc
        --plugin=protoc-gen-katana-ttrpc=$<TARGET_FILE:${plugin}>
        --cpp_out=${cpp_out} --katana-ttrpc_out=${arg_OUT_DIR}
        -I ${src_root} ${src_root}/${rel}
      DEPENDS ${all_inputs} ${plugin} protobuf::protoc
      COMMENT "protoc + protoc-gen-katana-ttrpc: ${rel}" VERBATIM)
    list(APPEND sources ${arg_OUT_DIR}/${base}.pb.cc ${arg_OUT_DIR}/${base}.ttrpc.hpp)
  endforeach()
  target_sources(${arg_TARGET} PRIVATE ${sources})
  target_include_directories(${arg_TARGET} SYSTEM PUBLIC $<BUILD_INTERFACE:${arg_OUT_DIR}>)
  target_link_libraries(${arg_TARGET} PUBLIC ${runtime} katana::ttrpc)
endfunction()
