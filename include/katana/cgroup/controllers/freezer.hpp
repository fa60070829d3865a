// freezer: v1 freezer.state (THAWED/FREEZING/FROZEN), v2 cgroup.freeze + cgroup.events
// "frozen". state reads follow runk's rule: while FREEZING, up to 10 polls 10 ms apart.
#pragma once

#include <chrono>
#include <string_view>
#include <thread>

#include <katana/cgroup/concepts.hpp>
#include <katana/cgroup/controllers/controller.hpp>

namespace katana::inline v0::cgroup::controllers {

struct freezer {
  static constexpr std::string_view name = "freezer";
  static constexpr std::string_view v2_name = "";
  /// The linux.resources field it serves, for error messages.
  static constexpr std::string_view field = "";

  static constexpr int polls = 10;
  static constexpr std::chrono::milliseconds poll_interval{10};

  /// Reads until the state is stable or the polls run out (then: freezing).
  template <class Read>
  static result<freezer_state> poll(Read&& read) {
    freezer_state s = KATANA_TRY(read());
    for (int i = 1; i < polls && s == freezer_state::freezing; ++i) {
      std::this_thread::sleep_for(poll_interval);
      s = KATANA_TRY(read());
    }
    return s;
  }

  static result<freezer_state> read_v1(const dir& d) {
    const std::string text = KATANA_TRY(d.read("freezer.state"));
    const auto s = cgroup::detail::trim(text);
    if (s == "FROZEN") {
      return freezer_state::frozen;
    }
    if (s == "FREEZING") {
      return freezer_state::freezing;
    }
    if (s == "THAWED") {
      return freezer_state::thawed;
    }
    return fail(errc::parse_error, str_cat("freezer.state: unknown state \"", s, "\""));
  }

  static result<freezer_state> read_v2(const dir& d) {
    const std::string want = KATANA_TRY(d.read("cgroup.freeze"));
    const std::string events = KATANA_TRY(d.read("cgroup.events"));
    const bool frozen = cgroup::detail::find_key(events, "frozen").value_or(0) == 1;
    if (cgroup::detail::trim(want) == "1") {
      return frozen ? freezer_state::frozen : freezer_state::freezing;
    }
    return frozen ? freezer_state::freezing : freezer_state::thawed;
  }

  static result<freezer_state> state_v1(const dir& d) {
    return poll([&] { return read_v1(d); });
  }
  static result<freezer_state> state_v2(const dir& d) {
    return poll([&] { return read_v2(d); });
  }

  /// Writes the request and waits (runk's polls) for it; a freeze that does not complete is
  /// undone (thawed, as runc does) and reported as errc::timeout.
  static status freeze_v1(const dir& d, freezer_state s) {
    KATANA_TRY(check_request(s));
    KATANA_TRY(d.write("freezer.state", s == freezer_state::frozen ? "FROZEN" : "THAWED"));
    return settle(d, s, state_v1(d), [&] { return d.write("freezer.state", "THAWED"); });
  }
  static status freeze_v2(const dir& d, freezer_state s) {
    KATANA_TRY(check_request(s));
    KATANA_TRY(d.write("cgroup.freeze", s == freezer_state::frozen ? "1" : "0"));
    return settle(d, s, state_v2(d), [&] { return d.write("cgroup.freeze", "0"); });
  }

 private:
  static status check_request(freezer_state s) {
    if (s == freezer_state::freezing) {
      return fail(errc::invalid_argument, "freeze: request frozen or thawed, not freezing");
    }
    return {};
  }

  template <class Thaw>
  static status settle(const dir& d, freezer_state want, result<freezer_state> got, Thaw&& thaw) {
    const freezer_state now = KATANA_TRY(std::move(got));
    if (now == want) {
      return {};
    }
    if (want == freezer_state::frozen) {
      (void)thaw();
    }
    return fail(errc::timeout, str_cat("freezer ", d.path(), ": still ", to_string(now), " after ",
                                       polls, " polls ", poll_interval.count(),
                                       " ms apart (wanted ", to_string(want), ")"));
  }
};

}  // namespace katana::inline v0::cgroup::controllers
