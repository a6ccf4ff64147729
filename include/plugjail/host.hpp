// plugjail/host.hpp — a header-only C++17 host client for plugjail (docs/clients.md, "C++").
//
// A host application runs one plugin in a jail with plugjail::Session: the session spawns
// `plugjail serve` (posix_spawn, never fork), speaks the plugin protocol of
// docs/protocol.md over two pipes, and reads plugjail's verdict from a third when it ends.
//
//   plugjail::SessionOptions o;
//   o.profile = "/usr/share/plugjail/profiles/default.yaml";
//   o.plugin = "hello.so";
//   plugjail::Session s = plugjail::Session::spawn(o);         // throws SpawnError
//   plugjail::CallResult r = s.call("greet", "world");          // never throws
//   if (r) use(r.output()); else std::cerr << r.error().describe() << "\n";
//   plugjail::Verdict v = s.close();                            // outcome "ok", calls 1
//
// Error model: spawning throws plugjail::SpawnError (for instance when `plugjail` is not
// found: the message lists every place looked at). Calls return a CallResult, which holds
// either the output or a CallError with a code (CallErrc); CallResult::value() throws a
// CallException instead for those who prefer exceptions. close() returns the Verdict and
// never throws.
//
// Text that comes from the plugin side — LOG text, ERROR messages, HELLO names, verdict
// messages that may quote the plugin — is held in plugjail::Untrusted: the raw bytes stay
// available (raw()), and sanitized() escapes them for people exactly as plugjail does
// (crates/protocol/src/text.rs): control characters, ESC, C1 and bidi controls and
// invalid UTF-8 become visible escapes, on one line.
//
// Threading: a Session is used by one thread at a time for calls (call(), call_async(),
// start_call()/on_ready() are serialised by an internal mutex); cancel() may be called from
// any thread at any moment. LOG callbacks run on the thread that makes the call.
//
// SIGPIPE: a write to a pipe whose reader is gone raises SIGPIPE, and MSG_NOSIGNAL does
// not exist for pipes. The client blocks SIGPIPE in the calling thread around its writes
// (pthread_sigmask) and, when a write failed with EPIPE, consumes the SIGPIPE that write
// raised (sigtimedwait with a zero timeout) before restoring the mask, unless one was
// already pending. A process that ignores SIGPIPE when it spawns the session (most
// servers do: signal(SIGPIPE, SIG_IGN)) skips those two system calls per call; such a
// process must not restore SIGPIPE's default while the session lives. The host's signal
// dispositions are never changed.
//
// Requires Linux, C++17 and the standard library; link with -pthread.
#ifndef PLUGJAIL_HOST_HPP
#define PLUGJAIL_HOST_HPP

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

extern "C" {
extern char **environ;
}

namespace plugjail {

/// The plugin protocol version this client speaks (docs/protocol.md).
inline constexpr std::uint32_t protocol_version = 1;
/// The plugin ABI version this client accepts in HELLO (include/plugjail.h).
inline constexpr std::uint32_t abi_version = 1;

using Millis = std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------
// Untrusted text
// ---------------------------------------------------------------------------------------

namespace detail {

/// Decodes one UTF-8 scalar value at `s[i]` the way Rust's `str::from_utf8` accepts it
/// (no overlong forms, no surrogates, nothing above U+10FFFF). Returns its length in bytes
/// (1–4) and sets `cp`, or 0 when the bytes there are not valid UTF-8.
inline std::size_t utf8_decode(std::string_view s, std::size_t i, char32_t &cp) noexcept {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
        cp = b0;
        return 1;
    }
    std::size_t n = 0;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        n = 2;
        cp = b0 & 0x1fu;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        n = 3;
        cp = b0 & 0x0fu;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        n = 4;
        cp = b0 & 0x07u;
    } else {
        return 0;
    }
    if (s.size() - i < n) return 0;
    for (std::size_t k = 1; k < n; k++) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (b & 0x3fu);
    }
    if (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) return 0;
    if (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) return 0;
    return n;
}

/// Unicode category Cc: C0 controls, DEL and C1 controls.
inline bool is_control(char32_t c) noexcept { return c < 0x20 || (c >= 0x7f && c <= 0x9f); }

/// Bidi embedding/override/isolate controls and marks, line and paragraph separators
/// (crates/protocol/src/payload.rs, `is_bidi_or_break`).
inline bool is_bidi_or_break(char32_t c) noexcept {
    return c == 0x061c || c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
           c == 0x2028 || c == 0x2029 || (c >= 0x2066 && c <= 0x2069);
}

inline void append_hex(std::string &out, unsigned long v, int min_digits) {
    static const char digits[] = "0123456789abcdef";
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = digits[v & 0xf];
        v >>= 4;
    } while (v != 0 && n < 16);
    while (n < min_digits && n < 16) tmp[n++] = '0';
    while (n > 0) out.push_back(tmp[--n]);
}

/// True when every byte of `s` is UTF-8 without control characters or bidi controls: a
/// valid name of the plugin protocol when also 1..=255 bytes long.
inline bool clean_text(std::string_view s) noexcept {
    for (std::size_t i = 0; i < s.size();) {
        char32_t c = 0;
        const std::size_t n = utf8_decode(s, i, c);
        if (n == 0 || is_control(c) || is_bidi_or_break(c)) return false;
        i += n;
    }
    return true;
}

inline bool valid_utf8(std::string_view s) noexcept {
    for (std::size_t i = 0; i < s.size();) {
        char32_t c = 0;
        const std::size_t n = utf8_decode(s, i, c);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

}  // namespace detail

/// `text` made safe to show to people, on one line, by the rules of plugjail's own output
/// (crates/protocol/src/text.rs): `\` → `\\`; newline, carriage return, tab → `\n`, `\r`,
/// `\t`; other C0 controls and DEL → `\xNN`; C1 controls → `\u{NN}`; bidi controls and
/// marks, U+2028 and U+2029 → `\u{NNNN}`; every byte that is not part of valid UTF-8 →
/// `\xNN`; with `quote`, `"` → `\"`. Everything else passes unchanged. Distinct inputs give
/// distinct outputs.
inline std::string escape(std::string_view text, bool quote = false) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        char32_t c = 0;
        const std::size_t n = detail::utf8_decode(text, i, c);
        if (n == 0) {
            out += "\\x";
            detail::append_hex(out, static_cast<unsigned char>(text[i]), 2);
            i += 1;
            continue;
        }
        const bool escaped = detail::is_control(c) || c == U'\\' || (quote && c == U'"') ||
                             detail::is_bidi_or_break(c);
        if (!escaped) {
            out.append(text.data() + i, n);
        } else if (c == U'\\') {
            out += "\\\\";
        } else if (c == U'"') {
            out += "\\\"";
        } else if (c == U'\n') {
            out += "\\n";
        } else if (c == U'\r') {
            out += "\\r";
        } else if (c == U'\t') {
            out += "\\t";
        } else if (c < 0x80) {
            out += "\\x";
            detail::append_hex(out, c, 2);
        } else {
            out += "\\u{";
            detail::append_hex(out, c, 1);
            out += "}";
        }
        i += n;
    }
    return out;
}

/// Bytes that came from the plugin side: hostile data, never to be shown raw. There is
/// deliberately no operator<<: print sanitized() (or quoted()), and use raw() only for
/// lossless storage or machine processing.
class Untrusted {
public:
    Untrusted() = default;
    explicit Untrusted(std::string bytes) : bytes_(std::move(bytes)) {}

    /// The bytes as received, lossless (may hold escape sequences, NUL, invalid UTF-8).
    const std::string &raw() const noexcept { return bytes_; }
    /// One printable line: escape(raw()).
    std::string sanitized() const { return escape(bytes_); }
    /// escape(raw(), true) in double quotes, for plugin text inside the host's sentences.
    std::string quoted() const { return "\"" + escape(bytes_, true) + "\""; }
    bool empty() const noexcept { return bytes_.empty(); }
    std::size_t size() const noexcept { return bytes_.size(); }

    friend bool operator==(const Untrusted &a, const Untrusted &b) { return a.bytes_ == b.bytes_; }
    friend bool operator!=(const Untrusted &a, const Untrusted &b) { return !(a == b); }

private:
    std::string bytes_;
};

/// LOG levels (docs/protocol.md, LOG).
enum class LogLevel : std::uint32_t { debug = 0, info = 1, warn = 2, error = 3, output = 4 };

inline const char *to_string(LogLevel l) noexcept {
    switch (l) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warn: return "warn";
        case LogLevel::error: return "error";
        case LogLevel::output: return "output";
    }
    return "?";
}

/// One line for people, as `plugjail call` prints plugin text: `plugin[TAG]: TEXT\n`, the
/// text escaped; one trailing newline of the text is the record's end.
inline std::string record(std::string_view tag, const Untrusted &text) {
    std::string_view t = text.raw();
    if (!t.empty() && t.back() == '\n') t.remove_suffix(1);
    std::string line = "plugin[";
    line.append(tag.data(), tag.size());
    line += "]: ";
    line += escape(t);
    line += '\n';
    return line;
}

// ---------------------------------------------------------------------------------------
// JSON (plugjail's own: the verdict, and the `plugjail host` protocol's bodies)
// ---------------------------------------------------------------------------------------

namespace json {

/// A parsed JSON value. Objects keep their keys in order; get() finds the first match.
class Value {
public:
    enum class Type { null, boolean, number, string, array, object };

    Type type() const noexcept { return type_; }
    bool is_null() const noexcept { return type_ == Type::null; }
    bool is_object() const noexcept { return type_ == Type::object; }
    bool is_array() const noexcept { return type_ == Type::array; }

    /// The string, or nullptr when this is not a string.
    const std::string *string() const noexcept { return type_ == Type::string ? &str_ : nullptr; }
    std::optional<bool> boolean() const noexcept {
        if (type_ != Type::boolean) return std::nullopt;
        return bool_;
    }
    /// An integer that fits exactly, else nothing (fractions and exponents are not).
    std::optional<std::int64_t> int64() const noexcept {
        if (type_ != Type::number || !integral_) return std::nullopt;
        if (!negative_) {
            if (mag_ > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
            return static_cast<std::int64_t>(mag_);
        }
        if (mag_ > static_cast<std::uint64_t>(INT64_MAX) + 1u) return std::nullopt;
        if (mag_ == static_cast<std::uint64_t>(INT64_MAX) + 1u) return INT64_MIN;
        return -static_cast<std::int64_t>(mag_);
    }
    std::optional<std::uint64_t> uint64() const noexcept {
        if (type_ != Type::number || !integral_ || (negative_ && mag_ != 0)) return std::nullopt;
        return mag_;
    }
    std::optional<double> number() const noexcept {
        if (type_ != Type::number) return std::nullopt;
        return num_;
    }
    /// Array items (empty unless an array).
    const std::vector<Value> &items() const noexcept { return items_; }
    /// Object keys, parallel to items() (empty unless an object).
    const std::vector<std::string> &keys() const noexcept { return keys_; }
    /// The member `key` of an object, or nullptr.
    const Value *get(std::string_view key) const noexcept {
        if (type_ != Type::object) return nullptr;
        for (std::size_t i = 0; i < keys_.size(); i++)
            if (keys_[i] == key) return &items_[i];
        return nullptr;
    }
    /// get(key)->string(), or nullptr.
    const std::string *get_string(std::string_view key) const noexcept {
        const Value *v = get(key);
        return v ? v->string() : nullptr;
    }
    std::optional<std::int64_t> get_int64(std::string_view key) const noexcept {
        const Value *v = get(key);
        return v ? v->int64() : std::nullopt;
    }
    std::optional<std::uint64_t> get_uint64(std::string_view key) const noexcept {
        const Value *v = get(key);
        return v ? v->uint64() : std::nullopt;
    }

    /// Parses one JSON value (surrounding whitespace allowed, nothing else). On malformed
    /// input — bad syntax, invalid UTF-8, nesting deeper than 64, a lone surrogate — returns
    /// nothing and, when `error` is given, says what and where. Never throws for bad input.
    static std::optional<Value> parse(std::string_view text, std::string *error = nullptr);

private:
    friend class Parser;
    Type type_ = Type::null;
    bool bool_ = false;
    bool integral_ = false;
    bool negative_ = false;
    std::uint64_t mag_ = 0;
    double num_ = 0;
    std::string str_;
    std::vector<std::string> keys_;
    std::vector<Value> items_;
};

class Parser {
public:
    explicit Parser(std::string_view t) : t_(t) {}

    std::optional<Value> run(std::string *error) {
        Value v;
        skip_ws();
        if (parse_value(v, 0)) {
            skip_ws();
            if (i_ == t_.size()) return v;
            fail("unexpected bytes after the value");
        }
        if (error) *error = what_ + " at byte " + std::to_string(i_);
        return std::nullopt;
    }

private:
    static constexpr int max_depth = 64;
    std::string_view t_;
    std::size_t i_ = 0;
    std::string what_;

