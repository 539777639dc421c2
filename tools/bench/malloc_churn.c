/*
 * usrvm-bench-churn: a workload of the malloc case of usrvm-bench
 * (malloc.c): random-order small-object churn, one thread, the pattern
 * of larson's test without its threads.
 *
 *	usrvm-bench-churn SLOTS OPS
 *
 * SLOTS blocks are live at once; each of OPS steps picks a random slot,
 * checks and frees its block and puts a new one of a random size there:
 * 70% 16-128 bytes, 25% 129-1024, 5% 1-8 KiB, each written at both ends.
 * So blocks die in an order unrelated to their birth, and the heap
 * fragments as a long-running server's does.  Prints a checksum of what
 * was read back, which does not depend on the allocator; exit status 1
 * if an allocation fails or a block does not read back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct slot {
	unsigned char *p;
	uint32_t size;
};

static uint64_t rng_state;

static inline uint64_t
rng(void)
{
	uint64_t x = rng_state;

	rng_state += 0x9e3779b97f4a7c15ULL;
	return bench_mix64(x);	/* splitmix64 */
}

static uint32_t
pick_size(uint64_t r)
{
	unsigned p = (unsigned)(r % 100);

	r >>= 8;
	if (p < 70)
		return 16 + (uint32_t)(r % 113);
	if (p < 95)
		return 129 + (uint32_t)(r % 896);
	return 1025 + (uint32_t)(r % 7168);
}

static void
fill(struct slot *s, uint64_t r)
{
	s->size = pick_size(r);
	if ((s->p = malloc(s->size)) == NULL) {
		fprintf(stderr, "usrvm-bench-churn: out of memory\n");
		exit(1);
	}
	s->p[0] = (unsigned char)s->size;
	s->p[s->size - 1] = (unsigned char)(s->size >> 3);
}

static uint64_t
empty(struct slot *s)
{
	if (s->p[0] != (unsigned char)s->size ||
	    s->p[s->size - 1] != (unsigned char)(s->size >> 3)) {
		fprintf(stderr, "usrvm-bench-churn: a block of %u bytes "
		    "does not read back\n", s->size);
		exit(1);
	}
	free(s->p);
	return s->size;
}

int
main(int argc, char **argv)
{
	size_t nslots = argc > 2 ? strtoul(argv[1], NULL, 0) : 0;
	uint64_t ops = argc > 2 ? strtoull(argv[2], NULL, 0) : 0, sum = 0;
	struct slot *slots;

	if (nslots == 0 || ops == 0) {
		fprintf(stderr, "usage: usrvm-bench-churn SLOTS OPS\n");
		return 2;
	}
	rng_state = 0x5eedf00dULL;
	if ((slots = calloc(nslots, sizeof(*slots))) == NULL) {
		fprintf(stderr, "usrvm-bench-churn: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < nslots; i++)
		fill(&slots[i], rng());
	for (uint64_t i = 0; i < ops; i++) {
		uint64_t r = rng();
		struct slot *s = &slots[(r >> 32) % nslots];

		sum += empty(s);
		fill(s, r);
	}
	for (size_t i = 0; i < nslots; i++)
		sum += empty(&slots[i]);
	free(slots);
	printf("churn slots=%zu ops=%llu bytes freed=%llu\n", nslots,
	    (unsigned long long)ops, (unsigned long long)sum);
	return 0;
}
