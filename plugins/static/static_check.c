/* static: answering a client — credentials read, the core's login throttle
 * asked (login_begin), the password hashed on libuv's thread pool.
 *
 * Checking a password is slow on purpose (yescrypt: tens of ms), so it runs
 * on the pool and the answer comes later, from the after-work callback on
 * the loop. An unknown name is checked against a real user's hash too, so
 * that the time of the answer does not tell which names exist.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "static.h"

/* One password check in flight, from authenticate() to its after-work
 * callback. The work callback (on a pool thread) reads only `hash` and
 * `password` and writes only `match` and `failed`. */
struct job {
	uv_work_t work;
	struct static_auth *st;
	/* the instance's list of checks in flight: `pprev` is the link that
	 * points at this job (st->jobs or the previous job's `next`) */
	struct job *next, **pprev;
	struct user_table *table; /* a reference: keeps `user` alive across a reload */
	const struct user *user;  /* NULL: unknown name, checked against a decoy */
	char *hash;               /* copies for the pool thread */
	char *password;
	bool match;
	bool failed;              /* no memory for crypt: answer 503 */
	confab_auth_done done;    /* NULL once answered */
	void *arg;
	char name[CONFAB_USER_MAX + 1];
	char remote[64];          /* for the log */
};

/* The crypt(3) output against the stored hash, in time that depends on the
 * stored hash's length only. `out` has CRYPT_OUTPUT_SIZE bytes. */
static bool same_hash(const char *out, const char *stored)
{
	size_t n = strlen(stored) + 1;
	unsigned char diff = 0;

	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(out[i] ^ stored[i]);
	return diff == 0;
}

/* On a pool thread: touches nothing but the job's own copies. */
static void check_work(uv_work_t *w)
{
	struct job *job = w->data;
	struct crypt_data *cd = calloc(1, sizeof(*cd));

	if (cd == NULL) {
		job->failed = true;
	} else {
		const char *out = crypt_rn(job->password, job->hash, cd, (int)sizeof(*cd));
		job->match = out != NULL && same_hash(cd->output, job->hash);
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
	}
	explicit_bzero(job->password, strlen(job->password));
}

/* Gives the job's answer (503 when shutting down) and forgets `done`. */
static void answer(struct job *job)
{
	struct static_auth *st = job->st;
	confab_auth_result r = { .size = sizeof(r), .decision = CONFAB_AUTH_DENY, .http_status = 401,
				 .reason = "invalid credentials" };
	confab_auth_done done = job->done;

	if (st->stopping) {
		r.http_status = 503;
		r.reason = "server shutting down";
	} else if (job->failed) {
		r.http_status = 503;
		r.reason = "authentication unavailable";
		st->host->log(st->ctx, CONFAB_LOG_ERROR, "out of memory checking %s's password",
			      job->name);
	} else if (job->match && job->user != NULL) {
		r.decision = CONFAB_AUTH_ALLOW;
		r.user = job->user->name;
		r.rooms = (const char *const *)job->user->rooms;
		r.n_rooms = job->user->n_rooms;
		st->host->log(st->ctx, CONFAB_LOG_DEBUG, "admitted %s from %s", job->name, job->remote);
	} else {
		uint64_t now = uv_now(st->host->loop(st->ctx)), skipped;
		if (confab_ratelimit_allow(&st->denied_log, now, &skipped))
			st->host->log(st->ctx, CONFAB_LOG_INFO, "denied %s from %s: invalid "
				      "credentials (%llu more such lines since the last)", job->name,
				      job->remote, (unsigned long long)skipped);
	}
	job->done = NULL;
	done(job->arg, &r);
}

/* Back on the loop: answer unless stop() did, then free the job. */
static void check_done(uv_work_t *w, int status)
{
	struct job *job = w->data;
	struct static_auth *st = job->st;

	(void)status;  /* UV_ECANCELED only after stop() or cancel, which answered */
	*job->pprev = job->next;
	if (job->next != NULL)
		job->next->pprev = job->pprev;
	if (job->done != NULL)
		answer(job);
	static_users_unref(job->table);
	free(job->hash);
	free(job->password);
	free(job);
	static_release(st);
}

/* Refuses at once, unhashed, with `status` and `reason`; `why` is for the
 * log. */
static void deny_now(struct static_auth *st, const confab_request *req, const char *name,
		     int status, const char *reason, const char *why,
		     confab_auth_done done, void *arg)
{
	confab_auth_result r = { .size = sizeof(r), .decision = CONFAB_AUTH_DENY,
				 .http_status = status, .reason = reason };
	uint64_t now = uv_now(st->host->loop(st->ctx)), skipped;

	/* The name is the client's: log it only when it is a valid one. */
	if (confab_ratelimit_allow(&st->malformed_log, now, &skipped))
		st->host->log(st->ctx, CONFAB_LOG_INFO, "denied %s from %s: %s (%llu more such "
			      "lines since the last)", name != NULL && confab_valid_user(name) ?
			      name : "(invalid name)", req->remote_addr, why,
			      (unsigned long long)skipped);
	done(arg, &r);
}

