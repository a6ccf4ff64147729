/*
 * The client against a plugjail that breaks the rules (tests/c_client/fake_serve.c, run
 * as the explicit plugjail path), no jail needed:
 *
 *   protocol FAKE_SERVE
 *
 * Each scenario: the code the client returns, its message, and the verdict close() builds
 * from what the fake delivered and what the client saw (a protocol violation overrides
 * the "stopped by SIGTERM" the fake reports, as the real plugjail's would be).
 */
#include "check.h"

static const char *fake;

static struct plugjail_session *open_fake(const char *scenario) {
    setenv("FAKE_SCENARIO", scenario, 1);
    struct plugjail_options o;
    plugjail_options_init(&o);
    o.profile = "unused.yaml";
    o.plugin = "unused.so";
    o.plugjail = fake;
    o.start_timeout_ms = 5000;
    o.close_timeout_ms = 5000;
    struct plugjail_error err;
    struct plugjail_session *s = plugjail_session_open(&o, &err);
    if (!s) {
        fprintf(stderr, "open %s: %s\n", fake, err.message);
        exit(1);
    }
    return s;
}

/* A scenario whose violation shows at start (or at the first call), and its verdict. */
static void violation(const char *scenario, const char *words) {
    struct plugjail_session *s = open_fake(scenario);
    struct plugjail_error err;
    int rc = plugjail_session_call(s, "echo", "hi", 2, 5000, NULL, NULL, &err);
    CHECK(rc == PLUGJAIL_E_PROTOCOL && strstr(err.message, words) != NULL,
          "%s: %s (%s)", scenario, err.message, plugjail_code_name(rc));
    struct plugjail_verdict v;
    rc = plugjail_session_close(s, &v);
    CHECK(rc == 0 && streq(v.outcome, "protocol_violation") && v.message &&
              strstr(v.message, words) != NULL && v.signal_number == 0 && !v.signal_name &&
              v.host_fault == PLUGJAIL_FAULT_PROTOCOL,
          "%s: verdict", scenario);
    if (failures) describe(&v);
    plugjail_verdict_free(&v);
}

static void sigpipe_case(void) {
    struct plugjail_session *s = open_fake("sigpipe");
    struct plugjail_error err;
    CHECK(plugjail_session_start(s, &err) == 0, "sigpipe: start: %s", err.message);
    struct timespec t = {0, 300 * 1000 * 1000};
    nanosleep(&t, NULL); /* the fake has closed its read end by now */
    char big[70000];
    memset(big, 'x', sizeof big);
    int rc = plugjail_session_call(s, "echo", big, sizeof big, 5000, NULL, NULL, &err);
    /* Still alive: SIGPIPE was blocked, and the one the write raised was consumed. */
    CHECK(rc == PLUGJAIL_E_NOT_DELIVERED, "sigpipe: %s (%s)", err.message,
          plugjail_code_name(rc));
    sigset_t pending, mask;
    sigpending(&pending);
    CHECK(!sigismember(&pending, SIGPIPE), "no SIGPIPE left pending");
    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    CHECK(!sigismember(&mask, SIGPIPE), "the signal mask is as it was");
    struct plugjail_verdict v;
    rc = plugjail_session_close(s, &v);
    CHECK(rc == 0 && streq(v.outcome, "exited") && v.calls == 0, "sigpipe: verdict");
    if (failures) describe(&v);
    plugjail_verdict_free(&v);
}

