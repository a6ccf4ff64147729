// The plugin answers ERROR: a typed error, and the session goes on.
#include <string>

#include "check.hpp"

int main() {
    plugjail::Session s = plugjail::Session::spawn(check::options("PLUGJAIL_TEST_HELLO"));

    plugjail::CallResult r = s.call("fail", "x");
    CHECK(!r.ok());
    const plugjail::CallError &e = r.error();
    CHECK(e.code == plugjail::CallErrc::plugin_error);
    CHECK(e.kind == plugjail::ErrorKind::plugin);
    CHECK_EQ(e.status, 7);
    CHECK_EQ(e.message.raw(), std::string("asked to fail"));
    CHECK(e.session_goes_on());
    std::cout << "error: " << e.describe() << "\n";
    CHECK_EQ(e.describe(), std::string("plugin error (status 7): \"asked to fail\""));

    // value() throws the same error as an exception.
    bool threw = false;
    try {
        (void)s.call("fail").value();
    } catch (const plugjail::CallException &x) {
        threw = x.error().code == plugjail::CallErrc::plugin_error && x.error().status == 7;
    }
    CHECK(threw);

    // A method the plugin does not have: the stub answers unknown_method.
    r = s.call("nope", "");
    CHECK(!r.ok() && r.error().code == plugjail::CallErrc::plugin_error);
    CHECK(r.error().kind == plugjail::ErrorKind::unknown_method);

    // Not a method name at all: refused here, nothing sent.
    r = s.call("two\nlines", "");
    CHECK(!r.ok() && r.error().code == plugjail::CallErrc::invalid_method);
    CHECK(r.error().session_goes_on());
    r = s.call(std::string(256, 'm'), "");
    CHECK(!r.ok() && r.error().code == plugjail::CallErrc::invalid_method);

    // The session still answers.
    r = s.call("greet", "again");
    CHECK(r.ok() && r.output() == "hello, again");

    plugjail::Verdict v = s.close();
    std::cout << "verdict: " << v.summary() << "\n";
    CHECK_EQ(v.outcome, std::string("ok"));
    CHECK_EQ(v.calls, std::uint64_t{4});

    // A plugin that does not start (tests/plugins/init_fails.cpp: init() returns 3): the
    // stub's ERROR with call id 0 instead of HELLO, and the verdict `plugin_failed` with
    // the stub's message merged in (untrusted: written inside the jail).
    plugjail::Session bad = plugjail::Session::spawn(check::options("PLUGJAIL_TEST_INIT_FAILS"));
    r = bad.handshake();
    std::cout << "init_fails: " << r.error().describe() << "\n";
    CHECK(!r.ok() && r.error().code == plugjail::CallErrc::startup_failed);
    CHECK(r.error().kind == plugjail::ErrorKind::init_failed);
    CHECK_EQ(r.error().status, 3);
    CHECK(bad.hello() == nullptr);
    const plugjail::Untrusted said = r.error().message;
    r = bad.call("run");
    CHECK(!r.ok() && r.error().code == plugjail::CallErrc::ended);
    v = bad.close();
    std::cout << "verdict: " << v.summary() << "\n";
    CHECK_EQ(v.outcome, std::string("plugin_failed"));
    CHECK_EQ(v.exit_status, 10);
    CHECK(v.plugin_failure && v.plugin_failure->stage == "init");
    CHECK(v.plugin_failure && v.plugin_failure->status == 3);
    CHECK(v.plugin_failure && v.plugin_failure->message &&
          v.plugin_failure->message->raw() == said.raw());
    return check::result();
}
