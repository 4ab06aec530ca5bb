/* Who a client is: the guest names of anonymous clients, and the name
 * space they live in, which no auth plugin may grant. */
#ifndef CONFAB_CORE_IDENTITY_H
#define CONFAB_CORE_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

/* Every guest name begins with this, and no plugin-granted id may (in
 * any case). */
#define IDENTITY_GUEST_PREFIX "guest-"
/* "guest-" and 16 hex digits, and the NUL. */
#define IDENTITY_GUEST_LEN 23

/* A new guest name: "guest-" and 64 random bits in lowercase hex.
 * 0, or CONFAB_ERR when the system has no randomness to give (the name
 * must not be guessable or collide across the cluster). */
int identity_guest_name(char out[IDENTITY_GUEST_LEN]);
/* True when `user` lies in the guests' name space. */
bool identity_reserved(const char *user);

#endif