    bool fail(const char *what) {
        if (what_.empty()) what_ = what;
        return false;
    }
    void skip_ws() {
        while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r'))
            i_++;
    }
    bool literal(std::string_view word) {
        if (t_.substr(i_, word.size()) != word) return fail("bad literal");
        i_ += word.size();
        return true;
    }

    bool parse_value(Value &v, int depth) {
        if (depth > max_depth) return fail("nesting deeper than 64");
        if (i_ >= t_.size()) return fail("unexpected end of input");
        const char c = t_[i_];
        if (c == '{') return parse_object(v, depth);
        if (c == '[') return parse_array(v, depth);
        if (c == '"') {
            v.type_ = Value::Type::string;
            return parse_string(v.str_);
        }
        if (c == 't') {
            v.type_ = Value::Type::boolean;
            v.bool_ = true;
            return literal("true");
        }
        if (c == 'f') {
            v.type_ = Value::Type::boolean;
            v.bool_ = false;
            return literal("false");
        }
        if (c == 'n') {
            v.type_ = Value::Type::null;
            return literal("null");
        }
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(v);
        return fail("unexpected character");
    }

    bool parse_object(Value &v, int depth) {
        v.type_ = Value::Type::object;
        i_++;  // {
        skip_ws();
        if (i_ < t_.size() && t_[i_] == '}') {
            i_++;
            return true;
        }
        for (;;) {
            skip_ws();
            if (i_ >= t_.size() || t_[i_] != '"') return fail("expected a key");
            std::string key;
            if (!parse_string(key)) return false;
            skip_ws();
            if (i_ >= t_.size() || t_[i_] != ':') return fail("expected ':'");
            i_++;
            skip_ws();
            Value item;
            if (!parse_value(item, depth + 1)) return false;
            v.keys_.push_back(std::move(key));
            v.items_.push_back(std::move(item));
            skip_ws();
            if (i_ >= t_.size()) return fail("unexpected end of input");
            if (t_[i_] == ',') {
                i_++;
                continue;
            }
            if (t_[i_] == '}') {
                i_++;
                return true;
            }
            return fail("expected ',' or '}'");
        }
    }

    bool parse_array(Value &v, int depth) {
        v.type_ = Value::Type::array;
        i_++;  // [
        skip_ws();
        if (i_ < t_.size() && t_[i_] == ']') {
            i_++;
            return true;
        }
        for (;;) {
            skip_ws();
            Value item;
            if (!parse_value(item, depth + 1)) return false;
            v.items_.push_back(std::move(item));
            skip_ws();
            if (i_ >= t_.size()) return fail("unexpected end of input");
            if (t_[i_] == ',') {
                i_++;
                continue;
            }
            if (t_[i_] == ']') {
                i_++;
                return true;
            }
            return fail("expected ',' or ']'");
        }
    }

    bool hex4(std::uint32_t &out) {
        if (t_.size() - i_ < 4) return fail("short \\u escape");
        out = 0;
        for (int k = 0; k < 4; k++) {
            const char h = t_[i_++];
            out <<= 4;
            if (h >= '0' && h <= '9') out |= static_cast<std::uint32_t>(h - '0');
            else if (h >= 'a' && h <= 'f') out |= static_cast<std::uint32_t>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') out |= static_cast<std::uint32_t>(h - 'A' + 10);
            else return fail("bad \\u escape");
        }
        return true;
    }

    static void put_utf8(std::string &s, std::uint32_t cp) {
        if (cp < 0x80) {
            s.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
            s.push_back(static_cast<char>(0xc0 | (cp >> 6)));
            s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        } else if (cp < 0x10000) {
            s.push_back(static_cast<char>(0xe0 | (cp >> 12)));
            s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
            s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        } else {
            s.push_back(static_cast<char>(0xf0 | (cp >> 18)));
            s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
            s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
            s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        }
    }

    bool parse_string(std::string &out) {
        i_++;  // "
        for (;;) {
            if (i_ >= t_.size()) return fail("unterminated string");
            const auto c = static_cast<unsigned char>(t_[i_]);
            if (c == '"') {
                i_++;
                return true;
            }
            if (c < 0x20) return fail("control character in a string");
            if (c == '\\') {
                if (++i_ >= t_.size()) return fail("unterminated string");
                const char e = t_[i_++];
                switch (e) {
                    case '"': out.push_back('"'); break;
                    case '\\': out.push_back('\\'); break;
                    case '/': out.push_back('/'); break;
                    case 'b': out.push_back('\b'); break;
                    case 'f': out.push_back('\f'); break;
                    case 'n': out.push_back('\n'); break;
                    case 'r': out.push_back('\r'); break;
                    case 't': out.push_back('\t'); break;
                    case 'u': {
                        std::uint32_t cp = 0;
                        if (!hex4(cp)) return false;
                        if (cp >= 0xdc00 && cp <= 0xdfff) return fail("lone surrogate");
                        if (cp >= 0xd800 && cp <= 0xdbff) {
                            std::uint32_t lo = 0;
                            if (t_.substr(i_, 2) != "\\u") return fail("lone surrogate");
                            i_ += 2;
                            if (!hex4(lo)) return false;
                            if (lo < 0xdc00 || lo > 0xdfff) return fail("lone surrogate");
                            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        }
                        put_utf8(out, cp);
                        break;
                    }
                    default: return fail("bad escape");
                }
                continue;
            }
            char32_t cp = 0;
            const std::size_t n = detail::utf8_decode(t_, i_, cp);
            if (n == 0) return fail("invalid UTF-8 in a string");
            out.append(t_.data() + i_, n);
            i_ += n;
        }
    }

    bool digits(std::size_t &count) {
        count = 0;
        while (i_ < t_.size() && t_[i_] >= '0' && t_[i_] <= '9') {
            i_++;
            count++;
        }
        return count > 0;
    }

    bool parse_number(Value &v) {
        v.type_ = Value::Type::number;
        const std::size_t start = i_;
        if (t_[i_] == '-') {
            v.negative_ = true;
            i_++;
        }
        const std::size_t int_start = i_;
        std::size_t n = 0;
        if (!digits(n)) return fail("bad number");
        if (n > 1 && t_[int_start] == '0') return fail("leading zero in a number");
        bool integral = true;
        std::size_t frac_start = 0, frac_n = 0;
        if (i_ < t_.size() && t_[i_] == '.') {
            i_++;
            frac_start = i_;
            if (!digits(frac_n)) return fail("bad number");
            integral = false;
        }
        long exp = 0;
        if (i_ < t_.size() && (t_[i_] == 'e' || t_[i_] == 'E')) {
            i_++;
            bool eneg = false;
            if (i_ < t_.size() && (t_[i_] == '+' || t_[i_] == '-')) eneg = t_[i_++] == '-';
            const std::size_t es = i_;
            std::size_t en = 0;
            if (!digits(en)) return fail("bad number");
            for (std::size_t k = es; k < i_ && exp < 100000; k++) exp = exp * 10 + (t_[k] - '0');
            if (eneg) exp = -exp;
            integral = false;
        }
        // The value as a double (no locale involved), and exactly when it is an integer.
        double d = 0;
        bool overflow = false;
        std::uint64_t mag = 0;
        for (std::size_t k = int_start; k < int_start + n; k++) {
            const auto digit = static_cast<std::uint64_t>(t_[k] - '0');
            d = d * 10 + static_cast<double>(digit);
            if (mag > (UINT64_MAX - digit) / 10) overflow = true;
            else mag = mag * 10 + digit;
        }
        for (std::size_t k = 0; k < frac_n; k++) {
            d += static_cast<double>(t_[frac_start + k] - '0') * pow10(-static_cast<long>(k + 1));
        }
        if (exp != 0) d *= pow10(exp);
        v.num_ = v.negative_ ? -d : d;
        v.integral_ = integral && !overflow;
        v.mag_ = mag;
        (void)start;
        return true;
    }

    static double pow10(long e) {
        double r = 1, base = e < 0 ? 0.1 : 10;
        unsigned long k = static_cast<unsigned long>(e < 0 ? -e : e);
        while (k) {
            if (k & 1) r *= base;
            base *= base;
            k >>= 1;
        }
        return r;
    }
};

inline std::optional<Value> Value::parse(std::string_view text, std::string *error) {
    return Parser(text).run(error);
}

}  // namespace json

// ---------------------------------------------------------------------------------------
// Protocol values
// ---------------------------------------------------------------------------------------

/// ERROR kinds (docs/protocol.md, ERROR). 1–4 answer a call; 5–8 mean the plugin did not
/// start.
enum class ErrorKind : std::uint32_t {
    plugin = 1,
    unknown_method = 2,
    output_too_large = 3,
    bad_call = 4,
    load_failed = 5,
    abi_mismatch = 6,
    init_failed = 7,
    filter_failed = 8,
};

inline const char *to_string(ErrorKind k) noexcept {
    switch (k) {
        case ErrorKind::plugin: return "plugin";
        case ErrorKind::unknown_method: return "unknown_method";
        case ErrorKind::output_too_large: return "output_too_large";
        case ErrorKind::bad_call: return "bad_call";
        case ErrorKind::load_failed: return "load_failed";
        case ErrorKind::abi_mismatch: return "abi_mismatch";
        case ErrorKind::init_failed: return "init_failed";
        case ErrorKind::filter_failed: return "filter_failed";
    }
    return "?";
}

/// What the SESSION frame said: written by `plugjail serve` before the jail existed, so the
/// plugin cannot forge it.
struct SessionInfo {
    std::uint32_t protocol_version = 0;
    /// The cap on every frame's payload, both ways (the profile's limits.max_message).
    std::uint32_t max_message = 0;
    /// The profile's limits.call_time; 0 when it sets none.
    Millis call_time{0};
    /// The profile's limits.idle_time; 0 when it sets none.
    Millis idle_time{0};
};

/// The plugin's HELLO. The names come from the plugin: valid UTF-8 without control or
/// bidi characters (checked), but still the plugin's choice.
struct Hello {
    std::uint32_t protocol_version = 0;
    std::uint32_t abi_version = 0;
    Untrusted name;
    Untrusted version;
    std::vector<Untrusted> methods;

    bool has_method(std::string_view m) const {
        return std::any_of(methods.begin(), methods.end(),
                           [&](const Untrusted &u) { return u.raw() == m; });
    }
};

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

enum class SpawnErrc {
    /// No plugjail executable where the client looked (SpawnError::looked() lists it).
    not_found,
    /// posix_spawn failed (SpawnError::sys_errno()).
    spawn_failed,
    /// Creating a pipe or setting it up failed (SpawnError::sys_errno()).
    pipe_failed,
    /// The options are unusable (an empty profile or plugin path).
    bad_options,
};

/// Session::spawn's failure.
class SpawnError : public std::runtime_error {
public:
    SpawnError(SpawnErrc code, const std::string &what, std::vector<std::string> looked = {},
               int err = 0)
        : std::runtime_error(what), code_(code), looked_(std::move(looked)), errno_(err) {}
    SpawnErrc code() const noexcept { return code_; }
    /// Every place looked at for `plugjail`, with why it was not used (not_found).
    const std::vector<std::string> &looked() const noexcept { return looked_; }
    int sys_errno() const noexcept { return errno_; }

private:
    SpawnErrc code_;
    std::vector<std::string> looked_;
    int errno_;
};

/// Why a call failed. After the codes marked "the session goes on" the next call works;
/// after the others the session has ended and close() gives the verdict.
enum class CallErrc {
    /// The plugin (or the stub) answered ERROR (kind 1–4). The session goes on.
    plugin_error,
    /// The input does not fit in one frame (SessionInfo::max_message); nothing was sent.
    /// The session goes on.
    input_too_large,
    /// The method is not a valid name (1–255 bytes of UTF-8 without control or bidi
    /// characters); nothing was sent. The session goes on.
    invalid_method,
    /// Another call is in progress on this session (start_call()). The session goes on.
    busy,
    /// No answer before the deadline: plugjail serve was sent SIGUSR1 with the deadline,
    /// and the verdict says `timeout`, kind `host`.
    timeout,
    /// cancel() was called: the jail was ended (SIGTERM to plugjail serve).
    cancelled,
    /// The jail ended during the call (a crash, a kill, a limit): close() says how.
    jail_ended,
    /// The jail had ended before the call reached the plugin: it never ran.
    not_delivered,
    /// The plugin did not start (ERROR with call id 0: load, ABI or init failure).
    startup_failed,
    /// The plugin side broke the protocol; the jail was ended (SIGTERM).
    protocol_violation,
    /// A system call on the channel failed (CallError::sys_errno); the jail was ended.
    io_error,
    /// The session had already ended (an earlier failure, cancel() or close()).
    ended,
    /// start_call() on a session that calls over shared memory: use call(). The session
    /// goes on.
    unsupported,
};

inline const char *to_string(CallErrc c) noexcept {
    switch (c) {
        case CallErrc::plugin_error: return "plugin_error";
        case CallErrc::input_too_large: return "input_too_large";
        case CallErrc::invalid_method: return "invalid_method";
        case CallErrc::busy: return "busy";
        case CallErrc::timeout: return "timeout";
        case CallErrc::cancelled: return "cancelled";
        case CallErrc::jail_ended: return "jail_ended";
        case CallErrc::not_delivered: return "not_delivered";
        case CallErrc::startup_failed: return "startup_failed";
        case CallErrc::unsupported: return "unsupported";
        case CallErrc::protocol_violation: return "protocol_violation";
        case CallErrc::io_error: return "io_error";
        case CallErrc::ended: return "ended";
    }
    return "?";
}

struct CallError {
    CallErrc code = CallErrc::ended;
    /// plugin_error, startup_failed: the ERROR frame's kind and status.
    ErrorKind kind = ErrorKind::plugin;
    std::int32_t status = 0;
    /// plugin_error, startup_failed: the ERROR frame's message (the plugin's words).
    Untrusted message;
    /// The client's own words: what was malformed (protocol_violation), the syscall
    /// (io_error), why the session had ended (ended). Never plugin text.
    std::string detail;
    /// input_too_large: the payload's size and the cap.
    std::size_t len = 0;
    std::uint32_t cap = 0;
    /// timeout: the deadline that passed.
    Millis after{0};
    /// io_error: errno.
    int sys_errno = 0;

