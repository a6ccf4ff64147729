/*
 * plugjail not found, three ways; each error must say where the client looked:
 *
 *   not_found path     $PLUGJAIL unset, PATH as the driver set it (directories without
 *                      plugjail): E_NOT_FOUND naming each PATH candidate and $PLUGJAIL
 *   not_found env      $PLUGJAIL points at a file that does not exist
 *   not_found explicit the path in the options does not exist ($PLUGJAIL is not used)
 *
 * Prints the message (it holds only paths the driver chose) on stdout for the driver.
 */
#include "check.h"

static int try_open(const char *plugjail, struct plugjail_error *err) {
    struct plugjail_options o;
    plugjail_options_init(&o);
    o.profile = "/nonexistent/profile.yaml";
    o.plugin = "/nonexistent/plugin.so";
    o.plugjail = plugjail;
    struct plugjail_session *s = plugjail_session_open(&o, err);
    CHECK(s == NULL, "a session without plugjail");
    if (s) {
        struct plugjail_verdict v;
        plugjail_session_close(s, &v);
        plugjail_verdict_free(&v);
    }
    printf("%s\n", err->message);
    return err->code;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: not_found path|env|explicit\n");
        return 64;
    }
    struct plugjail_error err;
    if (streq(argv[1], "path")) {
        const char *path = getenv("PATH");
        CHECK(getenv("PLUGJAIL") == NULL, "PLUGJAIL is unset for this case");
        int rc = try_open(NULL, &err);
        CHECK(rc == PLUGJAIL_E_NOT_FOUND && err.sys_errno == ENOENT, "code %s",
              plugjail_code_name(rc));
        CHECK(strstr(err.message, "PLUGJAIL") != NULL, "names PLUGJAIL");
        /* every PATH entry, as DIR/plugjail */
        char dir[1024];
        for (const char *p = path; p && *p;) {
            const char *colon = strchr(p, ':');
            size_t n = colon ? (size_t)(colon - p) : strlen(p);
            if (n > 0 && n < sizeof dir - 16) {
                memcpy(dir, p, n);
                memcpy(dir + n, "/plugjail", sizeof "/plugjail");
                CHECK(strstr(err.message, dir) != NULL, "names %s", dir);
            }
            if (!colon) break;
            p = colon + 1;
        }
        return finish("not_found path");
    }
    if (streq(argv[1], "env")) {
        const char *env = getenv("PLUGJAIL");
        CHECK(env != NULL, "PLUGJAIL is set for this case");
        int rc = try_open(NULL, &err);
        CHECK(rc == PLUGJAIL_E_NOT_FOUND && err.sys_errno == ENOENT, "code %s",
              plugjail_code_name(rc));
        CHECK(env && strstr(err.message, env) != NULL, "names %s", env);
        CHECK(strstr(err.message, "PLUGJAIL environment variable") != NULL, "says whence");
        return finish("not_found env");
    }
    if (streq(argv[1], "explicit")) {
        int rc = try_open("/nonexistent/bin/plugjail", &err);
        CHECK(rc == PLUGJAIL_E_NOT_FOUND, "code %s", plugjail_code_name(rc));
        CHECK(strstr(err.message, "/nonexistent/bin/plugjail") != NULL, "names the path");
        CHECK(strstr(err.message, "plugjail_options.plugjail") != NULL, "says whence");
        /* a directory is not an executable either */
        rc = try_open("/", &err);
        CHECK(rc == PLUGJAIL_E_NOT_FOUND && err.sys_errno == EISDIR, "a directory: %s",
              err.message);
        return finish("not_found explicit");
    }
    fprintf(stderr, "not_found: unknown case %s\n", argv[1]);
    return 64;
}
