/*
 * Cancelling from another thread:
 *
 *   cancel call  PROFILE CRASH_SO   a call that hangs (no deadline of its own) returns
 *                                   E_CANCELLED soon after another thread's
 *                                   plugjail_session_cancel(); the verdict says plugjail
 *                                   was stopped (signaled, SIGTERM) and host_fault says why
 *   cancel signal PROFILE CRASH_SO  the same from a SIGALRM handler on the waiting thread
 *   cancel close PROFILE STUCK_SO   cancel() while close() waits in another thread for a
 *                                   shutdown() that never returns: close() returns at once,
 *                                   with the verdict of the stop
 */
#include "check.h" /* first: plugjail/host.h asks for POSIX.1-2008 */

#include <pthread.h>

struct hung {
    struct plugjail_session *s;
    volatile int returned;
    int rc;
    struct plugjail_error err;
};

static void *hang(void *arg) {
    struct hung *h = (struct hung *)arg;
    h->rc = plugjail_session_call(h->s, "hang", "", 0, 0, NULL, NULL, &h->err);
    h->returned = 1;
    return NULL;
}

static void sleep_ms(long ms) {
    struct timespec t;
    t.tv_sec = ms / 1000;
    t.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

static int call_case(const char *profile, const char *so) {
    struct hung h;
    memset(&h, 0, sizeof h);
    h.s = open_or_die(profile, so, NULL, NULL);
    struct plugjail_error err;
    CHECK(plugjail_session_start(h.s, &err) == 0, "start: %s", err.message);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, hang, &h) == 0, "pthread_create");
    sleep_ms(300); /* the call is running in the plugin by now */
    CHECK(!h.returned, "the call is still waiting before the cancel");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    plugjail_session_cancel(h.s);
    plugjail_session_cancel(h.s); /* a second one does nothing more */
    pthread_join(t, NULL);
    long long after = ms_since(&t0);
    CHECK(h.rc == PLUGJAIL_E_CANCELLED, "the hung call: %s (%s)", h.err.message,
          plugjail_code_name(h.rc));
    CHECK(after < 5000, "returned %lld ms after cancel", after);
    int rc = plugjail_session_call(h.s, "noop", "", 0, 1000, NULL, NULL, &err);
    CHECK(rc == PLUGJAIL_E_CANCELLED, "a call after cancel: %s", plugjail_code_name(rc));
    struct plugjail_verdict v;
    rc = plugjail_session_close(h.s, &v);
    CHECK(rc == 0, "close");
    CHECK(streq(v.outcome, "signaled") && v.signal_number == SIGTERM &&
              v.host_fault == PLUGJAIL_FAULT_CANCELLED && v.message != NULL &&
              strstr(v.message, "SIGTERM") != NULL,
          "verdict");
    if (failures) describe(&v);
    plugjail_verdict_free(&v);
    return finish("cancel call");
}

struct closer {
    struct plugjail_session *s;
    struct plugjail_verdict v;
    int rc;
    volatile int returned;
};

static void *closer_main(void *arg) {
    struct closer *c = (struct closer *)arg;
    c->rc = plugjail_session_close(c->s, &c->v);
    c->returned = 1;
    return NULL;
}

/* close() waits for a plugin whose shutdown() never returns (up to its 20 s close
 * timeout); another thread's cancel() ends the wait at once. cancel() may run while
 * close() does: close() reaps plugjail serve only once no cancel() is in progress. */
static int close_case(const char *profile, const char *so) {
    struct plugjail_options o;
    plugjail_options_init(&o);
    o.profile = profile;
    o.plugin = so;
    o.close_timeout_ms = 20000;
    struct plugjail_error err;
    struct closer c;
    memset(&c, 0, sizeof c);
    c.s = plugjail_session_open(&o, &err);
    CHECK(c.s != NULL, "open: %s", err.message);
    if (!c.s) return finish("cancel close");
    CHECK(plugjail_session_call(c.s, "noop", "", 0, 5000, NULL, NULL, &err) == 0, "noop: %s",
          err.message);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, closer_main, &c) == 0, "pthread_create");
    sleep_ms(300); /* close() has sent SHUTDOWN; shutdown() hangs */
    CHECK(!c.returned, "close() is still waiting before the cancel");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    plugjail_session_cancel(c.s);
    pthread_join(t, NULL);
    long long after = ms_since(&t0);
    CHECK(after < 5000, "close returned %lld ms after the cancel", after);
    CHECK(c.rc == 0 && streq(c.v.outcome, "signaled") && c.v.signal_number == SIGTERM &&
              c.v.host_fault == PLUGJAIL_FAULT_CANCELLED && c.v.calls == 1,
          "verdict");
    if (failures) describe(&c.v);
    plugjail_verdict_free(&c.v);
    return finish("cancel close");
}

static struct plugjail_session *volatile alarmed;

static void on_alarm(int sig) {
    (void)sig;
    plugjail_session_cancel(alarmed); /* atomics, kill and write: fine in a handler */
}

/* The same from a signal handler, on the thread that waits in the call. */
static int signal_case(const char *profile, const char *so) {
    struct plugjail_session *s = open_or_die(profile, so, NULL, NULL);
    struct plugjail_error err;
    CHECK(plugjail_session_start(s, &err) == 0, "start: %s", err.message);
    alarmed = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm(1);
    int rc = plugjail_session_call(s, "hang", "", 0, 0, NULL, NULL, &err);
    CHECK(rc == PLUGJAIL_E_CANCELLED, "the hung call: %s (%s)", err.message,
          plugjail_code_name(rc));
    struct plugjail_verdict v;
    rc = plugjail_session_close(s, &v);
    CHECK(rc == 0 && streq(v.outcome, "signaled") && v.signal_number == SIGTERM &&
              v.host_fault == PLUGJAIL_FAULT_CANCELLED,
          "verdict");
    if (failures) describe(&v);
    plugjail_verdict_free(&v);
    return finish("cancel signal");
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: cancel CASE PROFILE PLUGIN\n");
        return 64;
    }
    if (streq(argv[1], "call")) return call_case(argv[2], argv[3]);
    if (streq(argv[1], "close")) return close_case(argv[2], argv[3]);
    if (streq(argv[1], "signal")) return signal_case(argv[2], argv[3]);
    fprintf(stderr, "cancel: unknown case %s\n", argv[1]);
    return 64;
}
