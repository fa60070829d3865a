// The ttrpc envelope messages (package ttrpc: Request, Response, KeyValue; google.rpc.Status),
// encoded by hand: they are tiny, and this keeps the hot path free of protobuf reflection and
// of extra copies. Field numbers: Request{service=1, method=2, payload=3, timeout_nano=4,
// metadata=5}, Response{status=1, payload=2}, KeyValue{key=1, value=2},
// Status{code=1, message=2, details=3}.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <katana/core/error.hpp>
#include <katana/core/try.hpp>

namespace katana::inline v0::ttrpc {

struct key_value {
  std::string key;
  std::string value;
  friend bool operator==(const key_value&, const key_value&) = default;
};
using metadata = std::vector<key_value>;

struct request {
  std::string service;
  std::string method;
  std::string payload;
  std::int64_t timeout_nano = 0;  // 0: no deadline
  ttrpc::metadata metadata;
  friend bool operator==(const request&, const request&) = default;
};

struct rpc_status {
  std::int32_t code = 0;
  std::string message;
  std::vector<std::string> details;  // serialized google.protobuf.Any, passed through
  friend bool operator==(const rpc_status&, const rpc_status&) = default;
};

struct response {
  rpc_status status;
  std::string payload;
  friend bool operator==(const response&, const response&) = default;
};

namespace detail {

enum class wire : std::uint8_t { varint = 0, fixed64 = 1, bytes = 2, fixed32 = 5 };

inline void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
inline void put_tag(std::string& out, std::uint32_t field, wire w) {
  put_varint(out, (static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint8_t>(w));
}
inline void put_bytes(std::string& out, std::uint32_t field, std::string_view b) {
  if (!b.empty()) {  // proto3: defaults are not written
    put_tag(out, field, wire::bytes);
    put_varint(out, b.size());
    out += b;
  }
}
inline void put_int(std::string& out, std::uint32_t field, std::int64_t v) {
  if (v != 0) {
    put_tag(out, field, wire::varint);
    put_varint(out, static_cast<std::uint64_t>(v));
  }
}

struct pb_field {
  std::uint32_t number = 0;
  wire type = wire::varint;
  std::uint64_t varint = 0;
  std::string_view bytes;
};

// Reads fields one by one; skips nothing itself (the caller ignores unknown numbers).
class pb_reader {
 public:
  explicit pb_reader(std::string_view in) noexcept : in_(in) {}
  [[nodiscard]] bool done() const noexcept { return in_.empty(); }

  result<pb_field> next() {
    pb_field f;
    const auto key = KATANA_TRY(varint());
    f.number = static_cast<std::uint32_t>(key >> 3);
    if (f.number == 0 || key >> 3 > 0x1fffffff) {
      return fail(errc::parse_error, "invalid field number");
    }
    switch (key & 7) {
      case 0:
        f.type = wire::varint;
        f.varint = KATANA_TRY(varint());
        return f;
      case 1:
        f.type = wire::fixed64;
        return skip(f, 8);
      case 5:
        f.type = wire::fixed32;
        return skip(f, 4);
      case 2: {
        f.type = wire::bytes;
        const auto len = KATANA_TRY(varint());
        if (len > in_.size()) {
          return fail(errc::parse_error, "field " + std::to_string(f.number) + " is truncated");
        }
        f.bytes = in_.substr(0, static_cast<std::size_t>(len));
        in_.remove_prefix(static_cast<std::size_t>(len));
        return f;
      }
      default:
        return fail(errc::parse_error, "field " + std::to_string(f.number) +
                                           " has unsupported wire type " + std::to_string(key & 7));
    }
  }

 private:
  result<std::uint64_t> varint() {
    std::uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      if (in_.empty()) {
        return fail(errc::parse_error, "truncated varint");
      }
      const auto b = static_cast<std::uint8_t>(in_.front());
      in_.remove_prefix(1);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        return v;
      }
    }
    return fail(errc::parse_error, "varint longer than 10 bytes");
  }
  result<pb_field> skip(pb_field f, std::size_t n) {
    if (in_.size() < n) {
      return fail(errc::parse_error, "field " + std::to_string(f.number) + " is truncated");
    }
    f.bytes = in_.substr(0, n);
    in_.remove_prefix(n);
    return f;
  }

