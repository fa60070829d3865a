# The two ttrpc peers the interop tests and the ttrpc benchmark run, defined once whichever of
# tests/interop and bench/ttrpc includes this first:
#   katana_ttrpc_echo_server  ttrpc-echo-server, katana.test.Echo over katana's ttrpc (C++)
#   katana_ttrpc_go_peer      ttrpc-peer, the same service and a client over the reference Go
#                             ttrpc (Debian's golang-github-containerd-ttrpc-dev, GOPATH mode,
#                             offline); only when Go and those sources are installed.
# Sets, globally: KATANA_TTRPC_GO_PEER (path of ttrpc-peer, empty when it cannot be built) and
# KATANA_TTRPC_GO_PEER_MISSING (why not).
# The includer calls find_package(Protobuf 3.21 REQUIRED) first: FindProtobuf's imported targets
# are visible only in the directory that found them.
include_guard(GLOBAL)

set(_katana_interop_dir ${CMAKE_CURRENT_LIST_DIR})

add_executable(katana_ttrpc_echo_server ${_katana_interop_dir}/echo_server.cpp)
set_target_properties(katana_ttrpc_echo_server PROPERTIES OUTPUT_NAME ttrpc-echo-server)
target_link_libraries(katana_ttrpc_echo_server PRIVATE katana::ttrpc katana_options
  protobuf::libprotobuf)

set(KATANA_GOCODE_DIR /usr/share/gocode CACHE PATH "Debian's GOPATH of packaged Go sources")
find_program(KATANA_GO_EXECUTABLE go)
set(KATANA_TTRPC_GO_PEER "" CACHE INTERNAL "")
if(NOT KATANA_GO_EXECUTABLE OR NOT EXISTS "${KATANA_GO_EXECUTABLE}")
  set(KATANA_TTRPC_GO_PEER_MISSING "no Go toolchain (go) found when CMake ran: install golang-go"
    CACHE INTERNAL "")
elseif(NOT EXISTS ${KATANA_GOCODE_DIR}/src/github.com/containerd/ttrpc/client.go)
  set(KATANA_TTRPC_GO_PEER_MISSING
    "no Go ttrpc sources in ${KATANA_GOCODE_DIR}: install golang-github-containerd-ttrpc-dev"
    CACHE INTERNAL "")
else()
  set(KATANA_TTRPC_GO_PEER_MISSING "" CACHE INTERNAL "")
  set(_go_dir ${PROJECT_BINARY_DIR}/go)
  set(KATANA_TTRPC_GO_PEER ${_go_dir}/ttrpc-peer CACHE INTERNAL "")
  # GOPATH mode against Debian's packaged sources: no modules, no proxy, no network. GOCACHE
  # stays in the build tree.
  add_custom_command(OUTPUT ${KATANA_TTRPC_GO_PEER}
    COMMAND ${CMAKE_COMMAND} -E env GO111MODULE=off
      GOPATH=${_go_dir}/gopath:${KATANA_GOCODE_DIR} GOFLAGS= GOCACHE=${_go_dir}/go-cache
      GOPROXY=off GOENV=off GOTOOLCHAIN=local
      ${KATANA_GO_EXECUTABLE} build -o ${KATANA_TTRPC_GO_PEER} .
    WORKING_DIRECTORY ${_katana_interop_dir}/go/ttrpc-peer
    DEPENDS ${_katana_interop_dir}/go/ttrpc-peer/main.go
    COMMENT "go build ttrpc-peer (reference Go ttrpc)"
    VERBATIM)
  add_custom_target(katana_ttrpc_go_peer DEPENDS ${KATANA_TTRPC_GO_PEER})
endif()
