/*
 * pdpolicy.c: the page replacement policy (see pdpolicy.h).
 */
#include "page.h"
#include "pdpolicy.h"
#include "usrvm_internal.h"

#define PDP_FREETARG_DIV	32	/* freetarg: 1/32 of the budget */
#define PDP_FREETARG_MIN	16
#define PDP_FREETARG_MAX	4096	/* 16 MiB */
#define PDP_INACTIVE_DIV	3	/* inactive: 1/3 of both queues */

void
pdp_init(struct pdpolicy *p, size_t budget)
{
	*p = (struct pdpolicy){ .p_budget = budget };
	p->p_freetarg = MIN(MAX(budget / PDP_FREETARG_DIV,
	    (size_t)PDP_FREETARG_MIN), (size_t)PDP_FREETARG_MAX);
	if (p->p_freetarg > budget / 4)
		p->p_freetarg = MAX(budget / 4, (size_t)1);
	p->p_freemin = MAX(p->p_freetarg / 4, (size_t)1);
}

static void
q_insert_tail(struct pdp_queue *q, struct vm_page *pg)
{
	pg->pg_qnext = NULL;
	pg->pg_qprev = q->q_tail;
	if (q->q_tail != NULL)
		q->q_tail->pg_qnext = pg;
	else
		q->q_head = pg;
	q->q_tail = pg;
	q->q_len++;
}

static void
q_remove(struct pdp_queue *q, struct vm_page *pg)
{
	if (pg->pg_qprev != NULL)
		pg->pg_qprev->pg_qnext = pg->pg_qnext;
	else
		q->q_head = pg->pg_qnext;
	if (pg->pg_qnext != NULL)
		pg->pg_qnext->pg_qprev = pg->pg_qprev;
	else
		q->q_tail = pg->pg_qprev;
	pg->pg_qnext = pg->pg_qprev = NULL;
	KASSERT(q->q_len > 0);
	q->q_len--;
}

void
pdp_dequeue(struct pdpolicy *p, struct vm_page *pg)
{
	switch (pg->pg_pq) {
	case PQ_ACTIVE:
		q_remove(&p->p_active, pg);
		break;
	case PQ_INACTIVE:
		q_remove(&p->p_inactive, pg);
		break;
	default:
		KASSERT(pg->pg_pq == PQ_NONE);
		break;
	}
	pg->pg_pq = PQ_NONE;
}

void
pdp_activate(struct pdpolicy *p, struct vm_page *pg)
{
	pdp_dequeue(p, pg);
	q_insert_tail(&p->p_active, pg);
	pg->pg_pq = PQ_ACTIVE;
}

void
pdp_requeue(struct pdpolicy *p, struct vm_page *pg)
{
	pdp_activate(p, pg);
}

void
pdp_deactivate(struct pdpolicy *p, struct vm_page *pg)
{
	pdp_dequeue(p, pg);
	q_insert_tail(&p->p_inactive, pg);
	pg->pg_pq = PQ_INACTIVE;
}

struct vm_page *
pdp_active_head(const struct pdpolicy *p)
{
	return p->p_active.q_head;
}

struct vm_page *
pdp_inactive_head(const struct pdpolicy *p)
{
	return p->p_inactive.q_head;
}

int
pdp_needed(const struct pdpolicy *p, size_t resident)
{
	return resident + p->p_freemin > p->p_budget;
}

void
pdp_balance(const struct pdpolicy *p, size_t resident, size_t *nfree,
    size_t *ndeact)
{
	size_t nact = p->p_active.q_len, ninact = p->p_inactive.q_len;
	size_t want_free = 0, want_inact;

	if (resident + p->p_freetarg > p->p_budget)
		want_free = resident + p->p_freetarg - p->p_budget;
	/* Only under pressure: taking pages away costs the application a
	 * fault each time it comes back to one. */
	want_inact = 0;
	if (want_free > 0)
		want_inact = MAX((nact + ninact) / PDP_INACTIVE_DIV,
		    want_free);
	*nfree = MIN(want_free, ninact);
	*ndeact = want_inact > ninact ? MIN(want_inact - ninact, nact) : 0;
}
