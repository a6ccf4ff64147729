/*
 * A stand-in for `plugjail serve` that misbehaves on purpose, for tests/c_client/protocol.c:
 * the client runs it as its plugjail (an explicit path), with the usual arguments
 * (`serve --profile P --plugin SO --fds 3,4 --status-fd 5`), and $FAKE_SCENARIO says what
 * to do wrong. Frames go out on 4 and come in on 3; the verdict goes to 5.
 *
 * SIGTERM (what the client sends on a violation or a cancel) ends it with a `signaled`
 * verdict, as the real one does; SHUTDOWN or end of file on 3 ends it with `ok`.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got_term;
static const char *scenario = "";
static int calls;

static void on_term(int sig) {
    (void)sig;
    got_term = 1;
}

static int is(const char *name) { return strcmp(scenario, name) == 0; }

static void put(const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    while (n > 0) {
        ssize_t w = write(4, b, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        b += w;
        n -= (size_t)w;
    }
}

static void le(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void frame_flags(unsigned type, unsigned flags, uint64_t id, const void *payload,
                        size_t len) {
    unsigned char h[16];
    le(h, len, 4);
    le(h + 4, type, 2);
    le(h + 6, flags, 2);
    le(h + 8, id, 8);
    put(h, 16);
    if (len) put(payload, len);
}

static void frame(unsigned type, uint64_t id, const void *payload, size_t len) {
    frame_flags(type, 0, id, payload, len);
}

static void session(uint32_t cap) {
    unsigned char p[24];
    le(p, 1, 4);
    le(p + 4, cap, 4);
    le(p + 8, 1500, 8);
    le(p + 16, 0, 8);
    frame(7, 0, p, sizeof p);
}

/* HELLO for plugin "fake" 1.0 with methods echo, noop (or a broken one). */
static void hello(void) {
    unsigned char p[64];
    size_t n = 0;
    le(p, 1, 4);
    le(p + 4, 1, 4);
    n = 8;
    const char *name = is("bad_hello_name") ? "fa\xe2\x80\xaeke" : "fake";
    p[n++] = (unsigned char)strlen(name);
    memcpy(p + n, name, strlen(name));
    n += strlen(name);
    p[n++] = 3;
    memcpy(p + n, "1.0", 3);
    n += 3;
    le(p + n, 2, 2);
    n += 2;
    p[n++] = 4;
    memcpy(p + n, "echo", 4);
    n += 4;
    const char *second = is("bad_hello_twice") ? "echo" : "noop";
    p[n++] = 4;
    memcpy(p + n, second, 4);
    n += 4;
    if (is("bad_hello_trailing")) p[n++] = 0;
    frame(1, 0, p, n);
}

static void verdict(const char *json) {
    size_t n = strlen(json);
    while (n > 0) {
        ssize_t w = write(5, json, n);
        if (w <= 0) break;
        json += w;
        n -= (size_t)w;
    }
}

static void end_ok(void) {
    char v[200];
    if (is("no_verdict")) _exit(0);
    if (is("huge_verdict")) { /* 1.5 MiB of blanks first: more than a client keeps */
        static char blanks[1u << 16];
        memset(blanks, ' ', sizeof blanks);
        for (int i = 0; i < 24; i++) {
            blanks[sizeof blanks - 1] = '\0';
            verdict(blanks);
        }
    }
    if (is("bad_verdict")) {
        verdict("{\"version\":1,\"outcome\":");
        _exit(0);
    }
    snprintf(v, sizeof v, "{\"version\":1,\"outcome\":\"ok\",\"calls\":%d,\"exit_status\":0}\n",
             calls);
    verdict(v);
    _exit(0);
}

static void end_term(void) {
    verdict("{\"version\":1,\"outcome\":\"signaled\",\"signal\":{\"number\":15,\"name\":"
            "\"SIGTERM\"},\"message\":\"plugjail received SIGTERM and ended the jail\","
            "\"exit_status\":143}\n");
    _exit(143);
}

/* Reads exactly n bytes from 3: 1, or 0 at end of file / error. */
static int get(void *p, size_t n) {
    unsigned char *b = (unsigned char *)p;
    while (n > 0) {
        ssize_t r = read(3, b, n);
        if (r < 0 && errno == EINTR) {
            if (got_term) end_term();
            continue;
        }
        if (r <= 0) return 0;
        b += r;
        n -= (size_t)r;
    }
    return 1;
}

