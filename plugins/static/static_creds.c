/* static: the name and password a client gives, by HTTP Basic or in the
 * query string, read and bounded before anything is hashed.
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>
#include <confab/query.h>

#include "static.h"

/* The base64 of the longest Basic credentials read (a name, ':' and
 * PASSWORD_READ_MAX bytes): more is too long, and is not decoded. */
#define BASIC_B64_MAX (4 * ((CONFAB_USER_MAX + 1 + PASSWORD_READ_MAX + 2) / 3))

/* base64(name:password), b64[len]. The name ends at the first ':' (RFC
 * 7617); neither may hold a NUL. */
static enum creds basic(const char *b64, size_t len, char name[CONFAB_USER_MAX + 1],
			char pw[PASSWORD_READ_MAX + 1])
{
	unsigned char buf[CONFAB_BASE64_DECODED_MAX(BASIC_B64_MAX)];
	const unsigned char *colon = NULL;
	enum creds c = CREDS_BAD;
	long n;

	if (len > BASIC_B64_MAX)
		return CREDS_TOO_LONG;
	n = confab_base64_decode(b64, len, buf, sizeof(buf));
	if (n >= 0 && memchr(buf, '\0', (size_t)n) == NULL)
		colon = memchr(buf, ':', (size_t)n);
	if (colon != NULL && colon - buf <= CONFAB_USER_MAX) {
		size_t name_len = (size_t)(colon - buf), pw_len = (size_t)n - name_len - 1;
		if (pw_len > PASSWORD_MAX) {
			c = CREDS_TOO_LONG;
		} else {
			memcpy(name, buf, name_len);
			name[name_len] = '\0';
			memcpy(pw, colon + 1, pw_len);
			pw[pw_len] = '\0';
			c = CREDS_OK;
		}
	}
	explicit_bzero(buf, sizeof(buf));
	return c;
}

enum creds static_creds_read(const confab_request *req, char name[CONFAB_USER_MAX + 1],
			     char pw[PASSWORD_READ_MAX + 1])
{
	size_t len;
	const char *b64 = confab_auth_credentials(req, "Basic", &len);
	long found;

	if (b64 != NULL)
		return basic(b64, len, name, pw);
	if (confab_auth_scheme_is(req, "Basic"))
		return CREDS_BAD;  /* `Basic` and nothing after it: ours, and malformed */
	found = confab_query_param(req->query, "password", pw, PASSWORD_READ_MAX + 1);
	if (found == CONFAB_QUERY_ABSENT)
		return CREDS_NONE;
	if (found > PASSWORD_MAX)
		return CREDS_TOO_LONG;
	if (found < 0 || confab_query_param(req->query, "user", name, CONFAB_USER_MAX + 1) < 0)
		return CREDS_BAD;
	return CREDS_OK;
}
