/* Parsing uses jansson (strict RFC 8259, duplicate keys rejected); frames
 * are written directly as text, with a message body copied in as the JSON
 * text it already is, so a body is never re-parsed on the way out. */
#include "protocol.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <confab/util.h>

#include "buf.h"
#include "jspan.h"

/* The rules themselves are the SDK's (confab/util.h), which plugins use
 * too: a name the core accepts is one every plugin accepts. */
bool protocol_valid_room(const char *name)
{
	return confab_valid_room(name);
}

bool protocol_valid_user(const char *name)
{
	return confab_valid_user(name);
}

_Static_assert(CONFAB_IDEM_MAX == CONFAB_ROOM_MAX, "idem keys follow the room names' rule");
bool protocol_valid_idem(const char *key)
{
	/* the room names' rule, which is 1 to CONFAB_IDEM_MAX (64) bytes */
	return confab_valid_room(key);
}

bool protocol_valid_epoch(const char *epoch)
{
	size_t n = 0;
	for (; epoch[n]; n++)
		if (!((epoch[n] >= '0' && epoch[n] <= '9') || (epoch[n] >= 'a' && epoch[n] <= 'z')))
			return false;
	return n >= 1 && n <= CONFAB_EPOCH_MAX;
}

static int fail(protocol_error *err, const char *code, const char *fmt, ...)
	CONFAB_PRINTF(3, 4);
static int fail(protocol_error *err, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err->code = code;
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -1;
}

static const struct {
	const char *name;
	request_type type;
} types[] = {
	{ "join", REQ_JOIN },       { "leave", REQ_LEAVE },     { "send", REQ_SEND },
	{ "direct", REQ_DIRECT },   { "presence", REQ_PRESENCE }, { "history", REQ_HISTORY },
	{ "ping", REQ_PING },
};

/* A field that must be a string naming a room or a user. */
static int get_name(json_t *root, const char *field, bool user, const char **out,
		    protocol_error *err)
{
	json_t *v = json_object_get(root, field);
	if (!v)
		return fail(err, ERR_BAD_REQUEST, "missing field '%s'", field);
	if (!json_is_string(v))
		return fail(err, ERR_BAD_REQUEST, "field '%s' must be a string", field);
	const char *s = json_string_value(v);
	if (strlen(s) != json_string_length(v) || !(user ? protocol_valid_user(s) : protocol_valid_room(s)))
		return fail(err, ERR_BAD_REQUEST, "bad %s name in '%s': 1-64 of A-Z a-z 0-9 _ . : -%s",
			    user ? "user" : "room", field, user ? " @" : "");
	*out = s;
	return 0;
}

/* send's and direct's optional 'idem': the client's idempotency key.
 * The room names' characters, so that a backplane can put it in a key
 * name or a line with a room and users (protocol.md). */
static int get_idem(json_t *root, const char **out, protocol_error *err)
{
	json_t *v = json_object_get(root, "idem");
	if (!v)
		return 0;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
	    !protocol_valid_idem(json_string_value(v)))
		return fail(err, ERR_BAD_REQUEST, "field 'idem' must be a key: 1-%d of "
			    "A-Z a-z 0-9 _ . : -", CONFAB_IDEM_MAX);
	*out = json_string_value(v);
	return 0;
}

/* history's optional 'epoch': the room epoch the client knows. */
static int get_epoch(json_t *root, const char **out, protocol_error *err)
{
	json_t *v = json_object_get(root, "epoch");
	if (!v)
		return 0;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
	    !protocol_valid_epoch(json_string_value(v)))
		return fail(err, ERR_BAD_REQUEST, "field 'epoch' must be a room epoch: 1-%d of 0-9 a-z",
			    CONFAB_EPOCH_MAX);
	*out = json_string_value(v);
	return 0;
}

static int get_count(json_t *root, const char *field, uint64_t min, bool *has, uint64_t *out,
		     protocol_error *err)
{
	json_t *v = json_object_get(root, field);
	*has = v != NULL;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) < min)
		return fail(err, ERR_BAD_REQUEST, "field '%s' must be a %s integer", field,
			    min ? "positive" : "non-negative");
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* The body, parsed (to check it) and as the bytes the client sent: those
 * are what members get and history keeps, never a re-encoding, which can
 * be longer than the text (0.1 is written back as 0.10000000000000001). */
