/* What a Redis error or an unexpected reply means for the core
 * (rreply.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "rreply.h"

/* `err` is `word`, or starts with it and a space. */
static bool is_word(const char *err, const char *word)
{
	size_t n = strlen(word);

	return strncmp(err, word, n) == 0 && (err[n] == ' ' || err[n] == '\0');
}

int rreply_error_status(const char *err, bool redirects)
{
	static const char *const transient[] = {
		"LOADING", "BUSY", "OOM", "MASTERDOWN", "READONLY", "NOAUTH",
		"TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", NULL
	};

	if (err == NULL)
		return CONFAB_ERR;
	for (size_t i = 0; transient[i] != NULL; i++)
		if (is_word(err, transient[i]))
			return CONFAB_EUNAVAILABLE;
	if (redirects && (is_word(err, "MOVED") || is_word(err, "ASK")))
		return CONFAB_EUNAVAILABLE;
	return CONFAB_ERR;
}

int rreply_status(const confab_host *host, confab_ctx *ctx, const char *what,
		  const redisReply *reply, bool redirects)
{
	if (reply->type == REDIS_REPLY_ERROR) {
		int status = rreply_error_status(reply->str, redirects);

		host->log(ctx, status == CONFAB_EUNAVAILABLE ? CONFAB_LOG_WARN : CONFAB_LOG_ERROR,
			  "%s: Redis answered %s", what, reply->str);
		return status;
	}
	host->log(ctx, CONFAB_LOG_ERROR, "%s: unexpected reply of type %d", what, reply->type);
	return CONFAB_ERR;
}
