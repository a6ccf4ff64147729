/*
 * A host application in C that runs one plugin call in a jail, on the C client
 * include/plugjail/host.h (which speaks docs/protocol.md to `plugjail serve`).
 *
 *   cc -std=c11 -Wall -Wextra -O2 -o host host.c     (or as C++:
 *   c++ -std=c++17 -Wall -Wextra -O2 -x c++ -o host host.c)
 *
 *   ./host [-j PLUGJAIL] [-t MS] [-q] PROFILE PLUGIN METHOD INPUT_FILE
 *   ./host [-t MS] METHOD INPUT_FILE -- PLUGJAIL serve --profile P --plugin SO [OPTION...]
 *
 * The first form finds plugjail at -j, else $PLUGJAIL, else on PATH. The second (the
 * command line of earlier versions of this example) names it and passes the serve options
 * after `--`; the client adds its own descriptors (--fds, --status-fd). INPUT_FILE `-` is
 * stdin. -t is the call's deadline in ms (default: none of the host's; the profile's
 * call_time applies); -q silences plugjail's own stderr (its summary line). -m BYTES is
 * accepted and ignored: the frame cap comes from plugjail (the SESSION frame).
 *
 * The RESULT goes to stdout as it is, or escaped when stdout is a terminal. Everything
 * else goes to stderr, escaped: what the plugin logs (`plugin[info]: ...`), an ERROR
 * answer (`plugin[fail]: ...`), its names, and the verdict. Exit status: 0 RESULT, 1 the
 * plugin answered ERROR, 2 the session failed (plugjail not found, a crash, a timeout, a
 * protocol violation: the verdict says which), 64 bad usage.
 */
/* First: it asks for POSIX.1-2008 in strict ISO C. The path is the source tree's, so
 * the example builds without -I; with the header installed, <plugjail/host.h>. */
#include "../../include/plugjail/host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every LOG frame, as one escaped line marked as the plugin's. */
static void print_log(void *user, uint32_t level, const unsigned char *text, size_t len) {
    (void)user;
    plugjail_print_record(stderr, plugjail_level_name(level), text, len);
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    unsigned char *buf = (unsigned char *)malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
        if (n == cap) {
            unsigned char *bigger = (unsigned char *)realloc(buf, cap *= 2);
            if (!bigger) free(buf);
            buf = bigger;
        }
    }
    if (f != stdin) fclose(f);
    *len = n;
    return buf;
}

/* The verdict for people: plugjail's words, with the untrusted parts escaped. */
static void print_verdict(const struct plugjail_verdict *v) {
    fprintf(stderr, "host: verdict %s (plugjail exit status %d", v->outcome, v->exit_status);
    if (v->signal_number) fprintf(stderr, ", signal %d %s", v->signal_number, v->signal_name);
    if (v->timeout_kind) {
        fprintf(stderr, ", timeout %s", v->timeout_kind);
        if (v->timeout_limit_ms >= 0) fprintf(stderr, " %lld ms", (long long)v->timeout_limit_ms);
    }
    if (v->syscall_name) fprintf(stderr, ", syscall %s", v->syscall_name);
    fprintf(stderr, ", %llu call%s)", (unsigned long long)v->calls, v->calls == 1 ? "" : "s");
    if (v->message) {
        fputs(": \"", stderr);
        plugjail_fputs_sanitized(stderr, v->message, v->message_len, PLUGJAIL_SANITIZE_QUOTE);
        fputc('"', stderr);
    }
    if (v->failure_message) {
        fputs("; the plugin said: \"", stderr);
        plugjail_fputs_sanitized(stderr, v->failure_message, v->failure_message_len,
                                 PLUGJAIL_SANITIZE_QUOTE);
        fputc('"', stderr);
    }
    fputc('\n', stderr);
}

static int usage(void) {
    fprintf(stderr,
            "usage: host [-j PLUGJAIL] [-t MS] [-q] PROFILE PLUGIN METHOD INPUT_FILE\n"
            "       host [-t MS] METHOD INPUT_FILE -- PLUGJAIL serve --profile P --plugin SO "
            "[OPTION...]\n");
    return 64;
}

