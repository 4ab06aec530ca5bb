/* static: confab's auth plugin for a file of users and password hashes.
 *
 *   [static]
 *   users_file = /etc/confab/users   ; one `user:hash[:pattern,pattern]` a line
 *
 * The hashes are crypt(3) SHA-512 ($6$) or yescrypt ($y$) hashes as made by
 * `mkpasswd`. A client gives its name and password with HTTP Basic or as
 * ?user=NAME&password=PW. A client without credentials is ignored (the next
 * plugin decides); right ones are allowed, with the user's room patterns;
 * wrong ones (or an unknown name) are denied with 401 "invalid credentials".
 *
 * Checking a password is slow on purpose (yescrypt: tens of ms), so it runs
 * on libuv's thread pool and the answer comes later, from the after-work
 * callback on the loop. An unknown name is checked against a real user's
 * hash too, so that the time of the answer does not tell which names exist.
 * The file is read again on SIGHUP; a file that does not read keeps the
 * users loaded before. docs/auth-static.md is the user's side of this.
 *
 * Checks are what an attacker would use against the node, so before one
 * is queued the core is asked (host->auth->login_begin, ABI 1.3) whether
 * the address or the name is locked after failed logins, and answers 429
 * without hashing when it is; the core also bounds how many checks are
 * awaited at once. A check whose client left is cancelled (the cancel
 * slot): uv_cancel drops it unless a pool thread has begun it. Passwords
 * of CRYPT_MAX_PASSPHRASE_SIZE (512) bytes or more, which libxcrypt
 * refuses, are refused at once; shorter ones cost what their hash method
 * costs (yescrypt prehashes the password: 511 bytes cost what 8 do;
 * SHA-512 crypt hashes it once a round: 511 bytes cost 8 times what 8
 * do, still less than a yescrypt check).
 *
 * SPDX-License-Identifier: MIT
 */
#include <crypt.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>
#include <confab/plugin.h>
#include <confab/query.h>
#include <confab/ratelimit.h>

#define USER_MAX 64          /* the longest user id the broker accepts (auth.h) */
/* The longest password libxcrypt hashes: crypt_rn fails with ERANGE from
 * CRYPT_MAX_PASSPHRASE_SIZE (512) bytes on. Longer ones are refused,
 * unhashed. */
#define PASSWORD_MAX (CRYPT_MAX_PASSPHRASE_SIZE - 1)
/* How much of a password is read to tell "too long" from "malformed". */
#define PASSWORD_READ_MAX 4096
/* The guests' name space (auth.h): the core refuses these ids anyway;
 * the file is refused at once so that -t says so. */
#define GUEST_PREFIX "guest-"
#define USER_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-@"
#define HASH_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./$="

/* One line of the users file. */
struct user {
	char *name;
	char *hash;               /* the crypt(3) string: method, setting and hash */
	char **rooms;             /* room glob patterns; NULL: every room */
	size_t n_rooms;
	int line;                 /* where it was read, for messages */
};

/* The users of one reading of the file, sorted by name. Reference counted:
 * a reload swaps in a new table while checks in flight keep the old one. */
struct table {
	unsigned refs;
	size_t n;
	struct user *users;
};

/* Why a users file was refused: its line (0: the file as a whole). */
struct load_error {
	int line;
	char msg[256];
};

struct static_auth;

/* One password check in flight, from authenticate() to its after-work
 * callback. The work callback (on a pool thread) reads only `hash` and
 * `password` and writes only `match` and `failed`. */
struct job {
	uv_work_t work;
	struct static_auth *st;
	struct job *prev, *next;  /* the instance's list of checks in flight */
	struct table *table;      /* a reference: keeps `user` alive across a reload */
	const struct user *user;  /* NULL: unknown name, checked against a decoy */
	char *hash;               /* copies for the pool thread */
	char *password;
	bool match;
	bool failed;              /* no memory for crypt: answer 503 */
	confab_auth_done done;    /* NULL once answered */
	void *arg;
	char name[USER_MAX + 1];
	char remote[64];          /* for the log */
};

