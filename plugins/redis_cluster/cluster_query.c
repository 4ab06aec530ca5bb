/* What the core reads: presence, history (with or without the epoch) and
 * a room's epoch, each one script or command in the room's partition, with
 * the same answers as the `redis` backplane's (plugins/redis/redis_ops.c).
 *
 * SPDX-License-Identifier: MIT
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

/* ---- presence ---- */

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool presence_reply(cl_state *s, cq *q, redisReply *reply)
{
	const char **users;
	size_t n = 0;

	if (reply == NULL) {
		q->done.presence(q->arg, CONFAB_EUNAVAILABLE, NULL, 0);
		return true;
	}
	if (reply->type != REDIS_REPLY_ARRAY) {
		q->done.presence(q->arg, ops_reply_status(s, "presence", reply), NULL, 0);
		return true;
	}
	users = calloc(reply->elements ? reply->elements : 1, sizeof(*users));
	if (users == NULL) {
		q->done.presence(q->arg, CONFAB_ENOMEM, NULL, 0);
		return true;
	}
	for (size_t i = 0; i < reply->elements; i++)
		if (reply->element[i]->type == REDIS_REPLY_STRING)
			users[n++] = reply->element[i]->str;
	qsort(users, n, sizeof(*users), compare_names);
	q->done.presence(q->arg, 0, users, n);
	free(users);
	return true;
}

int query_presence(void *state, const char *room, confab_presence_done done, void *arg)
{
	cl_state *s = state;
	unsigned k = part_of(s, room);
	cq *q;
	int rc = ops_admit(s, k);

	if (rc != 0)
		return rc;
	q = cq_new(s, presence_reply, -1, (int)k);
	if (q == NULL || rargs_adds(&q->args, "SMEMBERS") != 0 ||
	    rargs_addf(&q->args, "%spres:%s", s->part[k].prefix, room) != 0) {
		cq_free(q);
		return CONFAB_ENOMEM;
	}
	q->done.presence = done;
	ops_own(s, q, arg);
	cq_submit(s, q);
	return 0;
}

/* ---- history and epochs ---- */

static void remember_epoch(cl_state *s, const char *room, const char *epoch)
{
	lroom *r = confab_dict_get(s->rooms, room);

	if (r != NULL && epoch != NULL)
		snprintf(r->epoch, sizeof(r->epoch), "%s", epoch);
}

static void history_answer(cq *q, int status, const confab_envelope *msgs, size_t n,
			   bool truncated, const char *epoch)
{
	if (q->aux)
		q->done.history_epoch(q->arg, status, msgs, n, truncated, status == 0 ? epoch : NULL);
	else
		q->done.history(q->arg, status, msgs, n, truncated);
}

static bool history_reply(cl_state *s, cq *q, redisReply *reply)
{
	wire_msg *msgs;
	confab_envelope *envs;
	size_t n, parsed = 0;
	int status = 0;

	if (reply == NULL) {
		history_answer(q, CONFAB_EUNAVAILABLE, NULL, 0, false, NULL);
		return true;
	}
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
	    reply->element[0]->type != REDIS_REPLY_INTEGER ||
	    reply->element[1]->type != REDIS_REPLY_STRING) {
		history_answer(q, ops_reply_status(s, "history", reply), NULL, 0, false, NULL);
		return true;
	}
	n = reply->elements - 2;
	msgs = calloc(n ? n : 1, sizeof(*msgs));
	envs = calloc(n ? n : 1, sizeof(*envs));
	if (msgs == NULL || envs == NULL)
		status = CONFAB_ENOMEM;
	for (size_t i = 0; status == 0 && i < n; i++) {
		const redisReply *e = reply->element[i + 2];
		const char *why = "not a string";

		if (e->type != REDIS_REPLY_STRING ||
		    wire_parse(e->str, e->len, &msgs[i], &why) != 0 || msgs[i].kind != 'm') {
			cl_log(s, CONFAB_LOG_ERROR, "history: a stored message cannot be read: %s",
			       msgs[i].hdr != NULL ? "not a room message" : why);
			status = CONFAB_ERR;
			if (msgs[i].hdr != NULL)
				parsed++;
			break;
		}
		envs[i] = msgs[i].env;
		if (envs[i].epoch == NULL)
			envs[i].epoch = reply->element[1]->str;
		parsed++;
	}
	if (status == 0) {
		remember_epoch(s, q->args.argv[q->args.argc - 1], reply->element[1]->str);
		history_answer(q, 0, envs, n, reply->element[0]->integer != 0,
			       reply->element[1]->str);
	} else {
		history_answer(q, status, NULL, 0, false, NULL);
	}
	for (size_t i = 0; i < parsed; i++)
		wire_msg_clear(&msgs[i]);
	free(msgs);
	free(envs);
	return true;
}

