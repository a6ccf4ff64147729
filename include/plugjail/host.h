/*
 * plugjail/host.h: a C client for `plugjail serve`, for host applications written in C
 * (and usable from C++). Header-only: every function is `static inline`, so including the
 * header is all it takes; there is nothing to link but libc (and -pthread on a glibc older
 * than 2.34, for pthread_sigmask).
 *
 *   struct plugjail_options o;
 *   plugjail_options_init(&o);
 *   o.profile = "/usr/share/plugjail/profiles/default.yaml";
 *   o.plugin = "./hello.so";
 *   struct plugjail_error err;
 *   struct plugjail_session *s = plugjail_session_open(&o, &err);
 *   if (!s) { fprintf(stderr, "%s\n", err.message); return 1; }
 *   unsigned char *out; size_t out_len;
 *   if (plugjail_session_call(s, "greet", "bob", 3, 2000, &out, &out_len, &err) == 0) {
 *       fwrite(out, 1, out_len, stdout);
 *       free(out);
 *   }
 *   struct plugjail_verdict v;
 *   plugjail_session_close(s, &v);
 *   printf("%s after %llu calls\n", v.outcome, (unsigned long long)v.calls);
 *   plugjail_verdict_free(&v);
 *
 * What it does (docs/protocol.md is the protocol, docs/verdict.md the verdict, and
 * docs/clients.md, "C", this client):
 *
 * - Spawns `plugjail serve --profile P --plugin SO --fds 3,4 --status-fd 5` with
 *   posix_spawn (never fork: a host may have threads). plugjail is found at the path in
 *   the options, else at $PLUGJAIL, else on PATH; the error says where it looked. A path
 *   that is given but does not work is an error, never a reason to run another plugjail.
 * - Reads the SESSION frame first (the frame cap, call_time and idle_time, written by
 *   plugjail itself before the jail exists), then the plugin's HELLO.
 * - Calls with a deadline. On expiry it tells plugjail with sigqueue(SIGUSR1, the deadline
 *   in ms), so the verdict is `timeout`, kind `host`, with `limit_ms`.
 * - Writes never raise SIGPIPE: while a call writes, SIGPIPE is blocked in the calling
 *   thread, and one the write raised is consumed before the old mask comes back.
 * - Large payloads never deadlock: the write end is non-blocking and a call polls both
 *   pipes, reading LOG frames while it writes the CALL.
 * - plugjail_session_cancel() works from any thread (and from a signal handler): it sends
 *   SIGTERM to plugjail serve and wakes the waiting call. It never signals a reaped pid.
 * - plugjail_session_close() sends SHUTDOWN, reads the verdict JSON from the status pipe
 *   and returns it as a struct, parsed by a small parser of its own (only plugjail's JSON;
 *   malformed input is an error, never a crash or a read past the end).
 * - Everything from the plugin side (LOG text, ERROR messages, HELLO names, the verdict's
 *   messages) is untrusted. plugjail_sanitize() and plugjail_print_record() escape it the
 *   way `plugjail call` does (crates/protocol/src/text.rs, `plugjail::text` in Rust)
 *   before it is shown to people.
 *
 * Threads: one thread at a time per session for everything but plugjail_session_cancel(),
 * which any thread may call at any moment until plugjail_session_close() has returned.
 * Sessions are independent of each other.
 *
 * Requirements: C11 (for <stdatomic.h>) or C++11, POSIX.1-2008. In strict ISO mode
 * (-std=c11) define _POSIX_C_SOURCE 200809L (or _GNU_SOURCE) before any #include, or
 * include this header first: it defines _POSIX_C_SOURCE itself then. With _GNU_SOURCE
 * (g++ always defines it) the pipes are created close-on-exec atomically (pipe2); without
 * it, another thread's fork+exec could inherit a pipe end in the instant between pipe()
 * and fcntl(FD_CLOEXEC), delaying end of file on the channel until that child exits.
 * The host must not reap plugjail serve itself (no SIGCHLD set to SIG_IGN, no
 * waitpid(-1, ...) loop): plugjail_session_close() does.
 *
 * Names: the API is plugjail_* and PLUGJAIL_*; pjh_* and PJH_* are the header's own.
 * Nothing clashes with include/plugjail.h (the plugin-side header).
 */
#ifndef PLUGJAIL_HOST_H
#define PLUGJAIL_HOST_H

/* In strict ISO C, POSIX.1-2008 must be asked for before the first system header. (glibc
 * says _POSIX_C_SOURCE 199506L by itself under -pthread: not enough either.) */
#if !defined(__cplusplus) && !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE) &&          \
    !(defined(_XOPEN_SOURCE) && _XOPEN_SOURCE >= 700) &&                                    \
    ((defined(_POSIX_C_SOURCE) && _POSIX_C_SOURCE < 200809L) ||                             \
     (!defined(_POSIX_C_SOURCE) && defined(_FEATURES_H)))
#error "plugjail/host.h: define _POSIX_C_SOURCE 200809L before any #include, or include it first"
#endif

#if defined(__STRICT_ANSI__) && !defined(__cplusplus) && !defined(_POSIX_C_SOURCE) &&      \
    !defined(_XOPEN_SOURCE) && !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Shared-memory calls need Linux's memfd_create and futex, declared with _GNU_SOURCE (g++
 * always defines it), and GCC's or clang's atomic builtins. Without them a session that
 * asks for shared memory calls over the pipe, and says why. */
#if defined(__linux__) && defined(_GNU_SOURCE) && (defined(__GNUC__) || defined(__clang__))
#define PJH_HAVE_SHM 1
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#endif

#ifdef __cplusplus
#include <atomic>
#include <new>
#define PJH_ATOMIC_INT std::atomic<int>
#define PJH_ATOMIC_INIT(p, v) (::new (static_cast<void *>(p)) std::atomic<int>(v))
#define PJH_LOAD(p) std::atomic_load(p)
#define PJH_STORE(p, v) std::atomic_store((p), (v))
#define PJH_ADD(p, v) std::atomic_fetch_add((p), (v))
#define PJH_SUB(p, v) std::atomic_fetch_sub((p), (v))
#else
#include <stdatomic.h>
#define PJH_ATOMIC_INT atomic_int
#define PJH_ATOMIC_INIT(p, v) atomic_init((p), (v))
#define PJH_LOAD(p) atomic_load(p)
#define PJH_STORE(p, v) atomic_store((p), (v))
#define PJH_ADD(p, v) atomic_fetch_add((p), (v))
#define PJH_SUB(p, v) atomic_fetch_sub((p), (v))
#endif

#if defined(__GNUC__)
#define PJH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PJH_PRINTF(f, a)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* POSIX: the application declares it. */
extern char **environ;

/* ---------------------------------------------------------------------------------------
 * The API: types
 * ------------------------------------------------------------------------------------ */

/* What went wrong (struct plugjail_error.code). */
enum plugjail_code {
    PLUGJAIL_E_NONE = 0,       /* nothing */
    PLUGJAIL_E_INVALID,        /* a bad argument; nothing was done (the session goes on) */
    PLUGJAIL_E_NOT_FOUND,      /* no usable plugjail executable; the message says where it looked */
    PLUGJAIL_E_SPAWN,          /* pipe, posix_spawn, ... failed (sys_errno) */
    PLUGJAIL_E_NOMEM,          /* out of memory */
    PLUGJAIL_E_FAILED,         /* the plugin answered ERROR (kind 1-4); the session goes on */
    PLUGJAIL_E_TOO_LARGE,      /* the input does not fit in a frame; nothing was sent; it goes on */
    PLUGJAIL_E_STARTUP,        /* the plugin did not start (ERROR kinds 5-8); the session ended */
    PLUGJAIL_E_TIMEOUT,        /* the deadline passed; plugjail was told; the session ended */
    PLUGJAIL_E_CANCELLED,      /* plugjail_session_cancel(); the session ended */
    PLUGJAIL_E_PROTOCOL,       /* a frame broke the protocol; the jail was stopped */
    PLUGJAIL_E_ENDED,          /* the jail ended (crash, limit, kill): the verdict says how */
    PLUGJAIL_E_NOT_DELIVERED,  /* the jail ended before the whole call reached it */
    PLUGJAIL_E_IO,             /* a syscall on the channel failed (sys_errno) */
    PLUGJAIL_E_VERDICT         /* close: no verdict was delivered, or it is malformed */
};

/* ERROR frame kinds (docs/protocol.md). */
enum plugjail_error_kind {
    PLUGJAIL_ERROR_PLUGIN = 1,
    PLUGJAIL_ERROR_UNKNOWN_METHOD = 2,
    PLUGJAIL_ERROR_OUTPUT_TOO_LARGE = 3,
    PLUGJAIL_ERROR_BAD_CALL = 4,
    PLUGJAIL_ERROR_LOAD_FAILED = 5,
    PLUGJAIL_ERROR_ABI_MISMATCH = 6,
    PLUGJAIL_ERROR_INIT_FAILED = 7,
    PLUGJAIL_ERROR_FILTER_FAILED = 8
};

/* LOG levels as they arrive (0-3 from the plugin's host->log(), 4 its stdout/stderr). */
enum plugjail_level {
    PLUGJAIL_LEVEL_DEBUG = 0,
    PLUGJAIL_LEVEL_INFO = 1,
    PLUGJAIL_LEVEL_WARN = 2,
    PLUGJAIL_LEVEL_ERROR = 3,
    PLUGJAIL_LEVEL_OUTPUT = 4
};

/* What the client itself saw end the session (struct plugjail_verdict.host_fault). */
enum plugjail_fault {
    PLUGJAIL_FAULT_NONE = 0,
    PLUGJAIL_FAULT_TIMEOUT,    /* a call's deadline passed (plugjail was sent SIGUSR1) */
    PLUGJAIL_FAULT_PROTOCOL,   /* a frame broke the protocol (plugjail was sent SIGTERM) */
    PLUGJAIL_FAULT_CANCELLED   /* plugjail_session_cancel() (plugjail was sent SIGTERM) */
};

#define PLUGJAIL_MESSAGE_MAX 8192

/* Why a call failed. Every function that takes one fills it on failure (err may be NULL). */
struct plugjail_error {
    int code;            /* enum plugjail_code; PLUGJAIL_E_NONE on success */
    int sys_errno;       /* the errno of a failed syscall, else 0 */
    uint32_t kind;       /* E_FAILED, E_STARTUP: the ERROR frame's kind (plugjail_error_kind) */
    int32_t status;      /* E_FAILED, E_STARTUP: what call() or init() returned */
    int untrusted;       /* 1: `message` is the plugin's text as it came (escape it to show it) */
    size_t message_len;  /* bytes in message (it may hold a NUL when untrusted) */
    char message[PLUGJAIL_MESSAGE_MAX]; /* always NUL-terminated */
};

/* Receives each LOG frame: level (plugjail_level) and text (untrusted bytes, not
 * necessarily UTF-8, not NUL-terminated). Runs on the thread that called into the
 * session, possibly with SIGPIPE blocked; it must not call back into the session (except
 * plugjail_session_cancel). Level-4 text comes in chunks cut anywhere. */
typedef void (*plugjail_log_fn)(void *user, uint32_t level, const unsigned char *text,
                                size_t len);

/* How to run a session. Zero (plugjail_options_init) means the default everywhere. */
struct plugjail_options {
    const char *profile;          /* required: the profile (YAML) */
    const char *plugin;           /* required: the plugin .so */
    const char *plugjail;         /* the plugjail executable: a path, or a name to look up
                                     on PATH; NULL: $PLUGJAIL (the same), else `plugjail`
                                     on PATH */
    const char *const *extra_args; /* more `plugjail serve` arguments, NULL-terminated (e.g.
                                     "--report", FILE, "--cpus", "0-1"); NULL: none */
    plugjail_log_fn on_log;       /* LOG frames; NULL: dropped */
    void *log_user;               /* passed to on_log */
    long start_timeout_ms;        /* SESSION + HELLO within this; 0: 30000 */
    long close_timeout_ms;        /* close waits this long for shutdown() and the verdict
                                     before it stops plugjail (SIGTERM, then SIGKILL);
                                     0: 10000 */
    int quiet;                    /* 1: plugjail serve's stderr (its one-line summary, setup
                                     errors) goes to /dev/null; 0: the host's stderr */
    /* Shared-memory calls (docs/protocol.md, "Shared-memory calls"): CALL and its answer
     * travel through a sealed memfd both ends map, LOG frames still over the pipe. The
     * profile must allow futex without conditions in both phases. When the region cannot
     * be made here, calls go over the pipe: plugjail_session_shm_unavailable() says why. */
    int shm;                      /* 1: call over shared memory; 0: over the pipe */
    long shm_spin_us;             /* how long each end spins for the other before it
                                     sleeps on the futex; 0: 50; negative: no spinning;
                                     at most 1000000 */
    size_t shm_arena;             /* the largest payload per direction; 0: 1 MiB; at least
                                     8 KiB */
    int shm_scrub_inputs;         /* 1: zero each call's input in the region once the call
                                     returns, so the plugin cannot read it afterwards */
};

/* plugjail's own figures, from the SESSION frame (trusted). */
struct plugjail_limits {
    uint32_t protocol_version;    /* 1 */
    uint32_t max_message;         /* the cap on every frame's payload, both ways */
    uint64_t call_time_ms;        /* the profile's limits.call_time; 0: none */
    uint64_t idle_time_ms;        /* the profile's limits.idle_time; 0: none */
};

/* The plugin's HELLO. The names are checked (UTF-8, no control or bidi characters) but
 * chosen by the plugin: untrusted. Valid until plugjail_session_close(). */
struct plugjail_hello {
    uint32_t protocol_version;
    uint32_t abi_version;
    const char *name;
    const char *version;
    size_t method_count;
    const char *const *methods;
};

/* The verdict (docs/verdict.md), from plugjail serve's status pipe, with what the client
 * saw merged in. Strings are NULL when the field is absent; numbers say below. Strings
 * marked untrusted may carry plugin text (escape before showing). Owned by the struct:
 * plugjail_verdict_free() releases them. */
