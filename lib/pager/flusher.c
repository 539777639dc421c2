/*
 * flusher.c: the flusher thread (see flusher.h).  Each wake-up is a
 * round: every pager is asked once for what it has to clean (a failed
 * write waits for the next round rather than spinning).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>

#include "pager/aobj.h"
#include "pager/flusher.h"
#include "pager/pgio.h"
#include "pager/vnode_pager.h"
#include "usrvm_internal.h"

#define FL_DIRTY_AGE_MS	30000		/* USRVM_DIRTY_AGE's default */

static struct usrvm_thread fl_thread;
static bool fl_started;
static pthread_mutex_t fl_lock = PTHREAD_MUTEX_INITIALIZER;	/* a leaf */
static pthread_cond_t fl_cv = PTHREAD_COND_INITIALIZER;
static bool fl_stopping, fl_kicked;			/* fl_lock */
static uint64_t fl_age_ns;		/* USRVM_DIRTY_AGE: constant */

void
flusher_kick(void)
{
	pthread_mutex_lock(&fl_lock);
	fl_kicked = true;
	pthread_cond_signal(&fl_cv);
	pthread_mutex_unlock(&fl_lock);
}

static void *
fl_main(void *arg)
{
	uint64_t age = fl_age_ns, tick = MIN(age / 4 + 1, 1000000000ull);
	uint64_t round = 0;

	(void)arg;
	usrvm_runtime_thread = true;
	for (;;) {
		pthread_mutex_lock(&fl_lock);
		if (!fl_kicked && !fl_stopping)
			usrvm_cond_wait_ns(&fl_cv, &fl_lock, tick);
		fl_kicked = false;
		if (fl_stopping) {
			pthread_mutex_unlock(&fl_lock);
			break;
		}
		pthread_mutex_unlock(&fl_lock);
		round++;
		uvn_flush_round(age, round);
		aobj_clean_round(round);
	}
	pgio_thread_exit();
	return NULL;
}

int
flusher_start(unsigned dirty_age_ms)
{
	int error;

	fl_age_ns = (uint64_t)(dirty_age_ms != 0 ? dirty_age_ms :
	    FL_DIRTY_AGE_MS) * 1000000;
	fl_stopping = fl_kicked = false;
	if ((error = usrvm_thread_start(&fl_thread, fl_main, NULL,
	    "usrvm-flusher")) != 0)
		return error;
	fl_started = true;
	return 0;
}

void
flusher_stop(void)
{
	if (!fl_started)
		return;
	pthread_mutex_lock(&fl_lock);
	fl_stopping = true;
	pthread_cond_signal(&fl_cv);
	pthread_mutex_unlock(&fl_lock);
	usrvm_thread_join(&fl_thread);
	fl_started = false;
}

/* In a fork child (fork.c): the thread was stopped before the fork. */
void
flusher_fork_child(void)
{
	FORK_REINIT_MUTEX(&fl_lock);
	FORK_REINIT_COND(&fl_cv);
}
