/*
 * frame.c: the frame area and its allocator (see frame.h).
 *
 * A stack of free frame indices: O(1) both ways, and a frame freed is the
 * next one reused, while its page tables are still warm.
 *
 * Warm frames.  A full frame given back is kept full, up to FRAME_WARM,
 * for the next read from swap: the read overwrites it whole.  Emptying
 * a frame is a MADV_DONTNEED, which shoots down the TLB of every CPU the
 * process runs on, and the read into an empty frame faults a new page
 * in: a page-in installed by copy (a clean page) paid both, for nothing.
 * A page moved out needs an empty frame (frame_alloc); when none is left,
 * warm ones are emptied.
 */
#include <pthread.h>
#include <stdlib.h>

#include "fault/pmap.h"
#include "frame.h"
#include "kmem.h"
#include "page.h"
#include "usrvm_internal.h"

static pthread_mutex_t frame_lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t frame_base;
static size_t frame_count;
static uint32_t *frame_stack;		/* free frames, empty */
static size_t frame_nfree;
#define FRAME_WARM	64
static uint32_t frame_warm[FRAME_WARM];	/* free frames, full */
static size_t frame_nwarm;

int
frame_sys_init(size_t nframes)
{
	int error;

	KASSERT(nframes > 0 && nframes < FRAME_NONE);
	frame_stack = kmem_alloc(nframes * sizeof(*frame_stack));
	if (frame_stack == NULL)
		return ENOMEM;
	if ((error = pmap->frames_reserve(ptoa(nframes), &frame_base)) != 0) {
		kmem_free(frame_stack, nframes * sizeof(*frame_stack));
		frame_stack = NULL;
		return error;
	}
	frame_count = nframes;
	for (size_t i = 0; i < nframes; i++)
		frame_stack[i] = (uint32_t)(nframes - 1 - i);
	frame_nfree = nframes;
	return 0;
}

void
frame_sys_fini(void)
{
	if (frame_stack == NULL)
		return;
	KASSERT(frame_nfree + frame_nwarm == frame_count);
	frame_nwarm = 0;
	pmap->frames_release(frame_base, ptoa(frame_count));
	kmem_free(frame_stack, frame_count * sizeof(*frame_stack));
	frame_stack = NULL;
	frame_count = frame_nfree = 0;
}

/*
 * In a fork child (fork.c), the frames are a private copy of the
 * parent's (the kernel shares their pages until written): their lock is
 * new, and they are registered with the child's own context (adopt).
 */
void
frame_fork_child(void)
{
	FORK_REINIT_MUTEX(&frame_lock);
}

int
frame_fork_adopt(void)
{
	if (frame_stack == NULL)
		return 0;
	return pmap->frames_adopt(frame_base, ptoa(frame_count));
}

uint32_t
frame_alloc(void)
{
	return frame_alloc_above(0);
}

uint32_t
frame_alloc_above(size_t keep)
{
	uint32_t f = FRAME_NONE;
	bool full = false;

	pthread_mutex_lock(&frame_lock);
	if (frame_nfree + frame_nwarm <= keep) {
		/* the rest is kept for others */
	} else if (frame_nfree > 0) {
		f = frame_stack[--frame_nfree];
	} else if (frame_nwarm > 0) {
		f = frame_warm[--frame_nwarm];
		full = true;
	}
	pthread_mutex_unlock(&frame_lock);
	if (full)
		(void)pmap->frames_free(frame_va(f), PAGE_SIZE);
	return f;
}

uint32_t
frame_alloc_warm(void)
{
	uint32_t f = FRAME_NONE;

	pthread_mutex_lock(&frame_lock);
	if (frame_nwarm > 0)
		f = frame_warm[--frame_nwarm];
	else if (frame_nfree > 0)
		f = frame_stack[--frame_nfree];
	pthread_mutex_unlock(&frame_lock);
	return f;
}

void
frame_free(uint32_t f, bool full)
{
	bool kept = false;

	KASSERT(f < frame_count);
	if (full) {
		pthread_mutex_lock(&frame_lock);
		if ((kept = frame_nwarm < FRAME_WARM))
			frame_warm[frame_nwarm++] = f;
		pthread_mutex_unlock(&frame_lock);
		if (kept)
			return;
		(void)pmap->frames_free(frame_va(f), PAGE_SIZE);
	}
	pthread_mutex_lock(&frame_lock);
	KASSERT(frame_nfree + frame_nwarm < frame_count);
	frame_stack[frame_nfree++] = f;
	pthread_mutex_unlock(&frame_lock);
}

static int
frame_cmp_desc(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * frame_free_many: sorted, frames next to each other are emptied
 * together; pushed in descending order, they come off the stack
 * ascending, so the next pages taken away together get consecutive
 * frames again (and move in one call).
 */
void
frame_free_many(uint32_t *f, unsigned n)
{
	qsort(f, n, sizeof(*f), frame_cmp_desc);
	for (unsigned i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && f[j] + 1 == f[j - 1]; j++)
			continue;
		(void)pmap->frames_free(frame_va(f[j - 1]), ptoa(j - i));
	}
	pthread_mutex_lock(&frame_lock);
	for (unsigned i = 0; i < n; i++) {
		KASSERT(f[i] < frame_count &&
		    frame_nfree + frame_nwarm < frame_count);
		frame_stack[frame_nfree++] = f[i];
	}
	pthread_mutex_unlock(&frame_lock);
}

uintptr_t
frame_va(uint32_t f)
{
	return frame_base + ptoa(f);
}

size_t
frame_avail(void)
{
	size_t n;

	pthread_mutex_lock(&frame_lock);
	n = frame_nfree + frame_nwarm;
	pthread_mutex_unlock(&frame_lock);
	return n;
}

size_t
frame_inuse(void)
{
	size_t n;

	pthread_mutex_lock(&frame_lock);
	n = frame_count - frame_nfree - frame_nwarm;
	pthread_mutex_unlock(&frame_lock);
	return n;
}