int main(int argc, char **argv) {
    struct plugjail_options o;
    plugjail_options_init(&o);
    o.on_log = print_log;
    long deadline_ms = 0;
    int opt;
    while ((opt = getopt(argc, argv, "+j:t:m:q")) != -1) {
        if (opt == 'j') o.plugjail = optarg;
        else if (opt == 't') deadline_ms = strtol(optarg, NULL, 10);
        else if (opt == 'q') o.quiet = 1;
        else if (opt != 'm') return usage();
    }
    char **args = argv + optind;
    int nargs = argc - optind;
    const char *method, *input_path;
    const char **extra = NULL;
    if (nargs >= 4 && strcmp(args[2], "--") == 0) {
        /* METHOD INPUT -- PLUGJAIL serve [--profile P] [--plugin SO] [OPTION...] */
        method = args[0];
        input_path = args[1];
        o.plugjail = args[3];
        if (nargs < 5 || strcmp(args[4], "serve") != 0) return usage();
        extra = (const char **)calloc((size_t)nargs, sizeof *extra);
        if (!extra) return 2;
        size_t n = 0;
        for (int i = 5; i < nargs; i++) {
            if (strcmp(args[i], "--profile") == 0 && i + 1 < nargs) o.profile = args[++i];
            else if (strcmp(args[i], "--plugin") == 0 && i + 1 < nargs) o.plugin = args[++i];
            else if (strncmp(args[i], "--profile=", 10) == 0) o.profile = args[i] + 10;
            else if (strncmp(args[i], "--plugin=", 9) == 0) o.plugin = args[i] + 9;
            else extra[n++] = args[i];
        }
        extra[n] = NULL;
        o.extra_args = extra;
    } else if (nargs == 4) {
        o.profile = args[0];
        o.plugin = args[1];
        method = args[2];
        input_path = args[3];
    } else {
        return usage();
    }
    if (!o.profile || !o.plugin) return usage();
    size_t input_len = 0;
    unsigned char *input = slurp(input_path, &input_len);
    if (!input) {
        fprintf(stderr, "host: cannot read %s\n", input_path);
        return 64;
    }

    struct plugjail_error err;
    struct plugjail_session *s = plugjail_session_open(&o, &err);
    if (!s) {
        fprintf(stderr, "host: %s\n", err.message);
        if (err.code == PLUGJAIL_E_NOT_FOUND)
            fprintf(stderr, "host: give the path with -j PLUGJAIL, or set PLUGJAIL\n");
        free(input);
        free(extra);
        return 2;
    }
    int status = 2;
    if (plugjail_session_start(s, &err) == 0) {
        const struct plugjail_hello *h = plugjail_session_hello(s);
        /* The names are the plugin's: checked for control characters, still escaped. */
        fputs("host: plugin ", stderr);
        plugjail_fputs_sanitized(stderr, h->name, strlen(h->name), 0);
        fputc(' ', stderr);
        plugjail_fputs_sanitized(stderr, h->version, strlen(h->version), 0);
        fprintf(stderr, ", %zu method%s, frames up to %lu bytes\n", h->method_count,
                h->method_count == 1 ? "" : "s",
                (unsigned long)plugjail_session_limits(s)->max_message);
        unsigned char *out = NULL;
        size_t out_len = 0;
        int rc = plugjail_session_call(s, method, input, input_len, deadline_ms, &out, &out_len,
                                       &err);
        if (rc == 0) {
            if (isatty(STDOUT_FILENO)) plugjail_print_record(stdout, "result", out, out_len);
            else fwrite(out, 1, out_len, stdout);
            fflush(stdout);
            free(out);
            status = 0;
        } else if (rc == PLUGJAIL_E_FAILED) {
            plugjail_print_record(stderr, "fail", err.message, err.message_len);
            fprintf(stderr, "host: the call failed (%s, status %d)\n",
                    plugjail_error_kind_name(err.kind), (int)err.status);
            status = 1;
        }
    }
    if (status == 2) {
        if (err.untrusted) { /* the plugin's own words (a startup ERROR) */
            fprintf(stderr, "host: %s (%s): ", plugjail_code_name(err.code),
                    plugjail_error_kind_name(err.kind));
            plugjail_fputs_sanitized(stderr, err.message, err.message_len, 0);
            fputc('\n', stderr);
        } else {
            fprintf(stderr, "host: %s\n", err.message);
        }
    }
    struct plugjail_verdict v;
    if (plugjail_session_close(s, &v) != 0) status = 2;
    print_verdict(&v);
    plugjail_verdict_free(&v);
    free(input);
    free(extra);
    return status;
}
