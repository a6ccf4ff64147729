/*
 * A 16 MiB payload through a plugin that floods the log (tests/plugins/c_echo_flood.cpp):
 *
 *   big PROFILE ECHO_FLOOD_SO     (PROFILE's max_message must hold 16 MiB plus the method)
 *
 * First a plugin thread starts logging, paced, so LOG frames keep arriving while the
 * client writes the next CALL; then 16 MiB go to `flood_echo`, which logs 512 KiB and
 * writes 64 KiB to stdout before it echoes them. The client must read while it writes,
 * or both sides wait for each other: the call must come back whole, well within its
 * deadline, with the log text delivered.
 */
#include "check.h"

struct logs {
    size_t frames, bytes, output;
};

static void on_log(void *user, uint32_t level, const unsigned char *text, size_t len) {
    struct logs *l = (struct logs *)user;
    (void)text;
    l->frames++;
    l->bytes += len;
    if (level == PLUGJAIL_LEVEL_OUTPUT) l->output += len;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: big PROFILE PLUGIN\n");
        return 64;
    }
    struct logs logs;
    memset(&logs, 0, sizeof logs);
    struct plugjail_session *s = open_or_die(argv[1], argv[2], on_log, &logs);
    struct plugjail_error err;
    int rc = plugjail_session_call(s, "start_flood", "", 0, 10000, NULL, NULL, &err);
    CHECK(rc == 0, "start_flood: %s", err.message);
    const size_t n = (size_t)16 << 20;
    unsigned char *input = (unsigned char *)malloc(n);
    if (!input) return 1;
    uint32_t x = 2463534242u; /* xorshift: bytes that are not all alike */
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        input[i] = (unsigned char)x;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned char *out = NULL;
    size_t out_len = 0;
    rc = plugjail_session_call(s, "flood_echo", input, n, 60000, &out, &out_len, &err);
    long long took = ms_since(&t0);
    CHECK(rc == 0, "flood_echo: %s (%s) after %lld ms", err.message, plugjail_code_name(rc),
          took);
    CHECK(out_len == n && out && memcmp(out, input, n) == 0, "the echo (%zu bytes)", out_len);
    CHECK(logs.bytes >= (size_t)512 << 10, "log text received: %zu bytes in %zu frames",
          logs.bytes, logs.frames);
    CHECK(logs.output >= (size_t)16 << 10, "stdout received: %zu bytes", logs.output);
    printf("16 MiB echoed in %lld ms; %zu LOG frames, %zu bytes\n", took, logs.frames,
           logs.bytes);
    free(out);
    free(input);
    struct plugjail_verdict v;
    rc = plugjail_session_close(s, &v);
    CHECK(rc == 0 && streq(v.outcome, "ok") && v.calls == 2, "verdict");
    if (failures) describe(&v);
    plugjail_verdict_free(&v);
    return finish("big");
}
