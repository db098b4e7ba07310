/* qkd/kme_store.h - keys issued through the key manager (ETSI GS QKD 014),
 * kept in the link's key store next to the blocks they were cut from
 * (docs/kme.md, "Two nodes"; schema in docs/keystore.md).
 *
 * The two ends of a link each serve enc_keys for their own SAEs, so each
 * end cuts keys only from its own half of the blocks: Alice from even
 * block ids, Bob from odd ones (QKD_KME_PARITY_*). One key, one record:
 *
 *   master's end   qkd_store_kme_issue: take the bits from its half and
 *                  write the record to the OUTBOX, one transaction.
 *                  The record (never the bits) crosses the authenticated
 *                  link; qkd_store_kme_outbox_done once the peer answered.
 *   slave's end    qkd_store_kme_accept: consume the same segments with the
 *                  record's bits kept in the INBOX, one transaction;
 *                  idempotent, so a record sent twice is accepted once.
 *                  qkd_store_kme_deliver hands the bits out once to the
 *                  record's slave SAE for its master, then deletes them
 *                  and keeps a tombstone, so the key_ID is never served
 *                  again, across restarts.
 *
 * A record the master gave up on (enc_keys answered 503 after its timeout)
 * is ABANDONED: qkd_store_kme_abandon marks it, the outbox keeps it with
 * its abandoned flag set, and the link sends a withdrawal instead of the
 * record; the slave's qkd_store_kme_withdraw_batch retires its copy (or
 * leaves a tombstone), and its verdict lets the master drop the record.
 *
 * A ready key's bits carry a digest (docs/keystore.md, "Digests"), checked
 * by deliver; a key that fails it is QUARANTINED and never delivered.
 *
 * Key ids are 16 bytes (a UUID's binary form). Keys are whole bytes: the
 * bits of the segments concatenated, LSB first as everywhere in the store.
 * Same threading, error and wiping rules as qkd/keystore.h. A store of an
 * older schema opened by a reader (qkd_store_open_existing never upgrades)
 * refuses every call that writes with QKD_ERR_INVAL; a version 1 store has
 * no records: outbox and counts see none (docs/keystore.md, "Schema
 * versions").
 */
#ifndef QKD_KME_STORE_H
#define QKD_KME_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/keystore.h"

/* Segments one key may span (keys of up to 65536 bits over blocks of
 * hundreds of thousands of bits span one or two). */
#define QKD_KME_KEY_SEGS_MAX 8
/* Longest SAE ID, as QKD_ETSI014_ID_MAX. */
#define QKD_KME_SAE_ID_MAX 64
/* Largest key, in bits (QKD_ETSI014_KEY_BITS_MAX). */
#define QKD_KME_KEY_BITS_MAX 65536

/* Which half of the blocks an end cuts keys from: block id % 2. */
#define QKD_KME_PARITY_ALICE 0u
#define QKD_KME_PARITY_BOB 1u

/* One key as the two ends agree on it. */
struct qkd_kme_rec {
	uint8_t key_id[16];
	char master[QKD_KME_SAE_ID_MAX + 1];
	char slave[QKD_KME_SAE_ID_MAX + 1];
	uint32_t nbits;				/* a multiple of 8, 8 .. QKD_KME_KEY_BITS_MAX */
	size_t nsegs;				/* 1 .. QKD_KME_KEY_SEGS_MAX */
	struct qkd_store_seg segs[QKD_KME_KEY_SEGS_MAX];	/* sum of nbits = nbits */
	bool abandoned;		/* set by qkd_store_kme_outbox only: the master gave
				 * up on the key; send a withdrawal, not the record.
				 * An abandoned key_ID this end no longer had a
				 * record of comes with nbits 0, nsegs 0 and empty
				 * SAE IDs. Ignored by issue and accept. */
};

/* What the slave's end made of a record. */
enum qkd_kme_verdict {
	QKD_KME_ACCEPTED = 0,	/* in the inbox (now or before): the master may hand it out */
	QKD_KME_REFUSED = 1,	/* never deliverable (reason in *why); its bits consumed
				 * only when every one could be (deliverable false) */
	QKD_KME_LATER = 2,	/* a block is not final here yet: nothing changed, send again */
};

