/*
 * Shared-memory calls through the C client (plugjail_options.shm), against the hostile
 * tests/plugins/shm_attack.cpp:
 *
 *   shm PROFILE SHM_ATTACK_SO
 *
 * Answers equal the inputs for sizes up to the arena, LOG frames arrive before the answer,
 * a plugin's ERROR leaves the session going; a forged length, call id or frame type is a
 * protocol violation at once; a plugin that never answers, or plays with the futex word, ends at the host's
 * deadline; cancel() from another thread ends a waiting call; scrubbed inputs are gone
 * from the region after the call. Built without _GNU_SOURCE (-DPIPE_ONLY), the header has
 * no shared memory: the session calls over the pipe and says why.
 */
#ifndef PIPE_ONLY
#define _GNU_SOURCE 1
#endif
#include "check.h"

#include <pthread.h>

static int lines;

static void count_lines(void *user, uint32_t level, const unsigned char *text, size_t len) {
    (void)user;
    (void)text;
    (void)len;
    if (level == PLUGJAIL_LEVEL_INFO) lines++;
}

static struct plugjail_session *open_shm(const char *profile, const char *so, int scrub) {
    struct plugjail_options o;
    plugjail_options_init(&o);
    o.profile = profile;
    o.plugin = so;
    o.on_log = count_lines;
    o.shm = 1;
    o.shm_arena = 256 << 10;
    o.shm_scrub_inputs = scrub;
    struct plugjail_error err;
    struct plugjail_session *s = plugjail_session_open(&o, &err);
    if (!s) {
        fprintf(stderr, "plugjail_session_open: %s\n", err.message);
        exit(1);
    }
    CHECK(plugjail_session_start(s, &err) == 0, "start: %s", err.message);
    return s;
}

static void close_expect(struct plugjail_session *s, const char *outcome) {
    struct plugjail_verdict v;
    CHECK(plugjail_session_close(s, &v) == 0, "close");
    CHECK(streq(v.outcome, outcome), "verdict %s, expected %s", v.outcome, outcome);
    if (!streq(v.outcome, outcome)) describe(&v);
    plugjail_verdict_free(&v);
}

#ifndef PIPE_ONLY
struct waiting {
    struct plugjail_session *s;
    int rc;
    struct plugjail_error err;
};

static void *never(void *arg) {
    struct waiting *w = (struct waiting *)arg;
    w->rc = plugjail_session_call(w->s, "never", "", 0, 0, NULL, NULL, &w->err);
    return NULL;
}
#endif

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: shm PROFILE SHM_ATTACK_SO\n");
        return 2;
    }
    const char *profile = argv[1], *so = argv[2];
    struct plugjail_error err;
    unsigned char *out = NULL;
    size_t out_len = 0;

    /* The normal path: sizes, LOG frames, an ERROR. */
    struct plugjail_session *s = open_shm(profile, so, 0);
#ifdef PIPE_ONLY
    CHECK(!plugjail_session_uses_shm(s), "no shared memory without _GNU_SOURCE");
    CHECK(plugjail_session_shm_unavailable(s) != NULL, "and it says why");
    CHECK(plugjail_session_call(s, "echo", "x", 1, 5000, &out, &out_len, &err) == 0, "echo");
    free(out);
    close_expect(s, "ok");
    return finish("shm pipe-only");
