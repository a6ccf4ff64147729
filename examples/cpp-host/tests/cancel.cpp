// cancel() from another thread ends the jail; the pending call returns `cancelled`.
#include <chrono>
#include <string>
#include <thread>

#include "check.hpp"

int main() {
    using Clock = std::chrono::steady_clock;
    {
        plugjail::Session s = plugjail::Session::spawn(check::options("PLUGJAIL_TEST_CRASH"));
        CHECK(s.call("noop").ok());
        std::thread canceller([&s] {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            s.cancel();
        });
        const auto start = Clock::now();
        plugjail::CallResult r = s.call("hang", "", plugjail::Millis(20000));
        const auto took = std::chrono::duration_cast<plugjail::Millis>(Clock::now() - start);
        canceller.join();
        std::cout << "hang: " << r.error().describe() << " after " << took.count() << " ms\n";
        CHECK(!r.ok() && r.error().code == plugjail::CallErrc::cancelled);
        CHECK(took < plugjail::Millis(5000));
        r = s.call("noop");
        CHECK(!r.ok() && r.error().code == plugjail::CallErrc::ended);
        plugjail::Verdict v = s.close();
        std::cout << "verdict: " << v.summary() << "\n";
        CHECK_EQ(v.outcome, std::string("signaled"));
        CHECK(v.signal == SIGTERM);
        CHECK_EQ(v.host_finding, std::string("cancelled by the host"));
        CHECK_EQ(v.calls, std::uint64_t{1});
    }
    {
        // An async call, cancelled from the thread that holds its future.
        plugjail::Session s = plugjail::Session::spawn(check::options("PLUGJAIL_TEST_CRASH"));
        std::future<plugjail::CallResult> f = s.call_async("hang", "", plugjail::Millis(20000));
        CHECK(f.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);
        s.cancel();
        CHECK(f.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
        plugjail::CallResult r = f.get();
        CHECK(!r.ok() && r.error().code == plugjail::CallErrc::cancelled);
        CHECK_EQ(s.close().host_finding, std::string("cancelled by the host"));
    }
    {
        // Cancelled before any call; destroying a session without close() reaps it too.
        plugjail::Session s = plugjail::Session::spawn(check::options("PLUGJAIL_TEST_CRASH"));
        const pid_t pid = s.pid();
        s.cancel();
        plugjail::CallResult r = s.call("noop");
        CHECK(!r.ok());
        CHECK(r.error().code == plugjail::CallErrc::ended || r.error().code == plugjail::CallErrc::cancelled);
        { plugjail::Session gone = std::move(s); }
        CHECK(::kill(pid, 0) != 0);  // reaped: no such process
    }
    return check::result();
}
