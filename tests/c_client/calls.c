/*
 * The C client's call path against the real plugjail serve:
 *
 *   calls result   PROFILE HELLO_SO    a RESULT; HELLO, SESSION limits, LOG, verdict ok
 *   calls error    PROFILE HELLO_SO    the plugin's ERROR; the session goes on
 *   calls large    PROFILE HELLO_SO    an input above the frame cap is refused, unsent
 *   calls crash    PROFILE CRASH_SO    SIGSEGV in the plugin: E_ENDED, verdict signaled 11
 *   calls deadline PROFILE CRASH_SO    a hang past the call's deadline: E_TIMEOUT at once,
 *                                      verdict timeout, kind host, limit_ms = the deadline
 *   calls startup  PROFILE INITFAIL_SO init() fails: E_STARTUP with its status; the
 *                                      verdict plugin_failed, with the frame's message
 *   calls stuck_start PROFILE STUCK_INIT_SO   init() never returns: the start timeout
 *                                      ends the session, verdict timeout, kind host
 *   calls stuck_close PROFILE STUCK_SHUTDOWN_SO  shutdown() never returns: close() stops
 *                                      plugjail after its close timeout, with a verdict
 *   calls explicit PROFILE HELLO_SO PLUGJAIL   plugjail at an explicit path ($PLUGJAIL
 *                                      pointing nowhere, to prove which one is used)
 *
 * plugjail is found through $PLUGJAIL (the driver sets it) except in `explicit`.
 */
#include "check.h"

struct logs {
    int frames;
    size_t bytes;
    int saw_ready;
};

static void on_log(void *user, uint32_t level, const unsigned char *text, size_t len) {
    struct logs *l = (struct logs *)user;
    l->frames++;
    l->bytes += len;
    if (level == PLUGJAIL_LEVEL_INFO && len == 18 && memcmp(text, "hello plugin ready", 18) == 0)
        l->saw_ready = 1;
}

static int result_case(const char *profile, const char *so, const char *plugjail) {
    struct logs logs;
    memset(&logs, 0, sizeof logs);
    struct plugjail_session *s;
    if (plugjail) {
        struct plugjail_options o;
        plugjail_options_init(&o);
        o.profile = profile;
        o.plugin = so;
        o.plugjail = plugjail;
        o.on_log = on_log;
        o.log_user = &logs;
        struct plugjail_error oerr;
        s = plugjail_session_open(&o, &oerr);
        CHECK(s != NULL, "open with an explicit path: %s", oerr.message);
        if (!s) return finish("explicit");
    } else {
        s = open_or_die(profile, so, on_log, &logs);
    }
    struct plugjail_error err;
    CHECK(plugjail_session_start(s, &err) == 0, "start: %s", err.message);
    const struct plugjail_hello *h = plugjail_session_hello(s);
    CHECK(h != NULL, "no HELLO");
    if (h) {
        CHECK(streq(h->name, "hello") && streq(h->version, "1.0.0"), "name %s %s", h->name,
              h->version);
        CHECK(h->method_count == 3 && streq(h->methods[0], "greet") &&
                  streq(h->methods[1], "echo") && streq(h->methods[2], "fail") &&
                  h->methods[3] == NULL,
              "methods (%zu)", h->method_count);
    }
    const struct plugjail_limits *lim = plugjail_session_limits(s);
    CHECK(lim && lim->max_message == 16u << 20 && lim->call_time_ms == 30000 &&
              lim->protocol_version == 1,
          "limits from SESSION");
    CHECK(logs.saw_ready, "init()'s log line before HELLO (%d frames)", logs.frames);
    unsigned char *out = NULL;
    size_t out_len = 0;
    int rc = plugjail_session_call(s, "greet", "world", 5, 5000, &out, &out_len, &err);
    CHECK(rc == 0, "greet: %s (%s)", err.message, plugjail_code_name(rc));
    CHECK(out && out_len == 12 && memcmp(out, "hello, world", 12) == 0 && out[12] == 0,
          "output %.*s", (int)out_len, out ? (const char *)out : "");
    free(out);
    /* A second call, no deadline of our own, no output wanted. */
    rc = plugjail_session_call(s, "echo", "", 0, 0, NULL, &out_len, &err);
    CHECK(rc == 0 && out_len == 0, "empty echo: %s", err.message);
    pid_t pid = plugjail_session_pid(s);
    struct plugjail_verdict v;
    rc = plugjail_session_close(s, &v);
    CHECK(rc == 0, "close: %d", rc);
    CHECK(streq(v.outcome, "ok") && v.exit_status == 0 && v.calls == 2 &&
              v.host_fault == PLUGJAIL_FAULT_NONE && v.json != NULL && v.wall_time_ms >= 0,
          "verdict");
    CHECK(kill(pid, 0) != 0 && errno == ESRCH, "plugjail serve was reaped");
    if (failures) describe(&v);
    plugjail_verdict_free(&v);
    return finish(plugjail ? "explicit" : "result");
}

