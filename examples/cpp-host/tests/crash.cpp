// A plugin that crashes: the call reports jail_ended, the verdict names the signal, and
// the host goes on (a new session works).
#include <string>

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
    // The host lost nothing: the next session answers.
    plugjail::Session s = plugjail::Session::spawn(check::options("PLUGJAIL_TEST_CRASH"));
    CHECK(s.call("noop").ok());
    CHECK(s.close().ok());
    return check::result();
}
