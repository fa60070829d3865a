// ttrpc framing: a 10-byte header (big-endian length and stream id, type, flags) then the data.
// Pure and allocation-free; the incremental decoder is what the fuzzer drives.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <katana/config.hpp>

namespace katana::inline v0::ttrpc {

inline constexpr std::size_t header_size = 10;
/// Largest data part a peer may send (ttrpc's messageLengthMax).
inline constexpr std::uint32_t max_message_size = 4U << 20;

enum class message_type : std::uint8_t { request = 1, response = 2, data = 3 };

/// Flag bits; their meaning depends on the message type (ttrpc PROTOCOL.md).
namespace flags {
inline constexpr std::uint8_t remote_closed = 0x01;  // request, data: no more data from sender
inline constexpr std::uint8_t remote_open = 0x02;    // request: data frames will follow
inline constexpr std::uint8_t no_data = 0x04;        // data: the frame carries no payload
}  // namespace flags

struct frame_header {
  std::uint32_t length = 0;
  std::uint32_t stream_id = 0;
  std::uint8_t type = 0;  // raw: unknown types must be representable to be ignored
  std::uint8_t flags = 0;

  friend constexpr bool operator==(const frame_header&, const frame_header&) = default;
};

constexpr std::array<std::uint8_t, header_size> encode_header(const frame_header& h) noexcept {
  return {static_cast<std::uint8_t>(h.length >> 24),
          static_cast<std::uint8_t>(h.length >> 16),
          static_cast<std::uint8_t>(h.length >> 8),
          static_cast<std::uint8_t>(h.length),
          static_cast<std::uint8_t>(h.stream_id >> 24),
          static_cast<std::uint8_t>(h.stream_id >> 16),
          static_cast<std::uint8_t>(h.stream_id >> 8),
          static_cast<std::uint8_t>(h.stream_id),
          h.type,
          h.flags};
}

constexpr frame_header decode_header(std::span<const std::uint8_t, header_size> b) noexcept {
  const auto be32 = [&](std::size_t i) {
    return static_cast<std::uint32_t>(b[i]) << 24 | static_cast<std::uint32_t>(b[i + 1]) << 16 |
           static_cast<std::uint32_t>(b[i + 2]) << 8 | static_cast<std::uint32_t>(b[i + 3]);
  };
  return {be32(0), be32(4), b[8], b[9]};
}

constexpr bool is_known_type(std::uint8_t t) noexcept {
  return t >= static_cast<std::uint8_t>(message_type::request) &&
         t <= static_cast<std::uint8_t>(message_type::data);
}

/// Incremental frame parser over a byte stream. Feed bytes; take complete frames. A frame whose
/// length exceeds max_message_size is reported as oversized and its data skipped, so the
/// connection can continue (the Go peer answers such a stream RESOURCE_EXHAUSTED).
class frame_decoder {
 public:
  enum class event { need_more, frame, oversized };

  struct output {
    event what = event::need_more;
    frame_header header;
    std::string_view data;  // valid until the next call
    std::size_t consumed = 0;
  };

  /// Parses at most one frame from the front of `in`. The caller drops `consumed` bytes.
  static constexpr output next(std::string_view in, std::uint32_t limit = max_message_size) {
    output out;
    if (in.size() < header_size) {
      return out;
    }
    std::array<std::uint8_t, header_size> raw{};
    for (std::size_t i = 0; i < header_size; ++i) {
      raw[i] = static_cast<std::uint8_t>(in[i]);
    }
    out.header = decode_header(raw);
    if (out.header.length > limit) {
      out.what = event::oversized;
      out.consumed = header_size;  // the caller then discards header.length bytes
      return out;
    }
    if (in.size() - header_size < out.header.length) {
      return out;
    }
    out.what = event::frame;
    out.data = in.substr(header_size, out.header.length);
    out.consumed = header_size + out.header.length;
    return out;
  }
};

}  // namespace katana::inline v0::ttrpc
