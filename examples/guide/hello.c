/* hello.c -- the smallest mote program. mote_run starts the runtime, runs
 * one function as the main process, and shuts everything down when that
 * function returns. */
#include <mote.h>
#include <stdio.h>

static int hello(void *arg) {
    const char *name = arg;
    printf("hello, %s, from a mote process\n", name);
    return 0;
}

int main(void) {
    int r = mote_run(NULL, hello, "world");
    if (r < 0) {
        fprintf(stderr, "mote_run: %s\n", mote_strerror(r));
        return 1;
    }
    return r; /* what hello returned */
}
