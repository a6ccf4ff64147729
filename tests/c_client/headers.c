/*
 * Both of plugjail's headers in one translation unit, as a host that also builds plugins
 * would have them: no name clashes, and the LOG levels agree. Built as C11 and as C++ by
 * tests/c_client.rs (warnings are errors), then run.
 */
#include "plugjail/host.h"

#include "plugjail.h"

int main(void) {
    int bad = 0;
    bad |= PLUGJAIL_LEVEL_DEBUG != (int)PLUGJAIL_LOG_DEBUG;
    bad |= PLUGJAIL_LEVEL_INFO != (int)PLUGJAIL_LOG_INFO;
    bad |= PLUGJAIL_LEVEL_WARN != (int)PLUGJAIL_LOG_WARN;
    bad |= PLUGJAIL_LEVEL_ERROR != (int)PLUGJAIL_LOG_ERROR;
    bad |= strcmp(plugjail_level_name(PLUGJAIL_LEVEL_OUTPUT), "output") != 0;
    bad |= strcmp(plugjail_error_kind_name(PLUGJAIL_ERROR_INIT_FAILED), "init_failed") != 0;
    bad |= strcmp(plugjail_code_name(PLUGJAIL_E_VERDICT), "verdict") != 0;
    printf("headers: %s\n", bad ? "mismatch" : "ok");
    return bad;
}