struct static_auth {
	confab_ctx *ctx;
	const confab_host *host;
	char *path;               /* users_file */
	struct table *table;
	uv_signal_t sighup;
	bool sighup_open;
	bool stopping;
	struct job *jobs;         /* checks in flight, answered or not */
	/* lines a client can cause, at most one a second each */
	confab_ratelimit denied_log, malformed_log;
	unsigned holds;           /* the instance, each job, the open sighup
				   * handle: the state is freed at zero */
};

/* ---- the users file ---- */

/* A user id as auth.h defines it: 1-64 of A-Z a-z 0-9 _ . : - @ */
static bool valid_user(const char *s)
{
	size_t n = strspn(s, USER_CHARS);
	return n >= 1 && n <= USER_MAX && s[n] == '\0';
}

/* SHA-512 or yescrypt, in crypt(3)'s alphabet, with a setting libxcrypt
 * accepts. The hash part itself is checked only when a password is. */
static bool valid_hash(const char *h)
{
	size_t n = strlen(h);

	size_t dollars = 0;

	for (const char *c = h; *c != '\0'; c++)
		dollars += *c == '$';
	return (strncmp(h, "$6$", 3) == 0 || strncmp(h, "$y$", 3) == 0) && dollars >= 3 &&
	       h[n - 1] != '$' && strspn(h, HASH_CHARS) == n && n < CRYPT_OUTPUT_SIZE &&
	       crypt_checksalt(h) == CRYPT_SALT_OK;
}

static void user_free(struct user *u)
{
	free(u->name);
	free(u->hash);
	for (size_t i = 0; i < u->n_rooms; i++)
		free(u->rooms[i]);
	free(u->rooms);
}

static void table_unref(struct table *t)
{
	if (t == NULL || --t->refs > 0)
		return;
	for (size_t i = 0; i < t->n; i++)
		user_free(&t->users[i]);
	free(t->users);
	free(t);
}

static char *trim(char *s)
{
	char *end = s + strlen(s);

	while (*s == ' ' || *s == '\t')
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		end--;
	*end = '\0';
	return s;
}

/* "pattern, pattern" into u->rooms. 0, or -1 with err->msg set. */
static int parse_rooms(struct user *u, char *list, struct load_error *err)
{
	size_t cap = 1;

	for (const char *c = list; *c != '\0'; c++)
		cap += *c == ',';
	if ((u->rooms = calloc(cap, sizeof(*u->rooms))) == NULL) {
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return -1;
	}
	for (char *p = list, *end; p != NULL; p = end) {
		if ((end = strchr(p, ',')) != NULL)
			*end++ = '\0';
		char *pat = trim(p);
		if (*pat == '\0' || pat[strcspn(pat, " \t")] != '\0') {
			snprintf(err->msg, sizeof(err->msg), "user %s: room patterns are separated "
				 "by commas and may not be empty or hold spaces (leave "
				 "out the last ':' for every room)", u->name);
			return -1;
		}
		if ((u->rooms[u->n_rooms] = strdup(pat)) == NULL) {
			snprintf(err->msg, sizeof(err->msg), "out of memory");
			return -1;
		}
		u->n_rooms++;
	}
	return 0;
}

/* One line that is neither blank nor a comment: `user:hash[:patterns]`.
 * The name may hold ':' itself, so the hash is found by its "$": the
 * first ":$" ends the name. 0, or -1 with err->msg set. */
