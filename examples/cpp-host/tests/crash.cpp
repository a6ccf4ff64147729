// A plugin that crashes: the call reports jail_ended, the verdict names the signal, and
// the host goes on (a new session works).
#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <string>
#include <thread>

#include "check.hpp"

int main() {
    {
        plugjail::Session s = plugjail::Session::spawn(check::options("PLUGJAIL_TEST_CRASH"));
        plugjail::CallResult r = s.call("noop");
        CHECK(r.ok() && r.output().empty());
        r = s.call("segv");
        CHECK(!r.ok());
        CHECK(r.error().code == plugjail::CallErrc::jail_ended);
        CHECK(!r.error().session_goes_on());
        std::cout << "segv: " << r.error().describe() << "\n";
        r = s.call("noop");
        CHECK(!r.ok() && r.error().code == plugjail::CallErrc::ended);
        plugjail::Verdict v = s.close();
        std::cout << "verdict: " << v.summary() << "\n";
        CHECK_EQ(v.outcome, std::string("signaled"));
        CHECK(v.signal == 11);
        CHECK_EQ(v.signal_name, std::string("SIGSEGV"));
        CHECK_EQ(v.exit_status, 139);
        CHECK_EQ(v.calls, std::uint64_t{1});
        CHECK(v.host_finding.empty());
    }
    {
        plugjail::Session s = plugjail::Session::spawn(check::options("PLUGJAIL_TEST_CRASH"));
        plugjail::CallResult r = s.call("abort");
        CHECK(!r.ok() && r.error().code == plugjail::CallErrc::jail_ended);
        plugjail::Verdict v = s.close();
        std::cout << "verdict: " << v.summary() << "\n";
        CHECK_EQ(v.outcome, std::string("signaled"));
        CHECK_EQ(v.signal_name, std::string("SIGABRT"));
        CHECK_EQ(v.exit_status, 128 + 6);
    }
    {
        // The jail ends behind the client's back (plugjail serve stopped from outside);
        // the next call's write meets a closed pipe: EPIPE, and the SIGPIPE it raises
        // (default action here: death) is consumed by the client.
        CHECK(std::signal(SIGPIPE, SIG_DFL) != SIG_ERR);
        plugjail::Session s = plugjail::Session::spawn(check::options("PLUGJAIL_TEST_CRASH"));
        CHECK(s.call("noop").ok());
        CHECK(::kill(s.pid(), SIGTERM) == 0);
        for (int i = 0; i < 500 && ::kill(s.pid(), 0) == 0; i++) {
            // plugjail serve ends the jail, writes its verdict, exits (a zombie until close()).
            int st = 0;
            if (::waitpid(s.pid(), &st, WNOHANG | WNOWAIT) == s.pid()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        plugjail::CallResult r = s.call("noop", std::string(4u << 20, 'x'));
        CHECK(!r.ok());
        std::cout << "after the jail ended: " << r.error().describe() << "\n";
        CHECK(r.error().code == plugjail::CallErrc::not_delivered || r.error().code == plugjail::CallErrc::jail_ended);
        sigset_t pending;
        sigemptyset(&pending);
        CHECK(sigpending(&pending) == 0 && !sigismember(&pending, SIGPIPE));
        plugjail::Verdict v = s.close();
        std::cout << "verdict: " << v.summary() << "\n";
        CHECK_EQ(v.outcome, std::string("signaled"));
    }
    // The host lost nothing: the next session answers.
    plugjail::Session s = plugjail::Session::spawn(check::options("PLUGJAIL_TEST_CRASH"));
    CHECK(s.call("noop").ok());
    CHECK(s.close().ok());
    return check::result();
}
