/*
 * floor: the unisolated baselines plugjail is measured against (see docs/performance.md).
 *
 *   floor echo SIZE     read SIZE bytes from stdin, write them back to stdout, until end
 *                       of file: the far end of the raw pipe ping-pong (no framing, no
 *                       poll, one read and one write per message when the pipe holds it).
 *   floor dlopen SO     dlopen a plugin, run its init() and one call, then print the peak
 *                       resident set (VmHWM, KiB): what hosting the plugin costs at least.
 *   floor call SO METHOD INPUT
 *                       dlopen a plugin, run its init() and one call of METHOD with the
 *                       bytes of INPUT, through a host table whose write() writes straight
 *                       to stdout, then exit: the unjailed host of the CLI cold start (the
 *                       work `plugjail call` has the stub do in the jail).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugjail.h"

static int echo(size_t size) {
    char *buf = malloc(size ? size : 1);
    if (!buf) return 1;
    for (;;) {
        size_t got = 0;
        while (got < size) {
            ssize_t n = read(0, buf + got, size - got);
            if (n == 0) return got == 0 ? 0 : 1;
            if (n < 0) {
                if (errno == EINTR) continue;
                return 1;
            }
            got += (size_t)n;
        }
        size_t put = 0;
        while (put < size) {
            ssize_t n = write(1, buf + put, size - put);
            if (n < 0) {
                if (errno == EINTR) continue;
                return 1;
            }
            put += (size_t)n;
        }
    }
}

/* The smallest host table that lets a plugin run: output kept in a fixed buffer. */
struct plugjail_output {
    size_t len;
    char bytes[4096];
};

static void host_log(uint32_t level, const char *text, size_t len) {
    (void)level, (void)text, (void)len;
}

static int host_write(struct plugjail_output *out, const void *data, size_t len) {
    if (len > sizeof out->bytes - out->len) return -1;
    memcpy(out->bytes + out->len, data, len);
    out->len += len;
    return 0;
}

static void host_fail(struct plugjail_output *out, const char *msg, size_t len) {
    (void)out, (void)msg, (void)len;
}

static long vm_hwm_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib;
}

/* dlopens the plugin at `path` and runs its init() with a host table whose write() is
 * `write`; NULL (after a message) if either fails. */
static const struct plugjail_plugin *load_plugin(const char *path, uint64_t max_output,
                                                 int (*write)(struct plugjail_output *,
                                                              const void *, size_t)) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "floor: %s\n", dlerror());
        return NULL;
    }
    plugjail_entry_fn entry = (plugjail_entry_fn)dlsym(h, PLUGJAIL_ENTRY_SYMBOL);
    if (!entry) return NULL;
    const struct plugjail_plugin *p = entry();
    static struct plugjail_host host;
    host.struct_size = sizeof host;
    host.abi_version = PLUGJAIL_ABI_VERSION;
    host.max_output = max_output;
    host.log = host_log;
    host.write = write;
    host.fail = host_fail;
    if (p->init && p->init(&host) != 0) return NULL;
    return p;
}

static int host_plugin(const char *path) {
    const struct plugjail_plugin *p =
        load_plugin(path, sizeof ((struct plugjail_output *)0)->bytes, host_write);
    if (!p) return 1;
    static struct plugjail_output out;
    const char *method = p->methods[0];
    if (p->call(method, (const uint8_t *)"x", 1, &out) != 0) return 1;
    printf("%ld\n", vm_hwm_kib());
    return 0;
}

/* The host table of `floor call`: the plugin's output goes to stdout as it is written. */
static int host_print(struct plugjail_output *out, const void *data, size_t len) {
    (void)out;
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(1, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int call_plugin(const char *path, const char *method, const char *input) {
    const struct plugjail_plugin *p = load_plugin(path, 1 << 20, host_print);
    if (!p) return 1;
    /* The plugin's own pointer for the method, as the stub passes it. */
    const char *m = NULL;
    for (const char *const *i = p->methods; *i; i++)
        if (strcmp(*i, method) == 0) m = *i;
    if (!m) {
        fprintf(stderr, "floor: the plugin has no method %s\n", method);
        return 1;
    }
    static struct plugjail_output out;
    return p->call(m, (const uint8_t *)input, strlen(input), &out) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "echo") == 0) return echo(strtoul(argv[2], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "dlopen") == 0) return host_plugin(argv[2]);
    if (argc == 5 && strcmp(argv[1], "call") == 0) return call_plugin(argv[2], argv[3], argv[4]);
    fprintf(stderr,
            "usage: floor echo SIZE | floor dlopen PLUGIN.so | floor call PLUGIN.so METHOD "
            "INPUT\n");
    return 64;
}
