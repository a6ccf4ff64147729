/*
 * What the C client's test programs share (tests/c_client.rs builds and runs them):
 * CHECK, which counts failures and says where; opening a session from the command line
 * (PROFILE PLUGIN, plugjail from $PLUGJAIL as the driver sets it); and printing a verdict
 * for the failure messages. Every program exits 0 when all its checks passed, 1 otherwise.
 * Valid C11 and C++17, so one program can also be built as C++.
 */
#ifndef C_CLIENT_CHECK_H
#define C_CLIENT_CHECK_H

#include "plugjail/host.h"

static int failures;

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fputc('\n', stderr);                                                             \
            failures++;                                                                      \
        }                                                                                    \
    } while (0)

static inline int streq(const char *a, const char *b) {
    return a && b && strcmp(a, b) == 0;
}

/* Milliseconds since `start` on the monotonic clock. */
static inline long long ms_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)(now.tv_sec - start->tv_sec) * 1000 +
           (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* A session of PLUGIN under PROFILE; exits the program when it cannot start. */
static inline struct plugjail_session *open_or_die(const char *profile, const char *plugin,
                                                   plugjail_log_fn on_log, void *user) {
    struct plugjail_options o;
    plugjail_options_init(&o);
    o.profile = profile;
    o.plugin = plugin;
    o.on_log = on_log;
    o.log_user = user;
    struct plugjail_error err;
    struct plugjail_session *s = plugjail_session_open(&o, &err);
    if (!s) {
        fprintf(stderr, "plugjail_session_open: %s (%s)\n", err.message,
                plugjail_code_name(err.code));
        exit(1);
    }
    return s;
}

/* The verdict on stderr (escaped: it may carry plugin text), for failure messages. */
static inline void describe(const struct plugjail_verdict *v) {
    fprintf(stderr, "verdict: outcome %s, exit_status %d, signal %d %s, timeout %s %lld, "
                    "calls %llu, host_fault %d, message \"",
            v->outcome ? v->outcome : "(none)", v->exit_status, v->signal_number,
            v->signal_name ? v->signal_name : "-", v->timeout_kind ? v->timeout_kind : "-",
            (long long)v->timeout_limit_ms, (unsigned long long)v->calls, v->host_fault);
    if (v->message) plugjail_fputs_sanitized(stderr, v->message, v->message_len, 0);
    fputs("\"\n  json: ", stderr);
    if (v->json) plugjail_fputs_sanitized(stderr, v->json, v->json_len, 0);
    fputc('\n', stderr);
}

/* Reports the test's end: 0 when every check passed. */
static inline int finish(const char *what) {
    if (failures) fprintf(stderr, "%s: %d check(s) failed\n", what, failures);
    else printf("%s: ok\n", what);
    return failures ? 1 : 0;
}

#endif