/* Master's end. Cut n keys (1 .. 1024) of recs[0].nbits bits each (every
 * rec must have the same nbits, and its key_id, master and slave set) from
 * the FINAL blocks whose id % 2 == parity, lowest free bits first; fill
 * each rec's segs, write key i's bytes to bits[i * nbits/8 ..] (bitslen at
 * least n * nbits/8), and record each rec in the outbox, all in one
 * transaction. QKD_ERR_RANGE when the half holds fewer than n * nbits free
 * bits (nothing consumed), when a key would span more than
 * QKD_KME_KEY_SEGS_MAX segments (the half fragmented by take_at), or when
 * bitslen is short; QKD_ERR_INVAL for a bad rec or a key_id already in the
 * outbox or inbox; QKD_ERR_CORRUPT when a block's bits fail their digest
 * (the block is quarantined; a retry cuts around it). On failure nothing
 * changes in the store (but the quarantine), bits[0 .. bitslen) is wiped and
 * every rec's nsegs is 0. Each rec's abandoned flag is cleared. */
__attribute__((warn_unused_result))
int qkd_store_kme_issue(struct qkd_store *s, unsigned parity, struct qkd_kme_rec *recs,
			size_t n, uint8_t *bits, size_t bitslen, const char **why);

/* The oldest outbox records (at most max), in issue order, abandoned ones
 * among them with their abandoned flag set. */
__attribute__((warn_unused_result))
int qkd_store_kme_outbox(struct qkd_store *s, struct qkd_kme_rec *recs, size_t max,
			 size_t *n, const char **why);

/* The peer settled key_id's record (accepted or refused): drop it from the
 * outbox. An abandoned record stays: the peer may have accepted it, and
 * only the answer to its withdrawal lets it go
 * (qkd_store_kme_withdrawals_done_batch). An id not in the outbox is not an
 * error (an answer repeated). */
__attribute__((warn_unused_result))
int qkd_store_kme_outbox_done(struct qkd_store *s, const uint8_t key_id[16], const char **why);
/* The same for ids[0 .. n), in one transaction (one fsync for a whole
 * message of verdicts). */
__attribute__((warn_unused_result))
int qkd_store_kme_outbox_done_batch(struct qkd_store *s, const uint8_t (*ids)[16], size_t n,
				    const char **why);
/* The peer answered the withdrawals of ids[0 .. n) (withdrawn or
 * delivered): drop those abandoned entries from the outbox, one
 * transaction. Other ids are ignored. */
__attribute__((warn_unused_result))
int qkd_store_kme_withdrawals_done_batch(struct qkd_store *s, const uint8_t (*ids)[16], size_t n,
					 const char **why);

/* Slave's end: take in a record from the peer, whose end cuts keys from
 * blocks of parity peer_parity. deliverable false (the pair is not one
 * this end serves) still consumes the segments but keeps only a refused
 * tombstone. *v:
 *   ACCEPTED  the record is in the inbox (inserted now, or already there
 *             with the same key_id, pair, length and segments);
 *   REFUSED   the key_id is known with other contents, was withdrawn or
 *             quarantined, a segment is of the wrong parity, outside
 *             its block, in a quarantined block, or already consumed,
 *             or deliverable was false; *why says which;
 *   LATER     a segment's block is unknown or still PENDING here.
 * Returns 0 with *v set in these cases; an error code only for bad
 * arguments or when the store itself fails (nothing changed, *v = LATER),
 * QKD_ERR_CORRUPT among them: a block's bits failed their digest while
 * consuming (the block is then quarantined; the record sent again is
 * REFUSED).
 * *why gives the reason for REFUSED and LATER, NULL for ACCEPTED. A
 * malformed record (length, SAE IDs, segments not summing to nbits) is
 * REFUSED and not recorded; every other refusal of a new key_id leaves a
 * refused tombstone, so the key_id keeps that answer for good. */
__attribute__((warn_unused_result))
int qkd_store_kme_accept(struct qkd_store *s, unsigned peer_parity, const struct qkd_kme_rec *rec,
			 bool deliverable, enum qkd_kme_verdict *v, const char **why);

