/* The text of what travels through Redis: a compact JSON header, then
 * "\n" and the body's JSON text exactly as the core gave it (never parsed
 * or re-serialized here). The header never holds a raw newline (JSON
 * escapes it), so the first "\n" ends it.
 *
 *   room message  {"k":"m","room":R,"id":I,"from":U,"origin":S,"ts":T,"seq":N[,"epoch":E]}\nBODY
 *   direct        {"k":"d","id":I,"from":U,"to":V,"origin":S,"ts":T}\nBODY
 *   member event  {"k":"j"|"l","room":R,"from":U}
 *   probe         {"k":"p","t":TOKEN}
 *
 * A room message is stored in history and published as the same text. The
 * publish script splices the seq in, and the room's epoch into the first
 * message of a room's life (seq 1) only: the plugin labels the others.
 *
 * Shared by the `redis` and `redis_cluster` backplanes (docs/backplane-redis.md).
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>
#include <string.h>

#include "rwire.h"

/* Dumps `obj` (stolen) compactly; NULL when out of memory. */
static char *dump(json_t *obj)
{
	char *text;

	if (obj == NULL)
		return NULL;
	text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	return text;
}

int wire_message_head(const confab_envelope *env, char **head_a, char **head_b)
{
	/* jansson keeps insertion order: the text ends with "ts":T} */
	char *text = dump(json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}",
				    "k", "m", "room", env->room, "id", env->id,
				    "from", env->from, "origin", env->origin ? env->origin : "",
				    "ts", (json_int_t)env->ts));
	static const char seq_field[] = ",\"seq\":";
	size_t n;

	*head_a = *head_b = NULL;
	if (text == NULL)
		return CONFAB_ENOMEM;
	n = strlen(text);            /* at least "{}" */
	*head_a = malloc(n - 1 + sizeof(seq_field));
	*head_b = strdup("}");
	if (*head_a == NULL || *head_b == NULL) {
		free(text);
		free(*head_a);
		free(*head_b);
		*head_a = *head_b = NULL;
		return CONFAB_ENOMEM;
	}
	memcpy(*head_a, text, n - 1);  /* without the closing brace */
	memcpy(*head_a + n - 1, seq_field, sizeof(seq_field));
	free(text);
	return 0;
}

char *wire_direct(const confab_envelope *env, size_t *len)
{
	char *head = dump(json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}",
				    "k", "d", "id", env->id, "from", env->from, "to", env->to,
				    "origin", env->origin ? env->origin : "",
				    "ts", (json_int_t)env->ts));
	size_t n;
	char *text;

	if (head == NULL)
		return NULL;
	n = strlen(head);
	text = malloc(n + 1 + env->body_len + 1);
	if (text != NULL) {
		memcpy(text, head, n);
		text[n] = '\n';
		memcpy(text + n + 1, env->body, env->body_len);
		text[n + 1 + env->body_len] = '\0';
		*len = n + 1 + env->body_len;
	}
	free(head);
	return text;
}

char *wire_probe(const char *token)
{
	return dump(json_pack("{s:s, s:s}", "k", "p", "t", token));
}

/* A string field, or NULL. */
static const char *str_field(json_t *hdr, const char *key)
{
	return json_string_value(json_object_get(hdr, key));
}

int wire_parse(const char *text, size_t len, wire_msg *m, const char **why)
{
	const char *nl = memchr(text, '\n', len);
	size_t hlen = nl != NULL ? (size_t)(nl - text) : len;
	json_error_t err;
	const char *k;
	confab_envelope *env = &m->env;

	memset(m, 0, sizeof(*m));
	env->size = sizeof(*env);
	m->hdr = json_loadb(text, hlen, 0, &err);
	if (m->hdr == NULL || !json_is_object(m->hdr)) {
		*why = "the header is not a JSON object";
		goto bad;
	}
	k = str_field(m->hdr, "k");
	if (k == NULL || k[0] == '\0' || k[1] != '\0') {
		*why = "no kind";
		goto bad;
	}
	m->kind = k[0];
	switch (m->kind) {
	case 'm':
	case 'd': {
		json_t *ts = json_object_get(m->hdr, "ts");

		env->kind = m->kind == 'm' ? CONFAB_ENV_MESSAGE : CONFAB_ENV_DIRECT;
		env->from = str_field(m->hdr, "from");
		env->id = str_field(m->hdr, "id");
		env->origin = str_field(m->hdr, "origin");
		if (env->origin != NULL && env->origin[0] == '\0')
			env->origin = NULL;
		if (nl == NULL || env->from == NULL || env->id == NULL || !json_is_integer(ts)) {
			*why = "a message without body, from, id or ts";
			goto bad;
		}
		env->ts = (int64_t)json_integer_value(ts);
		env->body = nl + 1;
		env->body_len = len - hlen - 1;
		if (m->kind == 'm') {
			json_t *seq = json_object_get(m->hdr, "seq");

			env->room = str_field(m->hdr, "room");
			if (env->room == NULL || !json_is_integer(seq) ||
			    json_integer_value(seq) < 1) {
				*why = "a room message without room or seq";
				goto bad;
			}
			env->seq = (uint64_t)json_integer_value(seq);
			env->epoch = str_field(m->hdr, "epoch");
		} else {
			env->to = str_field(m->hdr, "to");
			if (env->to == NULL) {
				*why = "a direct message without to";
				goto bad;
			}
		}
		return 0;
	}
	case 'j':
	case 'l':
		env->kind = m->kind == 'j' ? CONFAB_ENV_MEMBER_JOIN : CONFAB_ENV_MEMBER_LEAVE;
		env->room = str_field(m->hdr, "room");
		env->from = str_field(m->hdr, "from");
		if (env->room == NULL || env->from == NULL) {
			*why = "a member event without room or user";
			goto bad;
		}
		return 0;
	case 'p':
		m->token = str_field(m->hdr, "t");
		if (m->token == NULL) {
			*why = "a probe without token";
			goto bad;
		}
		return 0;
	default:
		*why = "an unknown kind";
		goto bad;
	}
bad:
	wire_msg_clear(m);
	return CONFAB_EINVAL;
}

void wire_msg_clear(wire_msg *m)
{
	if (m->hdr != NULL)
		json_decref(m->hdr);
	m->hdr = NULL;
}