    bool session_goes_on() const noexcept {
        return code == CallErrc::plugin_error || code == CallErrc::input_too_large ||
               code == CallErrc::invalid_method || code == CallErrc::busy;
    }

    /// One line for people; plugin text in it sanitised and quoted.
    std::string describe() const {
        std::string s;
        switch (code) {
            case CallErrc::plugin_error:
                s = std::string(to_string(kind)) + " error";
                if (status != 0) s += " (status " + std::to_string(status) + ")";
                return s + ": " + message.quoted();
            case CallErrc::input_too_large:
                return "input of " + std::to_string(len) +
                       " bytes does not fit in a frame of at most " + std::to_string(cap) +
                       " bytes";
            case CallErrc::invalid_method: return "not a method name: " + detail;
            case CallErrc::busy: return "another call is in progress on this session";
            case CallErrc::timeout:
                return "no answer within " + std::to_string(after.count()) +
                       " ms; the session was ended";
            case CallErrc::cancelled: return "the call was cancelled; the session was ended";
            case CallErrc::jail_ended:
                return "the jail ended during the call; close() gives the verdict";
            case CallErrc::not_delivered:
                return "the jail had ended before the call reached the plugin; close() gives "
                       "the verdict";
            case CallErrc::startup_failed:
                s = "the plugin did not start (" + std::string(to_string(kind));
                if (status != 0) s += ", status " + std::to_string(status);
                return s + "): " + message.quoted();
            case CallErrc::protocol_violation:
                return "protocol violation: " + detail + "; the session was ended";
            case CallErrc::io_error:
                return "channel " + detail + ": " + std::strerror(sys_errno);
            case CallErrc::ended:
                return "the session has ended (" + detail + "); close() gives the verdict";
            case CallErrc::unsupported: return "not supported: " + detail;
        }
        return "?";
    }
};

/// CallResult::value()'s exception.
class CallException : public std::runtime_error {
public:
    explicit CallException(CallError e) : std::runtime_error(e.describe()), error_(std::move(e)) {}
    const CallError &error() const noexcept { return error_; }

private:
    CallError error_;
};

/// A call's output (the plugin's bytes, as data) or why there is none.
class CallResult {
public:
    static CallResult success(std::string output) { return CallResult(std::move(output)); }
    static CallResult failure(CallError e) { return CallResult(std::move(e)); }

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }
    /// The output; empty when the call failed.
    const std::string &output() const noexcept {
        static const std::string none;
        return ok() ? std::get<0>(v_) : none;
    }
    /// The failure; a default CallError (code `ended`) when the call succeeded.
    const CallError &error() const noexcept {
        static const CallError none;
        return ok() ? none : std::get<1>(v_);
    }
    /// The output, or throws CallException.
    std::string value() && {
        if (!ok()) throw CallException(std::get<1>(v_));
        return std::move(std::get<0>(v_));
    }
    const std::string &value() const & {
        if (!ok()) throw CallException(std::get<1>(v_));
        return std::get<0>(v_);
    }

private:
    explicit CallResult(std::string out) : v_(std::in_place_index<0>, std::move(out)) {}
    explicit CallResult(CallError e) : v_(std::in_place_index<1>, std::move(e)) {}
    std::variant<std::string, CallError> v_;
};

// ---------------------------------------------------------------------------------------
// The verdict
// ---------------------------------------------------------------------------------------

/// plugjail's verdict on a session (docs/verdict.md), typed, with what the client itself
/// saw merged in. Fields absent from the JSON are empty optionals.
struct Verdict {
    struct Syscall {
        std::optional<std::string> name;   // null in the JSON when not known
        std::optional<std::int64_t> number;
        std::optional<std::string> arch;
        std::string phase;                 // "load", "serve", or empty
    };
    struct Timeout {
        std::string kind;                  // wall, cpu, call, idle, host
        std::optional<std::uint64_t> limit_ms;
    };
    struct Resources {
        std::optional<std::uint64_t> cpu_time_ms;
        std::optional<std::uint64_t> max_rss_bytes;
        std::optional<std::uint64_t> memory_peak_bytes;
    };
    struct PluginFailure {
        std::string stage;                 // load, entry, abi, init
        std::optional<std::int64_t> status;
        std::optional<Untrusted> message;  // from inside the jail
    };
    struct CallErrorReport {
        std::string kind;
        std::int64_t status = 0;
        Untrusted message;
    };

    /// ok, exited, signaled, setup_failed, not_found, cannot_execute, oom, timeout,
    /// pids_limit, seccomp_violation, plugin_rejected, plugin_failed, protocol_violation;
    /// or one this client does not know (treat it as a failure).
    std::string outcome;
    /// plugjail serve's exit status as the verdict says it; -1 when not known.
    int exit_status = -1;
    std::optional<std::int64_t> exit_code;
    std::optional<int> signal;
    std::string signal_name;
    std::string step;
    std::optional<int> errno_number;
    std::string errno_name;
    std::optional<Syscall> syscall;
    std::optional<Timeout> timeout;
    /// A sentence for people; in plugin mode it may end with plugin text: untrusted.
    std::optional<Untrusted> message;
    /// Calls the plugin answered (RESULT or ERROR).
    std::uint64_t calls = 0;
    std::optional<std::uint64_t> wall_time_ms;
    std::optional<Resources> resources;
    std::optional<PluginFailure> plugin_failure;
    std::optional<CallErrorReport> call_error;

    /// The verdict line plugjail serve wrote, as delivered (lossless); empty when none.
    std::string json;
    /// Why `json` could not be read as a verdict; empty when it could.
    std::string error;
    /// What the client itself saw end the session, when it did: "protocol violation: …",
    /// "host deadline 300 ms", "cancelled by the host"; empty otherwise.
    std::string host_finding;
    /// plugjail serve's wait status (waitpid); -1 when it was not reaped here.
    int wait_status = -1;

    bool ok() const noexcept { return outcome == "ok"; }

    /// Parses plugjail's verdict JSON (one object). Returns nothing on malformed input —
    /// not JSON, not an object, no `outcome` — with the reason in `error`; fields of an
    /// unexpected type are left empty. Never throws for bad input.
    static std::optional<Verdict> parse(std::string_view text, std::string *error = nullptr) {
        std::string why;
        auto v = json::Value::parse(text, &why);
        if (!v) {
            if (error) *error = "the verdict is not JSON: " + why;
            return std::nullopt;
        }
        if (!v->is_object() || !v->get_string("outcome")) {
            if (error) *error = "the verdict is not a JSON object with an outcome";
            return std::nullopt;
        }
        Verdict r;
        r.json = std::string(text);
        while (!r.json.empty() && (r.json.back() == '\n' || r.json.back() == '\r'))
            r.json.pop_back();
        r.outcome = *v->get_string("outcome");
        auto small_int = [](std::optional<std::int64_t> x) -> std::optional<int> {
            if (!x || *x < INT32_MIN || *x > INT32_MAX) return std::nullopt;
            return static_cast<int>(*x);
        };
        if (auto s = small_int(v->get_int64("exit_status"))) r.exit_status = *s;
        r.exit_code = v->get_int64("exit_code");
        if (const json::Value *sig = v->get("signal")) {
            r.signal = small_int(sig->get_int64("number"));
            if (const std::string *n = sig->get_string("name")) r.signal_name = *n;
        }
        if (const std::string *s = v->get_string("step")) r.step = *s;
        if (const json::Value *e = v->get("errno")) {
            r.errno_number = small_int(e->get_int64("number"));
            if (const std::string *n = e->get_string("name")) r.errno_name = *n;
        }
        if (const json::Value *s = v->get("syscall"); s && s->is_object()) {
            Syscall sc;
            if (const std::string *n = s->get_string("name")) sc.name = *n;
            sc.number = s->get_int64("number");
            if (const std::string *a = s->get_string("arch")) sc.arch = *a;
            if (const std::string *p = s->get_string("phase")) sc.phase = *p;
            r.syscall = sc;
        }
        if (const json::Value *t = v->get("timeout"); t && t->is_object()) {
            Timeout to;
            if (const std::string *k = t->get_string("kind")) to.kind = *k;
            to.limit_ms = t->get_uint64("limit_ms");
            r.timeout = to;
        }
        if (const std::string *m = v->get_string("message")) r.message = Untrusted(*m);
        if (auto c = v->get_uint64("calls")) r.calls = *c;
        r.wall_time_ms = v->get_uint64("wall_time_ms");
        if (const json::Value *res = v->get("resources"); res && res->is_object()) {
            Resources rs;
            rs.cpu_time_ms = res->get_uint64("cpu_time_ms");
            rs.max_rss_bytes = res->get_uint64("max_rss_bytes");
            rs.memory_peak_bytes = res->get_uint64("memory_peak_bytes");
            r.resources = rs;
        }
        if (const json::Value *pf = v->get("plugin_failure"); pf && pf->is_object()) {
            PluginFailure f;
            if (const std::string *s = pf->get_string("stage")) f.stage = *s;
            f.status = pf->get_int64("status");
            if (const std::string *m = pf->get_string("message")) f.message = Untrusted(*m);
            r.plugin_failure = f;
        }
        if (const json::Value *ce = v->get("call_error"); ce && ce->is_object()) {
            CallErrorReport c;
            if (const std::string *k = ce->get_string("kind")) c.kind = *k;
            if (auto s = ce->get_int64("status")) c.status = *s;
            if (const std::string *m = ce->get_string("message")) c.message = Untrusted(*m);
            r.call_error = c;
        }
        return r;
    }

    /// One line for people, plugin text escaped: e.g.
    /// `signaled: SIGSEGV (11) after 1 call (exit status 139)`.
    std::string summary() const {
        std::string s = outcome.empty() ? std::string("unknown") : outcome;
        if (signal) {
            s += ": " + (signal_name.empty() ? std::string("signal") : signal_name) + " (" +
                 std::to_string(*signal) + ")";
        } else if (exit_code) {
            s += ": exit code " + std::to_string(*exit_code);
        }
        if (timeout) {
            s += " (" + timeout->kind;
            if (timeout->limit_ms) s += ", " + std::to_string(*timeout->limit_ms) + " ms";
            s += ")";
        }
        if (syscall) {
            s += ": " + escape(syscall->name.value_or("an unknown syscall"));
            if (syscall->number) s += " (" + std::to_string(*syscall->number) + ")";
            if (!syscall->phase.empty()) s += " in the " + escape(syscall->phase) + " phase";
        }
        if (!step.empty()) s += " at step " + escape(step);
        s += " after " + std::to_string(calls) + (calls == 1 ? " call" : " calls");
        if (message) s += "; " + message->quoted();
        if (plugin_failure && plugin_failure->message)
            s += "; the plugin said " + plugin_failure->message->quoted();
        if (!host_finding.empty()) s += "; the host saw: " + escape(host_finding);
        if (!error.empty()) s += "; " + escape(error);
        if (exit_status >= 0) s += " (exit status " + std::to_string(exit_status) + ")";
        return s;
    }
};

// ---------------------------------------------------------------------------------------
// Spawning plugjail
// ---------------------------------------------------------------------------------------