struct plugjail_verdict {
    const char *outcome;          /* "ok", "signaled", "timeout", ...; "unknown" when no
                                     verdict could be read (see message) */
    int exit_status;              /* plugjail's exit status (docs/verdict.md); -1: unknown */
    int has_exit_code;
    int exit_code;                /* the program's own exit code, when has_exit_code */
    int signal_number;            /* the signal that ended it; 0: none */
    const char *signal_name;      /* "SIGSEGV", ... */
    const char *syscall_name;     /* seccomp_violation: the syscall; NULL: not known */
    int64_t syscall_number;       /* -1: not known */
    const char *syscall_arch;     /* "x86_64", ... */
    const char *syscall_phase;    /* "load" or "serve" */
    const char *timeout_kind;     /* "wall", "cpu", "call", "idle", "host" */
    int64_t timeout_limit_ms;     /* -1: not said */
    const char *message;          /* a sentence for people; untrusted (may end with plugin
                                     text) */
    size_t message_len;
    uint64_t calls;               /* calls the plugin answered in this session */
    int64_t wall_time_ms;         /* -1: absent */
    int64_t cpu_time_ms;          /* resources; -1: absent */
    int64_t max_rss_bytes;        /* -1: absent */
    int64_t memory_peak_bytes;    /* -1: absent (no memory cgroup) */
    const char *step;             /* setup failures: the step */
    int errno_number;             /* 0: none */
    const char *errno_name;       /* "EPERM", ... */
    const char *call_error_kind;  /* `plugjail call` only */
    int32_t call_error_status;
    const char *call_error_message; /* untrusted */
    size_t call_error_message_len;
    const char *failure_stage;    /* plugin_failure.stage: "load", "entry", "abi", "init" */
    int has_failure_status;
    int32_t failure_status;       /* plugin_failure.status, when has_failure_status */
    const char *failure_message;  /* plugin_failure.message: untrusted (the startup ERROR) */
    size_t failure_message_len;
    int host_fault;               /* enum plugjail_fault */
    const char *json;             /* the verdict as plugjail serve wrote it; NULL: none */
    size_t json_len;
    void *pjh_mem;                /* owned memory: plugjail_verdict_free() */
};

struct plugjail_session;

/* Escape flags. */
#define PLUGJAIL_SANITIZE_QUOTE 1u /* also `"` as `\"` (for text inside double quotes) */

/* ---------------------------------------------------------------------------------------
 * Small helpers: little-endian, clocks, errors
 * ------------------------------------------------------------------------------------ */

enum { PJH_HEADER = 16, PJH_MIN_CAP = 4096, PJH_MAX_ERROR_MESSAGE = 4096, PJH_MAX_METHODS = 1024 };
enum {
    PJH_HELLO = 1, PJH_CALL = 2, PJH_RESULT = 3, PJH_ERROR = 4, PJH_LOG = 5, PJH_SHUTDOWN = 6,
    PJH_SESSION = 7
};
/* Where the session's descriptors go in plugjail serve. */
enum { PJH_FD_IN = 3, PJH_FD_OUT = 4, PJH_FD_STATUS = 5, PJH_FD_SHM = 6 };
#define PJH_FD_SHM_ARG "6"
#ifdef PATH_MAX
#define PJH_PATH_MAX PATH_MAX
#else
#define PJH_PATH_MAX 4096
#endif
/* Longer deadlines are taken as this one (about 31 years): no overflow in microseconds. */
#define PJH_FOREVER_MS INT64_C(1000000000000)
/* The longest verdict the client reads. */
#define PJH_VERDICT_MAX (1u << 20)

static inline uint16_t pjh_u16(const unsigned char *p) {
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}
static inline uint32_t pjh_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t pjh_u64(const unsigned char *p) {
    return (uint64_t)pjh_u32(p) | (uint64_t)pjh_u32(p + 4) << 32;
}
static inline void pjh_put(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Microseconds on the monotonic clock: deadlines are kept in these, so that a deadline
 * of N ms never passes after less than N ms. */
static inline int64_t pjh_now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* poll's timeout (ms) until `deadline` (us on pjh_now_us's clock; < 0: none), rounded
 * up. */
static inline int pjh_poll_timeout(int64_t deadline) {
    if (deadline < 0) return -1;
    int64_t left = deadline - pjh_now_us();
    if (left <= 0) return 0;
    left = (left + 999) / 1000;
    return left > INT_MAX ? INT_MAX : (int)left;
}

static inline void pjh_clear(struct plugjail_error *err) {
    if (!err) return;
    err->code = PLUGJAIL_E_NONE;
    err->sys_errno = 0;
    err->kind = 0;
    err->status = 0;
    err->untrusted = 0;
    err->message_len = 0;
    err->message[0] = '\0';
}

/* Fills err with plugjail's (the client's) own words; returns `code`. */
static inline int pjh_fail(struct plugjail_error *err, int code, int sys_errno, const char *fmt,
                           ...) PJH_PRINTF(4, 5);
static inline int pjh_fail(struct plugjail_error *err, int code, int sys_errno, const char *fmt,
                           ...) {
    if (!err) return code;
    pjh_clear(err);
    err->code = code;
    err->sys_errno = sys_errno;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    err->message_len = (size_t)n < sizeof err->message ? (size_t)n : sizeof err->message - 1;
    return code;
}

/* Fills err with the plugin's words (an ERROR frame's message, at most 4096 bytes). */
static inline int pjh_fail_plugin(struct plugjail_error *err, int code, uint32_t kind,
                                  int32_t status, const unsigned char *msg, size_t len) {
    if (!err) return code;
    pjh_clear(err);
    err->code = code;
    err->kind = kind;
    err->status = status;
    err->untrusted = 1;
    if (len > sizeof err->message - 1) len = sizeof err->message - 1;
    if (len) memcpy(err->message, msg, len);
    err->message[len] = '\0';
    err->message_len = len;
    return code;
}

/* ---------------------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------------------ */

/* "invalid", "not_found", ... for an enum plugjail_code. */
static inline const char *plugjail_code_name(int code) {
    static const char *const names[] = {
        "none",     "invalid",  "not_found", "spawn",    "nomem",
        "failed",   "too_large", "startup",  "timeout",  "cancelled",
        "protocol", "ended",    "not_delivered", "io",   "verdict",
    };
    if (code < 0 || (size_t)code >= sizeof names / sizeof names[0]) return "?";
    return names[code];
}

