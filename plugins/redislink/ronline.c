/* The onlines Redis has not confirmed yet, and the welcomes waiting for
 * them (ronline.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>
#include <string.h>

#include "ronline.h"
#include "rops.h"

typedef struct ronline {
	unsigned sent;               /* online scripts on their way */
	bool unsent;                 /* one is still to be sent */
	rwait *waiting;              /* newest first */
} ronline;

static void entry_free(void *p)
{
	ronline *e = p;

	if (e != NULL)
		rwait_free_all(&e->waiting);
	free(e);
}

confab_dict *ronline_new(void)
{
	return confab_dict_new();
}

void ronline_free(confab_dict *t)
{
	confab_dict_free(t, entry_free);
}

/* The user's entry, made when there is none (NULL when out of memory). */
static ronline *entry(confab_dict *t, const char *user)
{
	ronline *e = confab_dict_get(t, user);

	if (e != NULL)
		return e;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	if (confab_dict_set(t, user, e) != 0) {
		free(e);
		return NULL;
	}
	return e;
}

/* Nothing of the user's on its way or unsent: the waiters go on, and the
 * entry goes once nobody waits. Their answers may change the table (a
 * welcome sends nothing here, but nothing promises that): it is looked up
 * again after. */
static void settle(confab_dict *t, const char *user)
{
	ronline *e = confab_dict_get(t, user);

	if (e == NULL || e->sent > 0 || e->unsent)
		return;
	if (e->waiting != NULL) {
		rwait_answer_all(&e->waiting, 0);
		e = confab_dict_get(t, user);
	}
	if (e != NULL && e->sent == 0 && !e->unsent && e->waiting == NULL)
		entry_free(confab_dict_remove(t, user));
}

int ronline_sent(confab_dict *t, const char *user)
{
	ronline *e = entry(t, user);

	if (e == NULL)
		return CONFAB_ENOMEM;
	e->sent++;
	e->unsent = false;
	return 0;
}

void ronline_answered(confab_dict *t, const char *user, bool ok)
{
	ronline *e = confab_dict_get(t, user);

	if (e == NULL)
		return;  /* forgotten (destroy) */
	if (e->sent > 0)
		e->sent--;
	if (!ok && e->waiting != NULL)
		rwait_answer_all(&e->waiting, CONFAB_EUNAVAILABLE);
	settle(t, user);
}

void ronline_unsent(confab_dict *t, const char *user, bool unsent)
{
	ronline *e = unsent ? entry(t, user) : confab_dict_get(t, user);

	if (e == NULL)
		return;
	e->unsent = unsent;
	if (!unsent && e->waiting != NULL)
		rwait_answer_all(&e->waiting, CONFAB_EUNAVAILABLE);
	settle(t, user);
}

int ronline_wait(confab_dict *t, const char *user, confab_status_done done, void *arg,
		 uint64_t now)
{
	ronline *e = confab_dict_get(t, user);

	if (e == NULL) {
		done(arg, 0);  /* recorded already */
		return 0;
	}
	return rwait_push(&e->waiting, done, arg, now);
}

void ronline_fail(confab_dict *t, bool (*match)(const char *user, void *ctx), void *ctx,
		  uint64_t older_than, bool forget)
{
	rwait *failed = NULL;
	confab_dict_iter it;
	const char *user;
	void *value;
	char **gone = NULL;
	size_t n_gone = 0, cap = confab_dict_count(t);

	if (cap > 0 && (gone = calloc(cap, sizeof(*gone))) == NULL)
		cap = 0;
	/* Take the waiters out first: answering them may change the table,
	 * which may not change while it is iterated. */
	confab_dict_iter_init(&it, t);
	while (confab_dict_iter_next(&it, &user, &value)) {
		ronline *e = value;
		bool old = older_than == UINT64_MAX;

		if (match != NULL && !match(user, ctx))
			continue;
		for (rwait *w = e->waiting; w != NULL && !old; w = w->next)
			old = w->since < older_than;
		if (old) {
			while (e->waiting != NULL) {
				rwait *w = e->waiting;

				e->waiting = w->next;
				w->next = failed;
				failed = w;
			}
		}
		if (forget) {
			e->sent = 0;
			e->unsent = false;
		}
		if (e->sent == 0 && !e->unsent && e->waiting == NULL && n_gone < cap)
			gone[n_gone++] = strdup(user);
	}
	for (size_t i = 0; i < n_gone; i++) {
		if (gone[i] != NULL)
			entry_free(confab_dict_remove(t, gone[i]));
		free(gone[i]);
	}
	free(gone);
	rwait_answer_all(&failed, CONFAB_EUNAVAILABLE);
}