static int parse_line(char *s, struct user *u, struct load_error *err)
{
	char *sep = strstr(s, ":$"), *rooms;

	if (sep == NULL) {
		snprintf(err->msg, sizeof(err->msg), "expected user:hash, the hash as made by "
			 "`mkpasswd -m sha-512` or `mkpasswd -m yescrypt`");
		return -1;
	}
	*sep = '\0';
	if (!valid_user(s)) {
		snprintf(err->msg, sizeof(err->msg), "'%.*s' is not a valid user name "
			 "(1-64 of A-Z a-z 0-9 _ . : - @)", USER_MAX, s);
		return -1;
	}
	if (strncasecmp(s, GUEST_PREFIX, strlen(GUEST_PREFIX)) == 0) {
		snprintf(err->msg, sizeof(err->msg), "'%s': names beginning with '"
			 GUEST_PREFIX "' are the broker's, for anonymous clients", s);
		return -1;
	}
	if ((rooms = strchr(sep + 1, ':')) != NULL)
		*rooms++ = '\0';
	if ((u->name = strdup(s)) == NULL || (u->hash = strdup(sep + 1)) == NULL) {
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return -1;
	}
	if (!valid_hash(u->hash)) {
		snprintf(err->msg, sizeof(err->msg), "user %s: not a SHA-512 ($6$) or yescrypt "
			 "($y$) hash as made by mkpasswd", u->name);
		return -1;
	}
	return rooms != NULL ? parse_rooms(u, rooms, err) : 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct user *)a)->name, ((const struct user *)b)->name);
}

/* Reads `path` into a new table (one reference), or NULL with *err set. */
static struct table *table_load(const char *path, struct load_error *err)
{
	struct table *t = calloc(1, sizeof(*t));
	size_t cap = 0, len = 0;
	char *line = NULL;
	FILE *f;

	err->line = 0;
	if (t == NULL) {
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return NULL;
	}
	t->refs = 1;
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err->msg, sizeof(err->msg), "cannot read %s: %s", path, strerror(errno));
		goto fail;
	}
	for (int n = 1; getline(&line, &cap, f) >= 0; n++) {
		char *s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		err->line = n;
		if (t->n == len) {
			struct user *grown = realloc(t->users, (len ? 2 * len : 16) * sizeof(*grown));
			if (grown == NULL) {
				snprintf(err->msg, sizeof(err->msg), "out of memory");
				goto fail;
			}
			t->users = grown;
			len = len ? 2 * len : 16;
		}
		t->users[t->n] = (struct user){ .line = n };
		t->n++;
		if (parse_line(s, &t->users[t->n - 1], err) != 0)
			goto fail;
	}
	err->line = 0;
	if (ferror(f)) {
		snprintf(err->msg, sizeof(err->msg), "cannot read %s: %s", path, strerror(errno));
		goto fail;
	}
	qsort(t->users, t->n, sizeof(*t->users), by_name);
	for (size_t i = 1; i < t->n; i++) {
		if (strcmp(t->users[i - 1].name, t->users[i].name) == 0) {
			const struct user *a = &t->users[i - 1], *b = &t->users[i];
			err->line = a->line > b->line ? a->line : b->line;
			snprintf(err->msg, sizeof(err->msg), "user %s is listed twice (lines %d and %d)",
				 a->name, a->line < b->line ? a->line : b->line, err->line);
			goto fail;
		}
	}
	free(line);
	fclose(f);
	return t;
fail:
	free(line);
	if (f != NULL)
		fclose(f);
	table_unref(t);
	return NULL;
}

static const struct user *table_find(const struct table *t, const char *name)
{
	struct user key = { .name = (char *)name };

	return bsearch(&key, t->users, t->n, sizeof(*t->users), by_name);
}

/* The hash an unknown name is checked against: a real user's, picked by
 * the name, so unknown names cost what known ones do (whatever mix of
 * methods and rounds the file holds) and the same name always the same. */
static const char *decoy_hash(const struct table *t, const char *name)
{
	uint32_t h = 2166136261u;  /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return t->users[h % t->n].hash;
}

/* ---- credentials ---- */

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Standard base64 (padding optional) into out[size], NUL-terminated.
 * The decoded length, or -1: bad input, a NUL byte or too long. */