/* "plugin", "unknown_method", ... for an ERROR frame's kind. */
static inline const char *plugjail_error_kind_name(uint32_t kind) {
    static const char *const names[] = {
        "?",           "plugin",       "unknown_method", "output_too_large", "bad_call",
        "load_failed", "abi_mismatch", "init_failed",    "filter_failed",
    };
    return kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

/* "debug", "info", "warn", "error", "output" for a LOG level. */
static inline const char *plugjail_level_name(uint32_t level) {
    static const char *const names[] = {"debug", "info", "warn", "error", "output"};
    return level < 5 ? names[level] : "?";
}

/* True when the session can still take calls after a call failed with `err`. */
static inline int plugjail_error_session_goes_on(const struct plugjail_error *err) {
    return err && (err->code == PLUGJAIL_E_FAILED || err->code == PLUGJAIL_E_TOO_LARGE ||
                   err->code == PLUGJAIL_E_INVALID);
}

static inline void plugjail_options_init(struct plugjail_options *o) {
    memset(o, 0, sizeof *o);
}

/* ---------------------------------------------------------------------------------------
 * Untrusted text: UTF-8 and escaping (the rules of crates/protocol/src/text.rs)
 *
 *   \            \\                 newline, CR, tab     \n \r \t
 *   other C0, DEL                   \xNN (\x1b, \x07, \x00, \x7f)
 *   C1 U+0080-U+009F                \u{NN} (\u{9b})
 *   bidi U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C; U+2028, U+2029
 *                                   \u{NNNN} (\u{202e})
 *   a byte that is not valid UTF-8  \xNN (\xff), byte by byte
 *   "  (PLUGJAIL_SANITIZE_QUOTE)    \"
 *
 * Everything else passes unchanged. The mapping is one-to-one, and the result is one line
 * of printable text.
 * ------------------------------------------------------------------------------------ */

/* Decodes one UTF-8 character at p (n bytes left): its length (1-4), or 0 when the bytes
 * there are not valid UTF-8 (overlong, surrogate, above U+10FFFF, cut short). */
static inline size_t pjh_utf8(const unsigned char *p, size_t n, uint32_t *cp) {
    unsigned char b = p[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    uint32_t c;
    if (b >= 0xc2 && b <= 0xdf) {
        len = 2;
        c = b & 0x1fu;
    } else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        c = b & 0x0fu;
        if (b == 0xe0) lo = 0xa0;
        if (b == 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        c = b & 0x07u;
        if (b == 0xf0) lo = 0x90;
        if (b == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 1; i < len; i++) {
        if (i > 1 && (p[i] < 0x80 || p[i] > 0xbf)) return 0;
        c = c << 6 | (p[i] & 0x3fu);
    }
    *cp = c;
    return len;
}

static inline int pjh_is_bidi_or_break(uint32_t c) {
    return c == 0x061c || c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
           c == 0x2028 || c == 0x2029 || (c >= 0x2066 && c <= 0x2069);
}

/* Unicode category Cc: C0, DEL, C1. */
static inline int pjh_is_control(uint32_t c) {
    return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

/* The escaped form of the text at p (n > 0 bytes left) into piece (room for 16): its
 * length; *used is how many input bytes it stands for. */
static inline size_t pjh_escape_piece(const unsigned char *p, size_t n, unsigned flags,
                                      char piece[16], size_t *used) {
    static const char hex[] = "0123456789abcdef";
    uint32_t c = 0;
    size_t len = pjh_utf8(p, n, &c);
    if (len == 0) { /* not UTF-8: this byte, as \xNN */
        *used = 1;
        piece[0] = '\\';
        piece[1] = 'x';
        piece[2] = hex[p[0] >> 4];
        piece[3] = hex[p[0] & 15];
        return 4;
    }
    *used = len;
    int quote = (flags & PLUGJAIL_SANITIZE_QUOTE) != 0;
    if (!(pjh_is_control(c) || c == '\\' || (quote && c == '"') || pjh_is_bidi_or_break(c))) {
        memcpy(piece, p, len);
        return len;
    }
    piece[0] = '\\';
    switch (c) {
    case '\\': piece[1] = '\\'; return 2;
    case '"': piece[1] = '"'; return 2;
    case '\n': piece[1] = 'n'; return 2;
    case '\r': piece[1] = 'r'; return 2;
    case '\t': piece[1] = 't'; return 2;
    default: break;
    }
    if (c < 0x80) {
        piece[1] = 'x';
        piece[2] = hex[c >> 4];
        piece[3] = hex[c & 15];
        return 4;
    }
    /* \u{hex}, lowercase, no leading zeros (c < 0x10000 here) */
    size_t k = 0;
    piece[k++] = '\\';
    piece[k++] = 'u';
    piece[k++] = '{';
    int started = 0;
    for (int shift = 12; shift >= 0; shift -= 4) {
        unsigned d = (c >> shift) & 15u;
        if (d || started || shift == 0) {
            piece[k++] = hex[d];
            started = 1;
        }
    }
    piece[k++] = '}';
    return k;
}

/* Escapes `len` bytes of untrusted text into dst (dst_size bytes, NUL-terminated when
 * dst_size > 0), like snprintf: returns the length the whole escaped text needs (without
 * the NUL). When it does not fit, dst holds a prefix that never ends inside an escape or
 * a character. At most 4 * len + 1 bytes are ever needed. */
static inline size_t plugjail_sanitize(char *dst, size_t dst_size, const void *text, size_t len,
                                       unsigned flags) {
    const unsigned char *p = (const unsigned char *)text;
    size_t need = 0, wrote = 0;
    int full = dst_size == 0;
    char piece[16];
    for (size_t i = 0; i < len;) {
        size_t used = 0;
        size_t k = pjh_escape_piece(p + i, len - i, flags, piece, &used);
        i += used;
        if (!full && wrote + k < dst_size) {
            memcpy(dst + wrote, piece, k);
            wrote += k;
        } else {
            full = 1;
        }
        need += k;
    }
    if (dst_size > 0) dst[wrote] = '\0';
    return need;
}

/* plugjail_sanitize into a new string (free() it); NULL when out of memory. */
static inline char *plugjail_sanitize_dup(const void *text, size_t len, unsigned flags) {
    size_t need = plugjail_sanitize(NULL, 0, text, len, flags);
    char *s = (char *)malloc(need + 1);
    if (s) plugjail_sanitize(s, need + 1, text, len, flags);
    return s;
}

/* Writes escaped text to f without allocating. Returns 0, or EOF when a write failed. */
static inline int plugjail_fputs_sanitized(FILE *f, const void *text, size_t len,
                                           unsigned flags) {
    const unsigned char *p = (const unsigned char *)text;
    char buf[512];
    size_t fill = 0;
    for (size_t i = 0; i < len;) {
        size_t used = 0;
        if (fill + 16 > sizeof buf) {
            if (fwrite(buf, 1, fill, f) != fill) return EOF;
            fill = 0;
        }
        fill += pjh_escape_piece(p + i, len - i, flags, buf + fill, &used);
        i += used;
    }
    if (fill && fwrite(buf, 1, fill, f) != fill) return EOF;
    return 0;
}

/* One record of plugin text as one line for people: `plugin[TAG]: TEXT\n`, TEXT escaped,
 * one trailing newline of it taken as the record's end (as `plugjail call` prints;
 * `plugjail::text::record`). TAG: "debug", "info", "warn", "error", "output", "fail", or the
 * host's own. Returns 0, or EOF when a write failed. */
static inline int plugjail_print_record(FILE *f, const char *tag, const void *text, size_t len) {
    const unsigned char *p = (const unsigned char *)text;
    if (len > 0 && p[len - 1] == '\n') len--;
    if (fprintf(f, "plugin[%s]: ", tag) < 0) return EOF;
    if (plugjail_fputs_sanitized(f, p, len, 0) != 0) return EOF;
    return fputc('\n', f) == EOF ? EOF : 0;
}

/* A name as HELLO may carry it: 1-255 bytes of UTF-8 without control or bidi characters. */
static inline int pjh_check_name(const unsigned char *p, size_t n) {
    if (n == 0 || n > 255) return 0;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t k = pjh_utf8(p + i, n - i, &c);
        if (k == 0 || pjh_is_control(c) || pjh_is_bidi_or_break(c)) return 0;
        i += k;
    }
    return 1;
}

static inline int pjh_valid_utf8(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t k = pjh_utf8(p + i, n - i, &c);
        if (k == 0) return 0;
        i += k;
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------
 * The verdict: a small JSON parser for plugjail's verdict only
 *
 * It reads one JSON object with a length (no NUL needed), checks the whole grammar (any
 * value, nesting at most 32 deep, strict UTF-8, no trailing text), keeps the fields it
 * knows and skips the rest. Every read is bounds-checked against the end.
 * ------------------------------------------------------------------------------------ */

struct pjh_json {
    const char *start, *p, *end;
    char *arena;         /* decoded strings go here: never longer than their JSON text */
    size_t used, size;
    const char *why;     /* the first error */
    size_t at;           /* its offset */
    int depth;
};

static inline int pjh_json_bad(struct pjh_json *j, const char *why) {
    if (!j->why) {
        j->why = why;
        j->at = (size_t)(j->p - j->start);
    }
    return -1;
}

static inline void pjh_json_ws(struct pjh_json *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static inline int pjh_hex4(const char *p, uint32_t *v) {
    uint32_t r = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
        else return 0;
        r = r << 4 | d;
    }
    *v = r;
    return 1;
}

/* A string at j->p (a '"'); decoded into the arena when out != NULL. */
static inline int pjh_json_string(struct pjh_json *j, const char **out, size_t *out_len) {
    if (j->p >= j->end || *j->p != '"') return pjh_json_bad(j, "expected a string");
    j->p++;
    char *dst = out ? j->arena + j->used : NULL;
    size_t n = 0;
    for (;;) {
        if (j->p >= j->end) return pjh_json_bad(j, "unterminated string");
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20) return pjh_json_bad(j, "control character in a string");
        if (c != '\\') {
            uint32_t cp;
            size_t k = pjh_utf8((const unsigned char *)j->p, (size_t)(j->end - j->p), &cp);
            if (k == 0) return pjh_json_bad(j, "invalid UTF-8");
            if (dst) memcpy(dst + n, j->p, k);
            n += k;
            j->p += k;
            continue;
        }
        if (j->end - j->p < 2) return pjh_json_bad(j, "unterminated escape");
        char e = j->p[1];
        j->p += 2;
        char simple = 0;
        switch (e) {
        case '"': simple = '"'; break;
        case '\\': simple = '\\'; break;
        case '/': simple = '/'; break;
        case 'b': simple = '\b'; break;
        case 'f': simple = '\f'; break;
        case 'n': simple = '\n'; break;
        case 'r': simple = '\r'; break;
        case 't': simple = '\t'; break;
        case 'u': break;
        default: return pjh_json_bad(j, "bad escape");
        }
        if (e != 'u') {
            if (dst) dst[n] = simple;
            n++;
            continue;
        }
        uint32_t u;
        if (j->end - j->p < 4 || !pjh_hex4(j->p, &u)) return pjh_json_bad(j, "bad \\u escape");
        j->p += 4;
        if (u >= 0xdc00 && u <= 0xdfff) return pjh_json_bad(j, "lone low surrogate");
        if (u >= 0xd800 && u <= 0xdbff) {
            uint32_t lo;
            if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
                !pjh_hex4(j->p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
                return pjh_json_bad(j, "lone high surrogate");
            j->p += 6;
            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        }
        unsigned char enc[4];
        size_t k;
        if (u < 0x80) {
            enc[0] = (unsigned char)u;
            k = 1;
        } else if (u < 0x800) {
            enc[0] = (unsigned char)(0xc0 | u >> 6);
            enc[1] = (unsigned char)(0x80 | (u & 0x3f));
            k = 2;
        } else if (u < 0x10000) {
            enc[0] = (unsigned char)(0xe0 | u >> 12);
            enc[1] = (unsigned char)(0x80 | ((u >> 6) & 0x3f));
            enc[2] = (unsigned char)(0x80 | (u & 0x3f));
            k = 3;
        } else {
            enc[0] = (unsigned char)(0xf0 | u >> 18);
            enc[1] = (unsigned char)(0x80 | ((u >> 12) & 0x3f));
            enc[2] = (unsigned char)(0x80 | ((u >> 6) & 0x3f));
            enc[3] = (unsigned char)(0x80 | (u & 0x3f));
            k = 4;
        }
        if (dst) memcpy(dst + n, enc, k);
        n += k;
    }
    if (dst) {
        /* n + 1 <= the string's JSON length (quotes included), which the arena holds. */
        dst[n] = '\0';
        j->used += n + 1;
        *out = dst;
        if (out_len) *out_len = n;
    }
    return 0;
}

/* A number; *is_int when it is an integer that fits int64_t. */
static inline int pjh_json_number(struct pjh_json *j, int64_t *v, int *is_int) {
    const char *p = j->p;
    int neg = 0, ok = 1;
    uint64_t acc = 0;
    if (p < j->end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= j->end || *p < '0' || *p > '9') return pjh_json_bad(j, "bad number");
    if (*p == '0') {
        p++;
    } else {
        while (p < j->end && *p >= '0' && *p <= '9') {
            unsigned d = (unsigned)(*p - '0');
            if (acc > (UINT64_MAX - d) / 10) ok = 0;
            else acc = acc * 10 + d;
            p++;
        }
    }
    if (p < j->end && *p == '.') {
        ok = 0;
        p++;
        if (p >= j->end || *p < '0' || *p > '9') return pjh_json_bad(j, "bad number");
        while (p < j->end && *p >= '0' && *p <= '9') p++;
    }
    if (p < j->end && (*p == 'e' || *p == 'E')) {
        ok = 0;
        p++;
        if (p < j->end && (*p == '+' || *p == '-')) p++;
        if (p >= j->end || *p < '0' || *p > '9') return pjh_json_bad(j, "bad number");
        while (p < j->end && *p >= '0' && *p <= '9') p++;
    }
    j->p = p;
    if (ok && !neg && acc > (uint64_t)INT64_MAX) ok = 0;
    if (ok && neg && acc > (uint64_t)INT64_MAX + 1) ok = 0;
    *is_int = ok;
    if (ok) *v = neg ? (acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc) : (int64_t)acc;
    return 0;
}

static inline int pjh_json_literal(struct pjh_json *j, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return pjh_json_bad(j, "unexpected character");
    j->p += n;
    return 0;
}

/* Any value, checked and skipped. */
static inline int pjh_json_skip(struct pjh_json *j) {
    pjh_json_ws(j);
    if (j->p >= j->end) return pjh_json_bad(j, "unexpected end");
    char c = *j->p;
    if (c == '"') return pjh_json_string(j, NULL, NULL);
    if (c == 't') return pjh_json_literal(j, "true");
    if (c == 'f') return pjh_json_literal(j, "false");
    if (c == 'n') return pjh_json_literal(j, "null");
    if (c == '-' || (c >= '0' && c <= '9')) {
        int64_t v;
        int is_int;
        return pjh_json_number(j, &v, &is_int);
    }
    if (c != '{' && c != '[') return pjh_json_bad(j, "unexpected character");
    if (++j->depth > 32) return pjh_json_bad(j, "nested too deeply");
    char close = c == '{' ? '}' : ']';
    j->p++;
    pjh_json_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return 0;
    }
    for (;;) {
        if (c == '{') {
            pjh_json_ws(j);
            if (pjh_json_string(j, NULL, NULL)) return -1;
            pjh_json_ws(j);
            if (j->p >= j->end || *j->p != ':') return pjh_json_bad(j, "expected ':'");
            j->p++;
        }
        if (pjh_json_skip(j)) return -1;
        pjh_json_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == close) {
            j->p++;
            j->depth--;
            return 0;
        }
        return pjh_json_bad(j, "expected ',' or the end of an object or array");
    }
}

enum { PJH_F_STR, PJH_F_INT, PJH_F_OBJ };

/* One known field: where its value goes. */
struct pjh_field {
    const char *key;
    int type;
    const char **str;   /* PJH_F_STR */
    size_t *len;        /* PJH_F_STR, optional */
    int64_t *num;       /* PJH_F_INT */
    int *seen;          /* optional: set to 1 when present (not null) */
    const struct pjh_field *sub; /* PJH_F_OBJ */
    size_t nsub;
};

/* An object whose known fields go where `fields` say; null counts as absent; other keys
 * are skipped. */
static inline int pjh_json_object(struct pjh_json *j, const struct pjh_field *fields, size_t n) {
    pjh_json_ws(j);
    if (j->p >= j->end || *j->p != '{') return pjh_json_bad(j, "expected an object");
    if (++j->depth > 32) return pjh_json_bad(j, "nested too deeply");
    j->p++;
    pjh_json_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        j->depth--;
        return 0;
    }
    for (;;) {
        pjh_json_ws(j);
        size_t mark = j->used;
        const char *key = NULL;
        size_t key_len = 0;
        if (pjh_json_string(j, &key, &key_len)) return -1;
        j->used = mark; /* the key's bytes are only read below, before anything else */
        pjh_json_ws(j);
        if (j->p >= j->end || *j->p != ':') return pjh_json_bad(j, "expected ':'");
        j->p++;
        pjh_json_ws(j);
        const struct pjh_field *f = NULL;
        for (size_t i = 0; i < n; i++) {
            if (strlen(fields[i].key) == key_len && memcmp(fields[i].key, key, key_len) == 0) {
                f = &fields[i];
                break;
            }
        }
        if (f && j->end - j->p >= 4 && memcmp(j->p, "null", 4) == 0) {
            j->p += 4;
        } else if (!f) {
            if (pjh_json_skip(j)) return -1;
        } else if (f->type == PJH_F_STR) {
            if (j->p >= j->end || *j->p != '"') return pjh_json_bad(j, "expected a string");
            if (pjh_json_string(j, f->str, f->len)) return -1;
            if (f->seen) *f->seen = 1;
        } else if (f->type == PJH_F_INT) {
            int64_t v = 0;
            int is_int = 0;
            if (j->p >= j->end || !(*j->p == '-' || (*j->p >= '0' && *j->p <= '9')))
                return pjh_json_bad(j, "expected an integer");
            if (pjh_json_number(j, &v, &is_int)) return -1;
            if (!is_int) return pjh_json_bad(j, "not an integer in range");
            *f->num = v;
            if (f->seen) *f->seen = 1;
        } else {
            if (pjh_json_object(j, f->sub, f->nsub)) return -1;
            if (f->seen) *f->seen = 1;
        }
        pjh_json_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            j->depth--;
            return 0;
        }
        return pjh_json_bad(j, "expected ',' or '}'");
    }
}

static inline void pjh_verdict_defaults(struct plugjail_verdict *v) {
    memset(v, 0, sizeof *v);
    v->exit_status = -1;
    v->syscall_number = -1;
    v->timeout_limit_ms = -1;
    v->wall_time_ms = -1;
    v->cpu_time_ms = -1;
    v->max_rss_bytes = -1;
    v->memory_peak_bytes = -1;
}

/* Releases what a verdict owns; the struct is left empty (outcome NULL). */
static inline void plugjail_verdict_free(struct plugjail_verdict *v) {
    if (!v) return;
    free(v->pjh_mem);
    pjh_verdict_defaults(v);
}

/* Parses plugjail's verdict JSON (len bytes; no NUL needed) into v, `extra` more bytes of
 * owned memory reserved after the strings (for the session's merge). */
static inline int pjh_verdict_parse(const char *json, size_t len, size_t extra,
                                    struct plugjail_verdict *v, struct plugjail_error *err) {
    pjh_verdict_defaults(v);
    if (!json) return pjh_fail(err, PLUGJAIL_E_INVALID, 0, "no verdict text");
    if (len > PJH_VERDICT_MAX)
        return pjh_fail(err, PLUGJAIL_E_VERDICT, 0, "the verdict is longer than %u bytes",
                        (unsigned)PJH_VERDICT_MAX);
    /* [copy of the JSON, NUL][decoded strings][extra] */
    char *mem = (char *)malloc(2 * (len + 1) + extra);
    if (!mem) return pjh_fail(err, PLUGJAIL_E_NOMEM, ENOMEM, "out of memory for the verdict");
    memcpy(mem, json, len);
    mem[len] = '\0';
    struct pjh_json j;
    j.start = mem;
    j.p = mem;
    j.end = mem + len;
    j.arena = mem + len + 1;
    j.used = 0;
    j.size = len + 1;
    j.why = NULL;
    j.at = 0;
    j.depth = 0;

    int64_t version = 0, exit_status = -1, exit_code = 0, sig = 0, calls = 0, errno_num = 0;
    int64_t call_status = 0, failure_status = 0;
    int seen_version = 0, seen_status = 0, seen_code = 0, seen_failure_status = 0;
    const struct pjh_field signal_f[] = {
        {"number", PJH_F_INT, NULL, NULL, &sig, NULL, NULL, 0},
        {"name", PJH_F_STR, &v->signal_name, NULL, NULL, NULL, NULL, 0},
    };
    const struct pjh_field syscall_f[] = {
        {"name", PJH_F_STR, &v->syscall_name, NULL, NULL, NULL, NULL, 0},
        {"number", PJH_F_INT, NULL, NULL, &v->syscall_number, NULL, NULL, 0},
        {"arch", PJH_F_STR, &v->syscall_arch, NULL, NULL, NULL, NULL, 0},
        {"phase", PJH_F_STR, &v->syscall_phase, NULL, NULL, NULL, NULL, 0},
    };
    const struct pjh_field timeout_f[] = {
        {"kind", PJH_F_STR, &v->timeout_kind, NULL, NULL, NULL, NULL, 0},
        {"limit_ms", PJH_F_INT, NULL, NULL, &v->timeout_limit_ms, NULL, NULL, 0},
    };
    const struct pjh_field resources_f[] = {
        {"cpu_time_ms", PJH_F_INT, NULL, NULL, &v->cpu_time_ms, NULL, NULL, 0},
        {"max_rss_bytes", PJH_F_INT, NULL, NULL, &v->max_rss_bytes, NULL, NULL, 0},
        {"memory_peak_bytes", PJH_F_INT, NULL, NULL, &v->memory_peak_bytes, NULL, NULL, 0},
    };
    const struct pjh_field errno_f[] = {
        {"number", PJH_F_INT, NULL, NULL, &errno_num, NULL, NULL, 0},
        {"name", PJH_F_STR, &v->errno_name, NULL, NULL, NULL, NULL, 0},
    };
    const struct pjh_field call_error_f[] = {
        {"kind", PJH_F_STR, &v->call_error_kind, NULL, NULL, NULL, NULL, 0},
        {"status", PJH_F_INT, NULL, NULL, &call_status, NULL, NULL, 0},
        {"message", PJH_F_STR, &v->call_error_message, &v->call_error_message_len, NULL, NULL,
         NULL, 0},
    };
    const struct pjh_field failure_f[] = {
        {"stage", PJH_F_STR, &v->failure_stage, NULL, NULL, NULL, NULL, 0},
        {"status", PJH_F_INT, NULL, NULL, &failure_status, &seen_failure_status, NULL, 0},
        {"message", PJH_F_STR, &v->failure_message, &v->failure_message_len, NULL, NULL, NULL,
         0},
    };
#define PJH_N(a) (sizeof(a) / sizeof((a)[0]))
    const struct pjh_field top[] = {
        {"version", PJH_F_INT, NULL, NULL, &version, &seen_version, NULL, 0},
        {"outcome", PJH_F_STR, &v->outcome, NULL, NULL, NULL, NULL, 0},
        {"exit_status", PJH_F_INT, NULL, NULL, &exit_status, &seen_status, NULL, 0},
        {"exit_code", PJH_F_INT, NULL, NULL, &exit_code, &seen_code, NULL, 0},
        {"signal", PJH_F_OBJ, NULL, NULL, NULL, NULL, signal_f, PJH_N(signal_f)},
        {"syscall", PJH_F_OBJ, NULL, NULL, NULL, NULL, syscall_f, PJH_N(syscall_f)},
        {"timeout", PJH_F_OBJ, NULL, NULL, NULL, NULL, timeout_f, PJH_N(timeout_f)},
        {"message", PJH_F_STR, &v->message, &v->message_len, NULL, NULL, NULL, 0},
        {"calls", PJH_F_INT, NULL, NULL, &calls, NULL, NULL, 0},
        {"wall_time_ms", PJH_F_INT, NULL, NULL, &v->wall_time_ms, NULL, NULL, 0},
        {"resources", PJH_F_OBJ, NULL, NULL, NULL, NULL, resources_f, PJH_N(resources_f)},
        {"step", PJH_F_STR, &v->step, NULL, NULL, NULL, NULL, 0},
        {"errno", PJH_F_OBJ, NULL, NULL, NULL, NULL, errno_f, PJH_N(errno_f)},
        {"call_error", PJH_F_OBJ, NULL, NULL, NULL, NULL, call_error_f, PJH_N(call_error_f)},
        {"plugin_failure", PJH_F_OBJ, NULL, NULL, NULL, NULL, failure_f, PJH_N(failure_f)},
    };
    int rc = pjh_json_object(&j, top, PJH_N(top));
#undef PJH_N
    if (rc == 0) {
        pjh_json_ws(&j);
        if (j.p != j.end) rc = pjh_json_bad(&j, "text after the verdict");
    }
    if (rc == 0 && (!seen_version || version != 1)) {
        j.at = 0;
        rc = pjh_json_bad(&j, seen_version ? "a verdict version this client does not know"
                                           : "no \"version\"");
    }
    if (rc == 0 && !v->outcome) rc = pjh_json_bad(&j, "no \"outcome\"");
    if (rc == 0 && !seen_status) rc = pjh_json_bad(&j, "no \"exit_status\"");
    if (rc == 0 && (exit_status < INT_MIN || exit_status > INT_MAX || exit_code < INT_MIN ||
                    exit_code > INT_MAX || sig < 0 || sig > INT_MAX || errno_num < 0 ||
                    errno_num > INT_MAX || calls < 0 || call_status < INT32_MIN ||
                    call_status > INT32_MAX || failure_status < INT32_MIN ||
                    failure_status > INT32_MAX))
        rc = pjh_json_bad(&j, "a number out of range");
    if (rc != 0) {
        const char *why = j.why ? j.why : "malformed";
        size_t at = j.at;
        free(mem);
        pjh_verdict_defaults(v);
        return pjh_fail(err, PLUGJAIL_E_VERDICT, 0, "malformed verdict (at byte %zu): %s", at,
                        why);
    }
    v->exit_status = (int)exit_status;
    v->has_exit_code = seen_code;
    v->exit_code = (int)exit_code;
    v->signal_number = (int)sig;
    v->calls = (uint64_t)calls;
    v->errno_number = (int)errno_num;
    v->call_error_status = (int32_t)call_status;
    v->has_failure_status = seen_failure_status;
    v->failure_status = (int32_t)failure_status;
    v->json = mem;
    v->json_len = len;
    v->pjh_mem = mem;
    pjh_clear(err);
    return 0;
}

