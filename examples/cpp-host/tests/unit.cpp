// No plugjail needed: the JSON parser and Verdict::parse against good, malformed and
// random input (never a crash: an error), and the typed verdict fields.
//
//   test_unit corpus N   prints N random texts, one a line: the bytes in hex, escape(),
//                        escape(quote) (tests/cpp_client.rs compares them with Rust's
//                        plugjail::text, byte for byte)
#include <random>
#include <string>

#include "check.hpp"

namespace {

const char *const sample =
    "{\"version\":1,\"outcome\":\"seccomp_violation\","
    "\"syscall\":{\"name\":\"ptrace\",\"number\":101,\"arch\":\"x86_64\",\"phase\":\"serve\"},"
    "\"exit_status\":159,\"wall_time_ms\":61,"
    "\"resources\":{\"cpu_time_ms\":3,\"max_rss_bytes\":3272704,\"memory_peak_bytes\":524288},"
    "\"calls\":2,\"message\":\"init said \\u001b]0;x\\u0007 \\ud83d\\ude00\","
    "\"plugin_failure\":{\"stage\":\"init\",\"status\":3,\"message\":\"bad\\r\"},"
    "\"timeout\":{\"kind\":\"host\",\"limit_ms\":250},"
    "\"signal\":{\"number\":31,\"name\":\"SIGSYS\"},"
    "\"enforced\":{\"namespaces\":[\"user\",\"mount\"],\"landlock\":null,\"rootless\":false,"
    "\"x\":[1.5e3,-0.25,1E-2,-9223372036854775808,18446744073709551615,1e400]}}\n";

}  // namespace

