/*
 * plugjail.h — the C ABI between a plugjail plugin and the in-jail stub.
 *
 * A plugin is a shared object (built with `g++ -shared -fPIC` or `cc -shared -fPIC`) that
 * exports exactly one symbol, `plugjail_plugin_v1`, returning a static description of the
 * plugin. The stub (plugjail-stub) dlopens the plugin inside the jail, checks the ABI
 * version and struct size, calls init() once, then call() once per request from the host,
 * and shutdown() when the host says goodbye. See docs/plugin-guide.md.
 *
 * Ownership, in one place:
 *   - Every string and table in `struct plugjail_plugin` belongs to the plugin and must
 *     stay valid (static storage is simplest) until shutdown() returns.
 *   - The input of call() belongs to the stub; it is valid only during that call and must
 *     not be written to or kept.
 *   - Output is never a plugin allocation: the plugin appends bytes with host->write(),
 *     which copies them into a buffer the stub owns. Nothing needs freeing on either side.
 *   - `struct plugjail_host` belongs to the stub and is valid from init() until
 *     shutdown() returns; the plugin may keep the pointer.
 *   - Nothing here points at memory of the host application: the stub runs in the jail
 *     and the host only ever sees bytes the plugin produced, in protocol frames.
 *
 * Threads: call(), init() and shutdown() are always called from the stub's one thread,
 * one at a time. host->log() may be called from any thread; host->write() and
 * host->fail() only from inside call(), on the calling thread.
 */
#ifndef PLUGJAIL_H
#define PLUGJAIL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change to the structs or functions below. */
#define PLUGJAIL_ABI_VERSION 1u

/* The one symbol a plugin exports, as a string for dlsym(). */
#define PLUGJAIL_ENTRY_SYMBOL "plugjail_plugin_v1"

/* Levels for host->log(). The host receives them in LOG frames. */
enum plugjail_log_level {
    PLUGJAIL_LOG_DEBUG = 0,
    PLUGJAIL_LOG_INFO = 1,
    PLUGJAIL_LOG_WARN = 2,
    PLUGJAIL_LOG_ERROR = 3
};

/* Return values of call() and init(). Any other non-zero value is also a failure; the
 * host sees the number in the ERROR frame. */
#define PLUGJAIL_OK 0
#define PLUGJAIL_FAILED 1

/* Opaque: the output of the current call. Only the stub knows what is inside. */
struct plugjail_output;

/* Services the stub offers the plugin. Passed to init(); check struct_size before using
 * a member added in a later ABI revision. */
struct plugjail_host {
    /* sizeof(struct plugjail_host) as the stub was built. */
    uint32_t struct_size;
    /* PLUGJAIL_ABI_VERSION of the stub. */
    uint32_t abi_version;
    /* The largest output, in bytes, one call may produce (the profile's max_message less
     * the frame overhead). */
    uint64_t max_output;

    /* Sends one line of text to the host as a LOG frame. `text` need not be
     * NUL-terminated; `len` bytes are sent (longer texts are cut to a frame). The stub
     * limits how much log text one call may produce; the excess is dropped and the host
     * told so once. */
    void (*log)(uint32_t level, const char *text, size_t len);

    /* Appends `len` bytes to the call's output. Returns 0, or -1 when the output would
     * exceed max_output (nothing is appended; the call then ends in an ERROR frame
     * whatever call() returns). */
    int (*write)(struct plugjail_output *out, const void *data, size_t len);

    /* Sets the message the host receives if call() returns non-zero (the last one set
     * wins; cut to 4 KiB). Without it, the host gets an empty message. */
    void (*fail)(struct plugjail_output *out, const char *message, size_t len);
};

/* What a plugin is. Returned by plugjail_plugin_v1(); must stay valid until the process
 * ends (a `static const` object). */
struct plugjail_plugin {
    /* sizeof(struct plugjail_plugin): the stub refuses a size it does not know. */
    uint32_t struct_size;
    /* PLUGJAIL_ABI_VERSION the plugin was built against; the stub refuses any other. */
    uint32_t abi_version;
    /* Short name and version, printable UTF-8, at most 255 bytes each. */
    const char *name;
    const char *version;
    /* The methods the host may call: a NULL-terminated array of printable UTF-8 names,
     * at most 255 bytes each, at most 1024 of them. A CALL naming anything else is
     * answered by the stub with an ERROR frame; call() never sees it. */
    const char *const *methods;

    /* Called once, after the plugin is loaded and before the stricter serve-phase seccomp
     * filter is installed: open files, read configuration, allocate tables here. May be
     * NULL. Non-zero = the plugin cannot work; the stub reports it and exits. */
    int (*init)(const struct plugjail_host *host);

    /* Handles one request. `method` is one of the plugin's own `methods` pointers (compare
     * pointers or strings). Write the answer with host->write(out, ...). Return
     * PLUGJAIL_OK, or non-zero after host->fail(out, ...) to send an ERROR frame. */
    int (*call)(const char *method, const uint8_t *input, size_t input_len,
                struct plugjail_output *out);

    /* Called once when the host ends the session cleanly. May be NULL. */
    void (*shutdown)(void);
};

/* The entry point every plugin defines, with C linkage:
 *
 *   extern "C" const struct plugjail_plugin *plugjail_plugin_v1(void) { return &me; }
 */
typedef const struct plugjail_plugin *(*plugjail_entry_fn)(void);
const struct plugjail_plugin *plugjail_plugin_v1(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PLUGJAIL_H */