/* The same for recs[0 .. n) in one transaction (one fsync for a whole
 * message of records): v[i] and whys[i] (static reasons, NULL for
 * accepted) for recs[i], deliverable[i] as above. A store failure rolls
 * the whole batch back and leaves every v[i] LATER. */
__attribute__((warn_unused_result))
int qkd_store_kme_accept_batch(struct qkd_store *s, unsigned peer_parity,
			       const struct qkd_kme_rec *recs, size_t n, const bool *deliverable,
			       enum qkd_kme_verdict *v, const char **whys, const char **why);

/* The reasons deliver gives (in *why, these very pointers) for a key_ID
 * withdrawn by its master and for a key expired unfetched, so that the
 * key manager can tell the SAE which (docs/kme.md, "Errors"). */
extern const char qkd_store_kme_why_withdrawn[];
extern const char qkd_store_kme_why_expired[];

/* Hand out, once and all or nothing, the inbox keys ids[0 .. n) (n >= 1)
 * issued by master for slave: key i's bytes to out[i] (cap bytes each),
 * its length in bytes to lens[i]; each becomes a tombstone in the same
 * transaction. Errors (nothing handed out, outputs wiped, *bad = the index
 * at fault):
 *   QKD_ERR_INVAL   an id unknown, refused, or already delivered
 *                   (also an id given twice);
 *   QKD_ERR_VERIFY  an id issued for another (master, slave) pair;
 *   QKD_ERR_RANGE   a key longer than cap;
 *   QKD_ERR_CORRUPT a key quarantined before, or whose bits fail their
 *                   digest now (then quarantined: its bits deleted, a
 *                   tombstone kept; why names the key).
 * A withdrawn key is QKD_ERR_INVAL with why = qkd_store_kme_why_withdrawn,
 * an expired one QKD_ERR_INVAL with why = qkd_store_kme_why_expired. *bad = n on success and when no single
 * id is at fault (bad arguments, the store failed). */
__attribute__((warn_unused_result))
int qkd_store_kme_deliver(struct qkd_store *s, const char *master, const char *slave,
			  const uint8_t (*ids)[16], size_t n, uint8_t *const *out, size_t cap,
			  size_t *lens, size_t *bad, const char **why);

/* Free FINAL bits in the blocks whose id % 2 == parity (what issue can cut). */
__attribute__((warn_unused_result))
int qkd_store_kme_available(struct qkd_store *s, unsigned parity, uint64_t *bits,
			    const char **why);

struct qkd_kme_counts {
	uint64_t outbox;	/* issued here, the peer has not answered (abandoned too) */
	uint64_t ready;		/* in the inbox, not yet delivered */
	uint64_t delivered;	/* inbox tombstones: delivered */
	uint64_t refused;	/* inbox tombstones: refused */
	uint64_t abandoned;	/* of the outbox: given up on, to be withdrawn */
	uint64_t withdrawn;	/* inbox tombstones: withdrawn by their master */
	uint64_t quarantined;	/* inbox tombstones: bits failed their digest */
	/* Running totals (schema version 4 on; 0 in an older store): */
	uint64_t expired;	/* ready keys expired, unfetched (qkd_store_kme_expire) */
	uint64_t lost_bits;	/* bits this store consumed for keys no SAE will ever
				 * get: abandoned, withdrawn, expired, quarantined,
				 * or refused after consuming (docs/kme.md, "Key
				 * lifecycle") */
	uint64_t pruned;	/* tombstones deleted by qkd_store_kme_prune */
};

__attribute__((warn_unused_result))
int qkd_store_kme_counts(struct qkd_store *s, struct qkd_kme_counts *c, const char **why);

/* Master's end: enc_keys gave up on ids[0 .. n) (it answered 503 after its
 * timeout), but the peer may accept, or have accepted, their records. Each
 * outbox record becomes ABANDONED, one transaction: it stays in the outbox,
 * which returns it with its abandoned flag, so that the link sends a
 * withdrawal instead of the record, until qkd_store_kme_withdrawals_done_batch drops it
 * on the peer's verdict. A key_ID with no record here (the peer's answer
 * came in and was settled just before) gets an abandoned outbox entry of
 * its own without contents, so that it is withdrawn all the same. A key_ID
 * of this end's inbox is left alone. Idempotent. Its bits stay consumed. */
