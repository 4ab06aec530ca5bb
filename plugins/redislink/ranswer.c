/* The core's answers from Redis replies, alike for both backplanes
 * (ranswer.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ranswer.h"
#include "rreply.h"

void ranswer_send(confab_send_done done, void *arg, const rargs *args, int status,
		  uint64_t seq, const char *repeat)
{
	const char *id = args->argv[args->argc - 2];
	unsigned long long first_seq;
	long long ts;
	int id_at = 0, id_end = 0;
	char *first_id;

	if (status != 0 || repeat == NULL) {
		done(arg, status, seq, id, strtoll(args->argv[args->argc - 1], NULL, 10));
		return;
	}
	/* "SEQ ID TS": ids hold no space (the core makes them) */
	if (sscanf(repeat, "%llu %n%*s%n %lld", &first_seq, &id_at, &id_end, &ts) != 2 ||
	    (first_id = strndup(repeat + id_at, (size_t)(id_end - id_at))) == NULL) {
		done(arg, CONFAB_ERR, 0, id, 0);
		return;
	}
	done(arg, 0, first_seq, first_id, ts);
	free(first_id);
}

void ranswer_direct(const rops_ctx *rc, const redisReply *reply, int lost,
		    confab_send_done sdone, confab_status_done done, void *arg,
		    const rargs *args)
{
	const char *repeat = NULL;
	int status;

	if (reply == NULL)
		status = lost;
	else if (reply->type == REDIS_REPLY_INTEGER)
		status = reply->integer > 0 ? 0 : CONFAB_EOFFLINE;
	else if (reply->type == REDIS_REPLY_STRING && sdone != NULL) {
		status = 0;          /* an idempotent repeat */
		repeat = reply->str;
	} else
		status = rreply_status(rc->host, rc->ctx, "direct", reply, rc->redirects);
	if (sdone != NULL)
		ranswer_send(sdone, arg, args, status, 0, repeat);
	else
		done(arg, status == CONFAB_EUNKNOWN ? CONFAB_EUNAVAILABLE : status);
}

void ranswer_epoch(const rops_ctx *rc, const redisReply *reply, const char *room,
		   confab_epoch_done done, void *arg)
{
	if (reply == NULL) {
		done(arg, CONFAB_EUNAVAILABLE, NULL);
	} else if (reply->type == REDIS_REPLY_STRING) {
		rops_remember_epoch(rc, room, reply->str);
		done(arg, 0, reply->str);
	} else {
		done(arg, rreply_status(rc->host, rc->ctx, "epoch", reply, rc->redirects), NULL);
	}
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void ranswer_presence(const rops_ctx *rc, const redisReply *reply, confab_presence_done done,
		      void *arg)
{
	const char **users;
	size_t n = 0;

	if (reply == NULL) {
		done(arg, CONFAB_EUNAVAILABLE, NULL, 0);
		return;
	}
	if (reply->type != REDIS_REPLY_ARRAY) {
		done(arg, rreply_status(rc->host, rc->ctx, "presence", reply, rc->redirects), NULL,
		     0);
		return;
	}
	users = calloc(reply->elements ? reply->elements : 1, sizeof(*users));
	if (users == NULL) {
		done(arg, CONFAB_ENOMEM, NULL, 0);
		return;
	}
	for (size_t i = 0; i < reply->elements; i++)
		if (reply->element[i]->type == REDIS_REPLY_STRING)
			users[n++] = reply->element[i]->str;
	qsort(users, n, sizeof(*users), compare_names);
	done(arg, 0, users, n);
	free(users);
}
