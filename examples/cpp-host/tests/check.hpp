// What the tests share: CHECK, and the paths they get from the environment.
//
//   PLUGJAIL               the plugjail executable (read by host.hpp itself; without it,
//                          plugjail is looked up on PATH)
//   PLUGJAIL_TEST_PROFILE  the profile the sessions run under (profiles/default.yaml)
//   PLUGJAIL_TEST_HELLO    examples/plugins/hello.cpp built   (greet, echo, fail)
//   PLUGJAIL_TEST_CRASH    tests/plugins/crash.cpp built      (segv, abort, hang, noop)
//   PLUGJAIL_TEST_ECHO_NOISY  tests/plugins/echo_noisy.cpp built (echo, ticks)
//   PLUGJAIL_TEST_TERMINAL tests/plugins/terminal.cpp built   (shout)
//   PLUGJAIL_TEST_INIT_FAILS tests/plugins/init_fails.cpp built (init() returns 3)
//   PLUGJAIL_TEST_FAKE_SERVE tests/c_client/fake_serve.c built (a plugjail that breaks the rules)
//   PLUGJAIL_TEST_SHM_ATTACK tests/plugins/shm_attack.cpp built (attacks shared-memory calls)
//   PLUGJAIL_TEST_SHM_PROFILE  the profile plus read access to /proc (where it finds the region)
//
// tests/cpp_client.rs (cargo test) builds the plugins and sets these.
#ifndef PLUGJAIL_EXAMPLE_CHECK_HPP
#define PLUGJAIL_EXAMPLE_CHECK_HPP

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

#include <plugjail/host.hpp>

namespace check {

inline int &failures() {
    static int n = 0;
    return n;
}

inline void failed(const char *file, int line, const std::string &what) {
    failures()++;
    std::cerr << file << ":" << line << ": check failed: " << what << "\n";
}

/// Exit status of a test: 0 when every check passed.
inline int result() {
    if (failures() == 0) {
        std::cout << "all checks passed\n";
        return 0;
    }
    std::cerr << failures() << " check(s) failed\n";
    return 1;
}

/// An environment variable the test cannot run without.
inline std::string env(const char *name) {
    const char *v = std::getenv(name);
    if (!v || !*v) {
        std::cerr << "missing environment variable " << name
                  << " (see tests/check.hpp; cargo test --test cpp_client sets it)\n";
        std::exit(2);
    }
    return v;
}

/// Options for a session of the plugin the environment variable `plugin_var` names.
inline plugjail::SessionOptions options(const char *plugin_var) {
    plugjail::SessionOptions o;
    o.profile = env("PLUGJAIL_TEST_PROFILE");
    o.plugin = env(plugin_var);
    return o;
}

}  // namespace check

#define CHECK(cond)                                                     \
    do {                                                                \
        if (!(cond)) ::check::failed(__FILE__, __LINE__, #cond);        \
    } while (0)

#define CHECK_EQ(a, b)                                                                       \
    do {                                                                                     \
        const auto &check_a_ = (a);                                                          \
        const auto &check_b_ = (b);                                                          \
        if (!(check_a_ == check_b_)) {                                                       \
            std::ostringstream check_os_;                                                    \
            check_os_ << #a " == " #b " (" << check_a_ << " vs " << check_b_ << ")";         \
            ::check::failed(__FILE__, __LINE__, check_os_.str());                            \
        }                                                                                    \
    } while (0)

#endif