/* Parses a verdict (docs/verdict.md) from `len` bytes of JSON, e.g. a --report file.
 * 0, or PLUGJAIL_E_VERDICT (malformed: err says where) / PLUGJAIL_E_NOMEM; v is then
 * empty. On success free it with plugjail_verdict_free(). */
static inline int plugjail_verdict_parse(const char *json, size_t len, struct plugjail_verdict *v,
                                         struct plugjail_error *err) {
    return pjh_verdict_parse(json, len, 0, v, err);
}

/* ---------------------------------------------------------------------------------------
 * Finding plugjail: the options' path, then $PLUGJAIL, then PATH
 * ------------------------------------------------------------------------------------ */

/* 0 when `path` names an executable regular file, else an errno. */
static inline int pjh_executable(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return errno;
    if (!S_ISREG(st.st_mode)) return S_ISDIR(st.st_mode) ? EISDIR : EACCES;
    if (access(path, X_OK) != 0) return errno;
    return 0;
}

/* Appends to a bounded message; keeps it NUL-terminated. */
static inline void pjh_append(char *buf, size_t size, size_t *len, const char *s) {
    size_t n = strlen(s);
    if (*len >= size - 1) return;
    if (n > size - 1 - *len) n = size - 1 - *len;
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = '\0';
}

/* `name` on PATH (a name without '/'), as a new string; NULL with err filled. `whence`
 * says why that name was looked for, for the error. */
static inline char *pjh_search_path(const char *name, const char *whence,
                                    struct plugjail_error *err) {
    const char *path = getenv("PATH");
    char fallback[256];
    int path_set = path != NULL;
    if (!path) {
        size_t n = confstr(_CS_PATH, fallback, sizeof fallback);
        path = n > 0 && n <= sizeof fallback ? fallback : "/usr/bin:/bin";
    }
    char looked[PLUGJAIL_MESSAGE_MAX / 2];
    size_t looked_len = 0, name_len = strlen(name);
    looked[0] = '\0';
    char cand[PJH_PATH_MAX];
    for (const char *p = path;;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        const char *dir = p;
        if (n == 0) { /* an empty entry is the current directory */
            dir = ".";
            n = 1;
        }
        if (n + 1 + name_len < sizeof cand) {
            memcpy(cand, dir, n);
            cand[n] = '/';
            memcpy(cand + n + 1, name, name_len + 1);
            if (pjh_executable(cand) == 0) {
                char *r = strdup(cand);
                if (!r) pjh_fail(err, PLUGJAIL_E_NOMEM, ENOMEM, "out of memory");
                return r;
            }
            if (looked_len) pjh_append(looked, sizeof looked, &looked_len, ", ");
            pjh_append(looked, sizeof looked, &looked_len, cand);
        }
        if (!colon) break;
        p = colon + 1;
    }
    if (looked_len >= sizeof looked - 1) memcpy(looked + sizeof looked - 5, "...", 4);
    pjh_fail(err, PLUGJAIL_E_NOT_FOUND, ENOENT,
             "cannot find the plugjail executable: %s, and no %s on %s (looked at %s); "
             "install plugjail, or set PLUGJAIL=/path/to/plugjail",
             whence, name, path_set ? "PATH" : "the default PATH",
             looked_len ? looked : "nothing");
    return NULL;
}

/* `path` if it names an executable file, as a new string; NULL with err filled. */
static inline char *pjh_use_path(const char *path, const char *whence,
                                 struct plugjail_error *err) {
    int e = pjh_executable(path);
    if (e) {
        pjh_fail(err, PLUGJAIL_E_NOT_FOUND, e, "cannot run plugjail at %s (%s): %s", path, whence,
                 strerror(e));
        return NULL;
    }
    char *r = strdup(path);
    if (!r) pjh_fail(err, PLUGJAIL_E_NOMEM, ENOMEM, "out of memory");
    return r;
}

/* The executable to run, as a new string (free() it); NULL with err filled. The path in
 * the options, else $PLUGJAIL, else `plugjail` on PATH. A name without '/' (in the
 * options or $PLUGJAIL) is looked up on PATH, as execvp does. A path given that does not
 * work is an error, not a reason to look elsewhere. */
static inline char *pjh_find_plugjail(const char *given, struct plugjail_error *err) {
    if (given && *given) {
        if (!strchr(given, '/'))
            return pjh_search_path(given, "plugjail_options.plugjail names it", err);
        return pjh_use_path(given, "the path given in plugjail_options.plugjail", err);
    }
    const char *env = getenv("PLUGJAIL");
    if (env && *env) {
        if (!strchr(env, '/'))
            return pjh_search_path(env, "the PLUGJAIL environment variable names it", err);
        return pjh_use_path(env, "from the PLUGJAIL environment variable", err);
    }
    return pjh_search_path("plugjail",
                           "no path in plugjail_options.plugjail, PLUGJAIL is not set", err);
}

/* ---------------------------------------------------------------------------------------
 * The session
 * ------------------------------------------------------------------------------------ */

enum { PJH_WANT_SESSION, PJH_WANT_HELLO, PJH_READY, PJH_OVER };

struct plugjail_session {
    pid_t pid;               /* plugjail serve; reaped only in close() */
    int to_stub;             /* our write end of the channel (CALL, SHUTDOWN); -1: closed */
    int from_stub;           /* our read end (frames); -1: closed */
    int status_fd;           /* the verdict arrives here; -1: closed */
    int wake_r, wake_w;      /* cancel() writes a byte: a waiting call wakes up */
    PJH_ATOMIC_INT live;     /* 1 until close() reaps: cancel() may use pid and wake_w */
    PJH_ATOMIC_INT busy;     /* cancel() calls in progress */
    PJH_ATOMIC_INT cancelled;
    int phase;               /* PJH_WANT_SESSION, PJH_WANT_HELLO, PJH_READY, PJH_OVER */
    int fault;               /* enum plugjail_fault */
    char fault_msg[256];     /* PLUGJAIL_FAULT_PROTOCOL: what was wrong */
    uint32_t cap;            /* 4096 until SESSION, then its max_message */
    struct plugjail_limits limits;
    struct plugjail_hello hello;
    void *hello_mem;
    uint64_t next_id, calls;
    /* the frame being read */
    unsigned char head[PJH_HEADER];
    size_t head_got;
    int in_payload;
    uint32_t f_len;
    uint16_t f_type;
    uint64_t f_id;
    unsigned char *buf;      /* payload (+1 for a NUL); handed to the caller for a RESULT */
    size_t buf_room, got;
    /* the stub's startup ERROR, for the verdict */
    int have_startup;
    int32_t startup_status;
    size_t startup_len;
    char startup_msg[PJH_MAX_ERROR_MESSAGE + 1];
    plugjail_log_fn on_log;
    void *log_user;
    int64_t start_timeout_ms, close_timeout_ms;
    /* shared-memory calls: the host's mapping (NULL: the pipe) and its layout */
    unsigned char *shm;
    size_t shm_len, shm_req, shm_req_len, shm_resp, shm_resp_len, shm_written;
    int64_t shm_spin_us;
    int shm_scrub;
    uint32_t shm_seq;        /* the latest request's number */
    uint64_t pipe_frames;    /* frames read from the pipe since HELLO */
    char shm_unavailable[256]; /* why a session that asked for shm calls over the pipe */
};

