/* static: the instance's state and what the plugin's files call in each
 * other (not part of the SDK).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_STATIC_H
#define CONFAB_STATIC_H

#include <crypt.h>
#include <stdbool.h>
#include <uv.h>
#include <confab/plugin.h>
#include <confab/ratelimit.h>
#include <confab/util.h>

#include "static_users.h"

/* The longest password libxcrypt hashes: crypt_rn fails with ERANGE from
 * CRYPT_MAX_PASSPHRASE_SIZE (512) bytes on. Longer ones are refused,
 * unhashed. */
#define PASSWORD_MAX (CRYPT_MAX_PASSPHRASE_SIZE - 1)
/* How much of a password is read to tell "too long" from "malformed". */
#define PASSWORD_READ_MAX 4096

struct job;

/* One instance. Freed by static_release when the last hold goes. */
struct static_auth {
	confab_ctx *ctx;
	const confab_host *host;
	struct user_table *table; /* what new checks use; a reload swaps it */
	bool stopping;
	struct job *jobs;         /* checks in flight, answered or not */
	/* lines a client can cause, at most one a second each */
	confab_ratelimit denied_log, malformed_log;
	unsigned holds;           /* the instance and each job: the state is
				   * freed at zero */
};

/* Drops one hold on the instance; the last frees it. */
void static_release(struct static_auth *st);

/* ---- the client's credentials (static_creds.c) ---- */

enum creds { CREDS_NONE, CREDS_BAD, CREDS_TOO_LONG, CREDS_OK };

/* `authorization: Basic base64(user:password)`, else ?user=&password=.
 * A query with a password is ours (without a user it is malformed); a
 * `user` alone is left to other plugins. CREDS_OK: name and pw are set
 * (the name not yet checked). CREDS_TOO_LONG: the password is longer
 * than PASSWORD_MAX (or than the buffer: it is then malformed or too
 * long, and refused either way). */
enum creds static_creds_read(const confab_request *req, char name[CONFAB_USER_MAX + 1],
			     char pw[PASSWORD_READ_MAX + 1]);

/* ---- checking a password (static_check.c) ---- */

/* The auth slots: authenticate and cancel. */
int static_check_authenticate(void *state, const confab_request *req, confab_auth_done done,
			      void *arg);
void static_check_cancel(void *state, void *arg);
/* Answers every check in flight with 503 now (st->stopping is set). */
void static_check_stop(struct static_auth *st);

#endif /* CONFAB_STATIC_H */