  std::string_view in_;
};

// A field that must be bytes (string or message) or a varint, by number.
inline status expect(const pb_field& f, wire w, std::string_view what) {
  if (f.type != w) {
    return fail(errc::parse_error, std::string(what) + ": wrong wire type");
  }
  return {};
}

}  // namespace detail

inline void encode_to(std::string& out, const request& r) {
  detail::put_bytes(out, 1, r.service);
  detail::put_bytes(out, 2, r.method);
  detail::put_bytes(out, 3, r.payload);
  detail::put_int(out, 4, r.timeout_nano);
  for (const auto& kv : r.metadata) {
    std::string m;
    detail::put_bytes(m, 1, kv.key);
    detail::put_bytes(m, 2, kv.value);
    detail::put_tag(out, 5, detail::wire::bytes);
    detail::put_varint(out, m.size());
    out += m;
  }
}

inline void encode_to(std::string& out, const response& r) {
  std::string s;
  detail::put_int(s, 1, r.status.code);
  detail::put_bytes(s, 2, r.status.message);
  for (const auto& d : r.status.details) {
    detail::put_tag(s, 3, detail::wire::bytes);
    detail::put_varint(s, d.size());
    s += d;
  }
  // Always present, as Go's server sends it (an empty message means OK).
  detail::put_tag(out, 1, detail::wire::bytes);
  detail::put_varint(out, s.size());
  out += s;
  detail::put_bytes(out, 2, r.payload);
}

template <class Message>
std::string encode(const Message& m) {
  std::string out;
  encode_to(out, m);
  return out;
}

inline result<request> decode_request(std::string_view in) {
  request r;
  detail::pb_reader rd(in);
  while (!rd.done()) {
    auto f = KATANA_TRY(rd.next());
    switch (f.number) {
      case 1:
        KATANA_TRY(detail::expect(f, detail::wire::bytes, "Request.service"));
        r.service.assign(f.bytes);
        break;
      case 2:
        KATANA_TRY(detail::expect(f, detail::wire::bytes, "Request.method"));
        r.method.assign(f.bytes);
        break;
      case 3:
        KATANA_TRY(detail::expect(f, detail::wire::bytes, "Request.payload"));
        r.payload.assign(f.bytes);
        break;
      case 4:
        KATANA_TRY(detail::expect(f, detail::wire::varint, "Request.timeout_nano"));
        r.timeout_nano = static_cast<std::int64_t>(f.varint);
        break;
      case 5: {
        KATANA_TRY(detail::expect(f, detail::wire::bytes, "Request.metadata"));
        key_value kv;
        detail::pb_reader m(f.bytes);
        while (!m.done()) {
          auto g = KATANA_TRY(m.next());
          if (g.number == 1 || g.number == 2) {
            KATANA_TRY(detail::expect(g, detail::wire::bytes, "KeyValue"));
            (g.number == 1 ? kv.key : kv.value).assign(g.bytes);
          }
        }
        r.metadata.push_back(std::move(kv));
        break;
      }
      default:
        break;  // unknown fields are skipped, as protobuf does
    }
  }
  return r;
}

inline result<response> decode_response(std::string_view in) {
  response r;
  detail::pb_reader rd(in);
  while (!rd.done()) {
    auto f = KATANA_TRY(rd.next());
    if (f.number == 1) {
      KATANA_TRY(detail::expect(f, detail::wire::bytes, "Response.status"));
      detail::pb_reader s(f.bytes);
      while (!s.done()) {
        auto g = KATANA_TRY(s.next());
        if (g.number == 1) {
          KATANA_TRY(detail::expect(g, detail::wire::varint, "Status.code"));
          r.status.code = static_cast<std::int32_t>(g.varint);
        } else if (g.number == 2 || g.number == 3) {
          KATANA_TRY(detail::expect(g, detail::wire::bytes, "Status"));
          if (g.number == 2) {
            r.status.message.assign(g.bytes);
          } else {
            r.status.details.emplace_back(g.bytes);
          }
        }
      }
    } else if (f.number == 2) {
      KATANA_TRY(detail::expect(f, detail::wire::bytes, "Response.payload"));
      r.payload.assign(f.bytes);
    }
  }
  return r;
}

}  // namespace katana::inline v0::ttrpc