static inline void pjh_close_fd(int *fd) {
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static inline int pjh_set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* A close-on-exec pipe. */
static inline int pjh_pipe(int fds[2]) {
#if defined(_GNU_SOURCE) || defined(PLUGJAIL_HAVE_PIPE2)
    return pipe2(fds, O_CLOEXEC);
#else
    if (pipe(fds) != 0) return -1;
    if (fcntl(fds[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(fds[1], F_SETFD, FD_CLOEXEC) != 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        errno = e;
        return -1;
    }
    return 0;
#endif
}

/* The end of the channel for this session: both pipes closed, nothing more is read. */
static inline void pjh_channel_over(struct plugjail_session *s) {
    pjh_close_fd(&s->to_stub);
    pjh_close_fd(&s->from_stub);
    s->phase = PJH_OVER;
}

/* Signals plugjail serve; the pid is ours and unreaped while a session function runs. */
static inline void pjh_signal(struct plugjail_session *s, int sig) {
    if (PJH_LOAD(&s->live)) kill(s->pid, sig);
}

/* A protocol violation: remembered for the verdict, the jail stopped (SIGTERM: plugjail
 * ends it and delivers its verdict), the channel closed. */
static inline int pjh_violation(struct plugjail_session *s, struct plugjail_error *err,
                                const char *fmt, ...) PJH_PRINTF(3, 4);
static inline int pjh_violation(struct plugjail_session *s, struct plugjail_error *err,
                                const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fault_msg, sizeof s->fault_msg, fmt, ap);
    va_end(ap);
    s->fault = PLUGJAIL_FAULT_PROTOCOL;
    pjh_signal(s, SIGTERM);
    pjh_channel_over(s);
    return pjh_fail(err, PLUGJAIL_E_PROTOCOL, 0,
                    "protocol violation: %s; the jail was stopped (close() gives the verdict)",
                    s->fault_msg);
}

/* The deadline passed: plugjail is told it was the host's (SIGUSR1 with the deadline in
 * ms), which ends the jail with the verdict `timeout`, kind `host`. */
static inline int pjh_deadline_passed(struct plugjail_session *s, int64_t ms,
                                      struct plugjail_error *err, const char *what) {
    union sigval val;
    memset(&val, 0, sizeof val);
    val.sival_int = ms > 0 && ms <= INT_MAX ? (int)ms : 0;
    if (PJH_LOAD(&s->live) && sigqueue(s->pid, SIGUSR1, val) != 0) kill(s->pid, SIGTERM);
    s->fault = PLUGJAIL_FAULT_TIMEOUT;
    pjh_channel_over(s);
    return pjh_fail(err, PLUGJAIL_E_TIMEOUT, 0,
                    "%s within %lld ms; plugjail was told (the verdict: timeout, kind host), "
                    "and the session has ended",
                    what, (long long)ms);
}

static inline int pjh_cancelled(struct plugjail_session *s, struct plugjail_error *err) {
    if (s->fault == PLUGJAIL_FAULT_NONE) s->fault = PLUGJAIL_FAULT_CANCELLED;
    pjh_channel_over(s);
    return pjh_fail(err, PLUGJAIL_E_CANCELLED, 0,
                    "the session was cancelled; close() gives the verdict");
}

/* Reads what is there of the current frame.
 *   1 a whole frame is in s (f_type, f_id, buf[0..f_len), NUL after it);
 *   0 nothing more to read now;   -1 end of file between frames;
 *  -2 end of file inside a frame; -3 read failed (errno);
 *  -4 the header is a violation (s->fault_msg says why); -5 out of memory. */
static inline int pjh_read_step(struct plugjail_session *s) {
    for (;;) {
        if (!s->in_payload) {
            ssize_t n = read(s->from_stub, s->head + s->head_got, PJH_HEADER - s->head_got);
            if (n < 0) {
                if (errno == EINTR) continue;
                return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -3;
            }
            if (n == 0) return s->head_got ? -2 : -1;
            s->head_got += (size_t)n;
            if (s->head_got < PJH_HEADER) continue;
            s->f_len = pjh_u32(s->head);
            s->f_type = pjh_u16(s->head + 4);
            s->f_id = pjh_u64(s->head + 8);
            if (pjh_u16(s->head + 6) != 0) {
                snprintf(s->fault_msg, sizeof s->fault_msg, "a frame with flags %u",
                         (unsigned)pjh_u16(s->head + 6));
                return -4;
            }
            if (s->f_type < PJH_HELLO || s->f_type > PJH_SESSION) {
                snprintf(s->fault_msg, sizeof s->fault_msg, "a frame of unknown type %u",
                         (unsigned)s->f_type);
                return -4;
            }
            /* Checked against the cap before anything is allocated for it. */
            if (s->f_len > s->cap) {
                snprintf(s->fault_msg, sizeof s->fault_msg,
                         "a frame of %lu bytes, above the cap of %lu",
                         (unsigned long)s->f_len, (unsigned long)s->cap);
                return -4;
            }
            if (!s->buf || s->buf_room < (size_t)s->f_len + 1) {
                unsigned char *nb = (unsigned char *)realloc(s->buf, (size_t)s->f_len + 1);
                if (!nb) return -5;
                s->buf = nb;
                s->buf_room = (size_t)s->f_len + 1;
            }
            s->in_payload = 1;
            s->got = 0;
        }
        while (s->got < s->f_len) {
            ssize_t n = read(s->from_stub, s->buf + s->got, s->f_len - s->got);
            if (n < 0) {
                if (errno == EINTR) continue;
                return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -3;
            }
            if (n == 0) return -2;
            s->got += (size_t)n;
        }
        s->buf[s->f_len] = '\0';
        s->in_payload = 0;
        s->head_got = 0;
        return 1;
    }
}

/* A LOG frame: to the callback. 0, or PLUGJAIL_E_PROTOCOL (malformed; reported). */
static inline int pjh_log_frame(struct plugjail_session *s, struct plugjail_error *err) {
    if (s->f_len < 4) return pjh_violation(s, err, "a LOG frame without a level");
    uint32_t level = pjh_u32(s->buf);
    if (level > PLUGJAIL_LEVEL_OUTPUT)
        return pjh_violation(s, err, "a LOG frame of unknown level %lu", (unsigned long)level);
    if (s->on_log) s->on_log(s->log_user, level, s->buf + 4, s->f_len - 4);
    return 0;
}

/* An ERROR payload: kind, status, message (<= 4096 bytes of UTF-8). 0, or
 * PLUGJAIL_E_PROTOCOL (malformed; reported). */
static inline int pjh_error_payload(struct plugjail_session *s, uint32_t *kind, int32_t *status,
                                    struct plugjail_error *err) {
    *kind = 0;
    *status = 0;
    if (s->f_len < 8) return pjh_violation(s, err, "an ERROR frame too short");
    *kind = pjh_u32(s->buf);
    *status = (int32_t)pjh_u32(s->buf + 4);
    if (*kind < PLUGJAIL_ERROR_PLUGIN || *kind > PLUGJAIL_ERROR_FILTER_FAILED)
        return pjh_violation(s, err, "an ERROR frame of unknown kind %lu", (unsigned long)*kind);
    size_t n = s->f_len - 8;
    if (n > PJH_MAX_ERROR_MESSAGE)
        return pjh_violation(s, err, "an ERROR message of %lu bytes (at most 4096)",
                             (unsigned long)n);
    if (!pjh_valid_utf8(s->buf + 8, n))
        return pjh_violation(s, err, "an ERROR message that is not UTF-8");
    return 0;
}

/* The HELLO payload, checked and kept: 0, or PLUGJAIL_E_PROTOCOL / PLUGJAIL_E_NOMEM. */
static inline int pjh_hello_frame(struct plugjail_session *s, struct plugjail_error *err) {
    const unsigned char *p = s->buf;
    size_t n = s->f_len, at = 0;
    if (n < 8) return pjh_violation(s, err, "a HELLO frame too short");
    uint32_t proto = pjh_u32(p), abi = pjh_u32(p + 4);
    at = 8;
    if (proto != 1)
        return pjh_violation(s, err, "HELLO says protocol version %lu; this client speaks 1",
                             (unsigned long)proto);
    if (abi != 1)
        return pjh_violation(s, err, "HELLO says ABI version %lu; this client knows 1",
                             (unsigned long)abi);
    /* First pass: check everything and size the copy. */
    size_t names_start = at, count = 0, bytes = 0;
    for (int i = 0; i < 2; i++) {
        if (at >= n || at + 1 + p[at] > n || !pjh_check_name(p + at + 1, p[at]))
            return pjh_violation(s, err, "HELLO: a bad plugin %s", i ? "version" : "name");
        bytes += (size_t)p[at] + 1;
        at += 1 + (size_t)p[at];
    }
    if (at + 2 > n) return pjh_violation(s, err, "HELLO: no method count");
    count = pjh_u16(p + at);
    at += 2;
    if (count > PJH_MAX_METHODS) return pjh_violation(s, err, "HELLO: more than 1024 methods");
    size_t methods_start = at;
    for (size_t i = 0; i < count; i++) {
        if (at >= n || at + 1 + p[at] > n || !pjh_check_name(p + at + 1, p[at]))
            return pjh_violation(s, err, "HELLO: a bad method name");
        /* no name twice */
        for (size_t k = methods_start; k < at; k += 1 + (size_t)p[k]) {
            if (p[k] == p[at] && memcmp(p + k + 1, p + at + 1, p[at]) == 0)
                return pjh_violation(s, err, "HELLO: a method listed twice");
        }
        bytes += (size_t)p[at] + 1;
        at += 1 + (size_t)p[at];
    }
    if (at != n) return pjh_violation(s, err, "HELLO: bytes after the last method");
    /* One allocation: the method pointers, then the NUL-terminated names. */
    size_t ptrs = (count + 1) * sizeof(char *);
    char *mem = (char *)malloc(ptrs + bytes);
    if (!mem) {
        pjh_signal(s, SIGTERM);
        pjh_channel_over(s);
        return pjh_fail(err, PLUGJAIL_E_NOMEM, ENOMEM, "out of memory for HELLO");
    }
    const char **list = (const char **)(void *)mem;
    char *str = mem + ptrs;
    const char *names[2];
    at = names_start;
    for (int i = 0; i < 2; i++) {
        size_t k = p[at];
        memcpy(str, p + at + 1, k);
        str[k] = '\0';
        names[i] = str;
        str += k + 1;
        at += 1 + k;
    }
    at = methods_start;
    for (size_t i = 0; i < count; i++) {
        size_t k = p[at];
        memcpy(str, p + at + 1, k);
        str[k] = '\0';
        list[i] = str;
        str += k + 1;
        at += 1 + k;
    }
    list[count] = NULL;
    s->hello_mem = mem;
    s->hello.protocol_version = proto;
    s->hello.abi_version = abi;
    s->hello.name = names[0];
    s->hello.version = names[1];
    s->hello.method_count = count;
    s->hello.methods = list;
    s->phase = PJH_READY;
    return 0;
}

/* A frame that arrived outside a call: SESSION, then LOG* and HELLO (or a startup
 * ERROR), then LOG only. 0: handled; else the session is over, and the code says why
 * (PLUGJAIL_E_STARTUP: the plugin did not start; PLUGJAIL_E_PROTOCOL: a violation). */
static inline int pjh_frame_outside_call(struct plugjail_session *s, struct plugjail_error *err) {
    if (s->phase == PJH_WANT_SESSION) {
        if (s->f_type != PJH_SESSION || s->f_id != 0)
            return pjh_violation(s, err,
                                 "the first frame is not SESSION (type %u); is plugjail older "
                                 "than this client?",
                                 (unsigned)s->f_type);
        if (s->f_len < 24) return pjh_violation(s, err, "a SESSION frame too short");
        uint32_t version = pjh_u32(s->buf), cap = pjh_u32(s->buf + 4);
        if (version != 1)
            return pjh_violation(s, err, "SESSION says protocol version %lu; this client "
                                         "speaks 1",
                                 (unsigned long)version);
        if (cap < PJH_MIN_CAP)
            return pjh_violation(s, err, "SESSION: a frame cap of %lu (at least 4096)",
                                 (unsigned long)cap);
        s->cap = cap;
        s->limits.protocol_version = version;
        s->limits.max_message = cap;
        s->limits.call_time_ms = pjh_u64(s->buf + 8);
        s->limits.idle_time_ms = pjh_u64(s->buf + 16);
        s->phase = PJH_WANT_HELLO;
        return 0;
    }
    if (s->f_type == PJH_LOG) return pjh_log_frame(s, err);
    if (s->phase == PJH_WANT_HELLO && s->f_type == PJH_HELLO && s->f_id == 0)
        return pjh_hello_frame(s, err);
    if (s->phase == PJH_WANT_HELLO && s->f_type == PJH_ERROR && s->f_id == 0) {
        uint32_t kind = 0;
        int32_t status = 0;
        int bad = pjh_error_payload(s, &kind, &status, err);
        if (bad) return bad;
        if (kind < PLUGJAIL_ERROR_LOAD_FAILED)
            return pjh_violation(s, err, "a startup ERROR of kind %s",
                                 plugjail_error_kind_name(kind));
        size_t n = s->f_len - 8;
        memcpy(s->startup_msg, s->buf + 8, n);
        s->startup_msg[n] = '\0';
        s->startup_len = n;
        s->startup_status = status;
        s->have_startup = 1;
        pjh_channel_over(s);
        return pjh_fail_plugin(err, PLUGJAIL_E_STARTUP, kind, status, s->buf + 8, n);
    }
    if (s->f_type == PJH_SESSION) return pjh_violation(s, err, "a second SESSION frame");
    if (s->f_type == PJH_HELLO) return pjh_violation(s, err, "a second HELLO");
    static const char *const names[] = {"?",   "HELLO", "CALL", "RESULT",
                                        "ERROR", "LOG", "SHUTDOWN", "SESSION"};
    return pjh_violation(s, err, "%s for call %llu %s", names[s->f_type],
                         (unsigned long long)s->f_id,
                         s->phase == PJH_WANT_HELLO ? "before HELLO" : "outside a call");
}

/* The end of the channel while waiting (not in a call): what to report. */
static inline int pjh_ended(struct plugjail_session *s, int rc, struct plugjail_error *err,
                            int delivered) {
    int e = errno;
    if (PJH_LOAD(&s->cancelled)) return pjh_cancelled(s, err);
    pjh_channel_over(s);
    if (rc == -3)
        return pjh_fail(err, PLUGJAIL_E_IO, e, "reading the channel: %s", strerror(e));
    if (rc == -5) {
        pjh_signal(s, SIGTERM);
        return pjh_fail(err, PLUGJAIL_E_NOMEM, ENOMEM, "out of memory for a frame");
    }
    if (!delivered)
        return pjh_fail(err, PLUGJAIL_E_NOT_DELIVERED, 0,
                        "the jail ended before the call reached it; close() gives the verdict");
    return pjh_fail(err, PLUGJAIL_E_ENDED, 0, "the session has ended%s; close() gives the verdict",
                    rc == -2 ? " in the middle of a frame" : "");
}

/* Waits until `deadline` (< 0: none) for something to read on from_stub (or a wake-up);
 * when `write_fd` >= 0 also for room to write there. Returns poll's result (0: timed out),
 * or -1 with errno. Sets *woken when cancel() woke us. */
static inline int pjh_wait(struct plugjail_session *s, int write_fd, int64_t deadline, int *woken,
                           int *can_write) {
    struct pollfd fds[3];
    nfds_t n = 0;
    fds[n].fd = s->from_stub;
    fds[n].events = POLLIN;
    fds[n++].revents = 0;
    fds[n].fd = s->wake_r;
    fds[n].events = POLLIN;
    fds[n++].revents = 0;
    if (write_fd >= 0) {
        fds[n].fd = write_fd;
        fds[n].events = POLLOUT;
        fds[n++].revents = 0;
    }
    int r;
    do {
        r = poll(fds, n, pjh_poll_timeout(deadline));
    } while (r < 0 && errno == EINTR);
    *woken = r > 0 && (fds[1].revents & POLLIN);
    *can_write = r > 0 && n == 3 && fds[2].revents != 0;
    return r;
}

/* Reads SESSION and HELLO (LOG frames before them go to the callback). */
static inline int plugjail_session_start(struct plugjail_session *s, struct plugjail_error *err) {
    if (!s) return pjh_fail(err, PLUGJAIL_E_INVALID, EINVAL, "no session");
    if (PJH_LOAD(&s->cancelled)) return pjh_cancelled(s, err);
    if (s->phase == PJH_READY) {
        pjh_clear(err);
        return 0;
    }
    if (s->phase == PJH_OVER)
        return pjh_fail(err, PLUGJAIL_E_ENDED, 0,
                        "the session has ended; close() gives the verdict");
    int64_t deadline = pjh_now_us() + s->start_timeout_ms * 1000;
    for (;;) {
        int rc = pjh_read_step(s);
        if (rc == 1) {
            int r = pjh_frame_outside_call(s, err);
            if (r != 0) return r;
            if (s->phase == PJH_READY) {
                pjh_clear(err);
                return 0;
            }
            continue;
        }
        if (rc == -4) {
            char why[sizeof s->fault_msg];
            memcpy(why, s->fault_msg, sizeof why);
            return pjh_violation(s, err, "%s", why);
        }
        if (rc < 0) {
            if (rc == -1 && s->phase == PJH_WANT_SESSION && !PJH_LOAD(&s->cancelled)) {
                pjh_channel_over(s);
                return pjh_fail(err, PLUGJAIL_E_ENDED, 0,
                                "plugjail serve ended before the session began (bad profile or "
                                "plugin, or no jail here?); close() gives the verdict");
            }
            if (rc == -1 && !PJH_LOAD(&s->cancelled)) {
                pjh_channel_over(s);
                return pjh_fail(err, PLUGJAIL_E_ENDED, 0,
                                "the jail ended before the plugin said HELLO; close() gives "
                                "the verdict");
            }
            return pjh_ended(s, rc, err, 1);
        }
        int woken = 0, can_write = 0;
        int w = pjh_wait(s, -1, deadline, &woken, &can_write);
        if (woken) return pjh_cancelled(s, err);
        if (w == 0 && pjh_now_us() < deadline) continue;
        if (w == 0)
            return pjh_deadline_passed(s, s->start_timeout_ms, err,
                                       "the plugin did not start (SESSION and HELLO)");
        if (w < 0) {
            int e = errno;
            pjh_signal(s, SIGTERM);
            pjh_channel_over(s);
            return pjh_fail(err, PLUGJAIL_E_IO, e, "poll: %s", strerror(e));
        }
    }
}

/* The plugin's HELLO once plugjail_session_start() (or a call) has read it, else NULL. */
static inline const struct plugjail_hello *
plugjail_session_hello(const struct plugjail_session *s) {
    return s && s->hello_mem ? &s->hello : NULL;
}

/* plugjail's SESSION figures once read (after start), else NULL. */
static inline const struct plugjail_limits *
plugjail_session_limits(const struct plugjail_session *s) {
    return s && s->limits.protocol_version ? &s->limits : NULL;
}

/* The pid of plugjail serve (for the host's own bookkeeping; do not reap it). */
static inline pid_t plugjail_session_pid(const struct plugjail_session *s) {
    return s ? s->pid : (pid_t)-1;
}

/* Blocks SIGPIPE in this thread while a call writes, so that writing to a jail that just
 * died is EPIPE, not a signal that kills the host. */
struct pjh_sigpipe {
    sigset_t old;
    int blocked, was_pending;
};

static inline void pjh_sigpipe_block(struct pjh_sigpipe *g) {
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    g->was_pending = 0;
    g->blocked = pthread_sigmask(SIG_BLOCK, &set, &g->old) == 0;
    if (g->blocked && sigpending(&pending) == 0)
        g->was_pending = sigismember(&pending, SIGPIPE) == 1;
}

/* Consumes the SIGPIPE our write raised (not one that was pending already), then puts the
 * old mask back. */
static inline void pjh_sigpipe_restore(struct pjh_sigpipe *g, int got_epipe) {
    if (!g->blocked) return;
    int e = errno;
    if (got_epipe && !g->was_pending) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        struct timespec zero;
        zero.tv_sec = 0;
        zero.tv_nsec = 0;
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
    g->blocked = 0;
    errno = e;
}

/* The answer to the current call, in s (f_type RESULT or ERROR, buf[0..f_len)): the
 * RESULT handed to the caller, or the plugin's ERROR as E_FAILED. */
static inline int pjh_answer(struct plugjail_session *s, unsigned char **out, size_t *out_len,
                             struct plugjail_error *err) {
    if (s->f_type == PJH_RESULT) {
        s->calls++;
        if (out) {
            *out = s->buf;
            s->buf = NULL;
            s->buf_room = 0;
        }
        if (out_len) *out_len = s->f_len;
        pjh_clear(err);
        return 0;
    }
    uint32_t kind = 0;
    int32_t status = 0;
    int bad = pjh_error_payload(s, &kind, &status, err);
    if (bad) return bad;
    if (kind >= PLUGJAIL_ERROR_LOAD_FAILED)
        return pjh_violation(s, err, "a startup ERROR (%s) after HELLO",
                             plugjail_error_kind_name(kind));
    s->calls++;
    return pjh_fail_plugin(err, PLUGJAIL_E_FAILED, kind, status, s->buf + 8, s->f_len - 8);
}

/* ------------------------------------------------------------------------------------
 * Shared-memory calls: the host's end of the region of docs/protocol.md, "Shared-memory
 * calls" (crates/protocol/src/shm/ is the Rust end; the two must agree on every offset).
 *
 * The plugin shares the stub's address space, so it can write any byte of the region at
 * any moment. Every header and length is copied out of the region once and checked on the
 * copy; the payload is copied into the session's own buffer before it is looked at; the
 * host never sleeps on the futex for more than 20 ms at a time, and reads the pipe (LOG
 * frames, end of file) and checks for cancel() and its deadline between sleeps.
 * ------------------------------------------------------------------------------------ */
#ifdef PJH_HAVE_SHM
enum {
    PJH_SHM_PAGE = 4096,
    PJH_SHM_MIN_ARENA = 8 << 10,
    PJH_SHM_SLICE_MS = 20,
    /* header and control words (byte offsets) */
    PJH_SHM_REQ_SEQ = 64,      /* futex: the latest request's number (host) */
    PJH_SHM_STUB_WAITING = 68, /* 1 while the stub sleeps on REQ_SEQ */
    PJH_SHM_HOST_CPU = 72,     /* the CPU the host last ran on, plus one */
    PJH_SHM_RESP_SEQ = 128,    /* futex: the request last answered (stub) */
    PJH_SHM_HOST_WAITING = 132, /* 1 while the host sleeps on RESP_SEQ */
    PJH_SHM_PIPE_FRAMES = 136, /* frames the stub wrote to the pipe since HELLO (u64) */
    PJH_SHM_STUB_CPU = 144     /* the CPU the stub last ran on, plus one */
};
#define PJH_SHM_MAX_SPIN_US 1000000L

static inline uint32_t *pjh_shm_word(struct plugjail_session *s, size_t at) {
    return (uint32_t *)(void *)(s->shm + at);
}

static inline void pjh_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* The CPU this thread runs on, plus one (0: unknown). */
static inline uint32_t pjh_this_cpu(void) {
    int cpu = sched_getcpu();
    return cpu < 0 ? 0 : (uint32_t)cpu + 1;
}

/* Iterations of the stub's spin loop (one load and a pause each) in `us` microseconds here,
 * measured once per process: the stub spins by count, without a clock. */
static inline uint64_t pjh_spin_iters(long us) {
    static uint64_t per_ms; /* a benign race: every thread measures the same figure */
    if (!per_ms) {
        uint32_t word = 0;
        const uint64_t n = 200000;
        int64_t t = pjh_now_us();
        for (uint64_t i = 0; i < n; i++) {
            pjh_cpu_relax();
            (void)__atomic_load_n(&word, __ATOMIC_ACQUIRE);
        }
        int64_t took = pjh_now_us() - t;
        per_ms = n * 1000 / (uint64_t)(took > 0 ? took : 1);
        if (!per_ms) per_ms = 1;
    }
    return per_ms * (uint64_t)us / 1000;
}

static inline long pjh_futex(uint32_t *word, int op, uint32_t val, const struct timespec *t) {
    return syscall(SYS_futex, word, op, val, t, NULL, 0);
}

static inline size_t pjh_page_up(size_t n) {
    return (n + PJH_SHM_PAGE - 1) / PJH_SHM_PAGE * PJH_SHM_PAGE;
}

/* Makes the region for a session that asked for it: a memfd sized for the arena, mapped,
 * its header written, sealed against shrinking, growing and more seals. Returns the
 * descriptor for plugjail serve (the caller closes it), or -1 with the reason kept in
 * s->shm_unavailable (the session then calls over the pipe). */
static inline int pjh_shm_create(struct plugjail_session *s, const struct plugjail_options *o) {
    size_t arena = o->shm_arena ? o->shm_arena : (size_t)1 << 20;
    if (arena < PJH_SHM_MIN_ARENA) arena = PJH_SHM_MIN_ARENA;
    long spin = o->shm_spin_us == 0 ? 50 : o->shm_spin_us < 0 ? 0 : o->shm_spin_us;
    if (spin > PJH_SHM_MAX_SPIN_US) spin = PJH_SHM_MAX_SPIN_US;
    if (arena > UINT32_MAX - PJH_HEADER || arena > SIZE_MAX / 4) {
        snprintf(s->shm_unavailable, sizeof s->shm_unavailable, "an arena of %zu bytes is too "
                 "large (a frame's length is 32 bits)", arena);
        return -1;
    }
    size_t area = arena + PJH_HEADER, resp = pjh_page_up(area) + PJH_SHM_PAGE;
    size_t len = resp + pjh_page_up(area);
    const char *what = "memfd_create";
    int fd = (int)syscall(SYS_memfd_create, "plugjail-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    void *map = MAP_FAILED;
    if (fd >= 0) {
        what = "ftruncate";
        if (ftruncate(fd, (off_t)len) == 0) {
            what = "fcntl(F_ADD_SEALS)";
            if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0) {
                what = "mmap";
                map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            }
        }
    }
    if (map == MAP_FAILED) {
        snprintf(s->shm_unavailable, sizeof s->shm_unavailable, "%s: %s", what, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    unsigned char *h = (unsigned char *)map;
    memcpy(h, "PJSHM\0v1", 8);
    pjh_put(h + 8, 1, 4);
    pjh_put(h + 12, (uint64_t)spin, 4);
    pjh_put(h + 16, len, 8);
    pjh_put(h + 24, PJH_SHM_PAGE, 8);
    pjh_put(h + 32, area, 8);
    pjh_put(h + 40, resp, 8);
    pjh_put(h + 48, area, 8);
    pjh_put(h + 56, pjh_spin_iters(spin), 8);
    s->shm = h;
    s->shm_len = len;
    s->shm_req = PJH_SHM_PAGE;
    s->shm_req_len = area;
    s->shm_resp = resp;
    s->shm_resp_len = area;
    s->shm_spin_us = spin;
    s->shm_scrub = o->shm_scrub_inputs != 0;
    return fd;
}

/* Writes a frame (header, method, input) into the request area and announces it; wakes
 * the stub only if it said it sleeps. The caller checked that it fits. */
static inline uint32_t pjh_shm_send(struct plugjail_session *s, uint16_t type, uint64_t id,
                                    const char *method, size_t mlen, const void *input,
                                    size_t len) {
    size_t payload = method ? 1 + mlen + len : len;
    unsigned char *p = s->shm + s->shm_req;
    unsigned char head[PJH_HEADER + 1];
    pjh_put(head, payload, 4);
    pjh_put(head + 4, type, 2);
    pjh_put(head + 6, 0, 2);
    pjh_put(head + 8, id, 8);
    memcpy(p, head, PJH_HEADER);
    size_t at = PJH_HEADER;
    if (method) {
        p[at++] = (unsigned char)mlen;
        memcpy(p + at, method, mlen);
        at += mlen;
    }
    if (len) memcpy(p + at, input, len);
    s->shm_written = at + len;
    __atomic_store_n(pjh_shm_word(s, PJH_SHM_HOST_CPU), pjh_this_cpu(), __ATOMIC_RELAXED);
    uint32_t seq = ++s->shm_seq;
    uint32_t *word = pjh_shm_word(s, PJH_SHM_REQ_SEQ);
    __atomic_store_n(word, seq, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(pjh_shm_word(s, PJH_SHM_STUB_WAITING), __ATOMIC_SEQ_CST))
        pjh_futex(word, FUTEX_WAKE, 1, NULL);
    return seq;
}

/* Reads the LOG frames waiting in the pipe during a shared-memory call; anything else is
 * a violation (the answer comes through the region). With `finish`, a frame begun is read
 * to its end, within `deadline`. 0, or the call's error (the session has then ended). */
static inline int pjh_shm_drain(struct plugjail_session *s, int finish, int64_t deadline,
                                long deadline_ms, struct plugjail_error *err) {
    for (;;) {
        if (PJH_LOAD(&s->cancelled)) return pjh_cancelled(s, err);
        int rc = pjh_read_step(s);
        if (rc == 1) {
            if (s->f_type != PJH_LOG)
                return pjh_violation(s, err, "a frame of type %u on the pipe during a "
                                             "shared-memory call",
                                     (unsigned)s->f_type);
            int bad = pjh_log_frame(s, err);
            if (bad) return bad;
            s->pipe_frames++;
            continue;
        }
        if (rc == -4) {
            char why[sizeof s->fault_msg];
            memcpy(why, s->fault_msg, sizeof why);
            return pjh_violation(s, err, "%s", why);
        }
        if (rc < 0) return pjh_ended(s, rc, err, 1);
        if (!finish || (!s->head_got && !s->in_payload)) return 0;
        int woken = 0, can_write = 0;
        int w = pjh_wait(s, -1, deadline, &woken, &can_write);
        if (woken) return pjh_cancelled(s, err);
        if (w == 0 && deadline >= 0 && pjh_now_us() >= deadline)
            return pjh_deadline_passed(s, deadline_ms, err, "no answer");
    }
}

/* One call through the region: send, wait (spin, then sleep in slices), copy the answer
 * out once and check the copy. The same results as the pipe's plugjail_session_call. */
static inline int pjh_shm_call(struct plugjail_session *s, uint64_t id, const char *method,
                               size_t mlen, const void *input, size_t len, int64_t start,
                               long deadline_ms, unsigned char **out, size_t *out_len,
                               struct plugjail_error *err) {
    if (1 + mlen + len > s->shm_req_len - PJH_HEADER)
        return pjh_fail(err, PLUGJAIL_E_TOO_LARGE, 0,
                        "an input of %zu bytes does not fit in the shared-memory arena of %zu "
                        "bytes (plugjail_options.shm_arena); nothing was sent",
                        len, s->shm_req_len - PJH_HEADER);
    if (deadline_ms > PJH_FOREVER_MS) deadline_ms = (long)PJH_FOREVER_MS;
    int64_t deadline = deadline_ms > 0 ? start + (int64_t)deadline_ms * 1000 : -1;
    uint32_t seq = pjh_shm_send(s, PJH_CALL, id, method, mlen, input, len);
    uint32_t *resp = pjh_shm_word(s, PJH_SHM_RESP_SEQ);
    uint32_t *waiting = pjh_shm_word(s, PJH_SHM_HOST_WAITING);
    /* No spinning when the stub last ran on this CPU: it could not run meanwhile. (The
     * word is the plugin's to forge; a lie costs at most one spin budget.) */
    uint32_t stub_cpu = __atomic_load_n(pjh_shm_word(s, PJH_SHM_STUB_CPU), __ATOMIC_RELAXED);
    int64_t spin_until = stub_cpu && stub_cpu == pjh_this_cpu() ? 0 : pjh_now_us() + s->shm_spin_us;
    int answered = 0, rc = 0;
    for (uint32_t i = 1; !answered; i++) {
        if (__atomic_load_n(resp, __ATOMIC_ACQUIRE) == seq) answered = 1;
        else if (i % 64 == 0 && pjh_now_us() >= spin_until) break;
        else pjh_cpu_relax();
    }
    for (uint32_t early = 0; !answered;) {
        int64_t now = pjh_now_us();
        if (deadline >= 0 && now >= deadline) {
            rc = pjh_deadline_passed(s, deadline_ms, err, "no answer");
            break;
        }
        __atomic_store_n(waiting, 1, __ATOMIC_SEQ_CST);
        uint32_t seen = __atomic_load_n(resp, __ATOMIC_SEQ_CST);
        if (seen == seq) {
            __atomic_store_n(waiting, 0, __ATOMIC_RELAXED);
            answered = 1;
            break;
        }
        int64_t slice = PJH_SHM_SLICE_MS * 1000;
        if (deadline >= 0 && deadline - now < slice) slice = deadline - now;
        struct timespec ts;
        ts.tv_sec = (time_t)(slice / 1000000);
        ts.tv_nsec = (long)(slice % 1000000) * 1000;
        long r = pjh_futex(resp, FUTEX_WAIT, seen, &ts);
        int e = errno;
        __atomic_store_n(waiting, 0, __ATOMIC_RELAXED);
        if (__atomic_load_n(resp, __ATOMIC_ACQUIRE) == seq) {
            answered = 1;
            break;
        }
        /* Woken early (or a changed word): look again, and read the pipe every eighth
         * time, so a plugin that keeps waking the host cannot keep it from the pipe. */
        if (r == 0 || e == EAGAIN || e == EINTR) {
            if (++early % 8) continue;
        } else if (e != ETIMEDOUT) {
            struct timespec nap = {0, 200000}; /* no futex here: keep time by sleeping */
            nanosleep(&nap, NULL);
        }
        rc = pjh_shm_drain(s, 0, deadline, deadline_ms, err);
        if (rc) break;
    }
    if (s->shm_scrub && s->shm_written) {
        memset(s->shm + s->shm_req, 0, s->shm_written);
        s->shm_written = 0;
    }
    if (rc) return rc;
    /* The answer: the stub's count of pipe frames first (LOG frames it wrote before it
     * answered are read before the call returns), then the header, copied once. */
    uint64_t frames = __atomic_load_n((uint64_t *)(void *)(s->shm + PJH_SHM_PIPE_FRAMES),
                                      __ATOMIC_ACQUIRE);
    unsigned char head[PJH_HEADER];
    memcpy(head, s->shm + s->shm_resp, PJH_HEADER);
    /* s->buf is about to hold the answer: no LOG frame may be half read into it. */
    if (frames != s->pipe_frames || s->head_got || s->in_payload) {
        rc = pjh_shm_drain(s, 1, deadline, deadline_ms, err);
        if (rc) return rc;
    }
    uint32_t flen = pjh_u32(head);
    uint16_t type = pjh_u16(head + 4);
    uint64_t fid = pjh_u64(head + 8);
    size_t area = s->shm_resp_len - PJH_HEADER;
    if (type != PJH_RESULT && type != PJH_ERROR)
        return pjh_violation(s, err, "a frame of type %u in the shared-memory response area",
                             (unsigned)type);
    if (pjh_u16(head + 6) != 0)
        return pjh_violation(s, err, "a shared-memory answer with flags %u",
                             (unsigned)pjh_u16(head + 6));
    if (flen > s->cap || flen > area)
        return pjh_violation(s, err, "a shared-memory answer of %lu bytes exceeds the cap of "
                                     "%lu",
                             (unsigned long)flen,
                             (unsigned long)(s->cap < area ? s->cap : area));
    if (fid != id)
        return pjh_violation(s, err, "an answer for call %llu during call %llu",
                             (unsigned long long)fid, (unsigned long long)id);
    if (!s->buf || s->buf_room < (size_t)flen + 1) {
        unsigned char *nb = (unsigned char *)realloc(s->buf, (size_t)flen + 1);
        if (!nb) {
            pjh_signal(s, SIGTERM);
            pjh_channel_over(s);
            return pjh_fail(err, PLUGJAIL_E_NOMEM, ENOMEM, "out of memory for an answer");
        }
        s->buf = nb;
        s->buf_room = (size_t)flen + 1;
    }
    memcpy(s->buf, s->shm + s->shm_resp + PJH_HEADER, flen);
    s->buf[flen] = '\0';
    s->f_len = flen;
    s->f_type = type;
    s->f_id = fid;
    return pjh_answer(s, out, out_len, err);
}
#endif

/* 1 when the session's calls travel through shared memory. */
static inline int plugjail_session_uses_shm(const struct plugjail_session *s) {
#ifdef PJH_HAVE_SHM
    return s && s->shm != NULL;
#else
    (void)s;
    return 0;
#endif
}

/* Why a session whose options asked for shared memory calls over the pipe (NULL when it
 * does not, or was not asked to). */
static inline const char *plugjail_session_shm_unavailable(const struct plugjail_session *s) {
    return s && s->shm_unavailable[0] ? s->shm_unavailable : NULL;
}

/* Calls `method` with `len` bytes of input. On success (0) *out is the RESULT: a buffer
 * of *out_len bytes, NUL-terminated after them, which the caller free()s (out may be NULL
 * to drop it). On failure a PLUGJAIL_E_* code, err filled, *out NULL:
 *   E_FAILED       the plugin answered ERROR: err->kind, err->status, err->message (its
 *                  text, untrusted). The session goes on, as after E_TOO_LARGE, E_INVALID.
 *   E_TIMEOUT      no answer within deadline_ms: plugjail was sent SIGUSR1 with it, the
 *                  session has ended, and the verdict says `timeout`, kind `host`.
 *   E_CANCELLED, E_PROTOCOL, E_ENDED, E_NOT_DELIVERED, E_STARTUP, E_IO: the session has
 *                  ended; plugjail_session_close() gives the verdict.
 * deadline_ms > 0 bounds the whole call (writing the input included); 0 sets no deadline
 * of the host's own: the profile's call_time (plugjail_session_limits) still ends a call
 * that runs too long, with the verdict `timeout`, kind `call`. The first call reads SESSION
 * and HELLO first (plugjail_session_start), under the start timeout. */
static inline int plugjail_session_call(struct plugjail_session *s, const char *method,
                                        const void *input, size_t len, long deadline_ms,
                                        unsigned char **out, size_t *out_len,
                                        struct plugjail_error *err) {
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!s || !method || (len && !input) || deadline_ms < 0)
        return pjh_fail(err, PLUGJAIL_E_INVALID, EINVAL,
                        "plugjail_session_call: a NULL session, method or input, or a negative "
                        "deadline");
    size_t mlen = strlen(method);
    if (mlen == 0 || mlen > 255)
        return pjh_fail(err, PLUGJAIL_E_INVALID, EINVAL,
                        "a method name is 1 to 255 bytes (this one has %zu)", mlen);
    int64_t start = pjh_now_us();
    int rc = plugjail_session_start(s, err); /* at once when it has started */
    if (rc) return rc;
    if (len > s->cap || 1 + mlen + len > s->cap)
        return pjh_fail(err, PLUGJAIL_E_TOO_LARGE, 0,
                        "an input of %zu bytes does not fit in a frame of at most %lu bytes "
                        "(limits.max_message); nothing was sent",
                        len, (unsigned long)s->cap);
    uint64_t id = s->next_id++;
#ifdef PJH_HAVE_SHM
    if (s->shm) return pjh_shm_call(s, id, method, mlen, input, len, start, deadline_ms, out,
                                    out_len, err);
#endif
    unsigned char head[PJH_HEADER + 1 + 255];
    pjh_put(head, 1 + mlen + len, 4);
    pjh_put(head + 4, PJH_CALL, 2);
    pjh_put(head + 6, 0, 2);
    pjh_put(head + 8, id, 8);
    head[PJH_HEADER] = (unsigned char)mlen;
    memcpy(head + PJH_HEADER + 1, method, mlen);
    struct iovec iov[2];
    iov[0].iov_base = head;
    iov[0].iov_len = PJH_HEADER + 1 + mlen;
    iov[1].iov_base = (void *)(uintptr_t)input;
    iov[1].iov_len = len;
    int niov = len ? 2 : 1, first = 0;
    int writing = 1, epipe = 0;
    if (deadline_ms > PJH_FOREVER_MS) deadline_ms = (long)PJH_FOREVER_MS;
    int64_t deadline = deadline_ms > 0 ? start + (int64_t)deadline_ms * 1000 : -1;
    struct pjh_sigpipe guard;
    pjh_sigpipe_block(&guard);
    int result = 0;
    for (;;) {
        int progress = 0;
        if (writing) {
            ssize_t w = writev(s->to_stub, iov + first, niov - first);
            if (w < 0 && errno == EPIPE) {
                /* No reader: the jail has ended. Read what it said before it went. */
                epipe = 1;
                writing = 0;
            } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                int e = errno;
                pjh_signal(s, SIGTERM);
                pjh_channel_over(s);
                result = pjh_fail(err, PLUGJAIL_E_IO, e, "writing the call: %s", strerror(e));
                break;
            } else if (w > 0) {
                progress = 1;
                size_t left = (size_t)w;
                while (first < niov && left >= iov[first].iov_len) {
                    left -= iov[first].iov_len;
                    first++;
                }
                if (first < niov) {
                    iov[first].iov_base = (char *)iov[first].iov_base + left;
                    iov[first].iov_len -= left;
                } else {
                    writing = 0;
                }
            }
            if (!writing) {
                pjh_sigpipe_restore(&guard, epipe);
            }
        }
        int rc = pjh_read_step(s);
        if (rc == 1) {
            if (s->f_type == PJH_LOG) {
                result = pjh_log_frame(s, err);
                if (result) break;
                continue;
            }
            if ((s->f_type == PJH_RESULT || s->f_type == PJH_ERROR) && s->f_id == id) {
                if (writing || epipe) {
                    result = pjh_violation(s, err, "an answer to call %llu before the whole "
                                                   "call was sent",
                                           (unsigned long long)id);
                    break;
                }
                result = pjh_answer(s, out, out_len, err);
                break;
            }
            static const char *const names[] = {"?",   "HELLO", "CALL", "RESULT",
                                                "ERROR", "LOG", "SHUTDOWN", "SESSION"};
            result = pjh_violation(s, err, "%s for call %llu during call %llu",
                                   names[s->f_type], (unsigned long long)s->f_id,
                                   (unsigned long long)id);
            break;
        }
        if (rc == -4) {
            char why[sizeof s->fault_msg];
            memcpy(why, s->fault_msg, sizeof why);
            result = pjh_violation(s, err, "%s", why);
            break;
        }
        if (rc < 0) {
            result = pjh_ended(s, rc, err, !writing && !epipe);
            break;
        }
        if (progress) continue;
        int woken = 0, can_write = 0;
        int w = pjh_wait(s, writing ? s->to_stub : -1, deadline, &woken, &can_write);
        if (woken) {
            result = pjh_cancelled(s, err);
            break;
        }
        if (w == 0 && pjh_now_us() < deadline) continue;
        if (w == 0) {
            result = pjh_deadline_passed(s, deadline_ms, err, "no answer");
            break;
        }
        if (w < 0) {
            int e = errno;
            pjh_signal(s, SIGTERM);
            pjh_channel_over(s);
            result = pjh_fail(err, PLUGJAIL_E_IO, e, "poll: %s", strerror(e));
            break;
        }
    }
    pjh_sigpipe_restore(&guard, epipe);
    return result;
}

/* Ends the session from any thread, at any moment until plugjail_session_close() has
 * returned (also from a signal handler: atomics, kill and write only). plugjail serve gets
 * SIGTERM (it kills the jail; the verdict says `signaled`, with a message naming
 * SIGTERM), and a call waiting in another thread returns PLUGJAIL_E_CANCELLED at once.
 * A second cancel does nothing more. close() is still needed, and reaps plugjail serve
 * only once no cancel() is in progress, so a cancel never signals a recycled pid. */
static inline void plugjail_session_cancel(struct plugjail_session *s) {
    if (!s) return;
    int e = errno;
    PJH_ADD(&s->busy, 1);
    if (PJH_LOAD(&s->live)) {
        PJH_STORE(&s->cancelled, 1);
        kill(s->pid, SIGTERM);
        char b = 1;
        if (write(s->wake_w, &b, 1) < 0) {
            /* full: a wake-up is pending already */
        }
    }
    PJH_SUB(&s->busy, 1);
    errno = e;
}

static inline void pjh_session_free(struct plugjail_session *s) {
    pjh_close_fd(&s->to_stub);
    pjh_close_fd(&s->from_stub);
    pjh_close_fd(&s->status_fd);
    pjh_close_fd(&s->wake_r);
    pjh_close_fd(&s->wake_w);
    free(s->buf);
    free(s->hello_mem);
#ifdef PJH_HAVE_SHM
    if (s->shm) munmap(s->shm, s->shm_len);
#endif
    free(s);
}

/* Starts `plugjail serve` for the plugin: returns once the process runs (the jail is built
 * and the plugin loaded meanwhile; plugjail_session_start() or the first call waits for
 * it). NULL on failure, with err: E_NOT_FOUND (no plugjail executable; the message says
 * where it looked), E_INVALID (no profile or plugin), E_SPAWN, E_NOMEM. */
static inline struct plugjail_session *plugjail_session_open(const struct plugjail_options *o,
                                                             struct plugjail_error *err) {
    if (!o || !o->profile || !*o->profile || !o->plugin || !*o->plugin) {
        pjh_fail(err, PLUGJAIL_E_INVALID, EINVAL,
                 "plugjail_options: profile and plugin are required");
        return NULL;
    }
    char *exe = pjh_find_plugjail(o->plugjail, err);
    if (!exe) return NULL;
    struct plugjail_session *s = (struct plugjail_session *)calloc(1, sizeof *s);
    if (!s) {
        free(exe);
        pjh_fail(err, PLUGJAIL_E_NOMEM, ENOMEM, "out of memory");
        return NULL;
    }
    PJH_ATOMIC_INIT(&s->live, 0);
    PJH_ATOMIC_INIT(&s->busy, 0);
    PJH_ATOMIC_INIT(&s->cancelled, 0);
    s->to_stub = s->from_stub = s->status_fd = s->wake_r = s->wake_w = -1;
    s->cap = PJH_MIN_CAP;
    s->next_id = 1;
    s->phase = PJH_WANT_SESSION;
    s->on_log = o->on_log;
    s->log_user = o->log_user;
    s->start_timeout_ms = o->start_timeout_ms > 0 ? o->start_timeout_ms : 30000;
    s->close_timeout_ms = o->close_timeout_ms > 0 ? o->close_timeout_ms : 10000;
    if (s->start_timeout_ms > PJH_FOREVER_MS) s->start_timeout_ms = PJH_FOREVER_MS;
    if (s->close_timeout_ms > PJH_FOREVER_MS) s->close_timeout_ms = PJH_FOREVER_MS;

    /* Three pipes for plugjail serve: the channel (both ways) and the status pipe. The
     * child's ends are moved to 10 and above (still close-on-exec) so that each dup2 in
     * the child lands on 3, 4, 5 without overwriting another one. */
    int to[2] = {-1, -1}, from[2] = {-1, -1}, status[2] = {-1, -1}, wake[2] = {-1, -1};
    int child[4] = {-1, -1, -1, -1};
    size_t nextra = 0;
    if (o->extra_args)
        while (o->extra_args[nextra]) nextra++;
    char **argv = (char **)calloc(13 + nextra, sizeof(char *));
#ifdef PJH_HAVE_SHM
    int shm_fd = o->shm ? pjh_shm_create(s, o) : -1;
#else
    int shm_fd = -1;
    if (o->shm)
        snprintf(s->shm_unavailable, sizeof s->shm_unavailable,
                 "this build of plugjail/host.h has no shared memory (it needs Linux, "
                 "_GNU_SOURCE and GCC or clang)");
#endif
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int have_fa = 0, have_attr = 0, e = 0;
    const char *what = "pipe";
    if (!argv) e = ENOMEM;
    if (!e && (pjh_pipe(to) || pjh_pipe(from) || pjh_pipe(status) || pjh_pipe(wake))) e = errno;
    if (!e) {
        int src[4];
        src[0] = to[0];
        src[1] = from[1];
        src[2] = status[1];
        src[3] = shm_fd;
        for (int i = 0; i < 4 && !e; i++) {
            if (src[i] < 0) continue;
            child[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 10);
            if (child[i] < 0) e = errno;
        }
        what = "fcntl(F_DUPFD_CLOEXEC)";
    }
    if (!e && (pjh_set_nonblock(to[1]) || pjh_set_nonblock(from[0]) ||
               pjh_set_nonblock(status[0]) || pjh_set_nonblock(wake[0]) ||
               pjh_set_nonblock(wake[1]))) {
        e = errno;
        what = "fcntl(O_NONBLOCK)";
    }
    if (!e) {
        what = "posix_spawn_file_actions";
        e = posix_spawn_file_actions_init(&fa);
        have_fa = e == 0;
    }
    if (!e) e = posix_spawn_file_actions_adddup2(&fa, child[0], PJH_FD_IN);
    if (!e) e = posix_spawn_file_actions_adddup2(&fa, child[1], PJH_FD_OUT);
    if (!e) e = posix_spawn_file_actions_adddup2(&fa, child[2], PJH_FD_STATUS);
    if (!e && child[3] >= 0) e = posix_spawn_file_actions_adddup2(&fa, child[3], PJH_FD_SHM);
    if (!e) e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!e) e = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (!e && o->quiet) e = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (!e) {
        /* plugjail serve starts with no signal blocked and the signals it relies on at
         * their defaults, whatever the host did with its own. */
        what = "posix_spawnattr";
        e = posix_spawnattr_init(&attr);
        have_attr = e == 0;
    }
    if (!e) {
        sigset_t none, dflt;
        sigemptyset(&none);
        sigemptyset(&dflt);
        sigaddset(&dflt, SIGPIPE);
        sigaddset(&dflt, SIGUSR1);
        sigaddset(&dflt, SIGTERM);
        sigaddset(&dflt, SIGCHLD);
        e = posix_spawnattr_setsigmask(&attr, &none);
        if (!e) e = posix_spawnattr_setsigdefault(&attr, &dflt);
        if (!e) e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    }
    if (!e) {
        size_t k = 0;
        argv[k++] = exe;
        argv[k++] = (char *)"serve";
        argv[k++] = (char *)"--profile";
        argv[k++] = (char *)o->profile;
        argv[k++] = (char *)"--plugin";
        argv[k++] = (char *)o->plugin;
        argv[k++] = (char *)"--fds";
        argv[k++] = (char *)"3,4";
        argv[k++] = (char *)"--status-fd";
        argv[k++] = (char *)"5";
        if (child[3] >= 0) {
            argv[k++] = (char *)"--shm-fd";
            argv[k++] = (char *)PJH_FD_SHM_ARG;
        }
        for (size_t i = 0; i < nextra; i++) argv[k++] = (char *)o->extra_args[i];
        argv[k] = NULL;
        what = "posix_spawn";
        pid_t pid;
        e = posix_spawn(&pid, exe, &fa, &attr, argv, environ);
        if (!e) s->pid = pid;
    }
    if (have_fa) posix_spawn_file_actions_destroy(&fa);
    if (have_attr) posix_spawnattr_destroy(&attr);
    for (int i = 0; i < 4; i++) pjh_close_fd(&child[i]);
    pjh_close_fd(&shm_fd);
    pjh_close_fd(&to[0]);
    pjh_close_fd(&from[1]);
    pjh_close_fd(&status[1]);
    s->to_stub = to[1];
    s->from_stub = from[0];
    s->status_fd = status[0];
    s->wake_r = wake[0];
    s->wake_w = wake[1];
    if (e) {
        if (!argv) pjh_fail(err, PLUGJAIL_E_NOMEM, e, "out of memory");
        else pjh_fail(err, PLUGJAIL_E_SPAWN, e, "cannot start %s: %s: %s", exe, what, strerror(e));
        free(argv);
        free(exe);
        pjh_session_free(s);
        return NULL;
    }
    free(argv);
    free(exe);
    PJH_STORE(&s->live, 1);
    pjh_clear(err);
    return s;
}

/* Status-pipe reading for close(): appends what is there; 1 at end of file (or a read
 * error). Past PJH_VERDICT_MAX bytes (or when memory runs out) it reads and drops the rest,
 * so that plugjail can finish writing and exit, and sets *dropped. */
static inline int pjh_read_status(struct plugjail_session *s, char **buf, size_t *len,
                                  size_t *room, int *dropped) {
    char sink[4096];
    for (;;) {
        if (!*dropped && *len == *room) {
            size_t nr = *room ? *room * 2 : 4096;
            if (nr > PJH_VERDICT_MAX) nr = PJH_VERDICT_MAX;
            char *nb = nr > *room ? (char *)realloc(*buf, nr) : NULL;
            if (nb) {
                *buf = nb;
                *room = nr;
            } else {
                *dropped = 1;
            }
        }
        char *dst = *dropped ? sink : *buf + *len;
        size_t want = *dropped ? sizeof sink : *room - *len;
        ssize_t n = read(s->status_fd, dst, want);
        if (n > 0) {
            if (!*dropped) *len += (size_t)n;
            continue;
        }
        if (n == 0) return 1;
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
    }
}

/* Ends the session and frees it; fills v with the verdict. When the session is healthy it
 * sends SHUTDOWN (the plugin's shutdown() runs) and closes the channel; LOG frames that
 * still come go to the callback. It waits up to close_timeout_ms for plugjail serve to
 * finish, then stops it (SIGTERM, and SIGKILL after as long again), and reaps it.
 * Returns 0 with the verdict, or PLUGJAIL_E_VERDICT when plugjail delivered none (or a
 * malformed one): v->outcome is then "unknown", v->message says why, v->exit_status is the
 * process's. Either way free v with plugjail_verdict_free(). What the client saw is merged
 * in: a protocol violation makes the outcome `protocol_violation` (the message says what),
 * `calls` is the calls answered, a startup ERROR's status and message complete
 * `plugin_failure`, and host_fault says what ended the session on this side. */
static inline int plugjail_session_close(struct plugjail_session *s, struct plugjail_verdict *v) {
    if (!v) return PLUGJAIL_E_INVALID;
    pjh_verdict_defaults(v);
    if (!s) return PLUGJAIL_E_INVALID;
    int64_t t0 = pjh_now_us(), grace = s->close_timeout_ms * 1000;
    struct plugjail_error scratch;
    if (PJH_LOAD(&s->cancelled) && s->fault == PLUGJAIL_FAULT_NONE)
        s->fault = PLUGJAIL_FAULT_CANCELLED;
    /* 1. SHUTDOWN, when the session is healthy; then our write end closes either way (a
     *    stub that is waiting for a call sees end of file and exits 0). */
#ifdef PJH_HAVE_SHM
    if (s->shm && s->to_stub >= 0 && s->phase == PJH_READY && s->fault == PLUGJAIL_FAULT_NONE)
        pjh_shm_send(s, PJH_SHUTDOWN, 0, NULL, 0, NULL, 0);
    else
#endif
    if (s->to_stub >= 0 && s->phase == PJH_READY && s->fault == PLUGJAIL_FAULT_NONE) {
        unsigned char frame[PJH_HEADER];
        memset(frame, 0, sizeof frame);
        frame[4] = PJH_SHUTDOWN;
        struct pjh_sigpipe guard;
        pjh_sigpipe_block(&guard);
        int epipe = 0;
        for (;;) {
            ssize_t w = write(s->to_stub, frame, sizeof frame);
            if (w == (ssize_t)sizeof frame) break;
            if (w < 0 && errno == EINTR) continue;
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                /* A full pipe: the stub is not reading. Wait a little, within the grace. */
                struct pollfd p;
                p.fd = s->to_stub;
                p.events = POLLOUT;
                p.revents = 0;
                if (poll(&p, 1, pjh_poll_timeout(t0 + grace)) > 0) continue;
                break;
            }
            epipe = w < 0 && errno == EPIPE;
            break; /* a 16-byte write to a pipe is all or nothing */
        }
        pjh_sigpipe_restore(&guard, epipe);
    }
    pjh_close_fd(&s->to_stub);

    /* 2. Until plugjail serve is done: the rest of the channel (LOG frames from shutdown(),
     *    or the start of a session never called) and the verdict on the status pipe. */
    char *vbuf = NULL;
    size_t vlen = 0, vroom = 0;
    int too_long = 0, stage = 0; /* 0 waiting, 1 SIGTERM sent, 2 SIGKILL sent */
    int64_t verdict_at = -1;      /* when the status pipe ended */
    for (;;) {
        if (s->from_stub >= 0) {
            for (;;) {
                int rc = pjh_read_step(s);
                if (rc == 1) {
                    if (pjh_frame_outside_call(s, &scratch) != 0) break; /* channel over */
                    continue;
                }
                if (rc == -4) {
                    char why[sizeof s->fault_msg];
                    memcpy(why, s->fault_msg, sizeof why);
                    pjh_violation(s, &scratch, "%s", why);
                } else if (rc < 0) {
                    pjh_channel_over(s);
                }
                break;
            }
        }
        if (s->status_fd >= 0 && pjh_read_status(s, &vbuf, &vlen, &vroom, &too_long) == 1) {
            pjh_close_fd(&s->status_fd);
            verdict_at = pjh_now_us();
        }
        int64_t now = pjh_now_us();
        /* plugjail serve is done. The channel ends with the jail; a second more for the
         * last LOG frames, unless a descriptor leaked into some other process. */
        if (s->status_fd < 0 && (s->from_stub < 0 || now >= verdict_at + 1000000)) break;
        if (now >= t0 + grace && stage == 0) {
            pjh_signal(s, SIGTERM);
            stage = 1;
        } else if (now >= t0 + 2 * grace && stage == 1) {
            pjh_signal(s, SIGKILL);
            stage = 2;
        } else if (now >= t0 + 3 * grace && stage == 2) {
            break; /* a descriptor leaked into some other process: stop waiting for it */
        }
        struct pollfd fds[3];
        nfds_t n = 0;
        if (s->from_stub >= 0) {
            fds[n].fd = s->from_stub;
            fds[n].events = POLLIN;
            fds[n++].revents = 0;
        }
        if (s->status_fd >= 0) {
            fds[n].fd = s->status_fd;
            fds[n].events = POLLIN;
            fds[n++].revents = 0;
        }
        int64_t next = t0 + (stage + 1) * grace;
        if (verdict_at >= 0 && verdict_at + 1000000 < next) next = verdict_at + 1000000;
        int r = poll(fds, n, pjh_poll_timeout(next));
        if (r < 0 && errno != EINTR) break;
    }
    pjh_close_fd(&s->from_stub);
    pjh_close_fd(&s->status_fd);

    /* 3. Reap, once no cancel() is in progress: after this no cancel() touches the pid. */
    PJH_STORE(&s->live, 0);
    while (PJH_LOAD(&s->busy)) sched_yield();
    int ws = 0, reaped = 0;
    for (;;) {
        pid_t r = waitpid(s->pid, &ws, 0);
        if (r == s->pid) {
            reaped = 1;
            break;
        }
        if (r < 0 && errno == EINTR) continue;
        break;
    }

    /* 4. The verdict, with what the client saw merged in. */
    size_t extra = sizeof s->fault_msg + s->startup_len + 16;
    int rc = 0;
    struct plugjail_error perr;
    perr.message[0] = '\0';
    if (vlen > 0 && !too_long && pjh_verdict_parse(vbuf, vlen, extra, v, &perr) == 0) {
        rc = 0;
    } else {
        rc = PLUGJAIL_E_VERDICT;
        char why[600];
        if (too_long)
            snprintf(why, sizeof why,
                     "plugjail serve's verdict is longer than %u bytes (or memory ran out)",
                     (unsigned)PJH_VERDICT_MAX);
        else if (vlen > 0)
            snprintf(why, sizeof why, "plugjail serve's verdict is malformed: %.500s",
                     perr.message);
        else if (reaped && WIFEXITED(ws))
            snprintf(why, sizeof why,
                     "plugjail serve delivered no verdict (it exited with status %d)",
                     WEXITSTATUS(ws));
        else if (reaped && WIFSIGNALED(ws))
            snprintf(why, sizeof why,
                     "plugjail serve delivered no verdict (it was killed by signal %d)",
                     WTERMSIG(ws));
        else
            snprintf(why, sizeof why, "plugjail serve delivered no verdict");
        size_t wl = strlen(why);
        char *mem = (char *)malloc(wl + 1 + sizeof "unknown" + extra);
        pjh_verdict_defaults(v);
        if (mem) {
            memcpy(mem, why, wl + 1);
            memcpy(mem + wl + 1, "unknown", sizeof "unknown");
            v->message = mem;
            v->message_len = wl;
            v->outcome = mem + wl + 1;
            v->pjh_mem = mem;
        } else {
            v->outcome = "unknown";
        }
        if (reaped && WIFEXITED(ws)) v->exit_status = WEXITSTATUS(ws);
        else if (reaped && WIFSIGNALED(ws)) v->exit_status = 128 + WTERMSIG(ws);
    }
    free(vbuf);
    /* Merge: strings the client adds go after the parsed ones, in the `extra` room. */
    char *room = NULL;
    if (v->pjh_mem) {
        room = (char *)v->pjh_mem + (v->json ? 2 * (v->json_len + 1)
                                              : strlen((char *)v->pjh_mem) + 1 + sizeof "unknown");
    }
    v->calls = s->calls;
    if (PJH_LOAD(&s->cancelled) && s->fault == PLUGJAIL_FAULT_NONE)
        s->fault = PLUGJAIL_FAULT_CANCELLED;
    v->host_fault = s->fault;
    if (s->fault == PLUGJAIL_FAULT_PROTOCOL && rc == 0) {
        /* plugjail saw only its own stop (SIGTERM); the violation is what ended it. */
        v->outcome = "protocol_violation";
        if (room) {
            size_t n = strlen(s->fault_msg);
            memcpy(room, s->fault_msg, n + 1);
            v->message = room;
            v->message_len = n;
            room += n + 1;
        }
        if (v->signal_number == SIGTERM) {
            v->signal_number = 0;
            v->signal_name = NULL;
        }
    }
    if (s->have_startup && room) {
        if (!v->failure_message) {
            memcpy(room, s->startup_msg, s->startup_len + 1);
            v->failure_message = room;
            v->failure_message_len = s->startup_len;
        }
        if (!v->has_failure_status) {
            v->has_failure_status = 1;
            v->failure_status = s->startup_status;
        }
    }
    pjh_session_free(s);
    return rc;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PLUGJAIL_HOST_H */