static int get_body(request *req, const char *data, size_t len, protocol_error *err)
{
	size_t off, n;
	if (!(req->body = json_object_get(req->root, "body")))
		return fail(err, ERR_BAD_REQUEST, "missing field '%s'", "body");
	if (!jspan_member(data, len, "body", &off, &n))
		return fail(err, ERR_BAD_REQUEST, "%s", "the body could not be read");
	req->body_text = data + off;
	req->body_len = n;
	return 0;
}

/* True when no object or array in the text nests deeper than max_depth
 * (the request object itself is level 1). A scan of the text, so that the
 * check costs no recursion. */
static bool depth_ok(const char *data, size_t len, size_t max_depth)
{
	size_t depth = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			if (++depth > max_depth)
				return false;
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
		}
	}
	return true;
}

int protocol_parse(const char *data, size_t len, size_t max_depth, request *req,
		   protocol_error *err)
{
	memset(req, 0, sizeof(*req));
	/* jansson bounds its own recursion (2048 levels), so the frame is
	 * parsed first and the ref can be echoed with any refusal */
	json_error_t jerr;
	req->root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req->root)
		return fail(err, ERR_BAD_REQUEST, "not JSON: %s", jerr.text);
	if (!json_is_object(req->root))
		return fail(err, ERR_BAD_REQUEST, "%s", "a request must be a JSON object");

	json_t *ref = json_object_get(req->root, "ref");
	if (ref) {
		if (!json_is_string(ref) && !json_is_number(ref))
			return fail(err, ERR_BAD_REQUEST, "%s", "'ref' must be a string or a number");
		req->ref = ref;
	}
	if (!depth_ok(data, len, max_depth))
		return fail(err, ERR_BAD_REQUEST, "JSON nested deeper than %zu levels", max_depth);

	json_t *type = json_object_get(req->root, "type");
	if (!type)
		return fail(err, ERR_BAD_REQUEST, "%s", "missing field 'type'");
	if (!json_is_string(type))
		return fail(err, ERR_BAD_REQUEST, "%s", "field 'type' must be a string");
	const char *t = json_string_value(type);
	size_t i;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(t, types[i].name) == 0)
			break;
	if (i == sizeof(types) / sizeof(types[0]))
		return fail(err, ERR_BAD_REQUEST, "unknown type '%.64s'", t);
	req->type = types[i].type;

	switch (req->type) {
	case REQ_JOIN:
	case REQ_LEAVE:
		return get_name(req->root, "room", false, &req->room, err);
	case REQ_PRESENCE:
		if (get_name(req->root, "room", false, &req->room, err) != 0)
			return -1;
		/* the next page of a long list: users after this one */
		if (json_object_get(req->root, "after"))
			return get_name(req->root, "after", true, &req->after, err);
		return 0;
	case REQ_SEND:
		if (get_name(req->root, "room", false, &req->room, err) != 0 ||
		    get_idem(req->root, &req->idem, err) != 0)
			return -1;
		return get_body(req, data, len, err);
	case REQ_DIRECT:
		if (get_name(req->root, "to", true, &req->to, err) != 0 ||
		    get_idem(req->root, &req->idem, err) != 0)
			return -1;
		return get_body(req, data, len, err);
	case REQ_HISTORY:
		if (get_name(req->root, "room", false, &req->room, err) != 0 ||
		    get_count(req->root, "since", 0, &req->has_since, &req->since, err) != 0 ||
		    get_count(req->root, "limit", 1, &req->has_limit, &req->limit, err) != 0 ||
		    get_epoch(req->root, &req->epoch, err) != 0)
			return -1;
		return 0;
	case REQ_PING:
		return 0;
	}
	return fail(err, ERR_INTERNAL, "%s", "unhandled type");
}

void request_free(request *req)
{
	if (req->root)
		json_decref(req->root);
	memset(req, 0, sizeof(*req));
}

/* ---- frames -------------------------------------------------------------- */

static void add_ref(frame_builder *fb, json_t *ref)
{
	if (!ref)
		return;
	char *text = json_dumps(ref, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text) {
		fb->failed = true;
		return;
	}
	fb_str(fb, ",\"ref\":");
	fb_str(fb, text);
	free(text);
}

static void add_field_str(frame_builder *fb, const char *name, const char *value)
{
	fb_printf(fb, ",\"%s\":", name);
	fb_json_string(fb, value);
}

confab_buf *protocol_welcome(size_t headroom, const char *session, const char *user,
			     const char *node)
{
	frame_builder fb;
	fb_init(&fb, headroom, 128);
	fb_str(&fb, "{\"type\":\"welcome\"");
	add_field_str(&fb, "session", session);
	add_field_str(&fb, "user", user);
	add_field_str(&fb, "node", node);
	fb_printf(&fb, ",\"protocol\":%d}", PROTOCOL_VERSION);
	return fb_finish(&fb);
}