/* Asks the core whether this check may start (ABI 1.3; an older core
 * has no throttle and every check starts). */
static bool may_check(struct static_auth *st, void *arg, const char *name)
{
	const confab_host_auth *ha = CONFAB_HAS(st->host, auth) ? st->host->auth : NULL;

	if (!CONFAB_HAS(ha, login_begin))
		return true;
	return ha->login_begin(st->ctx, arg, name) != CONFAB_EFULL;
}

/* Hands the check of `pw` for `name` to the pool: 0, or an error with
 * nothing queued. */
static int queue_check(struct static_auth *st, const confab_request *req, const char *name,
		       const char *pw, confab_auth_done done, void *arg)
{
	const struct user *u = static_users_find(st->table, name);
	struct job *job;
	int rc;

	if ((job = calloc(1, sizeof(*job))) == NULL ||
	    (job->hash = strdup(u != NULL ? u->hash : static_users_decoy(st->table, name))) == NULL ||
	    (job->password = strdup(pw)) == NULL) {
		if (job != NULL)
			free(job->hash);
		free(job);
		return CONFAB_ENOMEM;
	}
	job->work.data = job;
	job->st = st;
	job->table = st->table;
	job->user = u;
	job->done = done;
	job->arg = arg;
	snprintf(job->name, sizeof(job->name), "%s", name);
	snprintf(job->remote, sizeof(job->remote), "%s", req->remote_addr ? req->remote_addr : "?");
	rc = uv_queue_work(st->host->loop(st->ctx), &job->work, check_work, check_done);
	if (rc != 0) {
		st->host->log(st->ctx, CONFAB_LOG_ERROR, "cannot queue a password check: %s",
			      uv_strerror(rc));
		explicit_bzero(job->password, strlen(job->password));
		free(job->password);
		free(job->hash);
		free(job);
		return CONFAB_ERR;
	}
	job->table->refs++;
	job->next = st->jobs;
	job->pprev = &st->jobs;
	if (st->jobs != NULL)
		st->jobs->pprev = &job->next;
	st->jobs = job;
	st->holds++;
	return 0;
}

/* No credentials: ignore, at once. Malformed ones: deny 401 at once (that
 * tells nothing about who exists). Anything else is hashed on the pool
 * and answered later by check_done(), known name or not. */
int static_check_authenticate(void *state, const confab_request *req, confab_auth_done done,
			      void *arg)
{
	struct static_auth *st = state;
	confab_auth_result r = { .size = sizeof(r), .decision = CONFAB_AUTH_IGNORE };
	char name[CONFAB_USER_MAX + 1] = "", pw[PASSWORD_READ_MAX + 1] = "";
	enum creds c = static_creds_read(req, name, pw);
	int rc = 0;

	if (c == CREDS_NONE || st->stopping) {
		if (st->stopping) {
			r.decision = CONFAB_AUTH_DENY;
			r.http_status = 503;
			r.reason = "server shutting down";
		}
		done(arg, &r);
	} else if (c == CREDS_TOO_LONG) {
		deny_now(st, req, NULL, 401, "password too long", "password of 512 bytes or more",
			 done, arg);
	} else if (c == CREDS_BAD || !confab_valid_user(name) || st->table->n == 0) {
		deny_now(st, req, c == CREDS_OK ? name : NULL, 401, "invalid credentials",
			 "malformed credentials", done, arg);
	} else if (!may_check(st, arg, name)) {
		deny_now(st, req, name, 429, "too many failed logins; try again later",
			 "too many failed logins (not checked)", done, arg);
	} else {
		rc = queue_check(st, req, name, pw, done, arg);
	}
	explicit_bzero(pw, sizeof(pw));
	return rc;
}

/* The client left: forget its answer, and drop the work if no pool
 * thread has begun it (then check_done runs with UV_ECANCELED). */
void static_check_cancel(void *state, void *arg)
{
	struct static_auth *st = state;

	for (struct job *job = st->jobs; job != NULL; job = job->next) {
		if (job->arg == arg && job->done != NULL) {
			job->done = NULL;
			uv_cancel((uv_req_t *)&job->work);
			return;
		}
	}
}

/* The work itself is cancelled if it has not begun; otherwise its
 * after-work callback only frees it. */
void static_check_stop(struct static_auth *st)
{
	for (struct job *job = st->jobs, *next; job != NULL; job = next) {
		next = job->next;
		if (job->done == NULL)
			continue;
		uv_cancel((uv_req_t *)&job->work);
		answer(job);
	}
}