/// What to run, and how.
/// Shared-memory calls (SessionOptions::shm).
struct ShmOptions {
    /// How long each end spins for the other before it sleeps on the futex (at most 1 s).
    std::chrono::microseconds spin{50};
    /// The largest payload per direction (at least 8 KiB).
    std::size_t arena = std::size_t{1} << 20;
    /// Zero each call's input in the region once the call returns, so the plugin cannot
    /// read it afterwards.
    bool scrub_inputs = false;
};

struct SessionOptions {
    /// The profile (YAML) the jail is built from; plugjail reads it, the client never does.
    std::string profile;
    /// The plugin `.so`.
    std::string plugin;
    /// The plugjail executable. Empty: the PLUGJAIL environment variable, then PATH.
    std::string plugjail;
    /// Receives the plugin's LOG frames (level 4 is its stdout/stderr, in chunks cut
    /// anywhere), on the thread making the call. Must not throw (exceptions are dropped)
    /// and must not call the session, except cancel(). Default: dropped.
    std::function<void(LogLevel, const Untrusted &)> on_log;
    /// Per-call deadline. 0: the profile's limits.call_time (from the SESSION frame), or
    /// 60 s when the profile sets none.
    Millis call_timeout{0};
    /// Deadline for the SESSION frame and the plugin's HELLO, counted from the first call
    /// (or handshake()).
    Millis handshake_timeout{30000};
    /// Let plugjail serve write its one-line verdict summary and setup errors to this
    /// process's stderr. Default: /dev/null (close() returns the verdict).
    bool inherit_stderr = false;
    /// Also write the verdict to this file (`plugjail serve --report`).
    std::string report;
    /// Pin the jail to these CPUs (`plugjail serve --cpus`, e.g. "0" or "0,2-3").
    std::string cpus;
    /// Call over shared memory (docs/clients.md, "Shared-memory calls"): CALL and its
    /// answer through a sealed memfd both ends map, LOG frames over the pipe. The profile
    /// must allow futex without conditions in both phases. When the region cannot be made,
    /// calls go over the pipe (Session::shm_unavailable() says why). Only call() and
    /// call_async() use it: start_call() answers CallErrc::unsupported.
    std::optional<ShmOptions> shm;
};

