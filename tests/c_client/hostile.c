/*
 * Hostile text printed the way a host should (tests/plugins/terminal.cpp, `shout`):
 *
 *   hostile PROFILE TERMINAL_SO
 *
 * Every LOG frame, the ERROR message, the plugin's names and the verdict's messages go to
 * stdout through plugjail_print_record / plugjail_fputs_sanitized. The driver then checks
 * that no raw ESC, BEL, CR, NUL, C1 or bidi control reached stdout, and that the escaped
 * forms did.
 */
#include "check.h"

static void on_log(void *user, uint32_t level, const unsigned char *text, size_t len) {
    (void)user;
    plugjail_print_record(stdout, plugjail_level_name(level), text, len);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: hostile PROFILE PLUGIN\n");
        return 64;
    }
    struct plugjail_session *s = open_or_die(argv[1], argv[2], on_log, NULL);
    struct plugjail_error err;
    int rc = plugjail_session_start(s, &err);
    CHECK(rc == 0, "start: %s", err.message);
    const struct plugjail_hello *h = plugjail_session_hello(s);
    if (h) {
        fputs("host: plugin ", stdout);
        plugjail_fputs_sanitized(stdout, h->name, strlen(h->name), 0);
        fputc('\n', stdout);
    }
    rc = plugjail_session_call(s, "shout", "", 0, 10000, NULL, NULL, &err);
    CHECK(rc == PLUGJAIL_E_FAILED && err.untrusted, "shout: %s", plugjail_code_name(rc));
    /* The ERROR message is UTF-8, so the invalid bytes of the plugin's text are gone
     * (the stub's lossy conversion); the rest arrives as written. */
    CHECK(err.message_len > 0 && memchr(err.message, 0x1b, err.message_len) != NULL,
          "the raw message still holds its ESC bytes (it is the plugin's, unchanged)");
    plugjail_print_record(stdout, "fail", err.message, err.message_len);
    struct plugjail_verdict v;
    rc = plugjail_session_close(s, &v);
    CHECK(rc == 0 && streq(v.outcome, "ok"), "verdict");
    fputs("host: verdict ", stdout);
    plugjail_fputs_sanitized(stdout, v.outcome, strlen(v.outcome), 0);
    if (v.message) {
        fputs(": ", stdout);
        plugjail_fputs_sanitized(stdout, v.message, v.message_len, PLUGJAIL_SANITIZE_QUOTE);
    }
    fputc('\n', stdout);
    if (failures) describe(&v);
    plugjail_verdict_free(&v);
    fflush(stdout);
    return finish("hostile");
}
