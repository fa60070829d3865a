#include <string>

#include <katana/ttrpc/envelope.hpp>
#include <katana/ttrpc/status.hpp>
#include <katana/ttrpc/wire.hpp>

#include "catch.hpp"

using namespace katana::ttrpc;

namespace {
std::string bytes_of(const frame_header& h) {
  const auto a = encode_header(h);
  return {reinterpret_cast<const char*>(a.data()), a.size()};
}
}  // namespace

TEST_CASE("frame header is big-endian length, stream id, type, flags", "[ttrpc][wire]") {
  const frame_header h{0x01020304, 0x0a0b0c0d, 2, 0x05};
  const auto b = bytes_of(h);
  REQUIRE(b == std::string("\x01\x02\x03\x04\x0a\x0b\x0c\x0d\x02\x05", 10));
  STATIC_REQUIRE(decode_header(encode_header({7, 9, 1, 0})) == frame_header{7, 9, 1, 0});
}

TEST_CASE("frame decoder handles partial input, whole frames and oversize", "[ttrpc][wire]") {
  std::string in = bytes_of({3, 1, 1, 0}) + "abc" + bytes_of({0, 3, 2, 0});
  auto out = frame_decoder::next(std::string_view(in).substr(0, 5));
  REQUIRE(out.what == frame_decoder::event::need_more);
  out = frame_decoder::next(std::string_view(in).substr(0, 12));
  REQUIRE(out.what == frame_decoder::event::need_more);
  out = frame_decoder::next(in);
  REQUIRE(out.what == frame_decoder::event::frame);
  REQUIRE(out.data == "abc");
  REQUIRE(out.header.stream_id == 1);
  REQUIRE(out.consumed == 13);
  out = frame_decoder::next(std::string_view(in).substr(13));
  REQUIRE(out.what == frame_decoder::event::frame);
  REQUIRE(out.data.empty());
  REQUIRE(out.header.type == 2);

  const auto big = bytes_of({max_message_size + 1, 5, 1, 0});
  out = frame_decoder::next(big);
  REQUIRE(out.what == frame_decoder::event::oversized);
  REQUIRE(out.consumed == header_size);
  REQUIRE(frame_decoder::next(bytes_of({max_message_size, 5, 1, 0})).what ==
          frame_decoder::event::need_more);
}

TEST_CASE("request envelope round-trips with metadata and deadline", "[ttrpc][envelope]") {
  request r{"containerd.task.v2.Task",
            "Create",
            std::string("\0\x01payload", 9),
            5'000'000'000,
            {{"containerd-namespace-ttrpc", "default"}, {"k", ""}}};
  auto back = decode_request(encode(r));
  REQUIRE(back);
  REQUIRE(*back == r);
  // Field order and proto3 defaults as Go writes them: 0x0a service, 0x12 method ...
  const auto minimal = encode(request{"s", "m", "", 0, {}});
  REQUIRE(minimal == std::string("\x0a\x01s\x12\x01m", 6));
}

TEST_CASE("response envelope always carries a status", "[ttrpc][envelope]") {
  REQUIRE(encode(response{}) == std::string("\x0a\x00", 2));
  response r{{5, "container x not found", {"any-bytes"}}, "out"};
  auto back = decode_response(encode(r));
  REQUIRE(back);
  REQUIRE(*back == r);
  response neg{{-1, "negative", {}}, ""};
  REQUIRE(decode_response(encode(neg))->status.code == -1);
}

TEST_CASE("malformed envelopes are errors, unknown fields are skipped", "[ttrpc][envelope]") {
  REQUIRE_FALSE(decode_request(std::string("\x0a\x05sh", 4)));  // truncated string
  REQUIRE_FALSE(decode_request(std::string("\x20", 1)));        // truncated varint
  REQUIRE_FALSE(decode_request(std::string("\x0b", 1)));        // group wire type
  REQUIRE_FALSE(decode_request(std::string("\x00\x01", 2)));    // field 0
  REQUIRE_FALSE(decode_request(std::string("\x08\x01", 2)));    // service as varint
  REQUIRE_FALSE(decode_request(std::string(12, '\xff')));       // varint > 10 bytes
  auto r = decode_request(std::string("\x0a\x01s\x78\x05\x85\x01\x00\x00\x00\x00", 11));
  REQUIRE(r);  // field 15 varint and field 16 fixed32 skipped
  REQUIRE(r->service == "s");
  auto err = decode_request(std::string("\x0a\x05sh", 4));
  REQUIRE(err.error().message() == "field 1 is truncated");
}

TEST_CASE("katana errors map to gRPC codes and back", "[ttrpc][status]") {
  using katana::errc;
  REQUIRE(to_code(make_error_code(errc::not_found)) == code::not_found);
  REQUIRE(to_code(make_error_code(errc::invalid_spec)) == code::invalid_argument);
  REQUIRE(to_code(make_error_code(errc::unsupported)) == code::unimplemented);
  REQUIRE(to_code(std::error_code(ENOENT, std::system_category())) == code::not_found);
  REQUIRE(to_code(std::error_code(EEXIST, std::system_category())) == code::already_exists);
  REQUIRE(to_code(std::error_code(EIO, std::system_category())) == code::unknown);
  REQUIRE(to_code(make_error_code(code::aborted)) == code::aborted);
  REQUIRE(to_code({}) == code::ok);
  const auto e = from_status(code::not_found, "container abc");
  REQUIRE(e.code == std::errc::no_such_file_or_directory);
  REQUIRE(e.message() == "container abc: not found");
  REQUIRE(status_message(e) == "container abc");
  REQUIRE(to_string(code::deadline_exceeded) == "DEADLINE_EXCEEDED");
}