#else
    CHECK(plugjail_session_uses_shm(s), "shared memory: %s",
          plugjail_session_shm_unavailable(s) ? plugjail_session_shm_unavailable(s) : "?");
    CHECK(plugjail_session_call(s, "found", "", 0, 5000, &out, &out_len, &err) == 0 &&
              out_len == 3 && memcmp(out, "yes", 3) == 0,
          "the plugin sees the region in its jail");
    free(out);
    static unsigned char input[300000];
    static const size_t sizes[] = {0, 1, 15, 16, 4096, 65536, 200000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (size_t k = 0; k < sizes[i]; k++) input[k] = (unsigned char)(k * 7 + i);
        int rc = plugjail_session_call(s, "echo", input, sizes[i], 5000, &out, &out_len, &err);
        CHECK(rc == 0 && out_len == sizes[i] && memcmp(out, input, sizes[i]) == 0,
              "echo of %zu bytes: %s", sizes[i], rc ? err.message : "different bytes");
        free(out);
    }
    /* Beyond the arena (256 KiB): refused before anything is sent; the session goes on. */
    int rc = plugjail_session_call(s, "echo", input, sizeof input, 5000, NULL, NULL, &err);
    CHECK(rc == PLUGJAIL_E_TOO_LARGE, "an input beyond the arena: %s", plugjail_code_name(rc));
    unsigned char three = 3;
    lines = 0;
    rc = plugjail_session_call(s, "log", &three, 1, 5000, &out, &out_len, &err);
    CHECK(rc == 0 && lines == 3, "log: rc %d, %d lines before the answer", rc, lines);
    free(out);
    rc = plugjail_session_call(s, "fail", "", 0, 5000, NULL, NULL, &err);
    CHECK(rc == PLUGJAIL_E_FAILED && err.status == 7 && strcmp(err.message, "refused") == 0,
          "fail: %s", plugjail_code_name(rc));
    CHECK(plugjail_error_session_goes_on(&err), "the session goes on after ERROR");
    rc = plugjail_session_call(s, "echo", "again", 5, 5000, NULL, NULL, &err);
    CHECK(rc == 0, "a call after ERROR: %s", err.message);
    close_expect(s, "ok");

    /* Forged answers in the response area: each a protocol violation at once. */
    struct timespec t0;
    const char *forged[][2] = {
        {"forge_length", "exceeds"}, {"forge_id", "for call"}, {"forge_type", "type"}};
    for (int i = 0; i < 3; i++) {
        s = open_shm(profile, so, 0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = plugjail_session_call(s, forged[i][0], "", 0, 10000, NULL, NULL, &err);
        CHECK(rc == PLUGJAIL_E_PROTOCOL && strstr(err.message, forged[i][1]), "%s: %s",
              forged[i][0], err.message);
        CHECK(ms_since(&t0) < 2000, "%s noticed in %lld ms", forged[i][0], ms_since(&t0));
        close_expect(s, "protocol_violation");
    }

    /* Never answering, and futex games: the host's deadline holds. */
    const char *hangs[] = {"never", "futex_spin"};
    for (int i = 0; i < 2; i++) {
        s = open_shm(profile, so, 0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = plugjail_session_call(s, hangs[i], "", 0, 400, NULL, NULL, &err);
        long long took = ms_since(&t0);
        CHECK(rc == PLUGJAIL_E_TIMEOUT, "%s: %s", hangs[i], plugjail_code_name(rc));
        CHECK(took >= 400 && took < 1500, "%s: the deadline of 400 ms took %lld ms", hangs[i],
              took);
        close_expect(s, "timeout");
    }

    /* cancel() from another thread while the host sleeps on the futex. */
    struct waiting w;
    memset(&w, 0, sizeof w);
    w.s = open_shm(profile, so, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, never, &w) == 0, "pthread_create");
    struct timespec nap = {0, 300000000L};
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    plugjail_session_cancel(w.s);
    pthread_join(t, NULL);
    CHECK(w.rc == PLUGJAIL_E_CANCELLED, "cancel: %s", plugjail_code_name(w.rc));
    CHECK(ms_since(&t0) < 1000, "cancel took %lld ms", ms_since(&t0));
    close_expect(w.s, "signaled");

    /* Scrubbed inputs: the next call finds nothing of the previous one's input. */
    s = open_shm(profile, so, 1);
    memset(input, 'S', 200);
    rc = plugjail_session_call(s, "echo", input, 200, 5000, NULL, NULL, &err);
    CHECK(rc == 0, "echo: %s", err.message);
    rc = plugjail_session_call(s, "peek", "", 0, 5000, &out, &out_len, &err);
    CHECK(rc == 0 && out_len == 64, "peek: %s", err.message);
    for (size_t k = 0; rc == 0 && k < out_len; k++)
        CHECK(out[k] != 'S', "byte %zu of the earlier input is still in the region", k);
    free(out);
    close_expect(s, "ok");
    return finish("shm");
#endif
}
