/*
 * A host application in plain C that runs one plugin call through `plugjail serve`,
 * speaking the protocol of docs/protocol.md with nothing but read(2) and write(2).
 *
 *   cc -std=c11 -Wall -Wextra -O2 -o host host.c
 *   ./host [-m MAX_MESSAGE] METHOD INPUT_FILE -- plugjail serve --profile P --plugin SO
 *
 * Everything after `--` is the command to spawn; the channel is its stdin (our CALLs) and
 * stdout (its frames), which is `plugjail serve`'s default. Its stderr is left alone, so
 * the verdict summary shows up on the terminal. The RESULT bytes go to our stdout, LOG
 * lines to our stderr. Exit status: 0 on RESULT, 1 on ERROR, 2 on a protocol violation
 * or a dead session, 64 on bad usage.
 *
 * MAX_MESSAGE must equal the profile's limits.max_message (default profile: 16M).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { HELLO = 1, CALL = 2, RESULT = 3, ERROR = 4, LOG = 5, SHUTDOWN = 6, SESSION = 7 };
enum { HEADER_LEN = 16 };

static const char *const error_kinds[] = {
    "?", "plugin", "unknown_method", "output_too_large", "bad_call",
    "load_failed", "abi_mismatch", "init_failed", "filter_failed",
};

/* Little-endian helpers: the protocol is little-endian on every machine. */
static void put_u16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = v >> (8 * i); }
static void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = v >> (8 * i); }
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static int write_all(int fd, const void *buf, size_t n) {
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes: 1 on success, 0 on end of file before any byte, -1 otherwise. */
static int read_full(int fd, void *buf, size_t n) {
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) return got == 0 ? 0 : -1;
        got += (size_t)r;
    }
    return 1;
}

struct frame {
    uint16_t type;
    uint64_t id;
    uint32_t len;
    uint8_t *payload; /* grows up to max_message, reused */
};

/* Reads one frame. The length is checked against the cap *before* allocating. */
static int read_frame(int fd, struct frame *f, uint32_t cap, size_t *room) {
    uint8_t h[HEADER_LEN];
    int r = read_full(fd, h, sizeof h);
    if (r == 0) { fprintf(stderr, "host: the session ended\n"); return -1; }
    if (r < 0) { fprintf(stderr, "host: protocol violation: truncated header\n"); return -1; }
    f->len = get_u32(h);
    f->type = get_u16(h + 4);
    f->id = get_u64(h + 8);
    if (get_u16(h + 6) != 0 || f->type < HELLO || f->type > SESSION) {
        fprintf(stderr, "host: protocol violation: bad frame type or flags\n");
        return -1;
    }
    if (f->len > cap) {
        fprintf(stderr, "host: protocol violation: %u-byte frame, cap %u\n", f->len, cap);
        return -1;
    }
    if (f->len > *room) {
        uint8_t *p = realloc(f->payload, f->len);
        if (!p) return -1;
        f->payload = p;
        *room = f->len;
    }
    if (f->len && read_full(fd, f->payload, f->len) != 1) {
        fprintf(stderr, "host: protocol violation: truncated payload\n");
        return -1;
    }
    return 0;
}

static int send_frame(int fd, uint16_t type, uint64_t id, const uint8_t *a, size_t alen,
                      const uint8_t *b, size_t blen) {
    uint8_t h[HEADER_LEN] = {0};
    put_u32(h, (uint32_t)(alen + blen));
    put_u16(h + 4, type);
    put_u64(h + 8, id);
    return write_all(fd, h, sizeof h) || write_all(fd, a, alen) || write_all(fd, b, blen);
}

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    if (f != stdin) fclose(f);
    *len = n;
    return buf;
}

static void log_frame(const struct frame *f) {
    if (f->len < 4) return;
    static const char *const levels[] = {"debug", "info", "warn", "error", "output"};
    uint32_t level = get_u32(f->payload);
    fprintf(stderr, "plugin %s: %.*s\n", level < 5 ? levels[level] : "?", (int)(f->len - 4),
            (const char *)f->payload + 4);
}

