/* The control socket confabctl talks to: a Unix socket of mode 0600 on the
 * broker's loop. Each connection sends one request line and gets one JSON
 * object back, then is closed; lines, time and connections are bounded so
 * that a stuck or hostile client never holds the loop or the node. */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <jansson.h>

#include "broker.h"
#include "confab-build.h"
#include "log.h"
#include "reload.h"

typedef struct control control;

/* One connection: its pipe, its deadline, its request as it arrives. */
typedef struct control_client {
	control *ctl;
	uv_pipe_t pipe;
	uv_timer_t timer;
	int open_handles;            /* freed when both have closed */
	bool answered;
	char line[CONTROL_MAX_REQUEST];
	size_t len;
	uv_write_t write;
	char *answer;
	struct control_client *next;
	struct control_client **prev;
} control_client;

struct control {
	broker *b;
	uv_pipe_t listener;
	bool listening;
	char *path;                  /* the socket file we created, removed at close */
	uint64_t started;            /* uv_now at open: the uptime's origin */
	control_client *clients;
	size_t n_clients;
};

int control_check(const config *cfg)
{
	const char *path = cfg->broker.control_socket;
	if (!path)
		return 0;
	struct sockaddr_un sun;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		config_report(cfg, "broker", "control_socket",
			      "'%s' is longer than a Unix socket path may be (%zu bytes)", path,
			      sizeof(sun.sun_path) - 1);
		return CONFAB_EINVAL;
	}
	char *dir = strdup(path);
	if (!dir)
		return CONFAB_ENOMEM;
	char *slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	struct stat st;
	int rc = 0;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		config_report(cfg, "broker", "control_socket", "directory %s does not exist%s", dir,
			      strncmp(path, "/run/", 5) == 0 ? " (systemd: RuntimeDirectory=)" : "");
		rc = CONFAB_EINVAL;
	}
	free(dir);
	return rc;
}

/* ---- answers ----------------------------------------------------------- */

static json_t *error_answer(const char *message)
{
	return json_pack("{s:b, s:s}", "ok", 0, "error", message);
}

static const char *backplane_state(const broker *b)
{
	if (!b->backplane_up)
		return "down";
	return b->backplane_degraded ? "degraded" : "up";
}

static json_t *status_answer(control *ctl)
{
	broker *b = ctl->b;
	const char *state = b->stopping ? "stopping" : b->draining ? "draining"
			    : b->serving ? "serving" : "starting";
	return json_pack("{s:b, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:b}",
			 "ok", 1, "version", PACKAGE_VERSION, "node_id", b->cfg.broker.node_id,
			 "state", state,
			 "uptime_s", (json_int_t)((uv_now(&b->loop) - ctl->started) / 1000),
			 "sessions", (json_int_t)confab_dict_count(b->sessions),
			 "rooms", (json_int_t)rooms_count(b->rooms),
			 "backplane", b->backplane->name, "backplane_state", backplane_state(b),
			 "log_level", log_level_name(log_get_level()), "ready", broker_healthy(b));
}

static json_t *drain_answer(control *ctl)
{
	broker *b = ctl->b;
	if (b->stopping)
		return error_answer("the node is stopping already");
	bool was = b->draining;
	broker_drain(b, "confabctl drain");
	const broker_settings *bs = &b->cfg.broker;
	return json_pack("{s:b, s:s, s:I, s:I, s:I}", "ok", 1,
			 "drain", was ? "already draining" : b->draining ? "started" : "stopping now",
			 "sessions", (json_int_t)confab_dict_count(b->sessions),
			 "drain_grace_s", (json_int_t)bs->drain_grace,
			 "drain_window_s", (json_int_t)bs->drain_window);
}

static json_t *log_level_answer(const char *arg)
{
	confab_log_level level;
	if (!log_parse_level(arg, &level))
		return error_answer("log-level takes one of error, warn, info, debug");
	const char *was = log_level_name(log_get_level());
	log_line(CONFAB_LOG_INFO, "control", "log level %s -> %s (confabctl)", was,
		 log_level_name(level));
	log_set_level(level);
	return json_pack("{s:b, s:s, s:s}", "ok", 1, "log_level", log_level_name(level),
			 "was", was);
}

/* The reload's answer carries the error line the log got, if any. */
static json_t *reload_answer(control *ctl)
{
	char error[512];
	log_capture_errors(error, sizeof error);
	int rc = broker_reload(ctl->b, "confabctl reload");
	log_capture_errors(NULL, 0);
	if (rc == 0)
		return json_pack("{s:b, s:s}", "ok", 1, "reloaded", ctl->b->cfg.path);
	if (rc == CONFAB_ESTATE)
		return error_answer(ctl->b->serving ? "the node is draining: not reloaded"
						    : "the node is not serving yet: not reloaded");
	char answer[600];
	snprintf(answer, sizeof answer, "reload refused, configuration kept: %s",
		 error[0] ? error : "see the log");
	return error_answer(answer);
}

