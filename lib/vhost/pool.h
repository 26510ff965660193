/* A fixed pool of worker threads running queued jobs in FIFO order. */
#ifndef VFSD_VHOST_POOL_H
#define VFSD_VHOST_POOL_H

struct work_pool;

typedef void (*work_fn)(void *arg);

/* Starts n threads; each runs init_fn (may be NULL) once before taking jobs. */
int work_pool_new(unsigned int n, void (*init_fn)(void), struct work_pool **out);
/* Queues a job; never blocks on the workers. */
int work_pool_submit(struct work_pool *pool, work_fn fn, void *arg);
/* Runs the queued jobs to completion, then joins and frees the threads. */
void work_pool_free(struct work_pool *pool);

#endif