/// Random texts made of the pieces escaping cares about.
int corpus(int n) {
    static const char *const pieces[] = {
        "a", "Z", " ", "\\", "\"", "\n", "\r", "\t", "\x1b", "\x07", "\x7f", "" /* NUL, pushed below */,
        "\xc2\x9b", "\xc2\x85", "\xc2\xa0", "\xe2\x80\xae", "\xe2\x80\xac", "\xe2\x81\xa6", "\xe2\x80\x8e",
        "\xe2\x80\xa8", "\xd8\x9c", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc3\xb6", "\xff", "\xfe", "\xc3",
        "\xe2\x82", "\xf0\x9f\x98", "\x80", "\xbf", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "\xe0\x80\x80",
    };
    std::mt19937 rng(4242);
    for (int i = 0; i < n; i++) {
        std::string text;
        const int len = static_cast<int>(rng() % 24);
        for (int k = 0; k < len; k++) {
            if (rng() % 4 == 0) {
                text.push_back(static_cast<char>(rng() & 0xff));
            } else {
                const std::size_t which = rng() % (sizeof pieces / sizeof pieces[0]);
                if (which == 11) text.push_back('\0');
                else text += pieces[which];
            }
        }
        std::string hex;
        for (char c : text) plugjail::detail::append_hex(hex, static_cast<unsigned char>(c), 2);
        std::cout << hex << '\t' << plugjail::escape(text) << '\t' << plugjail::escape(text, true) << '\n';
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && std::string(argv[1]) == "corpus") return corpus(std::atoi(argv[2]));
    std::string why;
    std::optional<plugjail::Verdict> v = plugjail::Verdict::parse(sample, &why);
    CHECK(v.has_value());
    if (v) {
        CHECK_EQ(v->outcome, std::string("seccomp_violation"));
        CHECK_EQ(v->exit_status, 159);
        CHECK(v->syscall && v->syscall->name == std::string("ptrace") && v->syscall->number == 101);
        CHECK(v->syscall && v->syscall->arch == std::string("x86_64") && v->syscall->phase == "serve");
        CHECK(v->resources && v->resources->max_rss_bytes == std::uint64_t{3272704});
        CHECK(v->timeout && v->timeout->kind == "host" && v->timeout->limit_ms == std::uint64_t{250});
        CHECK(v->signal == 31 && v->signal_name == "SIGSYS");
        CHECK_EQ(v->calls, std::uint64_t{2});
        CHECK(v->wall_time_ms == std::uint64_t{61});
        CHECK(v->message && v->message->raw() == "init said \x1b]0;x\x07 \xf0\x9f\x98\x80");
        CHECK(v->message && v->message->sanitized() == "init said \\x1b]0;x\\x07 \xf0\x9f\x98\x80");
        CHECK(v->plugin_failure && v->plugin_failure->stage == "init" && v->plugin_failure->status == 3);
        CHECK(v->plugin_failure && v->plugin_failure->message &&
              v->plugin_failure->message->sanitized() == "bad\\r");
        CHECK(v->json.back() == '}');
    }
    auto j = plugjail::json::Value::parse(sample);
    CHECK(j && j->is_object());
    if (j) {
        const auto &x = j->get("enforced")->get("x")->items();
        CHECK_EQ(x.size(), std::size_t{6});
        CHECK(x[0].number() == 1500.0 && !x[0].int64());
        CHECK(x[1].number() == -0.25);
        CHECK(x[3].int64() == INT64_MIN);
        CHECK(x[4].uint64() == UINT64_MAX && !x[4].int64());
        CHECK(j->get("enforced")->get("landlock")->is_null());
        CHECK(j->get("enforced")->get("rootless")->boolean() == false);
    }

    // Malformed: an error with a reason, never a crash.
    const char *const bad[] = {
        "", " ", "{", "}", "[1,]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "tru", "nul", "01", "1.",
        "-", "1e", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
        "\"a\x01\"", "\"\xff\"", "\"\xc0\xaf\"", "{} x", "[1 2]", "{\"a\" 1}", "[\"a\":1]",
    };
    for (const char *b : bad) {
        std::string err;
        CHECK(!plugjail::json::Value::parse(b, &err));
        CHECK(!err.empty());
    }
    CHECK(!plugjail::Verdict::parse("[1,2]", &why) && !why.empty());
    CHECK(!plugjail::Verdict::parse("{\"version\":1}", &why));
    CHECK(!plugjail::Verdict::parse("{\"outcome\":3}", &why));
    // Wrong types inside a verdict: the field is left empty, the rest is read.
    auto odd = plugjail::Verdict::parse("{\"outcome\":\"ok\",\"calls\":-1,\"signal\":\"x\",\"timeout\":[],"
                                        "\"exit_status\":1e3,\"syscall\":{\"name\":null,\"number\":null}}");
    CHECK(odd && odd->outcome == "ok" && odd->calls == 0 && !odd->signal && !odd->timeout);
    CHECK(odd && odd->exit_status == -1 && odd->syscall && !odd->syscall->name && !odd->syscall->number);

    // Deep nesting stops at 64 levels, without using the stack for the rest.
    CHECK(!plugjail::json::Value::parse(std::string(100000, '['), &why));
    CHECK(why.find("nesting") != std::string::npos);
    CHECK(plugjail::json::Value::parse(std::string(64, '[') + std::string(64, ']')));

    // Every prefix of a real verdict, and random bytes, and random mutations.
    const std::string s = sample;
    for (std::size_t n = 0; n < s.size(); n++) (void)plugjail::Verdict::parse(s.substr(0, n));
    std::mt19937 rng(12345);
    for (int round = 0; round < 20000; round++) {
        std::string m = s;
        const int edits = 1 + static_cast<int>(rng() % 8);
        for (int k = 0; k < edits; k++) m[rng() % m.size()] = static_cast<char>(rng() & 0xff);
        (void)plugjail::Verdict::parse(m);
        std::string junk(rng() % 64, '\0');
        static const char alphabet[] = "{}[]\",:0123456789.eE-+tfnul\\ \x80\xff";
        for (char &c : junk) c = alphabet[rng() % (sizeof alphabet - 1)];
        (void)plugjail::json::Value::parse(junk);
    }
    return check::result();
}