/* The answer to one request line (without its newline). */
static json_t *answer_for(control *ctl, const char *line)
{
	if (strcmp(line, "status") == 0)
		return status_answer(ctl);
	if (strcmp(line, "drain") == 0)
		return drain_answer(ctl);
	if (strncmp(line, "log-level ", 10) == 0)
		return log_level_answer(line + 10);
	if (strcmp(line, "reload") == 0)
		return reload_answer(ctl);
	return error_answer("unknown request (status, drain, log-level LEVEL, reload)");
}

/* ---- connections ------------------------------------------------------- */

static void on_client_handle_closed(uv_handle_t *h)
{
	control_client *cl = h->data;
	if (--cl->open_handles == 0) {
		free(cl->answer);
		free(cl);
	}
}

static void client_close(control_client *cl)
{
	if (!cl->prev)
		return;              /* closing already */
	*cl->prev = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	cl->prev = NULL;
	cl->ctl->n_clients--;
	uv_close((uv_handle_t *)&cl->timer, on_client_handle_closed);
	uv_close((uv_handle_t *)&cl->pipe, on_client_handle_closed);
}

static void on_written(uv_write_t *req, int status)
{
	(void)status;                /* closed either way: one answer per connection */
	client_close(req->data);
}

/* Sends `answer` (taken, may be NULL: out of memory) and closes after it. */
static void client_answer(control_client *cl, json_t *answer)
{
	if (cl->answered)
		return;
	cl->answered = true;
	uv_read_stop((uv_stream_t *)&cl->pipe);
	uv_timer_stop(&cl->timer);
	char *text = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
	json_decref(answer);
	size_t n = text ? strlen(text) : 0;
	char *line = text ? realloc(text, n + 2) : NULL;
	if (!line) {
		free(text);
		log_line(CONFAB_LOG_ERROR, "control", "out of memory answering a request");
		client_close(cl);
		return;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	cl->answer = line;
	uv_buf_t buf = uv_buf_init(line, (unsigned)(n + 1));
	cl->write.data = cl;
	if (uv_write(&cl->write, (uv_stream_t *)&cl->pipe, &buf, 1, on_written) != 0)
		client_close(cl);
}

static void on_deadline(uv_timer_t *t)
{
	control_client *cl = t->data;
	client_answer(cl, error_answer("no request line within 5 s"));
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	control_client *cl = h->data;
	/* never more than fits: one byte past the limit says "too long" */
	*buf = uv_buf_init(cl->line + cl->len, (unsigned)(sizeof(cl->line) - cl->len));
}

/* Handles the line in cl->line[0..end) ("\r\n" or "\n" already cut off). */
static void client_request(control_client *cl, size_t end)
{
	cl->line[end] = '\0';
	if (end > 0 && cl->line[end - 1] == '\r')
		cl->line[--end] = '\0';
	if (strlen(cl->line) != end) {
		client_answer(cl, error_answer("the request holds a NUL byte"));
		return;
	}
	client_answer(cl, answer_for(cl->ctl, cl->line));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	(void)buf;
	control_client *cl = s->data;
	if (nread < 0) {
		/* the peer is gone or closed its side: answer what it sent, if anything */
		if (nread == UV_EOF && cl->len > 0 && cl->len < sizeof(cl->line))
			client_request(cl, cl->len);
		else
			client_close(cl);
		return;
	}
	size_t start = cl->len;
	cl->len += (size_t)nread;
	char *nl = memchr(cl->line + start, '\n', cl->len - start);
	if (nl)
		client_request(cl, (size_t)(nl - cl->line));
	else if (cl->len == sizeof(cl->line))
		client_answer(cl, error_answer("request line longer than 256 bytes"));
}

static void on_refused_closed(uv_handle_t *h)
{
	free(h);
}

/* Over the limit: accept (so that the listener keeps listening) and close. */
static void refuse(control *ctl)
{
	uv_pipe_t *p = malloc(sizeof(*p));
	if (!p || uv_pipe_init(&ctl->b->loop, p, 0) != 0) {
		free(p);
		return;
	}
	(void)uv_accept((uv_stream_t *)&ctl->listener, (uv_stream_t *)p);
	uv_close((uv_handle_t *)p, on_refused_closed);
	log_line(CONFAB_LOG_WARN, "control", "more than %d control connections at once; one closed",
		 CONTROL_MAX_CLIENTS);
}

static void on_connection(uv_stream_t *server, int status)
{
	control *ctl = server->data;
	if (status != 0) {
		log_line(CONFAB_LOG_WARN, "control", "accept: %s", uv_strerror(status));
		return;
	}
	if (ctl->n_clients >= CONTROL_MAX_CLIENTS) {
		refuse(ctl);
		return;
	}
	control_client *cl = calloc(1, sizeof(*cl));
	if (!cl) {
		refuse(ctl);
		return;
	}
	cl->ctl = ctl;
	uv_pipe_init(&ctl->b->loop, &cl->pipe, 0);
	uv_timer_init(&ctl->b->loop, &cl->timer);
	cl->pipe.data = cl->timer.data = cl;
	cl->open_handles = 2;
	cl->next = ctl->clients;
	if (cl->next)
		cl->next->prev = &cl->next;
	cl->prev = &ctl->clients;
	ctl->clients = cl;
	ctl->n_clients++;
	int rc = uv_accept(server, (uv_stream_t *)&cl->pipe);
	if (rc == 0)
		rc = uv_read_start((uv_stream_t *)&cl->pipe, on_alloc, on_read);
	if (rc == 0)
		rc = uv_timer_start(&cl->timer, on_deadline, CONTROL_DEADLINE_MS, 0);
	if (rc != 0) {
		log_line(CONFAB_LOG_WARN, "control", "cannot serve a connection: %s", uv_strerror(rc));
		client_close(cl);
	}
}

/* ---- the socket file --------------------------------------------------- */

/* A socket file already at `path`: 0 when it is stale (nothing answers:
 * removed), else logs why not and returns non-zero. */
static int clear_stale(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		log_line(CONFAB_LOG_ERROR, "control", "control_socket %s: %s", path,
			 strerror(errno));
		return 1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_line(CONFAB_LOG_ERROR, "control",
			 "control_socket %s exists and is not a socket; not replacing it", path);
		return 1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_line(CONFAB_LOG_ERROR, "control", "socket: %s", strerror(errno));
		return 1;
	}
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	memcpy(sun.sun_path, path, strlen(path) + 1);   /* control_check bounded it */
	int rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	int err = errno;
	close(fd);
	if (rc != 0 && err == ECONNREFUSED) {
		log_line(CONFAB_LOG_INFO, "control", "replacing the stale control socket %s", path);
		if (unlink(path) != 0 && errno != ENOENT) {
			log_line(CONFAB_LOG_ERROR, "control", "cannot remove the stale %s: %s", path,
				 strerror(errno));
			return 1;
		}
		return 0;
	}
	log_line(CONFAB_LOG_ERROR, "control",
		 "control_socket %s: %s; is another confabd running with it?", path,
		 rc == 0 ? "a process answers on it" : strerror(err));
	return 1;
}

