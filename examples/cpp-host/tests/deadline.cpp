// A plugin that hangs past the host's deadline: the call returns timeout on time,
// plugjail serve is told (SIGUSR1 with the deadline), and the verdict says so.
#include <chrono>
#include <string>

#include "check.hpp"

int main() {
    using Clock = std::chrono::steady_clock;
    plugjail::Session s = plugjail::Session::spawn(check::options("PLUGJAIL_TEST_CRASH"));
    CHECK(s.handshake().ok());
    CHECK(s.call("noop").ok());

    const auto start = Clock::now();
    plugjail::CallResult r = s.call("hang", "", plugjail::Millis(300));
    const auto took = std::chrono::duration_cast<plugjail::Millis>(Clock::now() - start);
    std::cout << "hang: " << r.error().describe() << " after " << took.count() << " ms\n";
    CHECK(!r.ok());
    CHECK(r.error().code == plugjail::CallErrc::timeout);
    CHECK(r.error().after == plugjail::Millis(300));
    CHECK(took >= plugjail::Millis(300));
    CHECK(took < plugjail::Millis(3000));

    plugjail::Verdict v = s.close();
    std::cout << "verdict: " << v.summary() << "\n";
    CHECK_EQ(v.outcome, std::string("timeout"));
    CHECK(v.timeout.has_value());
    if (v.timeout) {
        CHECK_EQ(v.timeout->kind, std::string("host"));
        CHECK(v.timeout->limit_ms == std::uint64_t{300});
    }
    CHECK_EQ(v.exit_status, 5);
    CHECK_EQ(v.calls, std::uint64_t{1});
    CHECK_EQ(v.host_finding, std::string("host deadline 300 ms"));

    // The event-loop path keeps the same deadline: next_deadline() says when.
    plugjail::Session s2 = plugjail::Session::spawn(check::options("PLUGJAIL_TEST_CRASH"));
    CHECK(s2.handshake().ok());
    CHECK(!s2.start_call("hang", "", plugjail::Millis(200)).has_value());
    std::optional<plugjail::CallResult> got;
    while (!got) {
        auto dl = s2.next_deadline();
        CHECK(dl.has_value());
        if (!dl) break;
        pollfd p{s2.read_fd(), POLLIN, 0};
        const auto left = std::chrono::duration_cast<plugjail::Millis>(*dl - Clock::now()).count();
        (void)::poll(&p, 1, static_cast<int>(left < 0 ? 0 : left + 1));
        got = s2.on_ready();
    }
    CHECK(got && got->error().code == plugjail::CallErrc::timeout);
    plugjail::Verdict v2 = s2.close();
    CHECK_EQ(v2.outcome, std::string("timeout"));
    CHECK(v2.timeout && v2.timeout->kind == "host" && v2.timeout->limit_ms == std::uint64_t{200});
    return check::result();
}
