/*
 * usrvm-bench-fork: a workload of the malloc case of usrvm-bench
 * (malloc.c): a heap that fork(2) children go on using.
 *
 *	usrvm-bench-fork MIB CHILDREN [times]
 *
 * A heap of MIB MiB in blocks of 8 bytes to 64 KiB, every word written.
 * Then CHILDREN children, one after another: each checks the whole heap,
 * frees a third of its blocks and allocates them again, rewrites every
 * block and checks it all again, then exits; the parent waits for each
 * and checks its own heap, unchanged.  Prints a checksum of what was
 * read, which does not depend on the allocator; exit status 1 on a wrong
 * word or a failed allocation.  With "times", also prints on stderr, for
 * each child, how long fork() held the parent and how long the child
 * took from fork() to its exit.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXBLOCKS	(1 << 20)
#define MAXWORDS	8192		/* 64 KiB */

static uint64_t *blk[MAXBLOCKS];
static uint32_t nwords[MAXBLOCKS];
static size_t nblk;

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static void
fail(const char *what)
{
	fprintf(stderr, "usrvm-bench-fork: %s\n", what);
	exit(1);
}

static void
fill(size_t i, uint64_t v)
{
	uint64_t h = mix(i * 0x9e3779b97f4a7c15ull + v);

	for (uint32_t w = 0; w < nwords[i]; w++)
		blk[i][w] = h + w;
}

/* => the heap's checksum; exits if a block does not hold version v[i]. */
static uint64_t
check(const uint64_t *v)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < nblk; i++) {
		uint64_t h = mix(i * 0x9e3779b97f4a7c15ull + v[i]);
		for (uint32_t w = 0; w < nwords[i]; w++)
			if (blk[i][w] != h + w)
				fail("a word differs from what was written");
		sum += h * nwords[i];
	}
	return sum;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
child(uint64_t *v, unsigned k)
{
	(void)check(v);
	for (size_t i = k % 3; i < nblk; i += 3) {
		free(blk[i]);
		if ((blk[i] = malloc(nwords[i] * sizeof(uint64_t))) == NULL)
			fail("out of memory in a child");
	}
	for (size_t i = 0; i < nblk; i++)
		fill(i, v[i] = k + 1);
	(void)check(v);
	_exit(0);
}

int
main(int argc, char **argv)
{
	size_t bytes, total = 0;
	unsigned children;
	uint64_t *v, rs = 1, sum = 0;
	int status;
	bool times;

	if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "times")))
		fail("usage: usrvm-bench-fork MIB CHILDREN [times]");
	times = argc == 4;
	bytes = strtoull(argv[1], NULL, 10) << 20;
	children = (unsigned)strtoul(argv[2], NULL, 10);
	while (total < bytes && nblk < MAXBLOCKS) {
		rs = mix(rs);
		nwords[nblk] = 1 + (uint32_t)(rs % MAXWORDS);
		if ((blk[nblk] = malloc(nwords[nblk] * sizeof(uint64_t))) ==
		    NULL)
			fail("out of memory");
		total += nwords[nblk++] * sizeof(uint64_t);
	}
	if ((v = calloc(nblk, sizeof(*v))) == NULL)
		fail("out of memory");
	for (size_t i = 0; i < nblk; i++)
		fill(i, 0);
	for (unsigned k = 0; k < children; k++) {
		double t0 = now_ms(), t1;
		pid_t pid = fork();
		t1 = now_ms();
		if (pid < 0)
			fail("fork failed");
		if (pid == 0)
			child(v, k);
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			fail("a child failed");
		if (times)
			fprintf(stderr, "child %u: fork() held the parent "
			    "%.2f ms; the child was done after %.2f ms\n", k,
			    t1 - t0, now_ms() - t0);
		sum += check(v);
	}
	printf("%zu blocks, %zu bytes, %u children, checksum %016llx\n",
	    nblk, total, children, (unsigned long long)sum);
	return 0;
}
