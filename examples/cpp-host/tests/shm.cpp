// Shared-memory calls (SessionOptions::shm) against the hostile shm_attack plugin: the
// answers equal the pipe's, LOG frames come before the answer, an ERROR leaves the session
// going; forged answers are protocol violations at once; a plugin that never answers or
// plays with the futex word ends at the host's deadline; cancel() ends a waiting call;
// scrubbed inputs are gone from the region; start_call() is refused.
#include <chrono>
#include <string>
#include <thread>

#include "check.hpp"

namespace {

using Clock = std::chrono::steady_clock;

int lines = 0;

plugjail::Session open(bool scrub) {
    plugjail::SessionOptions o;
    o.profile = check::env("PLUGJAIL_TEST_SHM_PROFILE");
    o.plugin = check::env("PLUGJAIL_TEST_SHM_ATTACK");
    plugjail::ShmOptions shm;
    shm.arena = 256 << 10;
    shm.scrub_inputs = scrub;
    o.shm = shm;
    o.on_log = [](plugjail::LogLevel level, const plugjail::Untrusted &) {
        if (level == plugjail::LogLevel::info) lines++;
    };
    plugjail::Session s = plugjail::Session::spawn(o);
    CHECK(s.handshake().ok());
    CHECK(s.uses_shm());
    if (!s.uses_shm()) std::cerr << "no shared memory: " << s.shm_unavailable() << "\n";
    return s;
}

std::chrono::milliseconds since(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t);
}

}  // namespace

int main() {
    {
        plugjail::Session s = open(false);
        plugjail::CallResult r = s.call("found");
        CHECK(r.ok() && r.output() == "yes");
        for (std::size_t n : {0, 1, 16, 4096, 65536, 200000}) {
            std::string in(n, '\0');
            for (std::size_t k = 0; k < n; k++) in[k] = static_cast<char>(k * 7 + n);
            plugjail::CallResult e = s.call("echo", in);
            CHECK(e.ok() && e.output() == in);
        }
        plugjail::CallResult big = s.call("echo", std::string(300000, 'x'));
        CHECK(!big.ok() && big.error().code == plugjail::CallErrc::input_too_large);
        lines = 0;
        plugjail::CallResult l = s.call("log", std::string(1, '\3'));
        CHECK(l.ok());
        CHECK_EQ(lines, 3);
        plugjail::CallResult f = s.call("fail");
        CHECK(!f.ok() && f.error().code == plugjail::CallErrc::plugin_error && f.error().status == 7);
        CHECK(s.call("echo", "again").ok());
        auto st = s.start_call("echo", "x");
        CHECK(st && st->error().code == plugjail::CallErrc::unsupported);
        CHECK(s.call("echo", "still").ok());
        CHECK_EQ(s.close().outcome, std::string("ok"));
    }
    for (const char *m : {"forge_length", "forge_id", "forge_type"}) {
        plugjail::Session s = open(false);
        const auto t = Clock::now();
        plugjail::CallResult r = s.call(m, "", plugjail::Millis(10000));
        std::cout << m << ": " << r.error().describe() << "\n";
        CHECK(!r.ok() && r.error().code == plugjail::CallErrc::protocol_violation);
        CHECK(since(t) < std::chrono::milliseconds(2000));
        CHECK_EQ(s.close().outcome, std::string("protocol_violation"));
    }
    for (const char *m : {"never", "futex_spin"}) {
        plugjail::Session s = open(false);
        const auto t = Clock::now();
        plugjail::CallResult r = s.call(m, "", plugjail::Millis(400));
        const auto took = since(t);
        std::cout << m << ": " << r.error().describe() << " after " << took.count() << " ms\n";
        CHECK(!r.ok() && r.error().code == plugjail::CallErrc::timeout);
        CHECK(took >= std::chrono::milliseconds(400) && took < std::chrono::milliseconds(1500));
        CHECK_EQ(s.close().outcome, std::string("timeout"));
    }
    {
        plugjail::Session s = open(false);
        auto pending = s.call_async("never");
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        const auto t = Clock::now();
        s.cancel();
        plugjail::CallResult r = pending.get();
        CHECK(!r.ok() && r.error().code == plugjail::CallErrc::cancelled);
        CHECK(since(t) < std::chrono::milliseconds(1000));
        CHECK_EQ(s.close().outcome, std::string("signaled"));
    }
    {
        plugjail::Session s = open(true);
        CHECK(s.call("echo", std::string(200, 'S')).ok());
        plugjail::CallResult peek = s.call("peek");
        CHECK(peek.ok() && peek.output().size() == 64);
        CHECK(peek.ok() && peek.output().find('S') == std::string::npos);
        CHECK_EQ(s.close().outcome, std::string("ok"));
    }
    return check::result();
}
