// A plugin's answers: RESULT bytes back unchanged, the SESSION and HELLO frames read, LOG
// lines delivered, an async call, and a clean verdict.
#include <mutex>
#include <string>
#include <vector>

#include "check.hpp"

int main() {
    std::mutex mu;
    std::vector<std::string> logs;
    plugjail::SessionOptions o = check::options("PLUGJAIL_TEST_HELLO");
    o.on_log = [&](plugjail::LogLevel level, const plugjail::Untrusted &text) {
        std::lock_guard<std::mutex> lock(mu);
        logs.push_back(std::string(plugjail::to_string(level)) + ": " + text.sanitized());
    };
    std::cout << "host running as uid " << ::getuid() << "\n";
    plugjail::Session s = plugjail::Session::spawn(o);
    CHECK(s.pid() > 0);
    CHECK(s.hello() == nullptr);

    plugjail::CallResult r = s.call("greet", "world");
    CHECK(r.ok());
    CHECK_EQ(r.output(), std::string("hello, world"));

    // SESSION: the default profile's cap and call_time, from plugjail, not from YAML.
    const plugjail::SessionInfo *info = s.session_info();
    CHECK(info != nullptr);
    if (info) {
        CHECK_EQ(info->protocol_version, 1u);
        CHECK_EQ(info->max_message, 16u << 20);
        CHECK_EQ(info->call_time.count(), 30000);
    }
    const plugjail::Hello *hello = s.hello();
    CHECK(hello != nullptr);
    if (hello) {
        CHECK_EQ(hello->name.sanitized(), std::string("hello"));
        CHECK_EQ(hello->version.sanitized(), std::string("1.0.0"));
        CHECK(hello->has_method("greet") && hello->has_method("echo") && hello->has_method("fail"));
        CHECK_EQ(hello->methods.size(), std::size_t{3});
    }

    // Every byte value, and an empty input, come back as sent.
    std::string all;
    for (int i = 0; i < 4096; i++) all.push_back(static_cast<char>(i & 0xff));
    r = s.call("echo", all);
    CHECK(r.ok() && r.output() == all);
    r = s.call("echo", "");
    CHECK(r.ok() && r.output().empty());

    // An explicit deadline that is not reached changes nothing.
    r = s.call("greet", "deadline", plugjail::Millis(5000));
    CHECK(r.ok() && r.output() == "hello, deadline");

    // call_async: a std::future; value() gives the output (or throws).
    std::future<plugjail::CallResult> f = s.call_async("greet", "future");
    CHECK_EQ(f.get().value(), std::string("hello, future"));

    plugjail::Verdict v = s.close();
    std::cout << "verdict: " << v.summary() << "\n";
    CHECK_EQ(v.outcome, std::string("ok"));
    CHECK(v.ok());
    CHECK_EQ(v.exit_status, 0);
    CHECK_EQ(v.calls, std::uint64_t{5});
    CHECK(v.error.empty());
    CHECK(v.host_finding.empty());
    CHECK(v.wall_time_ms.has_value());
    CHECK(v.resources.has_value());
    CHECK(!v.json.empty() && v.json.front() == '{');
    CHECK(WIFEXITED(v.wait_status) && WEXITSTATUS(v.wait_status) == 0);
    // close() again: the same verdict; calls after close: `ended`.
    CHECK_EQ(s.close().json, v.json);
    r = s.call("greet", "late");
    CHECK(!r.ok() && r.error().code == plugjail::CallErrc::ended);
    {
        std::lock_guard<std::mutex> lock(mu);
        CHECK(!logs.empty() && logs.front() == "info: hello plugin ready");
    }
    return check::result();
}
