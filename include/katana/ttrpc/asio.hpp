// The Asio pieces ttrpc uses, included once (granular headers, never <boost/asio.hpp>).
#pragma once

// <utility> first: Boost 1.74's awaitable.hpp uses std::exchange without including it.
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <katana/config.hpp>

namespace katana::inline v0 {
namespace asio = boost::asio;
/// The one async model inside katana's policies.
template <class T>
using task = asio::awaitable<T>;
}  // namespace katana::inline v0
