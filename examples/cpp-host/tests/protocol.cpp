// The client against a plugjail that breaks the rules: tests/c_client/fake_serve.c, run as
// the explicit plugjail path ($PLUGJAIL_TEST_FAKE_SERVE), its $FAKE_SCENARIO saying what to
// do wrong. No jail needed. Each violation ends the session with CallErrc::protocol_violation,
// and close() reports `protocol_violation` with the client's words (plugjail only saw
// itself stopped). SIGPIPE stays at its default here: an unguarded write would kill us.
#include <pthread.h>
#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <string>
#include <thread>

#include "check.hpp"

namespace {

plugjail::Session open_fake(const char *scenario) {
    ::setenv("FAKE_SCENARIO", scenario, 1);
    plugjail::SessionOptions o;
    o.profile = "unused.yaml";
    o.plugin = "unused.so";
    o.plugjail = check::env("PLUGJAIL_TEST_FAKE_SERVE");
    o.handshake_timeout = plugjail::Millis(5000);
    return plugjail::Session::spawn(o);
}

bool has(const std::string &text, const char *part) { return text.find(part) != std::string::npos; }

void violation(const char *scenario, const char *words) {
    plugjail::Session s = open_fake(scenario);
    plugjail::CallResult r = s.call("echo", "hi", plugjail::Millis(5000));
    const bool ok = !r.ok() && r.error().code == plugjail::CallErrc::protocol_violation && has(r.error().detail, words);
    if (!ok) std::cerr << scenario << ": " << r.error().describe() << "\n";
    CHECK(ok);
    plugjail::Verdict v = s.close(plugjail::Millis(5000));
    const bool vok = v.outcome == "protocol_violation" && v.message && has(v.message->raw(), words) && !v.signal &&
                     has(v.host_finding, "protocol violation");
    if (!vok) std::cerr << scenario << ": verdict " << v.summary() << "\n";
    CHECK(vok);
}

}  // namespace

int main() {
    CHECK(std::signal(SIGPIPE, SIG_DFL) != SIG_ERR);

    // A well-behaved fake (frame cap 4096, call_time 1500 ms): the ordinary path.
    {
        plugjail::Session s = open_fake("ok");
        plugjail::CallResult r = s.call("echo", "abc");
        CHECK(r.ok() && r.output() == "abc");
        const plugjail::SessionInfo *info = s.session_info();
        CHECK(info && info->max_message == 4096 && info->call_time.count() == 1500 && info->idle_time.count() == 0);
        const std::string big(5000, 'b');
        // 1 + 4 bytes of method ("echo") and 4092 of input: one byte above the cap.
        r = s.call("echo", std::string_view(big).substr(0, 4092));
        CHECK(!r.ok() && r.error().code == plugjail::CallErrc::input_too_large && r.error().len == 4097);
        r = s.call("echo", std::string_view(big).substr(0, 4091));
        CHECK(r.ok() && r.output().size() == 4091);
        plugjail::Verdict v = s.close();
        CHECK(v.outcome == "ok" && v.calls == 2 && v.host_finding.empty());
    }

    violation("no_session", "not SESSION");
    violation("big_frame", "above the cap");
    violation("flags", "flags");
    violation("bad_type", "unknown type");
    violation("small_cap", "cap below 4096");
    violation("bad_hello_name", "malformed HELLO");
    violation("bad_hello_twice", "twice");
    violation("bad_hello_trailing", "bytes after");
    violation("wrong_id", "for call 2 during call 1");
    violation("startup_after_hello", "startup kind");
    violation("bad_log_level", "malformed LOG");
    violation("session_twice", "SESSION frame after");
    violation("bad_error_utf8", "not UTF-8");
    violation("long_error", "longer than 4096");
    violation("truncated", "ended inside a frame");

    // An answer to call 1 that comes before the call could be written (the fake never
    // reads; the frame is larger than the 1 MiB pipe).
    {
        plugjail::Session s = open_fake("early_answer");
        plugjail::CallResult r = s.call("echo", std::string((1u << 20) - 5, 'e'), plugjail::Millis(5000));
        std::cout << "early answer: " << r.error().describe() << "\n";
        CHECK(!r.ok() && r.error().code == plugjail::CallErrc::protocol_violation && has(r.error().detail, "RESULT"));
        CHECK_EQ(s.close().outcome, std::string("protocol_violation"));
    }

    // The fake stops reading: the call's write meets EPIPE; we live, nothing left pending,
    // the signal mask as it was.
    {
        plugjail::Session s = open_fake("sigpipe");
        CHECK(s.handshake().ok());
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        plugjail::CallResult r = s.call("echo", std::string(70000, 'x'), plugjail::Millis(5000));
        std::cout << "sigpipe: " << r.error().describe() << "\n";
        CHECK(!r.ok() && r.error().code == plugjail::CallErrc::not_delivered);
        sigset_t pending, mask;
        sigemptyset(&pending);
        sigemptyset(&mask);
        CHECK(sigpending(&pending) == 0 && !sigismember(&pending, SIGPIPE));
        CHECK(pthread_sigmask(SIG_BLOCK, nullptr, &mask) == 0 && !sigismember(&mask, SIGPIPE));
        plugjail::Verdict v = s.close();
        CHECK(v.outcome == "exited" && v.calls == 0);
    }

    // plugjail ends before SESSION (a bad profile): the call never went out; the verdict
    // says why.
    {
        plugjail::Session s = open_fake("eof_before_session");
        plugjail::CallResult r = s.call("echo", "");
        CHECK(!r.ok() && r.error().code == plugjail::CallErrc::not_delivered);
        plugjail::Verdict v = s.close();
        CHECK(v.outcome == "setup_failed" && v.step == "profile" && v.exit_status == 125);
    }

    // No verdict, a broken one, one buried under 1.5 MiB of blanks: an error, never a crash.
    for (const char *scenario : {"no_verdict", "bad_verdict", "huge_verdict"}) {
        plugjail::Session s = open_fake(scenario);
        if (std::string(scenario) != "bad_verdict") CHECK(s.handshake().ok());
        plugjail::Verdict v = s.close();
        std::cout << scenario << ": " << v.summary() << "\n";
        CHECK(v.outcome == "setup_failed" && v.step == "session" && !v.error.empty());
        CHECK(v.message && has(v.message->raw(), "delivered no verdict"));
        CHECK(WIFEXITED(v.wait_status) && WEXITSTATUS(v.wait_status) == 0);  // read to the end: never killed
    }
    return check::result();
}