static void answer(uint64_t id, const unsigned char *payload, uint32_t len) {
    calls++;
    if (is("wrong_id")) {
        frame(3, id + 1, "", 0);
    } else if (is("startup_after_hello")) {
        unsigned char e[8];
        le(e, 5, 4);
        le(e + 4, 0, 4);
        frame(4, id, e, 8);
    } else if (is("bad_log_level")) {
        unsigned char l[5];
        le(l, 9, 4);
        l[4] = 'x';
        frame(5, id, l, 5);
    } else if (is("session_twice")) {
        session(4096);
    } else if (is("bad_error_utf8") || is("long_error")) {
        unsigned char e[8 + 4097];
        le(e, 1, 4);
        le(e + 4, 1, 4);
        size_t n = is("long_error") ? 4097 : 1;
        memset(e + 8, is("long_error") ? 'a' : 0xff, n);
        frame(4, id, e, 8 + n);
    } else if (is("truncated")) {
        unsigned char h[16 + 10];
        memset(h, 0, sizeof h);
        le(h, 100, 4);
        le(h + 4, 3, 2);
        le(h + 8, id, 8);
        put(h, sizeof h);
        close(4);
        verdict("{\"version\":1,\"outcome\":\"exited\",\"exit_code\":66,\"exit_status\":9}\n");
        _exit(9);
    } else {
        /* a log line, then the input back (after the method name) */
        unsigned char l[4 + 5];
        le(l, 1, 4);
        memcpy(l + 4, "hello", 5);
        frame(5, id, l, sizeof l);
        size_t skip = len ? 1u + payload[0] : 0;
        frame(3, id, payload + skip, len - skip);
    }
}

int main(void) {
    const char *env = getenv("FAKE_SCENARIO");
    scenario = env ? env : "";
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: a blocked read returns EINTR */
    signal(SIGPIPE, SIG_IGN);      /* as the real one: a host that hung up is no crash */

    if (is("eof_before_session")) {
        verdict("{\"version\":1,\"outcome\":\"setup_failed\",\"step\":\"profile\","
                "\"message\":\"no such profile\",\"exit_status\":125}\n");
        return 125;
    }
    if (is("no_session")) {
        hello();
    } else if (is("big_frame")) {
        session(4096);
        unsigned char h[16];
        memset(h, 0, sizeof h);
        le(h, 4097, 4); /* a LOG that claims more than the cap (and never comes) */
        le(h + 4, 5, 2);
        put(h, 16);
    } else if (is("flags")) {
        session(4096);
        frame_flags(5, 1, 0, "\0\0\0\0", 4);
    } else if (is("bad_type")) {
        session(4096);
        frame(9, 0, NULL, 0);
    } else if (is("small_cap")) {
        unsigned char p[24];
        memset(p, 0, sizeof p);
        le(p, 1, 4);
        le(p + 4, 100, 4);
        frame(7, 0, p, sizeof p);
    } else {
        session(is("ok") ? 4096 : 1u << 20);
        hello();
    }
    if (is("sigpipe")) {
        /* Nobody reads the host's CALLs: its write fails with EPIPE. A log line follows. */
        close(3);
        struct timespec t = {0, 200 * 1000 * 1000};
        nanosleep(&t, NULL);
        unsigned char l[4 + 4];
        le(l, 2, 4);
        memcpy(l + 4, "gone", 4);
        frame(5, 0, l, sizeof l);
        close(4);
        verdict("{\"version\":1,\"outcome\":\"exited\",\"exit_code\":66,\"exit_status\":9}\n");
        return 9;
    }
    if (is("early_answer")) {
        /* Answers call 1 without reading it: the host is still writing. */
        frame(3, 1, "", 0);
    }
    for (;;) {
        if (got_term) end_term();
        struct pollfd p = {3, POLLIN, 0};
        int r = poll(&p, 1, 20);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) continue;
        if (is("early_answer")) continue; /* never reads: the host's pipe stays full */
        unsigned char h[16];
        if (!get(h, 16)) end_ok();
        uint32_t len = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
                       (uint32_t)h[3] << 24;
        unsigned type = h[4] | (unsigned)h[5] << 8;
        uint64_t id = 0;
        for (int i = 7; i >= 0; i--) id = id << 8 | h[8 + i];
        unsigned char *payload = (unsigned char *)malloc(len + 1u);
        if (!payload || (len && !get(payload, len))) end_ok();
        if (type == 6) end_ok();
        if (type == 2) answer(id, payload, len);
        free(payload);
    }
}
