/* A room exists while it has members: created by the first join, freed by
 * the last leave. Every operation is a few hash-table steps. */
#include "rooms.h"

#include <stdint.h>
#include <stdlib.h>
#include <confab/common.h>

typedef struct room {
	confab_dict *members;   /* session id -> member pointer */
	confab_dict *users;     /* user -> number of sessions (as uintptr_t) */
} room;

struct rooms {
	confab_dict *by_name;   /* room name -> room */
};

static void room_free(void *p)
{
	room *rm = p;
	if (!rm)
		return;
	confab_dict_free(rm->members, NULL);
	confab_dict_free(rm->users, NULL);
	free(rm);
}

rooms *rooms_new(void)
{
	rooms *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	if (!(r->by_name = confab_dict_new())) {
		free(r);
		return NULL;
	}
	return r;
}

void rooms_free(rooms *r)
{
	if (!r)
		return;
	confab_dict_free(r->by_name, room_free);
	free(r);
}

int rooms_join(rooms *r, const char *name, const char *id, const char *user, void *member)
{
	room *rm = confab_dict_get(r->by_name, name);
	if (!rm) {
		rm = calloc(1, sizeof(*rm));
		if (!rm || !(rm->members = confab_dict_new()) || !(rm->users = confab_dict_new()) ||
		    confab_dict_set(r->by_name, name, rm) != 0) {
			room_free(rm);
			return CONFAB_ENOMEM;
		}
	}
	if (confab_dict_has(rm->members, id))
		return 0;
	uintptr_t count = (uintptr_t)confab_dict_get(rm->users, user);
	if (confab_dict_set(rm->members, id, member) != 0)
		goto oom;
	if (confab_dict_set(rm->users, user, (void *)(count + 1)) != 0) {
		confab_dict_remove(rm->members, id);
		goto oom;
	}
	return ROOMS_CHANGED | (count == 0 ? ROOMS_USER_FIRST : 0);
oom:
	if (confab_dict_count(rm->members) == 0)
		room_free(confab_dict_remove(r->by_name, name));
	return CONFAB_ENOMEM;
}

int rooms_leave(rooms *r, const char *name, const char *id, const char *user)
{
	room *rm = confab_dict_get(r->by_name, name);
	if (!rm || !confab_dict_has(rm->members, id))
		return 0;
	confab_dict_remove(rm->members, id);
	uintptr_t count = (uintptr_t)confab_dict_get(rm->users, user);
	int flags = ROOMS_CHANGED;
	if (count <= 1) {
		confab_dict_remove(rm->users, user);
		flags |= ROOMS_USER_LAST;
	} else {
		/* the entry exists, so replacing its value cannot fail */
		confab_dict_set(rm->users, user, (void *)(count - 1));
	}
	if (confab_dict_count(rm->members) == 0)
		room_free(confab_dict_remove(r->by_name, name));
	return flags;
}

bool rooms_is_member(const rooms *r, const char *name, const char *id)
{
	room *rm = confab_dict_get(r->by_name, name);
	return rm && confab_dict_has(rm->members, id);
}

const confab_dict *rooms_members(const rooms *r, const char *name)
{
	room *rm = confab_dict_get(r->by_name, name);
	return rm ? rm->members : NULL;
}

size_t rooms_user_sessions(const rooms *r, const char *name, const char *user)
{
	room *rm = confab_dict_get(r->by_name, name);
	return rm ? (size_t)(uintptr_t)confab_dict_get(rm->users, user) : 0;
}

size_t rooms_count(const rooms *r)
{
	return confab_dict_count(r->by_name);
}
