// A framed ttrpc byte stream: buffered frame reads and ordered, batched frame writes.
// Not thread-safe: use it from one strand (the stream's executor).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <katana/core/error.hpp>
#include <katana/ttrpc/asio.hpp>
#include <katana/ttrpc/wire.hpp>

namespace katana::inline v0::ttrpc {

struct frame {
  frame_header header;
  std::string data;
  bool oversized = false;  // data was discarded: header.length exceeded the limit
};

template <class Stream>
class basic_connection : public std::enable_shared_from_this<basic_connection<Stream>> {
 public:
  using executor_type = typename Stream::executor_type;

  explicit basic_connection(Stream stream) : stream_(std::move(stream)) {}

  executor_type get_executor() { return stream_.get_executor(); }
  Stream& stream() noexcept { return stream_; }
  [[nodiscard]] bool is_open() const noexcept { return open_; }

  /// Queues one frame. Frames go out whole and in order; queued frames are written together.
  status send(message_type type,
              std::uint32_t stream_id,
              std::uint8_t flag_bits,
              std::string_view data) {
    if (!open_) {
      return fail(errc::unavailable, "ttrpc: connection closed");
    }
    if (data.size() > max_message_size) {
      return fail(make_error_code(std::errc::message_size),
                  "ttrpc: message length " + std::to_string(data.size()) +
                      " exceeds maximum message size of " + std::to_string(max_message_size));
    }
    const auto h = encode_header({static_cast<std::uint32_t>(data.size()), stream_id,
                                  static_cast<std::uint8_t>(type), flag_bits});
    std::string bytes;
    bytes.reserve(header_size + data.size());
    bytes.append(reinterpret_cast<const char*>(h.data()), h.size());
    bytes.append(data);
    queue_.push_back(std::move(bytes));
    if (!writing_) {
      writing_ = true;
      asio::co_spawn(get_executor(), write_loop(this->shared_from_this()), asio::detached);
    }
    return {};
  }

  /// The next frame. Oversized frames are skipped and returned with `oversized` set, so the
  /// caller can answer that stream and keep the connection.
  task<result<frame>> read_frame() {
    for (;;) {
      if (skip_ > 0) {
        const auto n = std::min<std::size_t>(skip_, end_ - begin_);
        begin_ += n;
        skip_ -= n;
      }
      if (skip_ == 0) {
        const auto out = frame_decoder::next(std::string_view(buf_.get() + begin_, end_ - begin_));
        if (out.what == frame_decoder::event::frame) {
          frame f{out.header, std::string(out.data), false};
          begin_ += out.consumed;
          co_return f;
        }
        if (out.what == frame_decoder::event::oversized) {
          begin_ += out.consumed;
          skip_ = out.header.length;
          co_return frame{out.header, {}, true};
        }
      }
      // Need more bytes: compact, then read what the peer has.
      if (begin_ > 0) {
        std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      }
      if (end_ == 0 && cap_ > 4 * read_chunk) {
        buf_.reset();  // drop what a large message left behind
        cap_ = 0;
      }
      if (cap_ - end_ < read_chunk) {
        // Grow without zero-filling: a frame can be up to 4 MiB.
        const auto cap = std::max(cap_ * 2, end_ + read_chunk);
        auto bigger = std::make_unique_for_overwrite<char[]>(cap);
        if (end_ > 0) {
          std::memcpy(bigger.get(), buf_.get(), end_);
        }
        buf_ = std::move(bigger);
        cap_ = cap;
      }
      const auto old = end_;
      std::error_code ec;
      boost::system::error_code bec;
      const auto n =
          co_await stream_.async_read_some(asio::buffer(buf_.get() + old, cap_ - old),
                                           asio::redirect_error(asio::use_awaitable, bec));
      end_ = old + n;
      if (bec) {
        ec = bec;
        if (bec == asio::error::eof || bec == asio::error::connection_reset ||
            bec == asio::error::broken_pipe) {
          const bool mid_frame = end_ > begin_ || skip_ > 0;
          co_return fail(errc::unavailable,
                         mid_frame ? "ttrpc: connection closed in the middle of a frame"
                                   : "ttrpc: connection closed by peer");
        }
        co_return fail(ec, "ttrpc: read");
      }
    }
  }

  /// Closes once every queued frame is written (a graceful server's last replies).
  void close_after_flush() noexcept {
    if (writing_) {
      close_when_flushed_ = true;
    } else {
      close();
    }
  }

  /// Closes the stream; pending reads and writes complete with an error.
  void close() noexcept {
    open_ = false;
    boost::system::error_code ignored;
    stream_.close(ignored);
  }

 private:
  static constexpr std::size_t read_chunk = 64 * 1024;

  static task<void> write_loop(std::shared_ptr<basic_connection> self) {
    std::vector<std::string> batch;
    std::vector<asio::const_buffer> buffers;
    while (!self->queue_.empty() && self->open_) {
      batch.clear();
      buffers.clear();
      while (!self->queue_.empty() && buffers.size() < 64) {
        batch.push_back(std::move(self->queue_.front()));
        self->queue_.pop_front();
      }
      for (const auto& b : batch) {
        buffers.emplace_back(asio::buffer(b));
      }
      boost::system::error_code ec;
      co_await asio::async_write(self->stream_, buffers,
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        self->queue_.clear();
        self->close();  // the reader sees the failure and fails every pending call
      }
    }
    self->writing_ = false;
    if (self->close_when_flushed_) {
      self->close();
    }
  }

  Stream stream_;
  bool open_ = true;
  std::unique_ptr<char[]> buf_;  // [begin_, end_) holds unread bytes
  std::size_t cap_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::size_t skip_ = 0;
  std::deque<std::string> queue_;
  bool writing_ = false;
  bool close_when_flushed_ = false;
};

}  // namespace katana::inline v0::ttrpc