namespace detail {

inline constexpr std::size_t header_len = 16;
inline constexpr std::uint32_t session_cap_before = 4096;

enum : std::uint16_t {
    frame_hello = 1,
    frame_call = 2,
    frame_result = 3,
    frame_error = 4,
    frame_log = 5,
    frame_shutdown = 6,
    frame_session = 7,
};

inline const char *frame_name(std::uint16_t t) noexcept {
    switch (t) {
        case frame_hello: return "HELLO";
        case frame_call: return "CALL";
        case frame_result: return "RESULT";
        case frame_error: return "ERROR";
        case frame_log: return "LOG";
        case frame_shutdown: return "SHUTDOWN";
        case frame_session: return "SESSION";
        default: return "an unknown frame";
    }
}

inline void put_u16(unsigned char *p, std::uint16_t v) noexcept {
    p[0] = static_cast<unsigned char>(v);
    p[1] = static_cast<unsigned char>(v >> 8);
}
inline void put_u32(unsigned char *p, std::uint32_t v) noexcept {
    for (int i = 0; i < 4; i++) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
inline void put_u64(unsigned char *p, std::uint64_t v) noexcept {
    for (int i = 0; i < 8; i++) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
inline std::uint16_t get_u16(const char *c) noexcept {
    const auto *p = reinterpret_cast<const unsigned char *>(c);
    return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
inline std::uint32_t get_u32(const char *c) noexcept {
    const auto *p = reinterpret_cast<const unsigned char *>(c);
    return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
           static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}
inline std::uint64_t get_u64(const char *c) noexcept {
    return static_cast<std::uint64_t>(get_u32(c)) | static_cast<std::uint64_t>(get_u32(c + 4)) << 32;
}

/// A 16-byte frame header.
inline void put_header(unsigned char *h, std::uint32_t len, std::uint16_t type, std::uint64_t id) noexcept {
    put_u32(h, len);
    put_u16(h + 4, type);
    put_u16(h + 6, 0);
    put_u64(h + 8, id);
}

inline void close_fd(int &fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

inline bool set_nonblocking(int fd) noexcept {
    const int fl = ::fcntl(fd, F_GETFL);
    return fl >= 0 && ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

/// Enlarges a pipe to hold `bytes` (at most 1 MiB, the default fs.pipe-max-size), best
/// effort.
inline void size_pipe(int fd, std::size_t bytes) noexcept {
#ifdef F_SETPIPE_SZ
    const std::size_t want = std::min<std::size_t>(std::max<std::size_t>(bytes, 4096), 1u << 20);
    (void)::fcntl(fd, F_SETPIPE_SZ, static_cast<int>(want));
#else
    (void)fd;
    (void)bytes;
#endif
}

/// Blocks SIGPIPE in the calling thread while it lives (writes to a pipe whose reader is
/// gone then fail with EPIPE instead of killing the process); consume() takes the SIGPIPE
/// such a write raised, so it is not delivered when the mask is restored. A SIGPIPE that
/// was pending before (blocked by the host itself) is left alone.
class SigpipeGuard {
public:
    SigpipeGuard() noexcept {
        sigemptyset(&set_);
        sigaddset(&set_, SIGPIPE);
        sigset_t old;
        sigemptyset(&old);
        pthread_sigmask(SIG_BLOCK, &set_, &old);
        blocked_before_ = sigismember(&old, SIGPIPE) == 1;
        if (blocked_before_) {
            sigset_t pending;
            sigemptyset(&pending);
            pending_before_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
        }
    }
    SigpipeGuard(const SigpipeGuard &) = delete;
    SigpipeGuard &operator=(const SigpipeGuard &) = delete;
    void consume() noexcept {
        if (pending_before_) return;
        const int saved = errno;
        const timespec zero{0, 0};
        while (sigtimedwait(&set_, nullptr, &zero) < 0 && errno == EINTR) {
        }
        errno = saved;
    }
    ~SigpipeGuard() {
        if (!blocked_before_) pthread_sigmask(SIG_UNBLOCK, &set_, nullptr);
    }

private:
    sigset_t set_;
    bool blocked_before_ = false;
    bool pending_before_ = false;
};

/// Why `path` cannot be run, or "" when it can.
inline std::string why_not_executable(const std::string &path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
        return errno == ENOENT ? "does not exist" : std::string(std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) return "not a regular file";
    if (::access(path.c_str(), X_OK) != 0) return "not executable";
    return "";
}

/// The plugjail executable: `explicit_path` when given, else $PLUGJAIL when set, else the
/// first `plugjail` on PATH. An explicit path or $PLUGJAIL that does not work is an error
/// (no silent fallback to another binary). Throws SpawnError (not_found) listing every
/// place looked at.
inline std::string find_plugjail(const std::string &explicit_path, const char *option_name) {
    std::vector<std::string> looked;
    auto not_found = [&]() {
        std::string msg = "cannot find the plugjail executable; looked at: ";
        for (std::size_t i = 0; i < looked.size(); i++) msg += (i ? "; " : "") + looked[i];
        msg += ". Set ";
        msg += option_name;
        msg += " or the PLUGJAIL environment variable, or put plugjail on PATH";
        return SpawnError(SpawnErrc::not_found, msg, looked);
    };
    if (!explicit_path.empty()) {
        const std::string why = why_not_executable(explicit_path);
        if (why.empty()) return explicit_path;
        looked.push_back(std::string(option_name) + " " + explicit_path + " (" + why + ")");
        throw not_found();
    }
    looked.push_back(std::string(option_name) + " (not set)");
    const char *env = std::getenv("PLUGJAIL");
    if (env && *env) {
        const std::string p = env;
        const std::string why = why_not_executable(p);
        if (why.empty()) return p;
        looked.push_back("$PLUGJAIL " + p + " (" + why + ")");
        throw not_found();
    }
    looked.push_back("$PLUGJAIL (not set)");
    const char *path = std::getenv("PATH");
    if (!path) {
        looked.push_back("$PATH (not set)");
        throw not_found();
    }
    if (!*path) {
        looked.push_back("$PATH (empty)");
        throw not_found();
    }
    std::string_view rest = path;
    for (;;) {
        const std::size_t colon = rest.find(':');
        std::string dir(rest.substr(0, colon));
        if (dir.empty()) dir = ".";  // POSIX: an empty entry is the current directory
        const std::string cand = dir + "/plugjail";
        const std::string why = why_not_executable(cand);
        if (why.empty()) return cand;
        looked.push_back(cand + " (" + why + ")");
        if (colon == std::string_view::npos) break;
        rest.remove_prefix(colon + 1);
    }
    throw not_found();
}

/// Starts `exe` with `args` (argv[0] included) by posix_spawn (never fork: the host may
/// have threads). Each `(source, target)` descriptor is placed at `target` (≤ 9); stdin
/// and stdout become /dev/null unless a target, stderr too unless `inherit_stderr`; every
/// other descriptor is closed in the child (glibc ≥ 2.34; elsewhere, the client's own
/// descriptors are close-on-exec). The child starts with no signal blocked and every
/// signal at its default action. Throws SpawnError.
inline pid_t spawn_process(const std::string &exe, const std::vector<std::string> &args,
                           const std::vector<std::pair<int, int>> &moves, bool inherit_stderr) {
    // Every source moved above the targets first, so no dup2 overwrites a source still to
    // be placed. These copies are close-on-exec: the child keeps only the dup2 targets.
    std::vector<int> temps;
    auto close_temps = [&]() {
        for (int &t : temps) close_fd(t);
    };
    for (const auto &m : moves) {
        const int t = ::fcntl(m.first, F_DUPFD_CLOEXEC, 10);
        if (t < 0) {
            const int e = errno;
            close_temps();
            throw SpawnError(SpawnErrc::pipe_failed,
                             std::string("fcntl(F_DUPFD_CLOEXEC): ") + std::strerror(e), {}, e);
        }
        temps.push_back(t);
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    auto is_target = [&](int fd) {
        return std::any_of(moves.begin(), moves.end(), [&](const auto &m) { return m.second == fd; });
    };
    int top = 2;
    if (!is_target(0)) posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!is_target(1)) posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (!inherit_stderr && !is_target(2))
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    for (std::size_t i = 0; i < moves.size(); i++) {
        posix_spawn_file_actions_adddup2(&fa, temps[i], moves[i].second);
        top = std::max(top, moves[i].second);
    }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    posix_spawn_file_actions_addclosefrom_np(&fa, top + 1);
#endif
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char *> argv;
    for (const auto &a : args) argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, exe.c_str(), &fa, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close_temps();
    if (rc != 0) {
        throw SpawnError(SpawnErrc::spawn_failed,
                         "cannot start " + exe + ": " + std::strerror(rc), {}, rc);
    }
    return pid;
}

/// A close-on-exec pipe; throws SpawnError.
inline std::array<int, 2> make_pipe() {
    std::array<int, 2> p{-1, -1};
    if (::pipe2(p.data(), O_CLOEXEC) != 0) {
        const int e = errno;
        throw SpawnError(SpawnErrc::pipe_failed, std::string("pipe2: ") + std::strerror(e), {}, e);
    }
    return p;
}

inline timespec to_timespec(std::chrono::steady_clock::duration d) noexcept {
    if (d < std::chrono::steady_clock::duration::zero()) d = std::chrono::steady_clock::duration::zero();
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    timespec ts;
    ts.tv_sec = static_cast<time_t>(ns / 1000000000);
    ts.tv_nsec = static_cast<long>(ns % 1000000000);
    return ts;
}

/// The host's end of a shared-memory region (docs/protocol.md, "Shared-memory calls";
/// crates/protocol/src/shm/ is the Rust end, and the offsets below must match it). The
/// plugin shares the stub's address space and can write any byte of the region at any
/// time: words are read with atomics, the answer's header and payload are copied out once
/// and only the copies are checked and used.
class ShmRegion {
public:
    enum : std::size_t {
        page = 4096,
        min_arena = 8 << 10,
        req_seq = 64,        // futex: the latest request's number (host)
        stub_waiting = 68,   // 1 while the stub sleeps on req_seq
        host_cpu = 72,       // the CPU the host last ran on, plus one
        resp_seq = 128,      // futex: the request last answered (stub)
        host_waiting = 132,  // 1 while the host sleeps on resp_seq
        pipe_frames = 136,   // frames the stub wrote to the pipe since HELLO (64 bits)
        stub_cpu = 144,      // the CPU the stub last ran on, plus one
    };
    static constexpr std::chrono::milliseconds slice{20};

    ShmRegion() = default;
    ShmRegion(const ShmRegion &) = delete;
    ShmRegion &operator=(const ShmRegion &) = delete;
    ~ShmRegion() {
        if (base_) ::munmap(base_, len_);
    }

    bool active() const noexcept { return base_ != nullptr; }
    std::size_t request_payload() const noexcept { return req_len_ - header_len; }

    /// Makes, maps and seals the region; returns the descriptor for plugjail serve (the
    /// caller closes it), or -1 with the reason in `why`.
    int create(const ShmOptions &o, std::string &why) {
        const std::size_t arena = std::max<std::size_t>(o.arena, min_arena);
        const auto spin_us = std::clamp<long long>(o.spin.count(), 0, 1000000);
        if (arena > UINT32_MAX - header_len) {
            why = "an arena of " + std::to_string(arena) + " bytes is too large (32-bit frame lengths)";
            return -1;
        }
        const std::size_t area = arena + header_len;
        const std::size_t resp = page_up(area) + page, len = resp + page_up(area);
        const char *what = "memfd_create";
        const int fd = static_cast<int>(::syscall(SYS_memfd_create, "plugjail-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING));
        void *map = MAP_FAILED;
        if (fd >= 0) {
            what = "ftruncate";
            if (::ftruncate(fd, static_cast<off_t>(len)) == 0) {
                what = "fcntl(F_ADD_SEALS)";
                if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0) {
                    what = "mmap";
                    map = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                }
            }
        }
        if (map == MAP_FAILED) {
            why = std::string(what) + ": " + std::strerror(errno);
            if (fd >= 0) ::close(fd);
            return -1;
        }
        base_ = static_cast<unsigned char *>(map);
        len_ = len;
        req_ = page;
        req_len_ = area;
        resp_ = resp;
        resp_len_ = area;
        spin_ = std::chrono::microseconds(spin_us);
        scrub_ = o.scrub_inputs;
        std::memcpy(base_, "PJSHM\0v1", 8);
        put_u32(base_ + 8, 1);
        put_u32(base_ + 12, static_cast<std::uint32_t>(spin_us));
        put_u64(base_ + 16, len);
        put_u64(base_ + 24, req_);
        put_u64(base_ + 32, req_len_);
        put_u64(base_ + 40, resp_);
        put_u64(base_ + 48, resp_len_);
        put_u64(base_ + 56, spin_iters(static_cast<std::uint64_t>(spin_us)));
        return fd;
    }

    /// Writes a frame (`head`, then `input`) into the request area and announces it;
    /// wakes the stub only if it said it sleeps. The caller checked that it fits.
    void send(const unsigned char *head, std::size_t head_len, std::string_view input) {
        std::memcpy(base_ + req_, head, head_len);
        if (!input.empty()) std::memcpy(base_ + req_ + head_len, input.data(), input.size());
        written_ = head_len + input.size();
        __atomic_store_n(word(host_cpu), this_cpu(), __ATOMIC_RELAXED);
        __atomic_store_n(word(req_seq), ++seq_, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(word(stub_waiting), __ATOMIC_SEQ_CST) != 0) futex(word(req_seq), FUTEX_WAKE, 1, nullptr);
        spun_ = false;
        waiting_ = true;
    }

    bool waiting() const noexcept { return waiting_; }
    bool answered() const noexcept { return __atomic_load_n(word(resp_seq), __ATOMIC_ACQUIRE) == seq_; }

    /// Waits for the answer until `deadline`, for at most one sleep slice (after the spin
    /// budget, the first time): the caller reads the pipe, checks cancel and the deadline
    /// between slices. Spins only when the stub last ran on another CPU (the word is the
    /// plugin's to forge: a lie costs one spin budget).
    void wait(std::chrono::steady_clock::time_point deadline) {
        using Clock = std::chrono::steady_clock;
        if (!spun_) {
            spun_ = true;
            const std::uint32_t cpu = __atomic_load_n(word(stub_cpu), __ATOMIC_RELAXED);
            if (cpu == 0 || cpu != this_cpu()) {
                const auto until = Clock::now() + spin_;
                for (std::uint32_t i = 1; !answered(); i++) {
                    if (i % 64 == 0 && Clock::now() >= until) break;
                    relax();
                }
            }
        }
        for (unsigned early = 1; !answered(); early++) {
            const auto now = Clock::now();
            if (now >= deadline) return;
            __atomic_store_n(word(host_waiting), 1, __ATOMIC_SEQ_CST);
            const std::uint32_t seen = __atomic_load_n(word(resp_seq), __ATOMIC_SEQ_CST);
            if (seen == seq_) break;
            const timespec ts = to_timespec(std::min<Clock::duration>(slice, deadline - now));
            const long r = futex(word(resp_seq), FUTEX_WAIT, seen, &ts);
            const int e = errno;
            __atomic_store_n(word(host_waiting), 0, __ATOMIC_RELAXED);
            // Woken early: look again, but back to the caller every eighth time, so a
            // plugin that keeps waking the host cannot keep it from the pipe.
            if ((r == 0 || e == EAGAIN || e == EINTR) && early % 8 != 0) continue;
            if (r != 0 && e != ETIMEDOUT && e != EAGAIN && e != EINTR) {
                const timespec nap{0, 200000};  // no futex here: keep time by sleeping
                ::nanosleep(&nap, nullptr);
            }
            return;
        }
        __atomic_store_n(word(host_waiting), 0, __ATOMIC_RELAXED);
    }

    /// Once answered: the stub's count of pipe frames, then a copy of the answer's header.
    std::uint64_t take_header(unsigned char (&head)[header_len]) {
        waiting_ = false;
        scrub();
        const auto frames = __atomic_load_n(reinterpret_cast<std::uint64_t *>(base_ + pipe_frames), __ATOMIC_ACQUIRE);
        std::memcpy(head, base_ + resp_, header_len);
        return frames;
    }

    /// Copies `len` bytes of the answer's payload (checked against the area by the
    /// caller with response_payload()) into `out`.
    void take_payload(std::size_t len, std::string &out) const {
        out.assign(reinterpret_cast<const char *>(base_ + resp_ + header_len), len);
    }
    std::size_t response_payload() const noexcept { return resp_len_ - header_len; }

    /// Zeroes the latest request's bytes in the region, if the options ask for it.
    void scrub() noexcept {
        if (scrub_ && written_) std::memset(base_ + req_, 0, written_);
        written_ = 0;
    }

private:
    static std::size_t page_up(std::size_t n) { return (n + page - 1) / page * page; }
    static std::uint32_t this_cpu() noexcept {
        const int cpu = ::sched_getcpu();
        return cpu < 0 ? 0 : static_cast<std::uint32_t>(cpu) + 1;
    }
    static void relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
    }
    static long futex(std::uint32_t *w, int op, std::uint32_t val, const timespec *ts) noexcept {
        return ::syscall(SYS_futex, w, op, val, ts, nullptr, 0);
    }
    /// Iterations of the stub's spin loop in `us` microseconds here (the stub spins by
    /// count, without a clock), measured once per process.
    static std::uint64_t spin_iters(std::uint64_t us) {
        static const std::uint64_t per_ms = [] {
            std::uint32_t w = 0;
            constexpr std::uint64_t n = 200000;
            const auto t = std::chrono::steady_clock::now();
            for (std::uint64_t i = 0; i < n; i++) {
                relax();
                (void)__atomic_load_n(&w, __ATOMIC_ACQUIRE);
            }
            const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t).count();
            return std::max<std::uint64_t>(1, n * 1000000 / static_cast<std::uint64_t>(std::max<long long>(ns, 1)));
        }();
        return per_ms * us / 1000;
    }
    std::uint32_t *word(std::size_t at) const noexcept { return reinterpret_cast<std::uint32_t *>(base_ + at); }

    unsigned char *base_ = nullptr;
    std::size_t len_ = 0, req_ = 0, req_len_ = 0, resp_ = 0, resp_len_ = 0, written_ = 0;
    std::chrono::microseconds spin_{0};
    bool scrub_ = false, spun_ = false, waiting_ = false;
    std::uint32_t seq_ = 0;
};

/// Where the region goes in plugjail serve.
inline constexpr int shm_serve_fd = 6;

/// The shared state of a Session: the channel, the child, the call in progress.
class Core {
public:
    using Clock = std::chrono::steady_clock;

    static std::shared_ptr<Core> start(const SessionOptions &o) {
        if (o.profile.empty() || o.plugin.empty())
            throw SpawnError(SpawnErrc::bad_options, "SessionOptions: profile and plugin are required");
        const std::string exe = find_plugjail(o.plugjail, "SessionOptions::plugjail");
        auto c = std::shared_ptr<Core>(new Core(o));
        std::array<int, 2> to_stub{-1, -1}, from_stub{-1, -1}, status{-1, -1}, wake{-1, -1};
        int shm_fd = -1;
        auto close_all = [&]() {
            close_fd(shm_fd);
            for (auto *p : {&to_stub, &from_stub, &status, &wake}) {
                close_fd((*p)[0]);
                close_fd((*p)[1]);
            }
        };
        try {
            to_stub = make_pipe();
            from_stub = make_pipe();
            status = make_pipe();
            wake = make_pipe();
            std::vector<std::string> args = {exe,        "serve", "--profile", o.profile, "--plugin",
                                             o.plugin,   "--fds", "3,4",       "--status-fd", "5"};
            if (!o.report.empty()) {
                args.push_back("--report");
                args.push_back(o.report);
            }
            if (!o.cpus.empty()) {
                args.push_back("--cpus");
                args.push_back(o.cpus);
            }
            std::vector<std::pair<int, int>> moves = {{to_stub[0], 3}, {from_stub[1], 4}, {status[1], 5}};
            if (o.shm) shm_fd = c->shm_.create(*o.shm, c->shm_unavailable_);
            if (shm_fd >= 0) {
                args.push_back("--shm-fd");
                args.push_back(std::to_string(shm_serve_fd));
                moves.emplace_back(shm_fd, shm_serve_fd);
            }
            c->pid_ = spawn_process(exe, args, moves, o.inherit_stderr);
        } catch (...) {
            close_all();
            throw;
        }
        close_fd(shm_fd);
        close_fd(to_stub[0]);
        close_fd(from_stub[1]);
        close_fd(status[1]);
        // SIGPIPE ignored now: writes need no mask around them (see the top of the file).
        struct sigaction sa;
        std::memset(&sa, 0, sizeof sa);
        c->sigpipe_ignored_ = ::sigaction(SIGPIPE, nullptr, &sa) == 0 && sa.sa_handler == SIG_IGN;
        c->wfd_ = to_stub[1];
        c->rfd_ = from_stub[0];
        c->status_fd_ = status[0];
        c->wake_r_ = wake[0];
        c->wake_w_ = wake[1];
        // Non-blocking: a plugin that stops reading cannot hold a call past its deadline,
        // and reads are tried before polling.
        set_nonblocking(c->wfd_);
        set_nonblocking(c->rfd_);
        set_nonblocking(c->wake_r_);
        set_nonblocking(c->wake_w_);
        return c;
    }

    Core(const Core &) = delete;
    Core &operator=(const Core &) = delete;

    ~Core() {
        abandon();
        close_fd(wake_r_);
        close_fd(wake_w_);
    }

    // ---- called from any thread ---------------------------------------------------------

    void cancel() noexcept {
        cancelled_.store(true, std::memory_order_release);
        if (wake_w_ >= 0) {
            const char b = 1;
            (void)!::write(wake_w_, &b, 1);
        }
        signal(SIGTERM, -1);
    }

    pid_t pid() const noexcept { return pid_; }
    bool uses_shm() const noexcept { return shm_.active(); }
    const std::string &shm_unavailable() const noexcept { return shm_unavailable_; }
    int read_fd() const noexcept { return rfd_; }
    int write_fd() const noexcept { return wfd_; }

    // ---- serialised by io_mu_ -------------------------------------------------------------

    CallResult call(std::string_view method, std::string_view input, std::optional<Millis> deadline) {
        std::lock_guard<std::mutex> lock(io_mu_);
        if (auto r = begin(method, input, deadline)) return std::move(*r);
        return run(true);
    }

    CallResult handshake() {
        std::lock_guard<std::mutex> lock(io_mu_);
        if (phase_ == Phase::ready) return CallResult::success({});
        if (pending_.active) return busy();
        if (phase_ == Phase::ended) return CallResult::failure(ending());
        arm_handshake();
        return run(false);
    }

    std::optional<CallResult> start_call(std::string_view method, std::string input,
                                         std::optional<Millis> deadline) {
        std::lock_guard<std::mutex> lock(io_mu_);
        if (shm_.active()) {
            CallError e;
            e.code = CallErrc::unsupported;
            e.detail = "start_call() on a shared-memory session: use call()";
            return CallResult::failure(e);
        }
        if (pending_.active) return busy();  // its input is owned_: keep it
        owned_ = std::move(input);
        if (auto r = begin(method, owned_, deadline)) return r;
        advance(false, false);
        return take_done();
    }

    std::optional<CallResult> on_ready() {
        std::lock_guard<std::mutex> lock(io_mu_);
        if (closed_) return take_done();
        advance(true, true);
        if (!done_ && phase_ != Phase::ended) {
            if (auto dl = deadline(); dl && Clock::now() >= *dl) expire();
        }
        return take_done();
    }

    bool wants_write() const {
        std::lock_guard<std::mutex> lock(io_mu_);
        return pending_.writing();
    }

    std::optional<Clock::time_point> next_deadline() const {
        std::lock_guard<std::mutex> lock(io_mu_);
        return deadline();
    }

    bool ended() const {
        std::lock_guard<std::mutex> lock(io_mu_);
        return phase_ == Phase::ended || closed_;
    }

    const Hello *hello() const noexcept { return hello_ready_.load(std::memory_order_acquire) ? &hello_ : nullptr; }
    const SessionInfo *session_info() const noexcept {
        return info_ready_.load(std::memory_order_acquire) ? &info_ : nullptr;
    }

    Verdict close(Millis grace) {
        std::lock_guard<std::mutex> lock(io_mu_);
        if (closed_) return verdict_;
        closed_ = true;
        const auto deadline = Clock::now() + grace;
        if (phase_ == Phase::ready && !pending_.active) {
            // SHUTDOWN: the plugin's shutdown() runs and the stub ends with status 0.
            unsigned char h[header_len];
            put_header(h, 0, frame_shutdown, 0);
            if (shm_.active())
                shm_.send(h, sizeof h, {});
            else
                write_all(h, sizeof h, std::min(deadline, Clock::now() + std::chrono::seconds(1)));
        }
        // After a violation the stream is out of step: nothing more is read from it.
        drain_before_session_ = phase_ == Phase::need_session;
        if (fault_ == Fault::protocol) close_fd(rfd_);
        if (phase_ != Phase::ended) end_session("closed");
        close_fd(wfd_);
        draining_ = true;
        // Both pipes at once, to their ends: what the plugin still says (shutdown()'s log
        // lines), so it never blocks on a pipe nobody reads, and the verdict, however long.
        finish_reading(deadline);
        if (!reap(deadline)) {
            signal(SIGTERM, -1);
            finish_reading(Clock::now() + std::chrono::seconds(5));
            if (!reap(Clock::now() + std::chrono::seconds(5))) {
                signal(SIGKILL, -1);
                reap(Clock::time_point::max());
            }
        }
        close_fd(rfd_);
        close_fd(status_fd_);
        verdict_ = make_verdict(status_text_);
        return verdict_;
    }

    /// The destructor's path: ends the jail without waiting for a verdict.
    void abandon() noexcept {
        cancel();
        std::lock_guard<std::mutex> lock(io_mu_);
        if (closed_) return;
        closed_ = true;
        phase_ = Phase::ended;
        close_fd(wfd_);
        close_fd(rfd_);
        close_fd(status_fd_);
        if (!reap(Clock::now() + std::chrono::seconds(5))) {
            signal(SIGKILL, -1);
            reap(Clock::time_point::max());
        }
    }

private:
    enum class Phase { need_session, need_hello, ready, ended };
    enum class Fault { none, protocol, timeout, cancelled };

    struct Pending {
        bool active = false;
        bool started = false;  // the CALL is being written (the cap was checked)
        bool fresh = false;    // started, no write tried yet
        bool write_done = false;
        bool read_early = false;  // the write just completed: try a read before polling
        std::uint64_t id = 0;
        std::optional<Millis> requested;
        Millis timeout{0};
        bool profile_deadline = false;
        Clock::time_point deadline{};
        std::array<unsigned char, header_len + 1 + 255> head{};
        std::size_t head_len = 0, head_off = 0;
        std::string_view input;
        std::size_t in_off = 0;
        std::string method;  // for the cap check message

        bool writing() const noexcept { return active && started && !write_done; }
    };

    explicit Core(const SessionOptions &o)
        : on_log_(o.on_log), call_timeout_(o.call_timeout), handshake_timeout_(o.handshake_timeout) {
        rbuf_.resize(64 * 1024);
    }

    // ---- the call path ---------------------------------------------------------------------

    CallResult busy() const {
        CallError e;
        e.code = CallErrc::busy;
        return CallResult::failure(e);
    }

    CallError ending() const {
        CallError e;
        e.code = CallErrc::ended;
        e.detail = closed_ ? std::string("closed") : end_reason_;
        return e;
    }

    /// Starts a call; returns a result at once when it cannot start.
    std::optional<CallResult> begin(std::string_view method, std::string_view input,
                                    std::optional<Millis> deadline) {
        if (pending_.active) return busy();
        if (closed_ || phase_ == Phase::ended) return CallResult::failure(ending());
        if (method.empty() || method.size() > 255 || !clean_text(method)) {
            CallError e;
            e.code = CallErrc::invalid_method;
            e.detail = "\"" + escape(method, true) + "\"";
            return CallResult::failure(e);
        }
        pending_ = Pending{};
        pending_.active = true;
        pending_.id = next_id_++;
        pending_.requested = deadline;
        pending_.input = input;
        pending_.method.assign(method.data(), method.size());
        if (phase_ != Phase::ready) arm_handshake();
        return std::nullopt;
    }

    void arm_handshake() {
        if (!hs_armed_) {
            hs_armed_ = true;
            hs_deadline_ = Clock::now() + handshake_timeout_;
        }
    }

    std::optional<Clock::time_point> deadline() const {
        if (phase_ == Phase::ended || closed_) return std::nullopt;
        if (phase_ != Phase::ready) return hs_armed_ ? std::optional<Clock::time_point>(hs_deadline_) : std::nullopt;
        if (pending_.active && pending_.started) return pending_.deadline;
        return std::nullopt;
    }

    std::optional<CallResult> take_done() {
        if (!done_) return std::nullopt;
        std::optional<CallResult> r = std::move(done_);
        done_.reset();
        owned_.clear();
        return r;
    }

    /// The blocking loop of call() (for_call) and handshake().
    CallResult run(bool for_call) {
        bool readable = false, writable = false;
        for (;;) {
            advance(readable, writable);
            if (done_) return std::move(*take_done());
            if (!for_call && phase_ == Phase::ready) return CallResult::success({});
            if (phase_ == Phase::ended) return CallResult::failure(last_);
            const auto dl = deadline();
            const auto now = Clock::now();
            if (!dl || now >= *dl) {
                expire();
                continue;
            }
            if (shm_.waiting()) {
                // One slice at most, then the pipe (LOG frames, end of file) and cancel.
                shm_.wait(*dl);
                readable = true;
                writable = false;
                continue;
            }
            pollfd p[3];
            p[0] = {rfd_, POLLIN, 0};
            p[1] = {pending_.writing() ? wfd_ : -1, POLLOUT, 0};
            p[2] = {wake_r_, POLLIN, 0};
            const timespec ts = to_timespec(*dl - now);
            const int r = ::ppoll(p, 3, &ts, nullptr);
            if (r < 0) {
                if (errno == EINTR) continue;
                io_failed("poll", errno);
                continue;
            }
            readable = p[0].revents != 0;
            writable = p[1].revents != 0;
        }
    }

    /// Does the I/O possible now without blocking.
    void advance(bool readable, bool writable) {
        if (cancelled_.load(std::memory_order_acquire)) {
            if (phase_ != Phase::ended) {
                fault_ = Fault::cancelled;
                CallError e;
                e.code = CallErrc::cancelled;
                end_with(e, "cancelled");
            }
            return;
        }
        if (phase_ == Phase::ended) return;
        process_buffered();
        maybe_start();
        if (pending_.writing() && (writable || pending_.fresh)) write_some();
        if (pending_.active && pending_.read_early) {
            pending_.read_early = false;
            readable = true;
        }
        if (readable && !done_ && phase_ != Phase::ended) read_some();
        if (shm_.waiting() && !done_ && phase_ != Phase::ended && shm_.answered()) take_shm_answer();
    }

    /// The answer in the region: LOG frames the stub wrote before it are read first (its
    /// count says whether any wait), then the header copied once is checked, then the
    /// payload is copied and handled like a frame from the pipe.
    void take_shm_answer() {
        unsigned char head[header_len];
        const std::uint64_t frames = shm_.take_header(head);
        if (frames != pipe_frames_) {
            read_some();
            if (done_ || phase_ == Phase::ended) return;
        }
        const char *h = reinterpret_cast<const char *>(head);
        const std::uint32_t len = get_u32(h);
        const std::uint16_t type = get_u16(h + 4);
        const std::uint16_t flags = get_u16(h + 6);
        if (type != frame_result && type != frame_error)
            return violation("a frame of type " + std::to_string(type) + " in the shared-memory response area");
        if (flags != 0) return violation("a shared-memory answer with flags " + std::to_string(flags));
        const std::size_t cap = std::min<std::size_t>(cap_, shm_.response_payload());
        if (len > cap) {
            return violation("a shared-memory answer of " + std::to_string(len) + " bytes exceeds the cap of " +
                             std::to_string(cap));
        }
        shm_.take_payload(len, shm_answer_);
        from_region_ = true;
        handle(type, get_u64(h + 8), shm_answer_);
        from_region_ = false;
    }

    /// After HELLO: checks the call against the cap and starts writing it.
    void maybe_start() {
        if (phase_ != Phase::ready || !pending_.active || pending_.started || done_) return;
        Pending &p = pending_;
        const std::size_t total = 1 + p.method.size() + p.input.size();
        const std::size_t cap = shm_.active() ? std::min<std::size_t>(cap_, shm_.request_payload()) : cap_;
        if (total > cap) {
            CallError e;
            e.code = CallErrc::input_too_large;
            e.len = total;
            e.cap = static_cast<std::uint32_t>(cap);
            done_ = CallResult::failure(e);
            pending_ = Pending{};
            return;
        }
        if (p.requested) {
            p.timeout = *p.requested;
        } else if (call_timeout_.count() > 0) {
            p.timeout = call_timeout_;
        } else if (info_.call_time.count() > 0) {
            p.timeout = info_.call_time;
            p.profile_deadline = true;
        } else {
            p.timeout = std::chrono::seconds(60);
        }
        put_header(p.head.data(), static_cast<std::uint32_t>(total), frame_call, p.id);
        p.head[header_len] = static_cast<unsigned char>(p.method.size());
        std::memcpy(p.head.data() + header_len + 1, p.method.data(), p.method.size());
        p.head_len = header_len + 1 + p.method.size();
        p.started = true;
        p.fresh = true;
        p.deadline = Clock::now() + p.timeout;
        if (shm_.active()) {
            shm_.send(p.head.data(), p.head_len, p.input);
            p.fresh = false;
            p.write_done = true;
        }
    }

    void write_some() {
        Pending &p = pending_;
        p.fresh = false;
        std::optional<SigpipeGuard> guard;
        if (!sigpipe_ignored_) guard.emplace();
        while (p.head_off < p.head_len || p.in_off < p.input.size()) {
            iovec iov[2];
            int n_iov = 0;
            if (p.head_off < p.head_len) {
                iov[n_iov].iov_base = p.head.data() + p.head_off;
                iov[n_iov++].iov_len = p.head_len - p.head_off;
            }
            if (p.in_off < p.input.size()) {
                iov[n_iov].iov_base = const_cast<char *>(p.input.data() + p.in_off);
                iov[n_iov++].iov_len = p.input.size() - p.in_off;
            }
            const ssize_t n = ::writev(wfd_, iov, n_iov);
            if (n >= 0) {
                auto left = static_cast<std::size_t>(n);
                const std::size_t from_head = std::min(left, p.head_len - p.head_off);
                p.head_off += from_head;
                p.in_off += left - from_head;
                continue;
            }
            const int e = errno;
            if (e == EINTR) continue;
            if (e == EAGAIN || e == EWOULDBLOCK) return;
            if (e == EPIPE) {
                if (guard) guard->consume();
                jail_gone();
                return;
            }
            io_failed("write", e);
            return;
        }
        p.write_done = true;
        // The answer may be there already (on one CPU the stub usually runs as soon as
        // the write wakes it): one read now often saves a poll.
        p.read_early = true;
    }

    /// Writes a small frame whole (SHUTDOWN), waiting for room until `until`.
    void write_all(const unsigned char *buf, std::size_t n, Clock::time_point until) {
        SigpipeGuard guard;
        while (n > 0) {
            const ssize_t w = ::write(wfd_, buf, n);
            if (w >= 0) {
                buf += w;
                n -= static_cast<std::size_t>(w);
                continue;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                const auto now = Clock::now();
                if (now >= until) return;
                pollfd p{wfd_, POLLOUT, 0};
                const timespec ts = to_timespec(until - now);
                (void)::ppoll(&p, 1, &ts, nullptr);
                continue;
            }
            if (errno == EPIPE) guard.consume();
            return;
        }
    }

    void read_some() {
        for (;;) {
            if (rstart_ == rend_) rstart_ = rend_ = 0;
            make_room();
            const ssize_t n = ::read(rfd_, rbuf_.data() + rend_, rbuf_.size() - rend_);
            if (n > 0) {
                rend_ += static_cast<std::size_t>(n);
                process_buffered();
                maybe_start();
                if (pending_.writing() && pending_.fresh) write_some();
                if (done_ || phase_ == Phase::ended) return;
                continue;
            }
            if (n == 0) {
                if (rend_ != rstart_) {
                    violation("the channel ended inside a frame");
                } else {
                    jail_gone();
                }
                return;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            io_failed("read", errno);
            return;
        }
    }

    /// Room to read into: the whole of the frame being read (its length is checked against
    /// the cap before), or at least some bytes.
    void make_room() {
        std::size_t need = 0;
        if (rend_ - rstart_ >= header_len) {
            const std::uint32_t len = get_u32(rbuf_.data() + rstart_);
            if (len <= cap_) need = header_len + len;  // a longer one is refused unread
        }
        if (need > rbuf_.size() - rstart_ || rend_ == rbuf_.size()) {
            if (rstart_ > 0) {
                std::memmove(rbuf_.data(), rbuf_.data() + rstart_, rend_ - rstart_);
                rend_ -= rstart_;
                rstart_ = 0;
            }
            if (need > rbuf_.size()) rbuf_.resize(need);
        }
    }

    /// Handles every whole frame in the read buffer (until the call is answered).
    void process_buffered() {
        while (!done_ && phase_ != Phase::ended) {
            const std::size_t avail = rend_ - rstart_;
            if (avail < header_len) return;
            const char *h = rbuf_.data() + rstart_;
            const std::uint32_t len = get_u32(h);
            const std::uint16_t type = get_u16(h + 4);
            const std::uint16_t flags = get_u16(h + 6);
            const std::uint64_t id = get_u64(h + 8);
            if (flags != 0) return violation("a frame with flags " + std::to_string(flags));
            if (type < frame_hello || type > frame_session)
                return violation("a frame of unknown type " + std::to_string(type));
            if (len > cap_) {
                return violation("a " + std::string(frame_name(type)) + " frame of " + std::to_string(len) +
                                 " bytes, above the cap of " + std::to_string(cap_));
            }
            if (avail < header_len + len) return;
            const std::string_view payload(h + header_len, len);
            rstart_ += header_len + len;
            handle(type, id, payload);
        }
    }

    void handle(std::uint16_t type, std::uint64_t id, std::string_view p) {
        if (phase_ == Phase::need_session) {
            if (type != frame_session) {
                return violation(std::string("the first frame is ") + frame_name(type) +
                                 ", not SESSION (is plugjail older than this client?)");
            }
            if (id != 0 || p.size() < 24) return violation("a malformed SESSION frame");
            const std::uint32_t version = get_u32(p.data());
            if (version != protocol_version)
                return violation("SESSION of protocol version " + std::to_string(version) + ", not 1");
            const std::uint32_t max_message = get_u32(p.data() + 4);
            if (max_message < session_cap_before) return violation("SESSION with a cap below 4096 bytes");
            auto ms = [](std::uint64_t v) { return Millis(static_cast<Millis::rep>(std::min<std::uint64_t>(v, INT64_MAX / 2))); };
            info_.protocol_version = version;
            info_.max_message = max_message;
            info_.call_time = ms(get_u64(p.data() + 8));
            info_.idle_time = ms(get_u64(p.data() + 16));
            cap_ = max_message;
            info_ready_.store(true, std::memory_order_release);
            phase_ = draining_ ? Phase::ended : Phase::need_hello;
            size_pipe(rfd_, std::size_t{cap_} + header_len);
            size_pipe(wfd_, std::size_t{cap_} + header_len);
            return;
        }
        switch (type) {
            case frame_log:
                if (p.size() < 4 || get_u32(p.data()) > 4) return violation("a malformed LOG frame");
                if (phase_ == Phase::ready) pipe_frames_++;
                deliver_log(p);
                return;
            case frame_hello:
                if (phase_ != Phase::need_hello) return violation("a second HELLO");
                return on_hello(p);
            case frame_error:
                if (phase_ == Phase::need_hello) {
                    if (id != 0) return violation("an ERROR for call " + std::to_string(id) + " before HELLO");
                    CallError e;
                    if (!parse_error(p, e)) return;
                    e.code = CallErrc::startup_failed;
                    startup_ = e;
                    // The stub ends by itself: no signal needed.
                    return end_with(e, "the plugin did not start");
                }
                [[fallthrough]];
            case frame_result: {
                if (phase_ == Phase::need_hello)
                    return violation(std::string(frame_name(type)) + " before HELLO");
                if (shm_.active() && !from_region_)
                    return violation(std::string(frame_name(type)) + " on the pipe during a shared-memory call");
                if (!pending_.active || !pending_.started)
                    return violation(std::string(frame_name(type)) + " with no call in progress");
                if (id != pending_.id) {
                    return violation(std::string(frame_name(type)) + " for call " + std::to_string(id) +
                                     " during call " + std::to_string(pending_.id));
                }
                if (!pending_.write_done)
                    return violation(std::string(frame_name(type)) + " before the call was written in full");
                if (type == frame_result) {
                    calls_++;
                    done_ = CallResult::success(std::string(p));
                    pending_ = Pending{};
                    return;
                }
                CallError e;
                if (!parse_error(p, e)) return;
                if (static_cast<std::uint32_t>(e.kind) >= 5)
                    return violation("an ERROR of a startup kind after HELLO");
                calls_++;
                e.code = CallErrc::plugin_error;
                done_ = CallResult::failure(e);
                pending_ = Pending{};
                return;
            }
            case frame_session: return violation("a SESSION frame after the first frame");
            default:
                return violation(std::string("a ") + frame_name(type) + " frame from the plugin side");
        }
    }

    void deliver_log(std::string_view p) {
        if (!on_log_) return;
        try {
            on_log_(static_cast<LogLevel>(get_u32(p.data())), Untrusted(std::string(p.substr(4))));
        } catch (...) {
            // A callback's exception must not tear the channel out of step.
        }
    }

    /// An ERROR payload into `e` (kind, status, message); false after a violation.
    bool parse_error(std::string_view p, CallError &e) {
        if (p.size() < 8) {
            violation("a malformed ERROR frame");
            return false;
        }
        const std::uint32_t kind = get_u32(p.data());
        if (kind < 1 || kind > 8) {
            violation("an ERROR of unknown kind " + std::to_string(kind));
            return false;
        }
        const std::string_view msg = p.substr(8);
        if (msg.size() > 4096 || !valid_utf8(msg)) {
            violation("an ERROR message that is not UTF-8 or longer than 4096 bytes");
            return false;
        }
        e.kind = static_cast<ErrorKind>(kind);
        e.status = static_cast<std::int32_t>(get_u32(p.data() + 4));
        e.message = Untrusted(std::string(msg));
        return true;
    }

    void on_hello(std::string_view p) {
        Hello h;
        std::size_t i = 0;
        auto need = [&](std::size_t n) { return p.size() - i >= n; };
        auto name = [&](Untrusted &out) {
            if (!need(1)) return false;
            const std::size_t n = static_cast<unsigned char>(p[i]);
            i += 1;
            if (n == 0 || !need(n)) return false;
            const std::string_view s = p.substr(i, n);
            if (!clean_text(s)) return false;
            out = Untrusted(std::string(s));
            i += n;
            return true;
        };
        if (!need(8)) return violation("a malformed HELLO");
        h.protocol_version = get_u32(p.data());
        h.abi_version = get_u32(p.data() + 4);
        i = 8;
        if (!name(h.name) || !name(h.version) || !need(2)) return violation("a malformed HELLO");
        const std::uint16_t count = get_u16(p.data() + i);
        i += 2;
        if (count > 1024) return violation("a HELLO with more than 1024 methods");
        for (std::uint16_t k = 0; k < count; k++) {
            Untrusted m;
            if (!name(m)) return violation("a malformed HELLO");
            if (h.has_method(m.raw())) return violation("a HELLO naming a method twice");
            h.methods.push_back(std::move(m));
        }
        if (i != p.size()) return violation("bytes after the last method of HELLO");
        if (h.protocol_version != protocol_version)
            return violation("HELLO of protocol version " + std::to_string(h.protocol_version) + ", not 1");
        if (h.abi_version != abi_version)
            return violation("HELLO of ABI version " + std::to_string(h.abi_version) + ", not 1");
        hello_ = std::move(h);
        hello_ready_.store(true, std::memory_order_release);
        phase_ = Phase::ready;
    }

    // ---- how a session ends --------------------------------------------------------------

    void end_session(const std::string &reason) {
        phase_ = Phase::ended;
        end_reason_ = reason;
    }

    /// Ends the session with `e` as its cause; the call in progress (if any) gets `e`.
    void end_with(const CallError &e, const std::string &reason) {
        last_ = e;
        if (pending_.active) {
            done_ = CallResult::failure(e);
            pending_ = Pending{};
        }
        end_session(reason);
    }

    void violation(const std::string &what) {
        fault_ = Fault::protocol;
        fault_what_ = what;
        signal(SIGTERM, -1);  // the stream is out of step: stop the jail now
        CallError e;
        e.code = CallErrc::protocol_violation;
        e.detail = what;
        end_with(e, "protocol violation");
    }

    /// The end of the channel (or EPIPE): the jail is gone. A call whose frame was not
    /// written in full never reached the plugin (the stub runs only whole frames).
    void jail_gone() {
        CallError e;
        e.code = !pending_.active || pending_.write_done ? CallErrc::jail_ended : CallErrc::not_delivered;
        end_with(e, "the jail ended");
    }

    void io_failed(const char *syscall, int err) {
        signal(SIGTERM, -1);
        CallError e;
        e.code = CallErrc::io_error;
        e.detail = syscall;
        e.sys_errno = err;
        end_with(e, std::string("channel ") + syscall + " failed");
    }

    /// The deadline passed: tell plugjail serve it was the host's (SIGUSR1 with the
    /// milliseconds), which ends the jail with the verdict `timeout`, kind `host`.
    void expire() {
        const bool handshaking = phase_ != Phase::ready;
        const Millis after = handshaking ? handshake_timeout_ : pending_.timeout;
        fault_ = Fault::timeout;
        fault_after_ = after;
        fault_profile_ = !handshaking && pending_.profile_deadline;
        const long long ms = after.count();
        signal(SIGUSR1, ms > 0 && ms <= INT32_MAX ? static_cast<int>(ms) : 0);
        CallError e;
        e.code = CallErrc::timeout;
        e.after = after;
        end_with(e, "timeout");
    }

    /// Sends `sig` to plugjail serve (with `value` through sigqueue when ≥ 0), unless it
    /// has been reaped: the pid cannot have been reused before that.
    void signal(int sig, int value) noexcept {
        std::lock_guard<std::mutex> lock(pid_mu_);
        if (reaped_ || pid_ <= 0) return;
        if (value >= 0) {
            union sigval v;
            std::memset(&v, 0, sizeof v);
            v.sival_int = value;
            if (::sigqueue(pid_, sig, v) == 0) return;
        }
        ::kill(pid_, sig);
    }

    /// Reaps plugjail serve; false when it has not ended by `until`.
    bool reap(Clock::time_point until) noexcept {
        for (;;) {
            {
                std::lock_guard<std::mutex> lock(pid_mu_);
                if (reaped_ || pid_ <= 0) return true;
                int st = 0;
                const pid_t r = ::waitpid(pid_, &st, WNOHANG);
                if (r == pid_) {
                    reaped_ = true;
                    wait_status_ = st;
                    return true;
                }
                if (r < 0 && errno != EINTR) {
                    reaped_ = true;  // reaped elsewhere (a SIGCHLD handler): nothing to wait for
                    return true;
                }
            }
            if (Clock::now() >= until) return false;
            const timespec ts{0, 1000000};
            ::nanosleep(&ts, nullptr);
        }
    }

    /// Reads what the channel holds now, handing LOG frames to the callback and dropping
    /// the rest. False at its end, or at a malformed frame (the stream is out of step).
    bool drain_some() {
        for (;;) {
            while (rend_ - rstart_ >= header_len) {
                const char *h = rbuf_.data() + rstart_;
                const std::uint32_t len = get_u32(h);
                const std::uint16_t type = get_u16(h + 4);
                if (get_u16(h + 6) != 0 || type < frame_hello || type > frame_session || len > cap_) return false;
                if (rend_ - rstart_ < header_len + len) break;
                rstart_ += header_len + len;
                if (drain_before_session_) {
                    // The first frame is SESSION (its cap sizes the rest), or a violation.
                    drain_before_session_ = false;
                    phase_ = Phase::need_session;
                    handle(type, get_u64(h + 8), std::string_view(h + header_len, len));
                    if (fault_ != Fault::none) return false;
                    phase_ = Phase::ended;
                } else if (type == frame_log && len >= 4 && get_u32(h + header_len) <= 4) {
                    deliver_log(std::string_view(h + header_len, len));
                }
            }
            if (rstart_ == rend_) rstart_ = rend_ = 0;
            make_room();
            const ssize_t n = ::read(rfd_, rbuf_.data() + rend_, rbuf_.size() - rend_);
            if (n > 0) {
                rend_ += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        }
    }

    /// Reads what the status pipe holds now (the verdict; at most 1 MiB is kept, the rest
    /// read and dropped). False at its end or on an error.
    bool status_some() {
        char buf[16384];
        for (;;) {
            const ssize_t n = ::read(status_fd_, buf, sizeof buf);
            if (n > 0) {
                const std::size_t keep = std::min<std::size_t>(static_cast<std::size_t>(n),
                                                               (1u << 20) - std::min<std::size_t>(status_text_.size(), 1u << 20));
                status_text_.append(buf, keep);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        }
    }

    /// Reads the channel (when still open) and the status pipe until both have ended, or
    /// until `until`; closes each at its end.
    void finish_reading(Clock::time_point until) {
        if (status_fd_ >= 0) set_nonblocking(status_fd_);
        for (;;) {
            if (rfd_ >= 0 && !drain_some()) close_fd(rfd_);
            if (status_fd_ >= 0 && !status_some()) close_fd(status_fd_);
            if (rfd_ < 0 && status_fd_ < 0) return;
            const auto now = Clock::now();
            if (now >= until) return;
            pollfd p[2] = {{rfd_, POLLIN, 0}, {status_fd_, POLLIN, 0}};
            const timespec ts = to_timespec(until - now);
            if (::ppoll(p, 2, &ts, nullptr) < 0 && errno != EINTR) return;
        }
    }

    Verdict make_verdict(const std::string &text) {
        std::string why;
        std::optional<Verdict> parsed = Verdict::parse(text, &why);
        Verdict v;
        if (parsed) {
            v = std::move(*parsed);
        } else {
            v.outcome = "setup_failed";
            v.step = "session";
            std::string how = "plugjail serve delivered no verdict";
            if (WIFEXITED(wait_status_)) how += " (it exited with status " + std::to_string(WEXITSTATUS(wait_status_)) + ")";
            else if (WIFSIGNALED(wait_status_)) how += " (it was killed by signal " + std::to_string(WTERMSIG(wait_status_)) + ")";
            v.message = Untrusted(how);
            v.error = text.empty() ? std::string("the status pipe was empty") : why;
            v.json = text;
        }
        v.wait_status = wait_status_;
        v.calls = calls_;
        if (startup_ && v.plugin_failure) {
            v.plugin_failure->message = startup_->message;
            if (!v.plugin_failure->status && startup_->kind == ErrorKind::init_failed)
                v.plugin_failure->status = startup_->status;
        }
        switch (fault_) {
            case Fault::none: break;
            case Fault::protocol:
                v.host_finding = "protocol violation: " + fault_what_;
                v.outcome = "protocol_violation";
                v.message = Untrusted(fault_what_);
                v.signal.reset();
                v.signal_name.clear();
                break;
            case Fault::timeout: {
                const std::string ms = std::to_string(fault_after_.count());
                v.host_finding = std::string(fault_profile_ ? "call time " : "host deadline ") + ms + " ms";
                if (v.outcome != "timeout" || fault_profile_) {
                    v.outcome = "timeout";
                    v.timeout = Verdict::Timeout{fault_profile_ ? "call" : "host",
                                                 static_cast<std::uint64_t>(fault_after_.count())};
                    v.message = Untrusted(v.host_finding);
                    if (v.signal == SIGTERM) {
                        v.signal.reset();
                        v.signal_name.clear();
                    }
                }
                break;
            }
            case Fault::cancelled: v.host_finding = "cancelled by the host"; break;
        }
        return v;
    }

    // ---- state -----------------------------------------------------------------------------

    std::function<void(LogLevel, const Untrusted &)> on_log_;
    Millis call_timeout_;
    Millis handshake_timeout_;

    pid_t pid_ = -1;
    std::mutex pid_mu_;
    bool reaped_ = false;
    int wait_status_ = -1;

    int rfd_ = -1, wfd_ = -1, status_fd_ = -1, wake_r_ = -1, wake_w_ = -1;
    bool sigpipe_ignored_ = false;
    std::atomic<bool> cancelled_{false};

    mutable std::mutex io_mu_;
    Phase phase_ = Phase::need_session;
    bool closed_ = false;
    bool draining_ = false;
    bool drain_before_session_ = false;
    std::uint32_t cap_ = session_cap_before;
    SessionInfo info_;
    std::atomic<bool> info_ready_{false};
    Hello hello_;
    std::atomic<bool> hello_ready_{false};
    bool hs_armed_ = false;
    Clock::time_point hs_deadline_{};

    std::vector<char> rbuf_;
    std::size_t rstart_ = 0, rend_ = 0;

    Pending pending_;
    std::string owned_;  // start_call()'s input, alive until the call is done
    std::uint64_t next_id_ = 1;
    std::optional<CallResult> done_;
    std::uint64_t calls_ = 0;

    CallError last_;          // why the session ended
    std::string end_reason_;
    Fault fault_ = Fault::none;
    std::string fault_what_;
    Millis fault_after_{0};
    bool fault_profile_ = false;
    std::optional<CallError> startup_;
    std::string status_text_;
    Verdict verdict_;

    ShmRegion shm_;             // shared-memory calls; inactive: the pipe
    std::string shm_unavailable_;
    std::uint64_t pipe_frames_ = 0;  // LOG frames read since HELLO
    bool from_region_ = false;  // handle() is given the answer from the region
    std::string shm_answer_;    // the latest answer, copied out of the region
};

}  // namespace detail

/// One jailed plugin: `plugjail serve` as a child process, spoken to over two pipes.
/// Movable, not copyable. Destroying a session that was not closed ends its jail
/// (SIGTERM) and reaps plugjail serve, without a verdict.
class Session {
public:
    using Clock = std::chrono::steady_clock;

    /// Starts `plugjail serve` for the plugin and returns once it runs; the jail is built
    /// and the plugin loaded in the background (the first call, or handshake(), waits for
    /// its HELLO). Throws SpawnError: `plugjail` not found (the message lists where the
    /// client looked), the spawn or a pipe failed, or the options lack a profile or plugin.
    static Session spawn(const SessionOptions &options) { return Session(detail::Core::start(options)); }

    Session(Session &&) noexcept = default;
    Session &operator=(Session &&other) noexcept {
        if (this != &other) {
            if (core_) core_->abandon();
            core_ = std::move(other.core_);
        }
        return *this;
    }
    Session(const Session &) = delete;
    Session &operator=(const Session &) = delete;
    ~Session() {
        if (core_) core_->abandon();
    }

    /// Calls `method` with `input` under the default deadline (SessionOptions::call_timeout,
    /// else the profile's call_time, else 60 s). Blocks; reads LOG frames while it writes
    /// the input and while it waits. Never throws for a failed call (see CallErrc).
    CallResult call(std::string_view method, std::string_view input = {}) {
        return core_ ? core_->call(method, input, std::nullopt) : moved_from();
    }
    /// call() with its own deadline. When it passes, plugjail serve is sent SIGUSR1 with
    /// the deadline and ends the jail: the result is CallErrc::timeout and the verdict
    /// `timeout`, kind `host`, limit_ms the deadline.
    CallResult call(std::string_view method, std::string_view input, Millis deadline) {
        return core_ ? core_->call(method, input, deadline) : moved_from();
    }
    /// call() on a thread of its own (std::async). Calls on one session run one at a time;
    /// the session (its shared state) stays alive until the call returns.
    std::future<CallResult> call_async(std::string method, std::string input = {},
                                       std::optional<Millis> deadline = std::nullopt) {
        auto core = core_;
        return std::async(std::launch::async, [core, m = std::move(method), in = std::move(input), deadline]() {
            if (!core) return moved_from();
            return core->call(m, in, deadline);
        });
    }

    /// Waits for the SESSION frame and the plugin's HELLO (the first call does this too):
    /// ok, or startup_failed (the plugin's ERROR), timeout, jail_ended, protocol_violation.
    CallResult handshake() { return core_ ? core_->handshake() : moved_from(); }

    /// Ends the jail from any thread: plugjail serve gets SIGTERM, and the call in progress
    /// (if any) returns CallErrc::cancelled at once; later calls return `ended`. The
    /// verdict (close()) is then `signaled`, with plugjail's message naming SIGTERM, and
    /// Verdict::host_finding "cancelled by the host".
    void cancel() noexcept {
        if (core_) core_->cancel();
    }

    /// Ends the session and returns the verdict: SHUTDOWN when the session is in step (the
    /// plugin's shutdown() runs), the channel's last LOG frames, then plugjail serve's
    /// verdict and its exit. Waits at most `grace` before it stops the jail (SIGTERM, then
    /// SIGKILL). Calling it again returns the same verdict.
    Verdict close(Millis grace = std::chrono::seconds(10)) {
        if (!core_) {
            Verdict v;
            v.outcome = "unknown";
            v.error = "a moved-from session";
            return v;
        }
        return core_->close(grace);
    }

    // ---- event loops (epoll, Asio, libuv) ------------------------------------------------
    //
    //   s.start_call("greet", "bob");                  // or its immediate result
    //   loop: watch read_fd() for reading, write_fd() for writing while wants_write(),
    //         and a timer at next_deadline(); on any of them:
    //   if (auto r = s.on_ready()) { ... the call's result ... }
    //
    // on_ready() never blocks. Between calls, keep read_fd() watched (or call on_ready()
    // now and then) so LOG frames from plugin threads are read. Once ended() is true,
    // stop watching and close().

    /// Starts a call without waiting. Returns a result at once when the call cannot start
    /// (busy, ended, invalid_method; input_too_large when the cap is known) or was answered
    /// already; otherwise the result comes from on_ready(). The input is kept until the
    /// call is done.
    std::optional<CallResult> start_call(std::string_view method, std::string input,
                                         std::optional<Millis> deadline = std::nullopt) {
        if (!core_) return moved_from();
        return core_->start_call(method, std::move(input), deadline);
    }
    /// Does the I/O possible now (reads frames, writes what fits) and checks the deadline;
    /// returns the call's result once it is complete.
    std::optional<CallResult> on_ready() { return core_ ? core_->on_ready() : std::nullopt; }
    /// True while part of a CALL waits to be written: watch write_fd() for writability.
    bool wants_write() const { return core_ && core_->wants_write(); }
    /// When on_ready() must be called at the latest (the handshake's or the call's
    /// deadline); nothing when no deadline runs.
    std::optional<Clock::time_point> next_deadline() const {
        return core_ ? core_->next_deadline() : std::nullopt;
    }
    /// True once the session can take no more calls.
    bool ended() const { return !core_ || core_->ended(); }
    /// The channel's descriptors (non-blocking; -1 after close()). Do not read or write
    /// them yourself; only watch them.
    int read_fd() const noexcept { return core_ ? core_->read_fd() : -1; }
    int write_fd() const noexcept { return core_ ? core_->write_fd() : -1; }

    // ---- what is known -------------------------------------------------------------------

    /// plugjail serve's process id.
    pid_t pid() const noexcept { return core_ ? core_->pid() : -1; }
    /// True when calls travel through shared memory (SessionOptions::shm).
    bool uses_shm() const noexcept { return core_ && core_->uses_shm(); }
    /// Why a session that asked for shared memory calls over the pipe (empty otherwise).
    std::string shm_unavailable() const { return core_ ? core_->shm_unavailable() : std::string(); }
    /// The SESSION frame, once read (nullptr before).
    const SessionInfo *session_info() const noexcept { return core_ ? core_->session_info() : nullptr; }
    /// The plugin's HELLO, once read (nullptr before).
    const Hello *hello() const noexcept { return core_ ? core_->hello() : nullptr; }

private:
    explicit Session(std::shared_ptr<detail::Core> c) : core_(std::move(c)) {}
    static CallResult moved_from() {
        CallError e;
        e.code = CallErrc::ended;
        e.detail = "a moved-from session";
        return CallResult::failure(e);
    }
    std::shared_ptr<detail::Core> core_;
};

}  // namespace plugjail

#endif  // PLUGJAIL_HOST_HPP
