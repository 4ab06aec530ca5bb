/* hiredis on the broker's libuv loop: hiredis/adapters/libuv.h, with its
 * poll callback replaced.
 *
 * libuv reports a socket error (POLLERR: a refused connect, a reset
 * connection) to a uv_poll_t as status UV_EBADF and stops watching the
 * socket. The 0.14.1 adapter's callback returns on any status != 0, so
 * hiredis never looks at the socket again: a connect to a Redis that is
 * down hangs instead of failing, and a reset connection goes silent.
 * Here the same structure and cleanup are kept, but on an error the
 * callback lets hiredis do what it waits for (read or write), and hiredis
 * then finds the error itself (SO_ERROR, or read() failing) and runs its
 * connect/disconnect callbacks.
 *
 * Also, the poll handle is changed only when the events hiredis wants
 * change. hiredis asks to watch for writing on every command it queues,
 * and libuv's uv_poll_start removes the descriptor from epoll and adds it
 * back on every call: two system calls per command for nothing.
 *
 * SPDX-License-Identifier: MIT
 */
#include <hiredis/adapters/libuv.h>

#include "redis.h"

static void poll_cb(uv_poll_t *handle, int status, int events)
{
	redisLibuvEvents *p = handle->data;

	if (status != 0) {
		/* hiredis will see the error on the socket. libuv has stopped
		 * watching it: what hiredis asks for next is a change. */
		events = p->events;
		p->events = 0;
	}
	if (p->context != NULL && (events & UV_READABLE))
		redisAsyncHandleRead(p->context);
	if (p->context != NULL && (events & UV_WRITABLE))
		redisAsyncHandleWrite(p->context);
}

static void watch(redisLibuvEvents *p)
{
	if (p->events)
		uv_poll_start(&p->handle, p->events, poll_cb);
	else
		uv_poll_stop(&p->handle);
}

static void set_events(redisLibuvEvents *p, int events)
{
	if (events == p->events)
		return;
	p->events = events;
	watch(p);
}

static void add_read(void *privdata)
{
	redisLibuvEvents *p = privdata;

	set_events(p, p->events | UV_READABLE);
}

static void del_read(void *privdata)
{
	redisLibuvEvents *p = privdata;

	set_events(p, p->events & ~UV_READABLE);
}

static void add_write(void *privdata)
{
	redisLibuvEvents *p = privdata;

	set_events(p, p->events | UV_WRITABLE);
}

static void del_write(void *privdata)
{
	redisLibuvEvents *p = privdata;

	set_events(p, p->events & ~UV_WRITABLE);
}

int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
	if (redisLibuvAttach(ac, loop) != REDIS_OK) {
		/* The adapter leaves its hooks behind without their data:
		 * clear them, or freeing the context would call them. */
		memset(&ac->ev, 0, sizeof(ac->ev));
		return REDIS_ERR;
	}
	ac->ev.addRead = add_read;
	ac->ev.delRead = del_read;
	ac->ev.addWrite = add_write;
	ac->ev.delWrite = del_write;
	return REDIS_OK;
}
