/*
 * trace_ring.h -- what the two halves of tracing share, and nothing else
 * includes: the per-thread rings that trace.c records into, and the trace
 * it hands, once every writer has settled, to trace_file.c, which writes
 * the Chrome JSON file. The file writer reads the rings only; it never
 * touches the recording state or the runtime.
 */
#ifndef MOTE_DEBUG_TRACE_RING_H
#define MOTE_DEBUG_TRACE_RING_H

#include "debug/trace.h"

#include <stdio.h>

typedef mote__trace_event tr_event;
typedef mote__trace_ring tr_buf;

/* Which process id a task address held, from when (a CPU counter value;
 * 0: from before the trace). */
typedef struct tr_task {
    uintptr_t task;
    uint64_t ts, id;
} tr_task;

typedef struct tr_name {
    uint64_t id;
    size_t seq; /* later names of one process win */
    char name[MOTE_NAME_MAX];
} tr_name;

/* A finished trace: no thread writes to its rings any more. */
typedef struct mote__trace_data {
    const tr_buf *rings;  /* a list */
    tr_name *names;       /* names given to processes; the writer sorts them */
    size_t nnames;
    const tr_task *known; /* the processes there were at the start */
    size_t nknown;
    uint64_t tsc0, tsc1;  /* the CPU counter at start and stop, */
    int64_t ns0, ns1;     /* and the monotonic clock */
} mote__trace_data;

/* Write d to f as a Chrome trace event file: 0, -ENOMEM or -EIO. */
int mote__trace_write(FILE *f, mote__trace_data *d);

#endif
