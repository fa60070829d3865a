// Helpers for the agent tests: run a coroutine to completion, a temporary directory, a
// recording mounter.
#pragma once

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include <katana/agent/storage.hpp>
#include <katana/ttrpc/asio.hpp>

#include "../temp_dir.hpp"
#include "catch.hpp"

namespace katana_test {

namespace fs = std::filesystem;

/// Runs `t` on `io` until it finishes (at most `limit`); fails the test on timeout.
template <class T>
T run(katana::asio::io_context& io,
      katana::task<T> t,
      std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  std::optional<T> out;
  katana::asio::co_spawn(
      io, [&]() -> katana::task<void> { out.emplace(co_await std::move(t)); },
      katana::asio::detached);
  const auto end = std::chrono::steady_clock::now() + limit;
  io.restart();
  while (!out && std::chrono::steady_clock::now() < end) {
    io.run_one_for(std::chrono::milliseconds(50));
  }
  REQUIRE(out.has_value());
  return std::move(*out);
}

/// Runs the io_context for a while (lets the reaper and readers work).
inline void spin(katana::asio::io_context& io, std::chrono::milliseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  io.restart();
  while (std::chrono::steady_clock::now() < end) {
    io.run_one_for(std::chrono::milliseconds(10));
  }
}

/// Records mounts instead of making them; mkdir still happens (below temp dirs).
struct recording_mounter {
  struct call {
    std::string source, target, fstype;
    unsigned long flags = 0;
    std::string data;
  };
  std::shared_ptr<std::vector<call>> mounts = std::make_shared<std::vector<call>>();
  std::shared_ptr<std::vector<std::string>> unmounts = std::make_shared<std::vector<std::string>>();
  katana::status mount(const std::string& s,
                       const std::string& t,
                       const std::string& f,
                       unsigned long flags,
                       const std::string& d) {
    mounts->push_back({s, t, f, flags, d});
    return {};
  }
  katana::status umount(const std::string& t, int) {
    unmounts->push_back(t);
    return {};
  }
};

}  // namespace katana_test