__attribute__((warn_unused_result))
int qkd_store_kme_abandon(struct qkd_store *s, const uint8_t (*ids)[16], size_t n,
			  const char **why);

/* What the slave's end made of a withdrawal. Both let the master drop its
 * outbox entry (qkd_store_kme_withdrawals_done_batch). */
enum qkd_kme_withdraw_verdict {
	QKD_KME_WD_WITHDRAWN = 0,	/* never delivered here, and now never will be:
					 * withdrawn (now or before), refused or
					 * quarantined, or unknown (a tombstone keeps
					 * the key_ID refused for good) */
	QKD_KME_WD_DELIVERED = 1,	/* delivered to its slave SAE before the
					 * withdrawal came: it stays delivered */
};

/* Slave's end: the peer (whose end cuts keys from blocks of parity
 * peer_parity, 0 or 1, as for accept) withdraws the keys of recs[0 .. n)
 * (each its key_id, and the segments it had: nsegs may be 0), one
 * transaction. A ready key becomes a WITHDRAWN tombstone, its bits deleted
 * (and overwritten); an unknown key_ID gets a WITHDRAWN tombstone without
 * contents, so that a record sent later with that key_ID is REFUSED, and
 * its segments are consumed here too when they can all be (final blocks of
 * the peer's half, bits free), so both stores consume the same bits; a
 * delivered key stays delivered; refused, quarantined and withdrawn ones,
 * and key_IDs this end issued itself, stay as they are. v[i] is the
 * verdict for recs[i]. The bits of withdrawn keys stay consumed in their
 * blocks, as at the master. A store failure rolls everything back and is
 * returned (v[] undefined: send the withdrawals again). */
__attribute__((warn_unused_result))
int qkd_store_kme_withdraw_batch(struct qkd_store *s, unsigned peer_parity,
				 const struct qkd_kme_rec *recs, size_t n,
				 enum qkd_kme_withdraw_verdict *v, const char **why);

/* ---- the key lifecycle (docs/kme.md, "Key lifecycle") ---- */

/* Slave's end: expire the ready inbox keys accepted at least ttl_s seconds
 * before now (seconds since 1970, the same clock as the records' creation
 * times): each key's bits are deleted (and overwritten in the file) and its
 * row becomes an EXPIRED tombstone, so deliver refuses the key_ID with a
 * reason naming expiry; each counts in expired, and its bits in lost_bits.
 * ttl_s 0 expires nothing. At most 1024 keys per call, oldest first, one
 * transaction; *n = how many expired. Only this end's records change: the
 * peer expires its own by its own clock. */
__attribute__((warn_unused_result))
int qkd_store_kme_expire(struct qkd_store *s, int64_t now, uint64_t ttl_s, size_t *n,
			 const char **why);

/* Delete the inbox tombstones (delivered, refused, withdrawn, expired,
 * quarantined) created at least min_age_s seconds before now whose every
 * segment lies in a block in state USED (no free bit left): a record
 * naming those segments again would be refused because its bits are
 * consumed, so the tombstone is no longer what keeps the key_ID from being
 * served. Tombstones without segments (a withdrawn key_ID this end never
 * had) are kept for good. At most 1024 per call, found among the 16384
 * oldest candidates, one transaction; *n = how many went, added to the
 * pruned tally. */
__attribute__((warn_unused_result))
int qkd_store_kme_prune(struct qkd_store *s, int64_t now, uint64_t min_age_s, size_t *n,
			const char **why);

/* Master's end, at start: every PENDING outbox record belongs to an
 * enc_keys call that died with the process before its answer, so no SAE
 * holds the key: each becomes ABANDONED (to be withdrawn at the peer, as
 * qkd_store_kme_abandon does) and its bits count in lost_bits. At most
 * 1024 per call (call until *n is 0), one transaction. */
__attribute__((warn_unused_result))
int qkd_store_kme_abandon_pending(struct qkd_store *s, size_t *n, const char **why);

#endif
