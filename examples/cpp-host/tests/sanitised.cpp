// Hostile text from the plugin (tests/plugins/terminal.cpp: OSC 0/52, ESC [2J, a C1 CSI,
// a bidi override, NUL, invalid UTF-8, a carriage return before a forged plugjail line)
// is kept raw, and shown only escaped: one line, nothing a terminal would act on.
#include <mutex>
#include <string>
#include <vector>

#include "check.hpp"

namespace {

/// True when `s` is something a terminal shows as it is: printable, no C1 or bidi control.
bool printable(const std::string &s) {
    for (std::size_t i = 0; i < s.size();) {
        char32_t c = 0;
        const std::size_t n = plugjail::detail::utf8_decode(s, i, c);
        if (n == 0) return false;
        if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || plugjail::detail::is_bidi_or_break(c)) return false;
        i += n;
    }
    return true;
}

}  // namespace

int main() {
    // The escaping rules, as crates/protocol/src/text.rs has them.
    CHECK_EQ(plugjail::escape("\x1b]0;pwned\x07"), std::string("\\x1b]0;pwned\\x07"));
    CHECK_EQ(plugjail::escape("\x1b[2J\x1b[H"), std::string("\\x1b[2J\\x1b[H"));
    CHECK_EQ(plugjail::escape("ok\rplugjail: session ended cleanly"),
             std::string("ok\\rplugjail: session ended cleanly"));
    CHECK_EQ(plugjail::escape(std::string("a\x08\x7f\0b\tc\nd", 9)), std::string("a\\x08\\x7f\\x00b\\tc\\nd"));
    CHECK_EQ(plugjail::escape("\xc2\x9b" "2J"), std::string("\\u{9b}2J"));
    CHECK_EQ(plugjail::escape("\xc2\x85"), std::string("\\u{85}"));
    CHECK_EQ(plugjail::escape("user\xe2\x80\xaetxt.exe"), std::string("user\\u{202e}txt.exe"));
    CHECK_EQ(plugjail::escape("\xd8\x9c\xe2\x80\x8e\xe2\x80\x8f\xe2\x80\xa8\xe2\x80\xa9\xe2\x81\xa6\xe2\x81\xa9"),
             std::string("\\u{61c}\\u{200e}\\u{200f}\\u{2028}\\u{2029}\\u{2066}\\u{2069}"));
    CHECK_EQ(plugjail::escape("a\xff" "b\xc3"), std::string("a\\xffb\\xc3"));
    CHECK_EQ(plugjail::escape("\xc0\xaf\x80"), std::string("\\xc0\\xaf\\x80"));
    CHECK_EQ(plugjail::escape("\x9b"), std::string("\\x9b"));
    CHECK_EQ(plugjail::escape("\xed\xa0\x80"), std::string("\\xed\\xa0\\x80"));  // a surrogate
    CHECK_EQ(plugjail::escape("C:\\x1b"), std::string("C:\\\\x1b"));
    CHECK_EQ(plugjail::escape("gr\xc3\xb6\xc3\x9f" "e \xe2\x82\xac \xe6\x97\xa5"), std::string("gr\xc3\xb6\xc3\x9f" "e \xe2\x82\xac \xe6\x97\xa5"));
    CHECK_EQ(plugjail::Untrusted("say \"hi\"\x1b[2J").quoted(), std::string("\"say \\\"hi\\\"\\x1b[2J\""));
    CHECK_EQ(plugjail::record("warn", plugjail::Untrusted("two\nlines\n\n")), std::string("plugin[warn]: two\\nlines\\n\n"));

    std::mutex mu;
    std::vector<plugjail::Untrusted> raw;
    std::vector<std::string> shown;
    plugjail::SessionOptions o = check::options("PLUGJAIL_TEST_TERMINAL");
    o.on_log = [&](plugjail::LogLevel level, const plugjail::Untrusted &text) {
        std::lock_guard<std::mutex> lock(mu);
        raw.push_back(text);
        shown.push_back(plugjail::record(plugjail::to_string(level), text));
    };
    plugjail::Session s = plugjail::Session::spawn(o);
    plugjail::CallResult r = s.call("shout");
    CHECK(!r.ok() && r.error().code == plugjail::CallErrc::plugin_error);
    const plugjail::Untrusted &msg = r.error().message;
    // Raw: the attack is there, byte for byte (the stub made the invalid UTF-8 U+FFFD).
    CHECK(msg.raw().find("\x1b]0;pwned by plugin\x07") != std::string::npos);
    CHECK(msg.raw().find("\rplugjail: session ended cleanly") != std::string::npos);
    // Shown: escaped, one line.
    const std::string described = r.error().describe();
    std::cout << "error shown as: " << described << "\n";
    CHECK(printable(described));
    CHECK(described.find("\\x1b]0;pwned by plugin\\x07") != std::string::npos);
    CHECK(described.find("\\x1b]52;c;ZWNobyBwd25lZA==\\x07") != std::string::npos);
    CHECK(described.find("c1csi\\u{9b}2J") != std::string::npos);
    CHECK(described.find("bidi[\\u{202e}exe.txt\\u{202c}]") != std::string::npos);
    CHECK(described.find("nul[\\x00]") != std::string::npos);
    CHECK(described.find("\\rplugjail: session ended cleanly") != std::string::npos);

    plugjail::Verdict v = s.close();
    std::cout << "verdict: " << v.summary() << "\n";
    CHECK(printable(v.summary()));

    std::lock_guard<std::mutex> lock(mu);
    CHECK(raw.size() >= 4);
    bool saw_invalid = false;
    for (std::size_t i = 0; i < shown.size(); i++) {
        std::cout << shown[i];
        CHECK(shown[i].back() == '\n');
        const std::string line = shown[i].substr(0, shown[i].size() - 1);
        CHECK(printable(line));
        CHECK(line.rfind("plugin[", 0) == 0);
        if (line.find("bad-utf8[\\xff\\xfe\\xc3]") != std::string::npos) saw_invalid = true;
    }
    CHECK(saw_invalid);  // LOG text is bytes: invalid UTF-8 arrives as sent, shown \xNN
    return check::result();
}
