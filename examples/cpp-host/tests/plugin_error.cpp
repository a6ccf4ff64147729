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
    return check::result();
}
