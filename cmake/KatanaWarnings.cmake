# katana_options: warnings (as errors) and sanitizers for katana's own targets only.
add_library(katana_options INTERFACE)
target_compile_options(katana_options INTERFACE
  -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow -Wnon-virtual-dtor
  -Wold-style-cast -Wcast-align -Wdouble-promotion -Wformat=2
  -Wimplicit-fallthrough
  # No -Wnull-dereference: at -O2 GCC 12 reports it inside Boost.Asio's scheduler (inlined
  # from system headers), and at -O0 it finds nothing.
  # Designated initializers that leave members at their defaults are the point of them.
  -Wno-missing-field-initializers
  $<$<BOOL:${KATANA_WERROR}>:-Werror>
  # GCC 12 false positives in inlined std::string code at -O2/-O3 (PR105329, PR105651).
  $<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-restrict
    -Wno-stringop-overflow -Wno-array-bounds>)
# Boost 1.74 Asio detects coroutines for clang only through libc++'s <experimental/coroutine>.
target_compile_definitions(katana_options INTERFACE
  $<$<CXX_COMPILER_ID:Clang>:BOOST_ASIO_HAS_CO_AWAIT=1 BOOST_ASIO_HAS_STD_COROUTINE=1>)
if(KATANA_SANITIZE)
  target_compile_options(katana_options INTERFACE
    -fsanitize=${KATANA_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(katana_options INTERFACE -fsanitize=${KATANA_SANITIZE})
endif()
