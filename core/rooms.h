/* This node's room membership: which local sessions are in which room, and
 * how many sessions each user has there. Knows nothing of sessions beyond
 * an id, a user and an opaque pointer, so it is tested on its own. */
#ifndef CONFAB_CORE_ROOMS_H
#define CONFAB_CORE_ROOMS_H

#include <stdbool.h>
#include <stddef.h>

#include <confab/dict.h>

typedef struct rooms rooms;

/* rooms_join / rooms_leave results (bit flags; 0 = nothing changed). */
#define ROOMS_CHANGED 0x1       /* the member was added / removed */
#define ROOMS_USER_FIRST 0x2    /* join: the user's first session in the room */
#define ROOMS_USER_LAST 0x4     /* leave: the user's last session left the room */

rooms *rooms_new(void);
void rooms_free(rooms *r);

/* Adds member `id` of `user` to room `name`. Returns flags, or CONFAB_ENOMEM. */
int rooms_join(rooms *r, const char *name, const char *id, const char *user, void *member);
/* Removes member `id` of `user` from room `name`. Returns flags. */
int rooms_leave(rooms *r, const char *name, const char *id, const char *user);

bool rooms_is_member(const rooms *r, const char *name, const char *id);
/* The room's members: id -> member pointer; NULL when nobody is in it. The
 * table must not change while it is iterated. */
const confab_dict *rooms_members(const rooms *r, const char *name);
/* Number of sessions `user` has in room `name`. */
size_t rooms_user_sessions(const rooms *r, const char *name, const char *user);
/* Number of rooms with at least one member. */
size_t rooms_count(const rooms *r);

#endif