static long b64decode(const char *in, char *out, size_t size)
{
	size_t n = 0, len = strlen(in);
	unsigned acc = 0;
	int bits = 0;

	while (len > 0 && in[len - 1] == '=')
		len--;
	if (strlen(in) - len > 2 || len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64val((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6 | (unsigned)v) & 0xffffu;
		if ((bits += 6) >= 8) {
			bits -= 8;
			char c = (char)((acc >> bits) & 0xffu);
			if (c == '\0' || n + 1 >= size)
				return -1;
			out[n++] = c;
		}
	}
	out[n] = '\0';
	return (long)n;
}

enum creds { CREDS_NONE, CREDS_BAD, CREDS_TOO_LONG, CREDS_OK };

/* `authorization: Basic base64(user:password)`, else ?user=&password=.
 * A query with a password is ours (without a user it is malformed); a
 * `user` alone is left to other plugins. CREDS_OK: name and pw are set
 * (the name not yet checked). CREDS_TOO_LONG: the password is longer
 * than PASSWORD_MAX (or than the buffer: it is then malformed or too
 * long, and refused either way). */
static enum creds credentials(const confab_request *req, char name[USER_MAX + 1],
			      char pw[PASSWORD_READ_MAX + 1])
{
	char buf[USER_MAX + PASSWORD_READ_MAX + 2];
	long found;

	for (size_t i = 0; i < req->n_headers; i++) {
		const char *v = req->headers[i].value;
		if (strcmp(req->headers[i].name, "authorization") != 0)
			continue;
		v += strspn(v, " \t");
		if (strncasecmp(v, "basic", 5) != 0 || (v[5] != ' ' && v[5] != '\t'))
			continue;  /* another scheme: another plugin's */
		char token[4 * (sizeof(buf) / 3) + 8];
		int tl = snprintf(token, sizeof(token), "%s", v + 5 + strspn(v + 5, " \t"));
		char *t = trim(token), *colon;
		bool fits = tl >= 0 && (size_t)tl < sizeof(token);
		bool ok = fits && b64decode(t, buf, sizeof(buf)) >= 0 &&
			  (colon = strchr(buf, ':')) != NULL && (size_t)(colon - buf) <= USER_MAX;
		bool too_long = !fits || (ok && strlen(colon + 1) > PASSWORD_MAX);
		if (ok && !too_long) {
			*colon = '\0';
			memcpy(name, buf, (size_t)(colon - buf) + 1);
			memcpy(pw, colon + 1, strlen(colon + 1) + 1);
		}
		explicit_bzero(buf, sizeof(buf));
		explicit_bzero(token, sizeof(token));
		return too_long ? CREDS_TOO_LONG : ok ? CREDS_OK : CREDS_BAD;
	}
	found = confab_query_param(req->query, "password", pw, PASSWORD_READ_MAX + 1);
	if (found == CONFAB_QUERY_ABSENT)
		return CREDS_NONE;
	if (found > PASSWORD_MAX)
		return CREDS_TOO_LONG;
	if (found < 0 || confab_query_param(req->query, "user", name, USER_MAX + 1) < 0)
		return CREDS_BAD;
	return CREDS_OK;
}

/* ---- checking a password ---- */

static void release(struct static_auth *st)
{
	if (--st->holds > 0)
		return;
	free(st->path);
	free(st);
}

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
	if (job->prev != NULL)
		job->prev->next = job->next;
	else
		st->jobs = job->next;
	if (job->next != NULL)
		job->next->prev = job->prev;
	if (job->done != NULL)
		answer(job);
	table_unref(job->table);
	free(job->hash);
	free(job->password);
	free(job);
	release(st);
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
			      "lines since the last)", name != NULL && valid_user(name) ? name :
			      "(invalid name)", req->remote_addr, why, (unsigned long long)skipped);
	done(arg, &r);
}

/* Asks the core whether this check may start (ABI 1.3; an older core
 * has no throttle and every check starts). */
