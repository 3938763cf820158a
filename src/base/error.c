/* error.c -- mote_strerror: text for the negative errno values mote returns,
 * and for mote's own codes (MOTE_E*), which lie outside the errno range. */
#include <errno.h>
#include <string.h>
#include "base/base.h"
#include "mote.h"

int mote_errno(void) {
    return mote__errno();
}

/* Codes whose C library text names a network meaning that mote's use does
 * not have: a mailbox or future timeout is not a connection timing out. */
static const char *own_text(int err) {
    switch (err) {
    case -ETIMEDOUT:
        return "timed out";
    case -ESHUTDOWN:
        return "the mote runtime is not running";
    case -ECANCELED:
        return "cancelled";
    case -EDEADLK:
        return "a process would wait for itself (deadlock)";
    case MOTE_EAI_NONAME:
        return "unknown host name";
    case MOTE_EAI_AGAIN:
        return "temporary failure in name resolution";
    case MOTE_EAI_FAIL:
        return "name resolution failed";
    default:
        return NULL;
    }
}

const char *mote_strerror(int err) {
    if (err >= 0)
        return err == 0 ? "success" : "unknown error";
    const char *s = own_text(err);
    if (s)
        return s;
    if (err < -4095) /* also keeps -INT_MIN from overflowing */
        return "unknown error";
    /* glibc's table is static and thread-safe for known codes. */
    s = strerrordesc_np(-err);
    return s ? s : "unknown error";
}
