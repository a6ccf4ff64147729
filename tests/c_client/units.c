/*
 * The C client's pure parts, without a jail (the driver builds this one with
 * AddressSanitizer and UBSan when the compiler has them, so an overread is a failure):
 *
 *   units               plugjail_sanitize / plugjail_print_record against the test cases
 *                       of crates/protocol/src/text.rs; escaping round-trips; the verdict
 *                       parser on good verdicts, on every prefix and many mutations of
 *                       one, and on hostile JSON (deep nesting, bad escapes, huge numbers)
 *   units corpus N      N pseudo-random inputs, one per line: the input in hex, a tab, its
 *                       plugjail_sanitize, a tab, the same with PLUGJAIL_SANITIZE_QUOTE;
 *                       the driver compares each with plugjail::text in Rust
 */
#include "check.h"

/* ---- escaping ------------------------------------------------------------------------ */

static void expect_escape(const char *in, size_t len, unsigned flags, const char *want) {
    char *got = plugjail_sanitize_dup(in, len, flags);
    CHECK(got && strcmp(got, want) == 0, "escape: got \"%s\", want \"%s\"", got ? got : "(null)",
          want);
    size_t need = plugjail_sanitize(NULL, 0, in, len, flags);
    CHECK(need == strlen(want), "length %zu, want %zu", need, strlen(want));
    CHECK(need <= 4 * len, "at most 4 bytes per input byte");
    free(got);
}

#define ESC(lit, want) expect_escape(lit, sizeof lit - 1, 0, want)

static void expect_record(const char *tag, const char *in, size_t len, const char *want) {
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) {
        CHECK(0, "open_memstream");
        return;
    }
    CHECK(plugjail_print_record(f, tag, in, len) == 0, "print_record");
    fclose(f);
    CHECK(buf && strcmp(buf, want) == 0, "record: got \"%s\", want \"%s\"", buf, want);
    free(buf);
}

/* Undoes the escaping: \\ \" \n \r \t \xNN \u{H..}. One-to-one means this always gives the
 * input back. */
static size_t unescape(const char *s, unsigned char *out) {
    size_t n = 0;
    while (*s) {
        if (*s != '\\') {
            out[n++] = (unsigned char)*s++;
            continue;
        }
        s++;
        if (*s == 'x') {
            unsigned v = 0;
            sscanf(s + 1, "%2x", &v);
            out[n++] = (unsigned char)v;
            s += 3;
        } else if (*s == 'u') {
            unsigned long c = strtoul(s + 2, NULL, 16);
            s = strchr(s, '}') + 1;
            if (c < 0x800) {
                out[n++] = (unsigned char)(0xc0 | c >> 6);
                out[n++] = (unsigned char)(0x80 | (c & 0x3f));
            } else {
                out[n++] = (unsigned char)(0xe0 | c >> 12);
                out[n++] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
                out[n++] = (unsigned char)(0x80 | (c & 0x3f));
            }
        } else {
            out[n++] = (unsigned char)(*s == 'n' ? '\n' : *s == 'r' ? '\r' : *s == 't' ? '\t' : *s);
            s++;
        }
    }
    return n;
}

static uint32_t rng_state = 2463534242u;
static uint32_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Random text that is mostly interesting: ASCII, controls, UTF-8 pieces, bidi controls,
 * C1, stray continuation bytes, truncated sequences. */