static bool may_check(struct static_auth *st, void *arg, const char *name)
{
	const confab_host_auth *ha = CONFAB_HAS(st->host, auth) ? st->host->auth : NULL;

	if (!CONFAB_HAS(ha, login_begin) || ha->login_begin == NULL)
		return true;
	return ha->login_begin(st->ctx, arg, name) != CONFAB_EFULL;
}

/* No credentials: ignore, at once. Malformed ones: deny 401 at once (that
 * tells nothing about who exists). Anything else is hashed on the pool
 * and answered later by check_done(), known name or not. */
static int static_authenticate(void *state, const confab_request *req,
			       confab_auth_done done, void *arg)
{
	struct static_auth *st = state;
	confab_auth_result r = { .size = sizeof(r), .decision = CONFAB_AUTH_IGNORE };
	char name[USER_MAX + 1] = "", pw[PASSWORD_READ_MAX + 1] = "";
	enum creds c = credentials(req, name, pw);
	const struct user *u;
	struct job *job;
	int rc;

	if (c == CREDS_NONE || st->stopping) {
		if (st->stopping) {
			r.decision = CONFAB_AUTH_DENY;
			r.http_status = 503;
			r.reason = "server shutting down";
		}
		explicit_bzero(pw, sizeof(pw));
		done(arg, &r);
		return 0;
	}
	if (c == CREDS_TOO_LONG) {
		explicit_bzero(pw, sizeof(pw));
		deny_now(st, req, NULL, 401, "password too long", "password of 512 bytes or more",
			 done, arg);
		return 0;
	}
	if (c == CREDS_BAD || !valid_user(name) || st->table->n == 0) {
		explicit_bzero(pw, sizeof(pw));
		deny_now(st, req, c == CREDS_OK ? name : NULL, 401, "invalid credentials",
			 "malformed credentials", done, arg);
		return 0;
	}
	if (!may_check(st, arg, name)) {
		explicit_bzero(pw, sizeof(pw));
		deny_now(st, req, name, 429, "too many failed logins; try again later",
			 "too many failed logins (not checked)", done, arg);
		return 0;
	}
	u = table_find(st->table, name);
	if ((job = calloc(1, sizeof(*job))) == NULL ||
	    (job->hash = strdup(u != NULL ? u->hash : decoy_hash(st->table, name))) == NULL ||
	    (job->password = strdup(pw)) == NULL) {
		explicit_bzero(pw, sizeof(pw));
		if (job != NULL)
			free(job->hash);
		free(job);
		return CONFAB_ENOMEM;
	}
	explicit_bzero(pw, sizeof(pw));
	job->work.data = job;
	job->st = st;
	job->table = st->table;
	job->user = u;
	job->done = done;
	job->arg = arg;
	memcpy(job->name, name, sizeof(name));
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
	if (st->jobs != NULL)
		st->jobs->prev = job;
	st->jobs = job;
	st->holds++;
	return 0;
}

/* The client left: forget its answer, and drop the work if no pool
 * thread has begun it (then check_done runs with UV_ECANCELED). */
static void static_cancel(void *state, void *arg)
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

/* ---- lifecycle ---- */

static void on_sighup(uv_signal_t *h, int signum)
{
	struct static_auth *st = h->data;
	struct load_error err;
	struct table *t = table_load(st->path, &err);

	(void)signum;
	if (t == NULL && err.line > 0) {
		st->host->log(st->ctx, CONFAB_LOG_ERROR, "cannot reload users_file %s:%d: %s; "
			      "keeping the %zu users loaded before", st->path, err.line, err.msg,
			      st->table->n);
		return;
	}
	if (t == NULL) {
		st->host->log(st->ctx, CONFAB_LOG_ERROR, "cannot reload users_file: %s; "
			      "keeping the %zu users loaded before", err.msg, st->table->n);
		return;
	}
	table_unref(st->table);
	st->table = t;
	st->host->log(st->ctx, CONFAB_LOG_INFO, "reloaded %zu users from %s", t->n, st->path);
}