int main(int argc, char **argv) {
    uint32_t cap = 16u << 20;
    int opt;
    while ((opt = getopt(argc, argv, "+m:")) != -1) {
        if (opt == 'm') cap = (uint32_t)strtoul(optarg, NULL, 0);
        else return 64;
    }
    if (argc - optind < 4 || strcmp(argv[optind + 2], "--") != 0) {
        fprintf(stderr, "usage: host [-m MAX_MESSAGE] METHOD INPUT_FILE -- COMMAND...\n");
        return 64;
    }
    const char *method = argv[optind];
    size_t mlen = strlen(method), input_len = 0;
    uint8_t *input = slurp(argv[optind + 1], &input_len);
    if (!input || mlen == 0 || mlen > 255) {
        fprintf(stderr, "host: cannot read the input, or bad method name\n");
        return 64;
    }

    /* A dead session must be an error code, not a signal that kills the host. */
    signal(SIGPIPE, SIG_IGN);
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) || pipe2(from_child, O_CLOEXEC)) return 2;
    pid_t pid = fork();
    if (pid < 0) return 2;
    if (pid == 0) {
        dup2(to_child[0], 0);
        dup2(from_child[1], 1);
        execvp(argv[optind + 3], argv + optind + 3);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    int wr = to_child[1], rd = from_child[0];

    struct frame f = {0};
    size_t room = 0;
    int status = 2;
    /* 1. plugjail's SESSION (the frame cap: this host keeps its own smaller one), then
     * HELLO (LOG frames may come first; ERROR with id 0 means the plugin never ran). */
    if (read_frame(rd, &f, cap, &room)) goto out;
    if (f.type != SESSION || f.len < 24) {
        fprintf(stderr, "host: protocol violation: the first frame is not SESSION\n");
        goto out;
    }
    for (;;) {
        if (read_frame(rd, &f, cap, &room)) goto out;
        if (f.type == LOG) { log_frame(&f); continue; }
        if (f.type == HELLO && f.len >= 9) break;
        if (f.type == ERROR && f.id == 0 && f.len >= 8) {
            uint32_t kind = get_u32(f.payload);
            fprintf(stderr, "host: plugin did not start (%s): %.*s\n",
                    kind < 9 ? error_kinds[kind] : "?", (int)(f.len - 8), f.payload + 8);
            goto out;
        }
        fprintf(stderr, "host: protocol violation: frame %u before HELLO\n", f.type);
        goto out;
    }
    uint8_t nlen = f.payload[8];
    if (9u + nlen > f.len) { fprintf(stderr, "host: protocol violation: HELLO\n"); goto out; }
    fprintf(stderr, "host: protocol %u, plugin ABI %u, plugin %.*s\n", get_u32(f.payload),
            get_u32(f.payload + 4), nlen, f.payload + 9);

    /* 2. One CALL with id 1: u8 method length, method, input. */
    uint8_t head[1 + 255];
    head[0] = (uint8_t)mlen;
    memcpy(head + 1, method, mlen);
    if (1 + mlen + input_len > cap) { fprintf(stderr, "host: input too large\n"); goto out; }
    if (send_frame(wr, CALL, 1, head, 1 + mlen, input, input_len)) goto out;

    /* 3. LOG frames, then RESULT or ERROR for id 1. */
    for (;;) {
        if (read_frame(rd, &f, cap, &room)) goto out;
        if (f.type == LOG) { log_frame(&f); continue; }
        if ((f.type != RESULT && f.type != ERROR) || f.id != 1) {
            fprintf(stderr, "host: protocol violation: frame %u for call %llu\n", f.type,
                    (unsigned long long)f.id);
            goto out;
        }
        break;
    }
    if (f.type == RESULT) {
        fwrite(f.payload, 1, f.len, stdout);
        status = 0;
    } else if (f.len >= 8) {
        uint32_t kind = get_u32(f.payload);
        fprintf(stderr, "host: call failed (%s, status %d): %.*s\n",
                kind < 9 ? error_kinds[kind] : "?", (int)get_u32(f.payload + 4),
                (int)(f.len - 8), f.payload + 8);
        status = 1;
    }
    /* 4. SHUTDOWN: an empty frame. */
    send_frame(wr, SHUTDOWN, 0, NULL, 0, NULL, 0);
out:
    close(wr);
    close(rd);
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
    free(f.payload);
    free(input);
    return status;
}