confab_buf *protocol_error_frame(size_t headroom, const char *code, const char *message,
				 json_t *ref)
{
	frame_builder fb;
	fb_init(&fb, headroom, 128);
	fb_str(&fb, "{\"type\":\"error\"");
	add_field_str(&fb, "code", code);
	add_field_str(&fb, "message", message);
	add_ref(&fb, ref);
	fb_str(&fb, "}");
	return fb_finish(&fb);
}

confab_buf *protocol_error_unknown(size_t headroom, const char *message, const char *id,
				   json_t *ref)
{
	frame_builder fb;
	fb_init(&fb, headroom, 192);
	fb_str(&fb, "{\"type\":\"error\"");
	add_field_str(&fb, "code", ERR_UNAVAILABLE);
	add_field_str(&fb, "message", message);
	add_field_str(&fb, "outcome", "unknown");
	add_field_str(&fb, "id", id);
	add_ref(&fb, ref);
	fb_str(&fb, "}");
	return fb_finish(&fb);
}

confab_buf *protocol_simple(size_t headroom, const char *type, const char *room, json_t *ref)
{
	frame_builder fb;
	fb_init(&fb, headroom, 96);
	fb_str(&fb, "{\"type\":");
	fb_json_string(&fb, type);
	if (room)
		add_field_str(&fb, "room", room);
	add_ref(&fb, ref);
	fb_str(&fb, "}");
	return fb_finish(&fb);
}

confab_buf *protocol_joined(size_t headroom, const char *room, const char *epoch, json_t *ref)
{
	frame_builder fb;
	fb_init(&fb, headroom, 128);
	fb_str(&fb, "{\"type\":\"joined\"");
	add_field_str(&fb, "room", room);
	if (epoch)
		add_field_str(&fb, "epoch", epoch);
	add_ref(&fb, ref);
	fb_str(&fb, "}");
	return fb_finish(&fb);
}

confab_buf *protocol_ack_room(size_t headroom, const char *room, uint64_t seq, const char *id,
			      int64_t ts, json_t *ref)
{
	frame_builder fb;
	fb_init(&fb, headroom, 128);
	fb_str(&fb, "{\"type\":\"ack\"");
	add_field_str(&fb, "room", room);
	fb_str(&fb, ",\"seq\":");
	fb_uint(&fb, seq);
	add_field_str(&fb, "id", id);
	fb_str(&fb, ",\"ts\":");
	fb_int(&fb, ts);
	add_ref(&fb, ref);
	fb_str(&fb, "}");
	return fb_finish(&fb);
}

confab_buf *protocol_ack_direct(size_t headroom, const char *id, int64_t ts, json_t *ref)
{
	frame_builder fb;
	fb_init(&fb, headroom, 96);
	fb_str(&fb, "{\"type\":\"ack\"");
	add_field_str(&fb, "id", id);
	fb_str(&fb, ",\"ts\":");
	fb_int(&fb, ts);
	add_ref(&fb, ref);
	fb_str(&fb, "}");
	return fb_finish(&fb);
}

/* The object an envelope becomes, without framing around it. */
static void add_envelope(frame_builder *fb, const confab_envelope *env)
{
	switch (env->kind) {
	case CONFAB_ENV_MESSAGE:
		fb_str(fb, "{\"type\":\"message\"");
		add_field_str(fb, "room", env->room);
		fb_str(fb, ",\"seq\":");
		fb_uint(fb, env->seq);
		/* an envelope of a backplane built before ABI 1.3 ends before it */
		if (CONFAB_HAS(env, epoch) && env->epoch)
			add_field_str(fb, "epoch", env->epoch);
		add_field_str(fb, "id", env->id);
		add_field_str(fb, "from", env->from);
		fb_str(fb, ",\"body\":");
		fb_add(fb, env->body, env->body_len);
		fb_str(fb, ",\"ts\":");
		fb_int(fb, env->ts);
		fb_str(fb, "}");
		return;
	case CONFAB_ENV_DIRECT:
		fb_str(fb, "{\"type\":\"direct\"");
		add_field_str(fb, "id", env->id);
		add_field_str(fb, "from", env->from);
		add_field_str(fb, "to", env->to);
		fb_str(fb, ",\"body\":");
		fb_add(fb, env->body, env->body_len);
		fb_str(fb, ",\"ts\":");
		fb_int(fb, env->ts);
		fb_str(fb, "}");
		return;
	case CONFAB_ENV_MEMBER_JOIN:
	case CONFAB_ENV_MEMBER_LEAVE:
		fb_str(fb, "{\"type\":\"member\"");
		add_field_str(fb, "room", env->room);
		add_field_str(fb, "user", env->from);
		add_field_str(fb, "event", env->kind == CONFAB_ENV_MEMBER_JOIN ? "join" : "leave");
		fb_str(fb, "}");
		return;
	}
	fb->failed = true;
}