static int error_case(const char *profile, const char *so) {
    struct plugjail_session *s = open_or_die(profile, so, NULL, NULL);
    struct plugjail_error err;
    unsigned char *out = (unsigned char *)"not touched";
    size_t out_len = 99;
    int rc = plugjail_session_call(s, "fail", "x", 1, 5000, &out, &out_len, &err);
    CHECK(rc == PLUGJAIL_E_FAILED && err.code == PLUGJAIL_E_FAILED, "fail: %s (%s)",
          err.message, plugjail_code_name(rc));
    CHECK(out == NULL && out_len == 0, "no output on an error");
    CHECK(err.kind == PLUGJAIL_ERROR_PLUGIN && err.status == 7 && err.untrusted &&
              err.message_len == 13 && strcmp(err.message, "asked to fail") == 0,
          "kind %s status %d message %s", plugjail_error_kind_name(err.kind), (int)err.status,
          err.message);
    CHECK(plugjail_error_session_goes_on(&err), "the session goes on after ERROR");
    rc = plugjail_session_call(s, "no_such_method", "", 0, 5000, &out, &out_len, &err);
    CHECK(rc == PLUGJAIL_E_FAILED && err.kind == PLUGJAIL_ERROR_UNKNOWN_METHOD,
          "unknown method: %s", err.message);
    rc = plugjail_session_call(s, "", "", 0, 5000, &out, &out_len, &err);
    CHECK(rc == PLUGJAIL_E_INVALID, "an empty method name is refused here");
    rc = plugjail_session_call(s, "greet", "again", 5, 5000, &out, &out_len, &err);
    CHECK(rc == 0 && out_len == 12 && memcmp(out, "hello, again", 12) == 0, "after: %s",
          err.message);
    free(out);
    struct plugjail_verdict v;
    plugjail_session_close(s, &v);
    CHECK(streq(v.outcome, "ok") && v.calls == 3, "verdict");
    if (failures) describe(&v);
    plugjail_verdict_free(&v);
    return finish("error");
}

static int large_case(const char *profile, const char *so) {
    struct plugjail_session *s = open_or_die(profile, so, NULL, NULL);
    struct plugjail_error err;
    size_t big = (16u << 20) - 4; /* with the method (1 + 4 bytes, "echo") one byte over */
    unsigned char *input = (unsigned char *)calloc(1, big);
    unsigned char *out = NULL;
    size_t out_len = 0;
    int rc = plugjail_session_call(s, "echo", input, big, 5000, &out, &out_len, &err);
    CHECK(rc == PLUGJAIL_E_TOO_LARGE && plugjail_error_session_goes_on(&err), "too large: %s",
          err.message);
    /* One byte less fits exactly, and comes back whole. */
    rc = plugjail_session_call(s, "echo", input, big - 1, 30000, &out, &out_len, &err);
    CHECK(rc == 0 && out_len == big - 1, "the largest input: %s", err.message);
    free(out);
    free(input);
    struct plugjail_verdict v;
    plugjail_session_close(s, &v);
    CHECK(streq(v.outcome, "ok") && v.calls == 1, "verdict");
    if (failures) describe(&v);
    plugjail_verdict_free(&v);
    return finish("large");
}

static int crash_case(const char *profile, const char *so) {
    struct plugjail_session *s = open_or_die(profile, so, NULL, NULL);
    struct plugjail_error err;
    int rc = plugjail_session_call(s, "noop", "", 0, 5000, NULL, NULL, &err);
    CHECK(rc == 0, "noop: %s", err.message);
    rc = plugjail_session_call(s, "segv", "", 0, 10000, NULL, NULL, &err);
    CHECK(rc == PLUGJAIL_E_ENDED, "segv: %s (%s)", err.message, plugjail_code_name(rc));
    CHECK(!plugjail_error_session_goes_on(&err), "a crash ends the session");
    rc = plugjail_session_call(s, "noop", "", 0, 5000, NULL, NULL, &err);
    CHECK(rc == PLUGJAIL_E_ENDED, "a call after the end: %s", plugjail_code_name(rc));
    struct plugjail_verdict v;
    rc = plugjail_session_close(s, &v);
    CHECK(rc == 0, "close");
    CHECK(streq(v.outcome, "signaled") && v.signal_number == 11 &&
              streq(v.signal_name, "SIGSEGV") && v.exit_status == 139 && v.calls == 1 &&
              v.host_fault == PLUGJAIL_FAULT_NONE,
          "verdict");
    if (failures) describe(&v);
    plugjail_verdict_free(&v);
    return finish("crash");
}

static int deadline_case(const char *profile, const char *so) {
    struct plugjail_session *s = open_or_die(profile, so, NULL, NULL);
    struct plugjail_error err;
    CHECK(plugjail_session_start(s, &err) == 0, "start: %s", err.message);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = plugjail_session_call(s, "hang", "", 0, 300, NULL, NULL, &err);
    long long took = ms_since(&t0);
    CHECK(rc == PLUGJAIL_E_TIMEOUT, "hang: %s (%s)", err.message, plugjail_code_name(rc));
    CHECK(took >= 300 && took < 5000, "returned after %lld ms", took);
    struct plugjail_verdict v;
    rc = plugjail_session_close(s, &v);
    CHECK(rc == 0, "close");
    CHECK(streq(v.outcome, "timeout") && streq(v.timeout_kind, "host") &&
              v.timeout_limit_ms == 300 && v.exit_status == 5 &&
              v.host_fault == PLUGJAIL_FAULT_TIMEOUT,
          "verdict");
    if (failures) describe(&v);
    plugjail_verdict_free(&v);
    return finish("deadline");
}

