// RFC 3339 timestamps in UTC with nanoseconds, for log lines and container state.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>

namespace katana::inline v0 {

/// RFC 3339 UTC with nanoseconds ("2026-11-23T13:29:00.008445644Z"). By hand: gmtime_r
/// initialises glibc's time zone state and strftime and snprintf follow, all code a TCG guest
/// would translate for its first log line.
inline void append_rfc3339(std::string& out, std::int64_t sec, long nsec) {
  // Civil date from days since 1970-01-01 (proleptic Gregorian, 400-year eras).
  std::int64_t days = sec / 86400;
  std::int64_t secs = sec % 86400;
  if (secs < 0) {
    secs += 86400;
    --days;
  }
  const std::int64_t z = days + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  char buf[40];
  char* p = buf;
  const auto put = [&p](std::int64_t v, int width) {
    for (int i = width - 1; i >= 0; --i) {
      p[i] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
    p += width;
  };
  put(year, 4);
  *p++ = '-';
  put(month, 2);
  *p++ = '-';
  put(day, 2);
  *p++ = 'T';
  put(secs / 3600, 2);
  *p++ = ':';
  put(secs / 60 % 60, 2);
  *p++ = ':';
  put(secs % 60, 2);
  *p++ = '.';
  put(nsec, 9);
  *p++ = 'Z';
  out.append(buf, static_cast<std::size_t>(p - buf));
}

/// Now, as RFC 3339 with nanoseconds ("2024-05-01T12:00:00.123456789Z").
inline std::string rfc3339_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  std::string out;
  append_rfc3339(out, ts.tv_sec, ts.tv_nsec);
  return out;
}

}  // namespace katana::inline v0
