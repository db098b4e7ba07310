/* qkd/relay_inbox.h - the keys relayed to this node's SAEs, kept until
 * their slave SAE fetches them (docs/relay.md "The destination's inbox").
 *
 * The destination of a key relay stores the key here before it sends the
 * completion notification, so a key the source hands out survives a crash
 * of the destination. dec_keys takes it out once: its bits are deleted and
 * a tombstone stays, so the key_ID is never served again. A key nobody
 * fetches expires like the key manager's own (kme.key_ttl). One SQLite
 * file per node; every change is one transaction.
 */
#ifndef QKD_RELAY_INBOX_H
#define QKD_RELAY_INBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct qkd_relay_inbox;

/* Open or create the file at path. *why on error (QKD_ERR_IO). */
__attribute__((warn_unused_result))
int qkd_relay_inbox_open(struct qkd_relay_inbox **out, const char *path, const char **why);
void qkd_relay_inbox_close(struct qkd_relay_inbox *ib);	/* accepts NULL */

/* Keep key (nbits, a multiple of 8 up to 65536) for the pair master ->
 * slave, relayed from node source, at time now (Unix seconds). The same
 * key_ID again: 0 when it is the same pair and length and, while still
 * held, the same bits (a source retrying after a lost completion), or
 * already served; QKD_ERR_VERIFY when it differs; QKD_ERR_INVAL when it
 * expired or was withdrawn (it will never be served). */
__attribute__((warn_unused_result))
int qkd_relay_inbox_put(struct qkd_relay_inbox *ib, const uint8_t key_id[16], const char *master,
			const char *slave, const char *source, const uint8_t *key, uint32_t nbits,
			int64_t now, const char **why);

/* Hand out ids[0 .. n) to slave for master, all or none: key i's bytes to
 * outs[i] (cap bytes each), its length to lens[i]; each then becomes a
 * tombstone. QKD_ERR_INVAL with *bad = i for an unknown, delivered or
 * expired key_ID (*why says which), QKD_ERR_VERIFY for one of another
 * pair, QKD_ERR_RANGE when cap is short. */
__attribute__((warn_unused_result))
int qkd_relay_inbox_take(struct qkd_relay_inbox *ib, const char *master, const char *slave,
			 const uint8_t (*ids)[16], size_t n, uint8_t **outs, size_t cap,
			 size_t *lens, size_t *bad, const char **why);

/* The source withdrew key_id (docs/relay.md "Withdrawal"): if it is held,
 * not yet served, and was relayed from source, its bits go and a tombstone
 * stays (counted as expired), so it is never served. *found says whether
 * it was. QKD_ERR_IO with *why. */
__attribute__((warn_unused_result))
int qkd_relay_inbox_withdraw(struct qkd_relay_inbox *ib, const uint8_t key_id[16],
			     const char *source, bool *found, const char **why);

/* Expire keys held longer than ttl_s (0: never) at time now; *n counts them. */
int qkd_relay_inbox_expire(struct qkd_relay_inbox *ib, int64_t now, uint64_t ttl_s, size_t *n,
			   const char **why);

struct qkd_relay_inbox_counts {
	uint64_t ready, delivered, expired;
};
int qkd_relay_inbox_counts(struct qkd_relay_inbox *ib, struct qkd_relay_inbox_counts *c,
			   const char **why);

#endif