static int startup_case(const char *profile, const char *so) {
    struct logs logs;
    memset(&logs, 0, sizeof logs);
    struct plugjail_session *s = open_or_die(profile, so, on_log, &logs);
    struct plugjail_error err;
    int rc = plugjail_session_call(s, "run", "", 0, 5000, NULL, NULL, &err);
    CHECK(rc == PLUGJAIL_E_STARTUP && err.kind == PLUGJAIL_ERROR_INIT_FAILED &&
              err.status == 3 && err.untrusted,
          "%s (%s, kind %s, status %d)", err.message, plugjail_code_name(rc),
          plugjail_error_kind_name(err.kind), (int)err.status);
    CHECK(logs.frames >= 1, "init()'s log line (%d)", logs.frames);
    CHECK(plugjail_session_hello(s) == NULL, "no HELLO");
    struct plugjail_verdict v;
    rc = plugjail_session_close(s, &v);
    CHECK(rc == 0, "close");
    CHECK(streq(v.outcome, "plugin_failed") && streq(v.failure_stage, "init") &&
              v.has_failure_status && v.failure_status == 3 && v.failure_message &&
              v.failure_message_len == err.message_len &&
              memcmp(v.failure_message, err.message, err.message_len) == 0 &&
              v.exit_status == 10,
          "verdict");
    if (failures) describe(&v);
    plugjail_verdict_free(&v);
    return finish("startup");
}

static struct plugjail_session *open_timeouts(const char *profile, const char *so,
                                              long start_ms, long close_ms) {
    struct plugjail_options o;
    plugjail_options_init(&o);
    o.profile = profile;
    o.plugin = so;
    o.start_timeout_ms = start_ms;
    o.close_timeout_ms = close_ms;
    struct plugjail_error err;
    struct plugjail_session *s = plugjail_session_open(&o, &err);
    if (!s) {
        fprintf(stderr, "plugjail_session_open: %s\n", err.message);
        exit(1);
    }
    return s;
}

static int stuck_start_case(const char *profile, const char *so) {
    struct plugjail_session *s = open_timeouts(profile, so, 700, 0);
    struct plugjail_error err;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = plugjail_session_call(s, "noop", "", 0, 100, NULL, NULL, &err);
    long long took = ms_since(&t0);
    CHECK(rc == PLUGJAIL_E_TIMEOUT, "%s (%s)", err.message, plugjail_code_name(rc));
    CHECK(took >= 700 && took < 8000, "after %lld ms", took);
    struct plugjail_verdict v;
    rc = plugjail_session_close(s, &v);
    CHECK(rc == 0 && streq(v.outcome, "timeout") && streq(v.timeout_kind, "host") &&
              v.timeout_limit_ms == 700 && v.calls == 0,
          "verdict");
    if (failures) describe(&v);
    plugjail_verdict_free(&v);
    return finish("stuck_start");
}

static int stuck_close_case(const char *profile, const char *so) {
    struct plugjail_session *s = open_timeouts(profile, so, 0, 500);
    struct plugjail_error err;
    int rc = plugjail_session_call(s, "noop", "", 0, 5000, NULL, NULL, &err);
    CHECK(rc == 0, "noop: %s", err.message);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct plugjail_verdict v;
    rc = plugjail_session_close(s, &v);
    long long took = ms_since(&t0);
    CHECK(took >= 500 && took < 8000, "close took %lld ms", took);
    CHECK(rc == 0 && streq(v.outcome, "signaled") && v.signal_number == SIGTERM &&
              v.calls == 1 && v.host_fault == PLUGJAIL_FAULT_NONE,
          "verdict");
    if (failures) describe(&v);
    plugjail_verdict_free(&v);
    return finish("stuck_close");
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: calls CASE PROFILE PLUGIN [PLUGJAIL]\n");
        return 64;
    }
    const char *c = argv[1], *profile = argv[2], *so = argv[3];
    if (streq(c, "result")) return result_case(profile, so, NULL);
    if (streq(c, "explicit") && argc > 4) return result_case(profile, so, argv[4]);
    if (streq(c, "error")) return error_case(profile, so);
    if (streq(c, "large")) return large_case(profile, so);
    if (streq(c, "crash")) return crash_case(profile, so);
    if (streq(c, "deadline")) return deadline_case(profile, so);
    if (streq(c, "startup")) return startup_case(profile, so);
    if (streq(c, "stuck_start")) return stuck_start_case(profile, so);
    if (streq(c, "stuck_close")) return stuck_close_case(profile, so);
    fprintf(stderr, "calls: unknown case %s\n", c);
    return 64;
}