static size_t random_text(unsigned char *buf, size_t max) {
    static const char *const pieces[] = {
        "a", "Z", " ", "\\", "\"", "\n", "\r", "\t", "\x1b", "\x07", "\x7f", "\x00",
        "\xc2\x9b", "\xc2\x85", "\xc2\xa0", "\xe2\x80\xae", "\xe2\x81\xa6", "\xe2\x80\x8e",
        "\xd8\x9c", "\xe2\x80\xa8", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xff", "\x80",
        "\xc3", "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf", "\xe0\x80\xaf",
        "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xdf\xbf",
    };
    static const size_t lens[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3,
                                  2, 3, 3, 4, 1, 1, 1, 2, 3, 4, 2, 3, 3, 4, 2};
    size_t n = 0, count = rng() % 12;
    for (size_t i = 0; i < count; i++) {
        size_t k = rng() % (sizeof lens / sizeof lens[0]);
        if (rng() % 4 == 0) { /* any byte */
            if (n + 1 > max) break;
            buf[n++] = (unsigned char)rng();
            continue;
        }
        if (n + lens[k] > max) break;
        memcpy(buf + n, pieces[k], lens[k]);
        n += lens[k];
    }
    return n;
}

static void escaping(void) {
    /* crates/protocol/src/text.rs: clean_text_passes_unchanged_and_is_borrowed */
    ESC("", "");
    ESC("hello, world", "hello, world");
    /* "größe 3 € — 日本語 ✓" */
#define UNICODE_TEXT                                                                         \
    "gr\xc3\xb6\xc3\x9f" "e 3 \xe2\x82\xac \xe2\x80\x94 "                                    \
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xe2\x9c\x93"
    ESC(UNICODE_TEXT, UNICODE_TEXT);
    ESC("a\"quote'", "a\"quote'");
    /* terminal_escape_sequences_are_made_visible */
    ESC("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07");
    ESC("\x1b]52;c;ZWNobyBoaQ==\x07", "\\x1b]52;c;ZWNobyBoaQ==\\x07");
    ESC("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H");
    ESC("ok\rplugjail: session ended cleanly", "ok\\rplugjail: session ended cleanly");
    ESC("a\x08\x7f\x00" "b\tc\nd", "a\\x08\\x7f\\x00b\\tc\\nd");
    /* c1_controls_and_bidi_controls_are_made_visible */
    ESC("\xc2\x9b" "2J", "\\u{9b}2J");
    ESC("\xc2\x85", "\\u{85}");
    ESC("\xc2\x80", "\\u{80}");
    ESC("\xc2\x9f", "\\u{9f}");
    ESC("\xc2\xa0", "\xc2\xa0"); /* U+00A0 is not a control */
    ESC("user\xe2\x80\xaetxt.exe", "user\\u{202e}txt.exe");
    ESC("\xe2\x80\xaa", "\\u{202a}");
    ESC("\xe2\x80\xac", "\\u{202c}");
    ESC("\xe2\x81\xa6", "\\u{2066}");
    ESC("\xe2\x81\xa9", "\\u{2069}");
    ESC("\xe2\x80\x8e", "\\u{200e}");
    ESC("\xe2\x80\x8f", "\\u{200f}");
    ESC("\xd8\x9c", "\\u{61c}");
    ESC("\xe2\x80\xa8", "\\u{2028}");
    ESC("\xe2\x80\xa9", "\\u{2029}");
    ESC("\xe2\x80\xab", "\\u{202b}");
    ESC("\xe2\x80\x8d", "\xe2\x80\x8d"); /* U+200D (ZWJ) passes, as in Rust */
    /* invalid_utf8_is_shown_byte_by_byte */
    ESC("a\xff" "b\xc3", "a\\xffb\\xc3");
    ESC("\xc0\xaf\x80", "\\xc0\\xaf\\x80");
    ESC("\x9b", "\\x9b");
    ESC("\xed\xa0\x80", "\\xed\\xa0\\x80");             /* a surrogate */
    ESC("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");     /* above U+10FFFF */
    ESC("\xe0\x80\xaf", "\\xe0\\x80\\xaf");             /* overlong */
    ESC("\xe2\x82" "a", "\\xe2\\x82a");                 /* cut short */
    ESC("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80");         /* U+1F600 passes */
    /* a_backslash_is_escaped_so_the_output_is_unambiguous */
    ESC("C:\\x1b", "C:\\\\x1b");
    /* quoted_text_escapes_its_quotes (without Quoted's surrounding quotes) */
    expect_escape("say \"hi\"\x1b[2J", 12, PLUGJAIL_SANITIZE_QUOTE, "say \\\"hi\\\"\\x1b[2J");
    /* records_are_one_marked_line */
    expect_record("output", "hi\n", 3, "plugin[output]: hi\n");
    expect_record("warn", "two\nlines\n\n", 11, "plugin[warn]: two\\nlines\\n\n");
    expect_record("fail", "\rplugjail: session ended cleanly", 32,
                  "plugin[fail]: \\rplugjail: session ended cleanly\n");
    expect_record("debug", "", 0, "plugin[debug]: \n");

    /* A short buffer: a prefix that never ends inside an escape or a character. */
    char small[8];
    size_t need = plugjail_sanitize(small, 5, "\x1b\x1b", 2, 0);
    CHECK(need == 8 && strcmp(small, "\\x1b") == 0, "truncated: %zu \"%s\"", need, small);
    need = plugjail_sanitize(small, 4, "\x1b", 1, 0);
    CHECK(need == 4 && small[0] == '\0', "no room for the escape: \"%s\"", small);
    need = plugjail_sanitize(small, 6, "ab\xe2\x82\xac" "c", 6, 0);
    CHECK(need == 6 && strcmp(small, "ab\xe2\x82\xac") == 0, "a whole character: \"%s\"", small);
    need = plugjail_sanitize(small, 5, "ab\xe2\x82\xac" "c", 6, 0);
    CHECK(need == 6 && strcmp(small, "ab") == 0, "not half a character: \"%s\"", small);
    need = plugjail_sanitize(small, 0, "abc", 3, 0);
    CHECK(need == 3, "size 0 only measures");

    /* Random texts: one printable line, the input back from it, nothing longer than 4x. */
    unsigned char in[64], back[64 * 4];
    for (int i = 0; i < 20000; i++) {
        size_t n = random_text(in, sizeof in);
        char *out = plugjail_sanitize_dup(in, n, 0);
        if (!out) {
            CHECK(0, "out of memory");
            return;
        }
        size_t len = strlen(out);
        int printable = 1;
        for (size_t k = 0; k < len;) {
            uint32_t c;
            size_t w = pjh_utf8((const unsigned char *)out + k, len - k, &c);
            if (w == 0 || pjh_is_control(c) || pjh_is_bidi_or_break(c)) {
                printable = 0;
                break;
            }
            k += w;
        }
        CHECK(printable, "random text %d: not one printable line", i);
        CHECK(len <= 4 * n, "random text %d: %zu bytes from %zu", i, len, n);
        size_t m = unescape(out, back);
        CHECK(m == n && memcmp(back, in, n) == 0, "random text %d: does not round-trip", i);
        free(out);
        if (failures > 20) return;
    }
}