static void on_sighup_closed(uv_handle_t *h)
{
	release(h->data);
}

static int static_init(confab_ctx *ctx, const confab_host *host, void **state)
{
	const char *path = host->config_get(ctx, "users_file");
	struct static_auth *st;
	struct load_error err;

	if (path == NULL || *path == '\0') {
		host->config_error(ctx, "users_file", "must be set (e.g. users_file = /etc/confab/users)");
		return CONFAB_EINVAL;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL || (st->path = strdup(path)) == NULL) {
		free(st);
		return CONFAB_ENOMEM;
	}
	if ((st->table = table_load(path, &err)) == NULL) {
		if (err.line > 0)
			host->config_error(ctx, "users_file", "%s:%d: %s", path, err.line, err.msg);
		else
			host->config_error(ctx, "users_file", "%s", err.msg);
		free(st->path);
		free(st);
		return CONFAB_EINVAL;
	}
	st->ctx = ctx;
	st->host = host;
	st->holds = 1;
	st->denied_log = (confab_ratelimit)CONFAB_RATELIMIT_INIT(1000);
	st->malformed_log = (confab_ratelimit)CONFAB_RATELIMIT_INIT(1000);
	if (st->table->n == 0)
		host->log(ctx, CONFAB_LOG_WARN, "%s lists no users: every password is refused", path);
	else
		host->log(ctx, CONFAB_LOG_INFO, "%zu users from %s", st->table->n, path);
	*state = st;
	return 0;
}

/* Watches SIGHUP beside the core's watcher (libuv allows several). */
static int static_start(void *state)
{
	struct static_auth *st = state;
	int rc = uv_signal_init(st->host->loop(st->ctx), &st->sighup);

	if (rc != 0) {
		st->host->log(st->ctx, CONFAB_LOG_ERROR, "cannot watch SIGHUP: %s", uv_strerror(rc));
		return CONFAB_ERR;
	}
	st->sighup.data = st;
	st->sighup_open = true;
	st->holds++;
	if ((rc = uv_signal_start(&st->sighup, on_sighup, SIGHUP)) != 0) {
		st->host->log(st->ctx, CONFAB_LOG_ERROR, "cannot watch SIGHUP: %s", uv_strerror(rc));
		return CONFAB_ERR;
	}
	return 0;
}

/* Answers every check in flight with 503 now (the work itself is
 * cancelled if it has not begun; otherwise its after-work callback only
 * frees it) and stops watching SIGHUP. */
static void static_stop(void *state)
{
	struct static_auth *st = state;

	st->stopping = true;
	if (st->sighup_open) {
		st->sighup_open = false;
		uv_close((uv_handle_t *)&st->sighup, on_sighup_closed);
	}
	for (struct job *job = st->jobs, *next; job != NULL; job = next) {
		next = job->next;
		if (job->done == NULL)
			continue;
		uv_cancel((uv_req_t *)&job->work);
		answer(job);
	}
}

/* The state outlives destroy while pool work or the SIGHUP handle's close
 * is pending: the core runs the loop until they are done, before it
 * unloads the file, and the last one to finish frees it. */
static void static_destroy(void *state)
{
	struct static_auth *st = state;

	static_stop(st);
	table_unref(st->table);
	st->table = NULL;
	release(st);
}

static const confab_auth_ops static_ops = {
	.size = sizeof(confab_auth_ops),
	.authenticate = static_authenticate,
	.cancel = static_cancel,
};

static const confab_plugin static_plugin = {
	CONFAB_PLUGIN_HEADER(CONFAB_KIND_AUTH, "static", "0.1.0"),
	.description = "users and crypt(3) password hashes from a file, reloaded on SIGHUP",
	.init = static_init,
	.start = static_start,
	.stop = static_stop,
	.destroy = static_destroy,
	.auth = &static_ops,
};

CONFAB_PLUGIN_DEFINE(static_plugin)
