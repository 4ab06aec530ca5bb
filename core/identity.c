/* Guest names and the name space reserved for them (identity.h).
 *
 * Why guests have a name space of their own: a plugin that granted the id
 * of a connected guest (a token whose sub is "guest-3f9a0c12") would take
 * over that guest's direct messages and presence. Ids beginning with
 * "guest-" are therefore the core's; the auth chain refuses an ALLOW for
 * one. Why 64 bits: guests of every node share one name space in the
 * cluster, and with 32 bits two of 100 000 concurrent guests collide with
 * a probability of 2/3 (the birthday bound); with 64 bits, of 1 in 3.7e9. */
#include "identity.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <uv.h>
#include <confab/common.h>

/* Random bytes drawn 64 at a time: a getrandom() per connection was a
 * measurable share of a connect storm's system calls. */
static unsigned char pool[64];
static size_t pool_left;

int identity_guest_name(char out[IDENTITY_GUEST_LEN])
{
	unsigned char b[8];

	if (pool_left < sizeof(b)) {
		/* uv_random without a loop is getrandom(2) (or /dev/urandom) */
		if (uv_random(NULL, NULL, pool, sizeof(pool), 0, NULL) != 0)
			return CONFAB_ERR;
		pool_left = sizeof(pool);
	}
	pool_left -= sizeof(b);
	memcpy(b, pool + pool_left, sizeof(b));
	memset(pool + pool_left, 0, sizeof(b));  /* a name is drawn once */
	snprintf(out, IDENTITY_GUEST_LEN, IDENTITY_GUEST_PREFIX
		 "%02x%02x%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
	return 0;
}

bool identity_reserved(const char *user)
{
	return strncasecmp(user, IDENTITY_GUEST_PREFIX, strlen(IDENTITY_GUEST_PREFIX)) == 0;
}
