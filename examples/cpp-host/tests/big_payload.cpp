// A 16 MiB call to a plugin that floods the host with log lines (from the call and from a
// thread of its own): no deadlock, every byte back, the log lines delivered.
#include <atomic>
#include <chrono>
#include <string>

#include "check.hpp"

int main() {
    using Clock = std::chrono::steady_clock;
    std::atomic<unsigned long> logs{0}, ticks{0}, log_bytes{0};
    plugjail::SessionOptions o = check::options("PLUGJAIL_TEST_ECHO_NOISY");
    o.on_log = [&](plugjail::LogLevel level, const plugjail::Untrusted &text) {
        logs++;
        log_bytes += text.size();
        if (level == plugjail::LogLevel::debug && text.raw().rfind("tick ", 0) == 0) ticks++;
    };
    plugjail::Session s = plugjail::Session::spawn(o);
    CHECK(s.handshake().ok());
    const plugjail::SessionInfo *info = s.session_info();
    CHECK(info && info->max_message == (16u << 20));

    // The whole frame is the cap: 1 byte of method length, "echo", the input.
    std::string input((16u << 20) - 1 - 4, '\0');
    for (std::size_t i = 0; i < input.size(); i++) input[i] = static_cast<char>((i * 7919) >> 3);
    const auto start = Clock::now();
    plugjail::CallResult r = s.call("echo", input, plugjail::Millis(60000));
    const auto took = std::chrono::duration_cast<plugjail::Millis>(Clock::now() - start);
    std::cout << "16 MiB echo: " << (r ? "ok" : r.error().describe()) << " in " << took.count()
              << " ms, " << logs.load() << " log frames (" << log_bytes.load() << " bytes, "
              << ticks.load() << " from the plugin's thread)\n";
    CHECK(r.ok());
    CHECK(r.output().size() == input.size());
    CHECK(r.output() == input);
    CHECK(logs.load() >= 1000);  // the stub forwards 1 MiB of the 2 MiB the call logged

    // One byte more does not fit: refused before anything is sent; the session goes on.
    input.push_back('!');
    r = s.call("echo", input);
    CHECK(!r.ok() && r.error().code == plugjail::CallErrc::input_too_large);
    if (!r.ok()) {
        CHECK_EQ(r.error().len, std::size_t{(16u << 20) + 1});
        CHECK_EQ(r.error().cap, 16u << 20);
        CHECK(r.error().session_goes_on());
    }
    r = s.call("echo", "small");
    CHECK(r.ok() && r.output() == "small");

    // Through the event-loop API too: 8 MiB, written as the pipe takes it.
    std::string eight(8u << 20, 'e');
    std::optional<plugjail::CallResult> got = s.start_call("echo", eight, plugjail::Millis(60000));
    while (!got) {
        pollfd p[2] = {{s.read_fd(), POLLIN, 0}, {s.wants_write() ? s.write_fd() : -1, POLLOUT, 0}};
        (void)::poll(p, 2, 1000);
        got = s.on_ready();
    }
    CHECK(got->ok() && got->output() == eight);

    plugjail::Verdict v = s.close();
    std::cout << "verdict: " << v.summary() << "\n";
    CHECK_EQ(v.outcome, std::string("ok"));
    CHECK_EQ(v.calls, std::uint64_t{3});
    return check::result();
}
