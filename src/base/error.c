/* error.c -- mote_strerror: text for the negative errno values mote returns. */
#include <limits.h>
#include <string.h>
#include "base/base.h"

int mote_errno(void) {
    return mote__errno();
}

const char *mote_strerror(int err) {
    if (err >= 0)
        return err == 0 ? "success" : "unknown error";
    if (err == INT_MIN) /* -INT_MIN does not exist */
        return "unknown error";
    /* strerror() text for -err; glibc's table is static and thread-safe for
     * known codes. */
    const char *s = strerrordesc_np(-err);
    return s ? s : "unknown error";
}