int control_open(broker *b)
{
	const char *path = b->cfg.broker.control_socket;
	if (!path)
		return 0;
	control *ctl = calloc(1, sizeof(*ctl));
	if (!ctl || !(ctl->path = strdup(path))) {
		free(ctl);
		log_line(CONFAB_LOG_ERROR, "control", "out of memory");
		return 1;
	}
	ctl->b = b;
	ctl->started = uv_now(&b->loop);
	b->control = ctl;
	uv_pipe_init(&b->loop, &ctl->listener, 0);
	ctl->listener.data = ctl;
	if (clear_stale(path) != 0)
		return 1;
	/* mode 0600 from the start (umask), and chmod in case the umask was
	 * not all that decided it */
	mode_t old = umask(0177);
	int rc = uv_pipe_bind(&ctl->listener, path);
	umask(old);
	if (rc == 0) {
		ctl->listening = true;   /* the file is ours: removed at close */
		if (chmod(path, 0600) != 0)
			rc = uv_translate_sys_error(errno);
	}
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&ctl->listener, CONTROL_MAX_CLIENTS * 2, on_connection);
	if (rc != 0) {
		log_line(CONFAB_LOG_ERROR, "control", "control_socket %s: %s", path, uv_strerror(rc));
		return 1;
	}
	log_line(CONFAB_LOG_INFO, "control", "control socket %s (confabctl)", path);
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	control *ctl = h->data;
	free(ctl->path);
	free(ctl);
}

void control_close(broker *b)
{
	control *ctl = b->control;
	if (!ctl)
		return;
	b->control = NULL;
	while (ctl->clients)
		client_close(ctl->clients);
	if (ctl->listening && unlink(ctl->path) != 0 && errno != ENOENT)
		log_line(CONFAB_LOG_WARN, "control", "cannot remove %s: %s", ctl->path,
			 strerror(errno));
	uv_close((uv_handle_t *)&ctl->listener, on_listener_closed);
}
