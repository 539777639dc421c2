/*
 * usrvm-bench-xthread: a workload of the malloc case of usrvm-bench
 * (malloc.c): blocks freed by another thread than the one that allocated
 * them, producers and consumers.
 *
 *	usrvm-bench-xthread PAIRS BATCHES
 *
 * PAIRS producer threads each allocate BATCHES batches of 256 blocks of
 * 16 to 512 bytes (and the batch's own array), write each block's first
 * and last word, and hand the batch to their consumer thread through a
 * bounded queue (64 batches); the consumer checks every block and frees
 * it.  So every free is a cross-thread free, and a thread cache that
 * only fills (the consumer's) or only empties (the producer's) must go
 * through the allocator's shared structures.  Prints a checksum of what
 * was read back, which does not depend on the allocator; exit status 1
 * if an allocation fails or a block does not read back.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH		256
#define QUEUE		64

struct batch {
	uint64_t *blk[BATCH];
	uint32_t size[BATCH];
};

struct pair {
	pthread_mutex_t lock;
	pthread_cond_t nonempty, nonfull;
	struct batch *q[QUEUE];
	unsigned head, n;
	unsigned long batches;
	unsigned id;
	uint64_t sum;
	pthread_t prod, cons;
};

static void *
xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL) {
		fprintf(stderr, "usrvm-bench-xthread: out of memory\n");
		exit(1);
	}
	return p;
}

static void *
producer(void *arg)
{
	struct pair *pr = arg;
	uint64_t x = 0x5eedf00dULL + pr->id;

	for (unsigned long b = 0; b < pr->batches; b++) {
		struct batch *bt = xmalloc(sizeof(*bt));

		for (unsigned i = 0; i < BATCH; i++) {
			uint32_t size;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			size = 16 + (uint32_t)(x % 497) / 8 * 8;
			bt->size[i] = size;
			bt->blk[i] = xmalloc(size);
			bt->blk[i][0] = x;
			bt->blk[i][size / 8 - 1] = ~x;
		}
		pthread_mutex_lock(&pr->lock);
		while (pr->n == QUEUE)
			pthread_cond_wait(&pr->nonfull, &pr->lock);
		pr->q[(pr->head + pr->n) % QUEUE] = bt;
		if (pr->n++ == 0)
			pthread_cond_signal(&pr->nonempty);
		pthread_mutex_unlock(&pr->lock);
	}
	return NULL;
}

static void *
consumer(void *arg)
{
	struct pair *pr = arg;
	uint64_t sum = 0;

	for (unsigned long b = 0; b < pr->batches; b++) {
		struct batch *bt;

		pthread_mutex_lock(&pr->lock);
		while (pr->n == 0)
			pthread_cond_wait(&pr->nonempty, &pr->lock);
		bt = pr->q[pr->head];
		pr->head = (pr->head + 1) % QUEUE;
		if (pr->n-- == QUEUE)
			pthread_cond_signal(&pr->nonfull);
		pthread_mutex_unlock(&pr->lock);
		for (unsigned i = 0; i < BATCH; i++) {
			uint64_t *p = bt->blk[i];

			if (p[bt->size[i] / 8 - 1] != ~p[0]) {
				fprintf(stderr, "usrvm-bench-xthread: a block "
				    "of %u bytes does not read back\n",
				    bt->size[i]);
				exit(1);
			}
			sum += bt->size[i] + (p[0] & 0xff);
			free(p);
		}
		free(bt);
	}
	pr->sum = sum;
	return NULL;
}

int
main(int argc, char **argv)
{
	unsigned npairs = argc > 2 ? (unsigned)atoi(argv[1]) : 0;
	unsigned long batches = argc > 2 ? strtoul(argv[2], NULL, 0) : 0;
	struct pair *pairs;
	uint64_t sum = 0;

	if (npairs == 0 || npairs > 64 || batches == 0) {
		fprintf(stderr, "usage: usrvm-bench-xthread PAIRS BATCHES\n");
		return 2;
	}
	pairs = xmalloc(npairs * sizeof(*pairs));
	memset(pairs, 0, npairs * sizeof(*pairs));
	for (unsigned i = 0; i < npairs; i++) {
		struct pair *pr = &pairs[i];

		pthread_mutex_init(&pr->lock, NULL);
		pthread_cond_init(&pr->nonempty, NULL);
		pthread_cond_init(&pr->nonfull, NULL);
		pr->batches = batches;
		pr->id = i;
		if (pthread_create(&pr->cons, NULL, consumer, pr) != 0 ||
		    pthread_create(&pr->prod, NULL, producer, pr) != 0) {
			fprintf(stderr, "usrvm-bench-xthread: cannot start "
			    "a thread\n");
			return 1;
		}
	}
	for (unsigned i = 0; i < npairs; i++) {
		pthread_join(pairs[i].prod, NULL);
		pthread_join(pairs[i].cons, NULL);
		sum += pairs[i].sum;
	}
	free(pairs);
	printf("xthread pairs=%u batches=%lu blocks=%llu checksum=%llu\n",
	    npairs, batches, (unsigned long long)npairs * batches * BATCH,
	    (unsigned long long)sum);
	return 0;
}
