/* The text of what travels through Redis (rwire.c): one format for the
 * `redis` and `redis_cluster` backplanes.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_RWIRE_H
#define CONFAB_RWIRE_H

#include <stddef.h>

#include <jansson.h>
#include <confab/plugin.h>

/* A published or stored text, parsed. `env` points into `hdr` and into
 * the text it was parsed from: both must outlive its use. */
typedef struct wire_msg {
	json_t *hdr;
	char kind;                   /* 'm', 'd', 'j', 'l' or 'p' */
	const char *token;           /* 'p': the probe's token */
	confab_envelope env;
} wire_msg;

/* A room message's text is HEAD_A SEQ HEAD_B "\n" BODY: the publish
 * script splices the seq in. Returns 0 or CONFAB_ENOMEM; free both. */
int wire_message_head(const confab_envelope *env, char **head_a, char **head_b);
/* A direct message's whole text (header, "\n", body), malloc'd, in *len. */
char *wire_direct(const confab_envelope *env, size_t *len);
/* A probe: {"k":"p","t":TOKEN}, malloc'd. */
char *wire_probe(const char *token);
/* Parse `len` bytes. 0, or CONFAB_EINVAL with a reason in `why`. On
 * success free m->hdr with json_decref (wire_msg_clear). */
int wire_parse(const char *text, size_t len, wire_msg *m, const char **why);
void wire_msg_clear(wire_msg *m);

#endif /* CONFAB_RWIRE_H */
