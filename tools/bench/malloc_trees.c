/*
 * usrvm-bench-trees: a workload of the malloc case of usrvm-bench
 * (malloc.c): small-object churn, one thread, the binary-trees pattern.
 *
 *	usrvm-bench-trees DEPTH
 *
 * A stretch tree of depth DEPTH+1 is built and dropped, a long-lived
 * tree of depth DEPTH is built, then for every depth d = 4, 6, ... DEPTH,
 * 2^(DEPTH-d+4) trees of depth d are built, checked and freed, every node
 * a malloc of its own (24 bytes) freed in tree order.  Prints the node
 * counts, which do not depend on the allocator; exit status 1 if an
 * allocation fails.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct node {
	struct node *left, *right;
	uint64_t item;
};

static struct node *
make(unsigned depth, uint64_t item)
{
	struct node *n = malloc(sizeof(*n));

	if (n == NULL) {
		fprintf(stderr, "usrvm-bench-trees: out of memory\n");
		exit(1);
	}
	n->item = item;
	if (depth == 0) {
		n->left = n->right = NULL;
	} else {
		n->left = make(depth - 1, 2 * item);
		n->right = make(depth - 1, 2 * item + 1);
	}
	return n;
}

/* Nodes of the tree, checking each node's item against its position. */
static uint64_t
check(const struct node *n, uint64_t item)
{
	if (n->item != item) {
		fprintf(stderr, "usrvm-bench-trees: node %llu reads %llu\n",
		    (unsigned long long)item, (unsigned long long)n->item);
		exit(1);
	}
	if (n->left == NULL)
		return 1;
	return 1 + check(n->left, 2 * n->item) +
	    check(n->right, 2 * n->item + 1);
}

static void
drop(struct node *n)
{
	if (n->left != NULL) {
		drop(n->left);
		drop(n->right);
	}
	free(n);
}

int
main(int argc, char **argv)
{
	unsigned min = 4, max = argc > 1 ? (unsigned)atoi(argv[1]) : 16;
	struct node *t, *longlived;
	uint64_t total = 0;

	if (max < min + 2 || max > 26) {
		fprintf(stderr, "usage: usrvm-bench-trees DEPTH (6 to 26)\n");
		return 2;
	}
	t = make(max + 1, 1);
	printf("stretch depth %u check %llu\n", max + 1,
	    (unsigned long long)check(t, 1));
	drop(t);
	longlived = make(max, 1);
	for (unsigned d = min; d <= max; d += 2) {
		uint64_t iters = (uint64_t)1 << (max - d + min), sum = 0;

		for (uint64_t i = 0; i < iters; i++) {
			t = make(d, 1);
			sum += check(t, 1);
			drop(t);
		}
		printf("%llu trees of depth %u check %llu\n",
		    (unsigned long long)iters, d, (unsigned long long)sum);
		total += sum;
	}
	printf("long lived tree of depth %u check %llu; %llu nodes in all\n",
	    max, (unsigned long long)check(longlived, 1),
	    (unsigned long long)total);
	drop(longlived);
	return 0;
}