static void corpus(int count) {
    unsigned char in[64];
    for (int i = 0; i < count; i++) {
        size_t n = random_text(in, sizeof in);
        for (size_t k = 0; k < n; k++) printf("%02x", in[k]);
        putchar('\t');
        plugjail_fputs_sanitized(stdout, in, n, 0);
        putchar('\t');
        plugjail_fputs_sanitized(stdout, in, n, PLUGJAIL_SANITIZE_QUOTE);
        putchar('\n');
    }
}

/* ---- the verdict parser --------------------------------------------------------------- */

/* Parses from an exactly sized heap copy (no NUL after it), so ASan sees any overread. */
static int parse(const char *text, size_t len, struct plugjail_verdict *v,
                 struct plugjail_error *err) {
    char *copy = (char *)malloc(len ? len : 1);
    if (!copy) return -1;
    memcpy(copy, text, len);
    int rc = plugjail_verdict_parse(copy, len, v, err);
    free(copy);
    return rc;
}

static const char seccomp_verdict[] =
    "{\"version\":1,\"outcome\":\"seccomp_violation\",\n"
    " \"syscall\":{\"name\":\"ptrace\",\"number\":101,\"arch\":\"x86_64\",\"phase\":\"load\"},\n"
    " \"exit_status\":159,\"wall_time_ms\":61,\n"
    " \"resources\":{\"cpu_time_ms\":3,\"max_rss_bytes\":3272704,\"memory_peak_bytes\":524288},\n"
    " \"profile\":\"/etc/plugjail/default.yaml\",\"command\":[\"/tmp/naming\",\"ptrace\"],\n"
    " \"enforced\":{\"namespaces\":[\"user\",\"mount\",\"pid\",\"net\",\"ipc\",\"uts\",\"cgroup\"],\n"
    "   \"landlock\":{\"abi\":7,\"status\":\"full\",\"dropped\":[]},\n"
    "   \"seccomp\":{\"phase\":\"load\",\"default_action\":\"kill_process\",\"instructions\":666,\n"
    "              \"allowed_syscalls\":129,\"naming\":\"ptrace\"},\n"
    "   \"rootless\":false,\"uid_map\":\"1000 65534 1\\n\",\"gid_map\":\"1000 65534 1\\n\",\n"
    "   \"cgroup\":{\"backend\":\"v1_hybrid\",\"controllers\":[\"memory\",\"cpu\",\"pids\"],\n"
    "              \"x\": -1.5e3, \"n\": null, \"t\": true}}}";

