/*
 * alloc.h -- small-object allocator for processes, messages and futures.
 *
 * Size classes of 64..2048 bytes. Each runtime thread (worker or main) has a
 * private cache of free objects per class; a cache that runs dry takes a
 * batch from a shared depot, and one that grows past a limit gives its
 * list back as one batch, so objects freed on another thread than they
 * were allocated on (a message is allocated by its sender and freed by its
 * receiver) flow back. Batches move whole, in O(1), never walked.
 * Foreign threads use the depot directly. Memory comes in 64 KiB chunks that
 * are only returned at runtime shutdown (mote__alloc_release_all), so the
 * footprint is the high-water mark of live objects.
 *
 * Sanitizer builds use malloc/free instead, so ASan still sees every
 * use-after-free and LeakSanitizer every leak.
 */
#ifndef MOTE_ALLOC_H
#define MOTE_ALLOC_H

#include "base/base.h"

void *mote__alloc(size_t size);
void mote__free(void *p, size_t size);

/* Give the calling thread a cache (runtime threads only), and drop it. */
void mote__alloc_thread_init(void);
void mote__alloc_thread_exit(void);
/* Free every chunk. Only when no runtime thread is left. */
void mote__alloc_release_all(void);

/* For white-box tests: of the size class that `size` falls in, how many
 * objects were carved from chunks so far and how many are in the depot
 * (in no thread's cache). Once every cache is dropped and every object
 * freed, the two are equal. Sanitizer builds carve nothing: both 0. */
void mote__alloc_census(size_t size, size_t *carved, size_t *depot);

#endif