static void early_answer_case(void) {
    struct plugjail_session *s = open_fake("early_answer");
    struct plugjail_error err;
    size_t n = 1u << 19; /* far more than a pipe holds: the write cannot finish */
    unsigned char *big = (unsigned char *)calloc(1, n);
    int rc = plugjail_session_call(s, "echo", big, n, 5000, NULL, NULL, &err);
    CHECK(rc == PLUGJAIL_E_PROTOCOL && strstr(err.message, "before the whole call"),
          "early answer: %s", err.message);
    free(big);
    struct plugjail_verdict v;
    plugjail_session_close(s, &v);
    CHECK(streq(v.outcome, "protocol_violation"), "early answer: verdict");
    plugjail_verdict_free(&v);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: protocol FAKE_SERVE\n");
        return 64;
    }
    fake = argv[1];
    /* SIGPIPE at its default: a write the client did not guard would kill this test. */
    signal(SIGPIPE, SIG_DFL);

    /* A well-behaved fake first (its frame cap is the smallest, 4096): the client's
     * ordinary path, and the SESSION figures. */
    struct plugjail_session *s = open_fake("ok");
    struct plugjail_error err;
    unsigned char *out = NULL;
    size_t out_len = 0;
    int rc = plugjail_session_call(s, "echo", "abc", 3, 5000, &out, &out_len, &err);
    CHECK(rc == 0 && out_len == 3 && memcmp(out, "abc", 3) == 0, "ok: %s", err.message);
    free(out);
    const struct plugjail_limits *lim = plugjail_session_limits(s);
    CHECK(lim && lim->max_message == 4096 && lim->call_time_ms == 1500 && lim->idle_time_ms == 0,
          "limits");
    rc = plugjail_session_call(s, "echo", NULL, 5000, 5000, &out, &out_len, &err);
    CHECK(rc == PLUGJAIL_E_INVALID, "NULL input with a length");
    char big[5000];
    memset(big, 'b', sizeof big);
    /* 1 + 4 bytes of method ("echo") and 4092 of input: one byte above the cap */
    rc = plugjail_session_call(s, "echo", big, 4092, 5000, &out, &out_len, &err);
    CHECK(rc == PLUGJAIL_E_TOO_LARGE && out == NULL, "above the fake's cap of 4096");
    rc = plugjail_session_call(s, "echo", big, 4091, 5000, &out, &out_len, &err);
    CHECK(rc == 0 && out_len == 4091, "just within it: %s", err.message);
    free(out);
    struct plugjail_verdict v;
    rc = plugjail_session_close(s, &v);
    CHECK(rc == 0 && streq(v.outcome, "ok") && v.calls == 2 && v.host_fault == 0, "ok: verdict");
    plugjail_verdict_free(&v);

    violation("no_session", "not SESSION");
    violation("big_frame", "above the cap");
    violation("flags", "flags");
    violation("bad_type", "unknown type");
    violation("small_cap", "frame cap");
    violation("bad_hello_name", "plugin name");
    violation("bad_hello_twice", "twice");
    violation("bad_hello_trailing", "bytes after");
    violation("wrong_id", "call 2 during call 1");
    violation("startup_after_hello", "startup ERROR");
    violation("bad_log_level", "level 9");
    violation("session_twice", "SESSION");
    violation("bad_error_utf8", "not UTF-8");
    violation("long_error", "4097 bytes");
    early_answer_case();
    sigpipe_case();

    /* plugjail ends before SESSION (say, a bad profile): its verdict says why. */
    s = open_fake("eof_before_session");
    rc = plugjail_session_call(s, "echo", "", 0, 5000, NULL, NULL, &err);
    CHECK(rc == PLUGJAIL_E_ENDED && strstr(err.message, "before the session began"),
          "eof before SESSION: %s", err.message);
    rc = plugjail_session_close(s, &v);
    CHECK(rc == 0 && streq(v.outcome, "setup_failed") && streq(v.step, "profile") &&
              v.exit_status == 125,
          "setup_failed verdict");
    plugjail_verdict_free(&v);

    /* A frame cut short by the end of the channel. */
    s = open_fake("truncated");
    rc = plugjail_session_call(s, "echo", "x", 1, 5000, NULL, NULL, &err);
    CHECK(rc == PLUGJAIL_E_ENDED && strstr(err.message, "middle of a frame"), "truncated: %s",
          err.message);
    rc = plugjail_session_close(s, &v);
    CHECK(rc == 0 && streq(v.outcome, "exited") && v.exit_status == 9, "truncated: verdict");
    plugjail_verdict_free(&v);

    /* No verdict, or a broken one: an error, the outcome "unknown", the exit status. */
    s = open_fake("no_verdict");
    CHECK(plugjail_session_start(s, &err) == 0, "no_verdict: start");
    rc = plugjail_session_close(s, &v);
    CHECK(rc == PLUGJAIL_E_VERDICT && streq(v.outcome, "unknown") && v.message &&
              strstr(v.message, "no verdict") && v.exit_status == 0,
          "no verdict: %d %s", rc, v.message ? v.message : "");
    plugjail_verdict_free(&v);
    s = open_fake("bad_verdict");
    rc = plugjail_session_close(s, &v); /* closed before it started: still a verdict read */
    CHECK(rc == PLUGJAIL_E_VERDICT && streq(v.outcome, "unknown") && v.message &&
              strstr(v.message, "malformed"),
          "bad verdict: %d %s", rc, v.message ? v.message : "");
    plugjail_verdict_free(&v);
    /* A verdict longer than the client keeps: read to the end (plugjail can exit), then
     * refused. */
    s = open_fake("huge_verdict");
    CHECK(plugjail_session_start(s, &err) == 0, "huge_verdict: start");
    rc = plugjail_session_close(s, &v);
    CHECK(rc == PLUGJAIL_E_VERDICT && v.message && strstr(v.message, "longer than") &&
              v.exit_status == 0,
          "huge verdict: %d %s", rc, v.message ? v.message : "");
    plugjail_verdict_free(&v);
    return finish("protocol");
}