static void verdicts(void) {
    struct plugjail_verdict v;
    struct plugjail_error err;
    size_t len = sizeof seccomp_verdict - 1;
    int rc = parse(seccomp_verdict, len, &v, &err);
    CHECK(rc == 0, "the docs' verdict: %s", err.message);
    if (rc == 0) {
        CHECK(streq(v.outcome, "seccomp_violation") && v.exit_status == 159 &&
                  streq(v.syscall_name, "ptrace") && v.syscall_number == 101 &&
                  streq(v.syscall_arch, "x86_64") && streq(v.syscall_phase, "load") &&
                  v.wall_time_ms == 61 && v.cpu_time_ms == 3 && v.max_rss_bytes == 3272704 &&
                  v.memory_peak_bytes == 524288 && v.signal_number == 0 && !v.signal_name &&
                  !v.message && !v.timeout_kind && v.json_len == len,
              "fields");
        plugjail_verdict_free(&v);
        CHECK(v.outcome == NULL && v.pjh_mem == NULL, "free empties it");
        plugjail_verdict_free(&v); /* twice is harmless */
    }

    static const char timeout_verdict[] =
        "{\"version\":1,\"outcome\":\"timeout\",\"timeout\":{\"kind\":\"host\",\"limit_ms\":250},"
        "\"signal\":{\"number\":9,\"name\":\"SIGKILL\"},\"message\":\"host deadline 250ms\","
        "\"calls\":3,\"exit_status\":5,\"wall_time_ms\":400}\n";
    rc = parse(timeout_verdict, sizeof timeout_verdict - 1, &v, &err);
    CHECK(rc == 0 && streq(v.timeout_kind, "host") && v.timeout_limit_ms == 250 &&
              v.signal_number == 9 && streq(v.signal_name, "SIGKILL") && v.calls == 3 &&
              v.exit_status == 5 && v.message_len == 19 && !v.has_exit_code,
          "timeout verdict: %s", err.message);
    plugjail_verdict_free(&v);

    static const char failed_verdict[] =
        "{\"version\":1,\"outcome\":\"plugin_failed\",\"plugin_failure\":{\"stage\":\"init\","
        "\"status\":3,\"message\":\"a\\u001b[2J\\ud83d\\ude00\\u0000z\\\"\\\\\\/\\b\\f\\n\\r\\t\"},"
        "\"exit_status\":10,\"exit_code\":0,\"errno\":{\"number\":1,\"name\":\"EPERM\"},"
        "\"step\":\"x\",\"call_error\":{\"kind\":\"plugin\",\"status\":-7,\"message\":\"m\"},"
        "\"syscall\":{\"name\":null,\"number\":null,\"arch\":null,\"phase\":\"serve\"}}";
    rc = parse(failed_verdict, sizeof failed_verdict - 1, &v, &err);
    CHECK(rc == 0, "plugin_failed verdict: %s", err.message);
    if (rc == 0) {
        static const char want[] = "a\x1b[2J\xf0\x9f\x98\x80\0z\"\\/\b\f\n\r\t";
        CHECK(v.failure_message_len == sizeof want - 1 &&
                  memcmp(v.failure_message, want, sizeof want - 1) == 0,
              "decoded message (%zu bytes)", v.failure_message_len);
        CHECK(streq(v.failure_stage, "init") && v.has_failure_status && v.failure_status == 3 &&
                  v.has_exit_code && v.exit_code == 0 && v.errno_number == 1 &&
                  streq(v.errno_name, "EPERM") && streq(v.step, "x") &&
                  streq(v.call_error_kind, "plugin") && v.call_error_status == -7 &&
                  v.call_error_message_len == 1 && !v.syscall_name && v.syscall_number == -1 &&
                  streq(v.syscall_phase, "serve"),
              "fields");
    }
    plugjail_verdict_free(&v);

    /* Every prefix of a valid verdict is malformed, and costs no crash. */
    for (size_t n = 0; n < len; n++) {
        rc = parse(seccomp_verdict, n, &v, &err);
        CHECK(rc == PLUGJAIL_E_VERDICT && v.outcome == NULL, "prefix of %zu bytes parsed", n);
        if (rc == 0) plugjail_verdict_free(&v);
    }
    /* Mutations: any result, but no crash, no overread, and a clean struct on error. */
    static const char swaps[] = {'"', '\\', '{', '}', '[', ']', ',', ':', '0', '-', 'e',
                                 'x', 'n', ' ', '\0', '\x01', (char)0xff, (char)0x80, (char)0xc3};
    char *m = (char *)malloc(len);
    for (size_t i = 0; m && i < len; i++) {
        for (size_t k = 0; k < sizeof swaps; k++) {
            memcpy(m, seccomp_verdict, len);
            m[i] = swaps[k];
            rc = parse(m, len, &v, &err);
            if (rc == 0) {
                CHECK(v.outcome != NULL && v.json_len == len, "a parsed mutation has fields");
                plugjail_verdict_free(&v);
            } else {
                CHECK(rc == PLUGJAIL_E_VERDICT && v.outcome == NULL && err.message[0],
                      "mutation %zu/%zu: %d", i, k, rc);
            }
        }
    }
    free(m);

    static const char *const bad[] = {
        "",
        "   ",
        "[]",
        "{}",
        "{\"version\":1,\"exit_status\":0}",                           /* no outcome */
        "{\"version\":2,\"outcome\":\"ok\",\"exit_status\":0}",        /* unknown version */
        "{\"outcome\":\"ok\",\"exit_status\":0}",                      /* no version */
        "{\"version\":1,\"outcome\":\"ok\"}",                          /* no exit_status */
        "{\"version\":1,\"outcome\":5,\"exit_status\":0}",
        "{\"version\":1,\"outcome\":\"ok\",\"exit_status\":0} x",
        "{\"version\":1,\"outcome\":\"ok\",\"exit_status\":0}}",
        "{\"version\":1,\"outcome\":\"ok\",\"exit_status\":99999999999999999999}",
        "{\"version\":1,\"outcome\":\"ok\",\"exit_status\":4294967296}",
        "{\"version\":1,\"outcome\":\"ok\",\"exit_status\":1.5}",
        "{\"version\":1,\"outcome\":\"ok\",\"exit_status\":0,\"calls\":-1}",
        "{\"version\":1,\"outcome\":\"ok\",\"exit_status\":01}",
        "{\"version\":1,\"outcome\":\"ok\",\"exit_status\":-}",
        "{\"version\":1,\"outcome\":\"o\\ud800\",\"exit_status\":0}",
        "{\"version\":1,\"outcome\":\"o\\udc00\",\"exit_status\":0}",
        "{\"version\":1,\"outcome\":\"o\\ud800\\u0041\",\"exit_status\":0}",
        "{\"version\":1,\"outcome\":\"o\\q\",\"exit_status\":0}",
        "{\"version\":1,\"outcome\":\"o\\u12\",\"exit_status\":0}",
        "{\"version\":1,\"outcome\":\"o\x01\",\"exit_status\":0}",
        "{\"version\":1,\"outcome\":\"o\xff\",\"exit_status\":0}",
        "{\"version\":1,\"outcome\":\"o\xc0\xaf\",\"exit_status\":0}",
        "{\"version\":1,\"outcome\":\"ok\",\"exit_status\":0,\"x\":tru}",
        "{\"version\":1,\"outcome\":\"ok\",\"exit_status\":0,\"x\":[1,]}",
        "{\"version\":1,\"outcome\":\"ok\",\"exit_status\":0,\"x\":{\"a\"}}",
        "{\"version\":1,\"outcome\":\"ok\",\"exit_status\":0,,}",
        "{\"version\":1,\"outcome\":\"ok\",\"exit_status\":0,\"signal\":5}",
        "{\"version\":1 \"outcome\":\"ok\",\"exit_status\":0}",
        "{\"version\":1,\"outcome\":\"ok\",\"exit_status\":0,\"x\":1.}",
        "{\"version\":1,\"outcome\":\"ok\",\"exit_status\":0,\"x\":1e}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = parse(bad[i], strlen(bad[i]), &v, &err);
        CHECK(rc == PLUGJAIL_E_VERDICT && v.outcome == NULL, "bad verdict %zu parsed: %s", i,
              bad[i]);
        if (rc == 0) plugjail_verdict_free(&v);
    }
    static const char *const good[] = {
        " {\"version\":1,\"outcome\":\"future_outcome\",\"exit_status\":0} \n\t",
        "{\"version\":1,\"outcome\":\"ok\",\"outcome\":\"exited\",\"exit_status\":-1,"
        "\"x\":[[],{},\"\",-0,0.5e-3,1E+2,null,false],\"message\":null}",
        "{\"exit_status\":0,\"outcome\":\"ok\",\"version\":1,\"\\u0076ersion\":1}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        rc = parse(good[i], strlen(good[i]), &v, &err);
        CHECK(rc == 0, "good verdict %zu: %s", i, err.message);
        plugjail_verdict_free(&v);
    }
    rc = parse(good[1], strlen(good[1]), &v, &err);
    CHECK(rc == 0 && streq(v.outcome, "exited") && v.exit_status == -1 && !v.message,
          "the last of a repeated key; null is absent");
    plugjail_verdict_free(&v);

    /* Nesting far deeper than any verdict: refused, without running out of stack. */
    size_t depth = 100000;
    char *deep = (char *)malloc(depth + 64);
    if (deep) {
        size_t n = (size_t)sprintf(deep, "{\"version\":1,\"x\":");
        memset(deep + n, '[', depth);
        rc = parse(deep, n + depth, &v, &err);
        CHECK(rc == PLUGJAIL_E_VERDICT && strstr(err.message, "deep"), "deep nesting: %s",
              err.message);
        n = (size_t)sprintf(deep, "{\"version\":1,\"signal\":");
        for (size_t k = 0; k < 40; k++) n += (size_t)sprintf(deep + n, "{\"a\":");
        rc = parse(deep, n, &v, &err);
        CHECK(rc == PLUGJAIL_E_VERDICT, "deep objects: %s", err.message);
        free(deep);
    }
    rc = plugjail_verdict_parse(NULL, 0, &v, &err);
    CHECK(rc == PLUGJAIL_E_INVALID, "NULL text");
}

int main(int argc, char **argv) {
    if (argc > 2 && streq(argv[1], "corpus")) {
        corpus(atoi(argv[2]));
        return 0;
    }
    escaping();
    verdicts();
    return finish("units");
}
