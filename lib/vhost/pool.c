#include "vhost/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct job {
	work_fn fn;
	void *arg;
	struct job *next;
};

struct work_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *head, *tail; /* guarded by lock */
	bool stopping;		 /* guarded by lock */
	void (*init_fn)(void);
	unsigned int nthreads;
	pthread_t threads[];
};

static void *worker_main(void *arg)
{
	struct work_pool *pool = arg;

	if (pool->init_fn)
		pool->init_fn();
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		struct job *j = pool->head;

		if (!j) {
			if (pool->stopping)
				break;
			pthread_cond_wait(&pool->cond, &pool->lock);
			continue;
		}
		pool->head = j->next;
		if (!pool->head)
			pool->tail = NULL;
		pthread_mutex_unlock(&pool->lock);
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

int work_pool_new(unsigned int n, void (*init_fn)(void), struct work_pool **out)
{
	struct work_pool *pool = calloc(1, sizeof(*pool) + n * sizeof(pthread_t));

	if (!pool)
		return -ENOMEM;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	pool->init_fn = init_fn;
	for (unsigned int i = 0; i < n; i++) {
		int r = pthread_create(&pool->threads[i], NULL, worker_main, pool);

		if (r) {
			work_pool_free(pool);
			return -r;
		}
		pool->nthreads++;
	}
	*out = pool;
	return 0;
}

int work_pool_submit(struct work_pool *pool, work_fn fn, void *arg)
{
	struct job *j = malloc(sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&pool->lock);
	if (pool->tail)
		pool->tail->next = j;
	else
		pool->head = j;
	pool->tail = j;
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

void work_pool_free(struct work_pool *pool)
{
	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned int i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->cond);
	free(pool);
}