confab_buf *protocol_envelope(size_t headroom, const confab_envelope *env)
{
	frame_builder fb;
	fb_init(&fb, headroom, 160 + env->body_len);
	add_envelope(&fb, env);
	return fb_finish(&fb);
}

/* The ref as JSON text (malloc'd), or "" for none; NULL when out of
 * memory. Replies that are paged need its length before they are built. */
static char *ref_text(json_t *ref)
{
	return ref ? json_dumps(ref, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("");
}

static size_t fb_len(const frame_builder *fb)
{
	return fb->failed ? 0 : fb->buf->len;
}

/* Ends a paged reply: ,"more":B and the ref. */
static void end_page(frame_builder *fb, bool more, const char *ref)
{
	fb_printf(fb, ",\"more\":%s", more ? "true" : "false");
	if (ref[0]) {
		fb_str(fb, ",\"ref\":");
		fb_str(fb, ref);
	}
	fb_str(fb, "}");
}

/* The most an end_page adds, with the "]" before it and `extra` fields. */
static size_t end_page_max(const char *ref, size_t extra)
{
	return 1 + extra + sizeof(",\"more\":false") + sizeof(",\"ref\":") + strlen(ref) + 1;
}

confab_buf *protocol_presence(size_t headroom, const char *room, const char *const *users,
			      size_t n_users, size_t budget, size_t *n_sent, json_t *ref)
{
	char *rt = ref_text(ref);
	if (!rt)
		return NULL;
	size_t hint = 96 + n_users * 24;
	frame_builder fb;
	fb_init(&fb, headroom, hint < budget ? hint : budget);
	fb_str(&fb, "{\"type\":\"presence\"");
	add_field_str(&fb, "room", room);
	fb_str(&fb, ",\"users\":[");
	size_t reserve = end_page_max(rt, 0), i;
	for (i = 0; i < n_users; i++) {
		size_t mark = fb_len(&fb);
		if (i)
			fb_str(&fb, ",");
		fb_json_string(&fb, users[i]);
		if (i > 0 && !fb.failed && fb.buf->len + reserve > budget) {
			fb.buf->len = mark;   /* the next page starts with it */
			break;
		}
	}
	*n_sent = i;
	fb_str(&fb, "]");
	end_page(&fb, i < n_users, rt);
	free(rt);
	return fb_finish(&fb);
}

confab_buf *protocol_history(size_t headroom, const char *room, const confab_envelope *messages,
			     size_t n, bool truncated, const char *epoch, size_t budget,
			     size_t *n_sent, json_t *ref)
{
	char *rt = ref_text(ref);
	if (!rt)
		return NULL;
	size_t hint = 96;
	for (size_t i = 0; i < n && hint < budget; i++)
		hint += 160 + messages[i].body_len;
	if (hint > budget)
		hint = budget;   /* a page is never larger (but one message may be) */
	frame_builder fb;
	fb_init(&fb, headroom, hint);
	fb_str(&fb, "{\"type\":\"history\"");
	add_field_str(&fb, "room", room);
	fb_str(&fb, ",\"messages\":[");
	/* the tail: truncated, the epoch (as JSON text, escaped at worst
	 * six bytes a byte), more and ref */
	size_t reserve = end_page_max(rt, sizeof(",\"truncated\":false") +
				      (epoch ? sizeof(",\"epoch\":\"\"") + 6 * strlen(epoch) : 0)), i;
	for (i = 0; i < n; i++) {
		size_t mark = fb_len(&fb);
		if (i)
			fb_str(&fb, ",");
		add_envelope(&fb, &messages[i]);
		if (i > 0 && !fb.failed && fb.buf->len + reserve > budget) {
			fb.buf->len = mark;   /* the next page starts with it */
			break;
		}
	}
	*n_sent = i;
	fb_printf(&fb, "],\"truncated\":%s", truncated ? "true" : "false");
	if (epoch)
		add_field_str(&fb, "epoch", epoch);
	end_page(&fb, i < n, rt);
	free(rt);
	return fb_finish(&fb);
}