static int history_request(cl_state *s, const char *room, const char *known, bool has_since,
			   uint64_t since, size_t limit, confab_history_done hdone,
			   confab_history_epoch_done edone, void *arg)
{
	unsigned k = part_of(s, room);
	char fresh[17];
	cq *q;
	int rc = ops_admit(s, k);

	if (rc != 0)
		return rc;
	ops_fresh_epoch(fresh);
	q = cq_new(s, history_reply, CS_HISTORY, (int)k);
	if (q == NULL || ops_record_keys(s, q, room) ||
	    rargs_addf(&q->args, "%sroom:%s:pub", s->part[k].prefix, room) || ops_prefixes(s, q) ||
	    rargs_adds(&q->args, has_since ? "1" : "0") || rargs_addf(&q->args, "%" PRIu64, has_since ? since : 0) ||
	    rargs_addf(&q->args, "%zu", limit) || rargs_addf(&q->args, "%zu", s->common.history_size) ||
	    rargs_adds(&q->args, known != NULL ? known : "") || rargs_addf(&q->args, "%lu", s->common.room_ttl) ||
	    rargs_adds(&q->args, fresh) || rargs_adds(&q->args, s->ack_replicas ? "1" : "0") || rargs_adds(&q->args, room)) {
		cq_free(q);
		return CONFAB_ENOMEM;
	}
	q->nkeys = 4;
	q->aux = edone != NULL;
	if (edone != NULL)
		q->done.history_epoch = edone;
	else
		q->done.history = hdone;
	ops_own(s, q, arg);
	cq_submit(s, q);
	return 0;
}

int query_history(void *state, const char *room, bool has_since, uint64_t since,
		       size_t limit, confab_history_done done, void *arg)
{
	return history_request(state, room, NULL, has_since, since, limit, done, NULL, arg);
}

int query_history_epoch(void *state, const char *room, const char *epoch, bool has_since,
			     uint64_t since, size_t limit, confab_history_epoch_done done,
			     void *arg)
{
	return history_request(state, room, epoch, has_since, since, limit, NULL, done, arg);
}

static bool epoch_reply(cl_state *s, cq *q, redisReply *reply)
{
	if (reply == NULL) {
		q->done.epoch(q->arg, CONFAB_EUNAVAILABLE, NULL);
	} else if (reply->type == REDIS_REPLY_STRING) {
		remember_epoch(s, q->args.argv[q->args.argc - 1], reply->str);
		q->done.epoch(q->arg, 0, reply->str);
	} else {
		q->done.epoch(q->arg, ops_reply_status(s, "epoch", reply), NULL);
	}
	return true;
}

int query_room_epoch(void *state, const char *room, confab_epoch_done done, void *arg)
{
	cl_state *s = state;
	unsigned k = part_of(s, room);
	char fresh[17];
	cq *q;
	int rc = ops_admit(s, k);

	if (rc != 0)
		return rc;
	ops_fresh_epoch(fresh);
	q = cq_new(s, epoch_reply, CS_EPOCH, (int)k);
	if (q == NULL || ops_record_keys(s, q, room) || ops_prefixes(s, q) ||
	    rargs_addf(&q->args, "%lu", s->common.room_ttl) || rargs_adds(&q->args, fresh) || rargs_adds(&q->args, room)) {
		cq_free(q);
		return CONFAB_ENOMEM;
	}
	q->nkeys = 3;
	q->done.epoch = done;
	ops_own(s, q, arg);
	cq_submit(s, q);
	return 0;
}
