/* cmd_keys.c - `qkd keys`: look into a link's key store (DESIGN.md section 6,
 * docs/keystore.md).
 *
 *   qkd keys --store PATH [--json]        the blocks: id, state, length, consumed
 *   qkd keys --store PATH export ID       one block's bits in hex
 *   qkd keys --store PATH check [--json]  every stored bit against its digest
 *
 * Exit codes (cli.h): 0 success; 2 the command line is wrong (unknown option
 * or action, missing --store, a bad ID, a stray argument); 1 the store
 * cannot be opened (a missing file is never created), the ID is unknown,
 * used or quarantined, a check found bits failing their digests, or output
 * could not be written. The store is opened read-only in spirit
 * (qkd_store_open_existing): nothing here writes to it, not even check,
 * which reports and leaves quarantine to the node. Key bits are printed by
 * export only, straight to the file descriptor (no stdio copy), and wiped
 * after.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "commands.h"
#include "qkd/keystore.h"
#include "qkd/kme_store.h"
#include "qkd/secret.h"

#define CMD "keys"

enum opt_id {
	OPT_STORE = 256, OPT_JSON,
	OPT_HELP = 'h',
};

static const struct option long_opts[] = {
	{ "store", required_argument, NULL, OPT_STORE },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

enum keys_action { ACT_LIST, ACT_EXPORT, ACT_CHECK };

struct keys_args {
	const char *store;
	bool json;
	enum keys_action act;
	uint64_t id;
};

static void usage(FILE *f)
{
	fputs(
"usage: qkd keys --store PATH [--json]\n"
"       qkd keys --store PATH export ID\n"
"       qkd keys --store PATH check [--json]\n"
"\n"
"Look into a link's key store (docs/keystore.md). A missing store is an\n"
"error, never created, and nothing here writes to the store.\n"
"\n"
"  --store PATH   the store's SQLite file (required)\n"
"  --json         list or check as one JSON object instead of text\n"
"  export ID      print block ID's bits as one line of lowercase hex: bit i\n"
"                 is bit i%8 (LSB first) of byte i/8, the last byte padded\n"
"                 with zero bits; bits already handed out print as 0\n"
"  check          read every stored bit of every pending and final block and\n"
"                 every ready key against its digest; one line per failure\n"
"                 and a summary (failures are reported, not quarantined)\n"
"\n"
"Exit status: 0 ok, 1 store missing or unreadable, unknown, used or\n"
"quarantined block, bits failing their digests, 2 usage error.\n",
	      f);
}

static int parse_check(int argc, char **argv, int first, struct keys_args *a)
{
	if (first + 1 < argc) {
		cli_errorf(CMD, "unexpected argument '%s'", argv[first + 1]);
		return -1;
	}
	a->act = ACT_CHECK;
	return 0;
}

static int parse_action(int argc, char **argv, int first, struct keys_args *a)
{
	const char *why = NULL;

	if (first == argc)
		return 0;
	if (strcmp(argv[first], "check") == 0)
		return parse_check(argc, argv, first, a);
	if (strcmp(argv[first], "export") != 0) {
		cli_errorf(CMD, "unknown action '%s' (see 'qkd keys --help')", argv[first]);
		return -1;
	}
	if (first + 1 == argc) {
		cli_error(CMD, "export needs a block id");
		return -1;
	}
	if (first + 2 < argc) {
		cli_errorf(CMD, "unexpected argument '%s'", argv[first + 2]);
		return -1;
	}
	if (cli_parse_u64(argv[first + 1], &a->id, &why) == 0 && a->id > QKD_STORE_ID_MAX)
		why = "out of range";
	if (why != NULL) {
		cli_errorf(CMD, "export: bad block id: %s: '%s'", why, argv[first + 1]);
		return -1;
	}
	if (a->json) {
		cli_error(CMD, "--json does not apply to export");
		return -1;
	}
	a->act = ACT_EXPORT;
	return 0;
}

/* 0: run; 1: --help printed; -1: usage error printed. */
static int parse_args(int argc, char **argv, struct keys_args *a)
{
	int c;

	memset(a, 0, sizeof(*a));
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_HELP:
			usage(stdout);
			return 1;
		case OPT_JSON:
			a->json = true;
			break;
		case OPT_STORE:
			if (a->store != NULL) {
				cli_error(CMD, "--store given more than once");
				return -1;
			}
			if (*optarg == '\0') {
				cli_error("--store", "empty value");
				return -1;
			}
			a->store = optarg;
			break;
		default:
			cli_getopt_error(CMD, c, argv);
			return -1;
		}
	}
	if (a->store == NULL) {
		cli_error(CMD, "missing --store (see 'qkd keys --help')");
		return -1;
	}
	return parse_action(argc, argv, optind, a);
}

/* ---- list ---- */

static void format_uuid(const uint8_t id[16], char out[40])
{
	snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10],
		 id[11], id[12], id[13], id[14], id[15]);
}

struct block_list {
	struct qkd_store_block *b;
	size_t n, cap;
};

static int collect(const struct qkd_store_block *b, void *ctx)
{
	struct block_list *l = ctx;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct qkd_store_block *nb = realloc(l->b, cap * sizeof(*nb));

		if (nb == NULL)
			return -1;
		l->b = nb;
		l->cap = cap;
	}
	l->b[l->n++] = *b;
	return 0;
}

static void format_time(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, n, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, n, "%" PRId64, t);
}

static void print_human(const char *path, const struct qkd_store_stats *st,
			const struct qkd_kme_counts *kc, const struct block_list *l)
{
	char when[64];

	printf("key store %s: %" PRIu64 " blocks, %" PRIu64 " bits, %" PRIu64 " available\n",
	       path, st->count, st->total_bits, st->available_bits);
	printf("  pending %" PRIu64 " (%" PRIu64 " bits), final %" PRIu64 " (%" PRIu64
	       " bits), used %" PRIu64 " (%" PRIu64 " bits); %" PRIu64 " bits handed out\n",
	       st->state_count[QKD_STORE_PENDING], st->state_bits[QKD_STORE_PENDING],
	       st->state_count[QKD_STORE_FINAL], st->state_bits[QKD_STORE_FINAL],
	       st->state_count[QKD_STORE_USED], st->state_bits[QKD_STORE_USED],
	       st->consumed_bits);
	printf("  quarantined %" PRIu64 " (%" PRIu64 " bits), %" PRIu64
	       " not yet reported to the peer\n", st->state_count[QKD_STORE_QUARANTINED],
	       st->state_bits[QKD_STORE_QUARANTINED], st->quarantine_unreported);
	printf("  key manager: %" PRIu64 " keys issued here awaiting the peer (%" PRIu64
	       " abandoned), %" PRIu64 " ready for their slave SAE, %" PRIu64 " delivered, %"
	       PRIu64 " refused, %" PRIu64 " withdrawn, %" PRIu64 " quarantined\n",
	       kc->outbox, kc->abandoned, kc->ready, kc->delivered, kc->refused, kc->withdrawn,
	       kc->quarantined);
	printf("  key lifecycle: %" PRIu64 " expired unfetched, %" PRIu64 " bits lost, %" PRIu64
	       " tombstones pruned\n", kc->expired, kc->lost_bits, kc->pruned);
	if (l->n == 0)
		return;
	printf("%20s  %-11s %12s %12s  %s\n", "id", "state", "bits", "consumed", "created");
	for (size_t i = 0; i < l->n; i++) {
		const struct qkd_store_block *b = &l->b[i];

		format_time(b->created, when, sizeof(when));
		printf("%20" PRIu64 "  %-11s %12" PRIu64 " %12" PRIu64 "  %s\n", b->id,
		       qkd_store_state_name(b->state), b->nbits, b->consumed, when);
	}
}

static json_t *state_json(const struct qkd_store_stats *st, enum qkd_store_state s)
{
	return json_pack("{s:I, s:I}", "count", (json_int_t)st->state_count[s],
			 "bits", (json_int_t)st->state_bits[s]);
}

static json_t *to_json(const char *path, const struct qkd_store_stats *st,
		       const struct qkd_kme_counts *kc, const struct block_list *l)
{
	json_t *blocks = json_array();

	for (size_t i = 0; blocks != NULL && i < l->n; i++) {
		const struct qkd_store_block *b = &l->b[i];

		if (json_array_append_new(blocks, json_pack("{s:I, s:s, s:I, s:I, s:I}",
				"id", (json_int_t)b->id,
				"state", qkd_store_state_name(b->state),
				"bits", (json_int_t)b->nbits,
				"consumed", (json_int_t)b->consumed,
				"created", (json_int_t)b->created)) != 0) {
			json_decref(blocks);
			return NULL;
		}
	}
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:{s:o, s:o, s:o, s:o},"
			 " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o}",
			 "store", path,
			 "count", (json_int_t)st->count,
			 "total_bits", (json_int_t)st->total_bits,
			 "available_bits", (json_int_t)st->available_bits,
			 "consumed_bits", (json_int_t)st->consumed_bits,
			 "quarantine_unreported", (json_int_t)st->quarantine_unreported,
			 "states",
			 "pending", state_json(st, QKD_STORE_PENDING),
			 "final", state_json(st, QKD_STORE_FINAL),
			 "used", state_json(st, QKD_STORE_USED),
			 "quarantined", state_json(st, QKD_STORE_QUARANTINED),
			 "kme",
			 "outbox", (json_int_t)kc->outbox, "ready", (json_int_t)kc->ready,
			 "delivered", (json_int_t)kc->delivered, "refused", (json_int_t)kc->refused,
			 "abandoned", (json_int_t)kc->abandoned,
			 "withdrawn", (json_int_t)kc->withdrawn,
			 "quarantined", (json_int_t)kc->quarantined,
			 "expired", (json_int_t)kc->expired,
			 "lost_bits", (json_int_t)kc->lost_bits,
			 "pruned", (json_int_t)kc->pruned,
			 "blocks", blocks);
}

static int do_list(struct qkd_store *s, const struct keys_args *a)
{
	struct block_list l = { NULL, 0, 0 };
	struct qkd_store_stats st;
	struct qkd_kme_counts kc;
	const char *why = NULL;
	json_t *obj = NULL;
	int rc = CLI_EXIT_FAIL;

	if (qkd_store_list(s, collect, &l, &st, &why) != 0 ||
	    qkd_store_kme_counts(s, &kc, &why) != 0) {
		cli_error(a->store, why != NULL ? why : "out of memory");
		goto out;
	}
	if (!a->json) {
		print_human(a->store, &st, &kc, &l);
		rc = CLI_EXIT_OK;
		goto out;
	}
	obj = to_json(a->store, &st, &kc, &l);
	if (obj == NULL) {
		cli_error(CMD, "cannot build the JSON output");
		goto out;
	}
	/* a failed write shows in ferror(stdout), checked by the caller */
	if (json_dumpf(obj, stdout, JSON_COMPACT) == 0)
		putchar('\n');
	rc = CLI_EXIT_OK;
out:
	json_decref(obj);
	free(l.b);
	return rc;
}

/* ---- export ---- */

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Write n bytes as lowercase hex and a newline to fd, through a wiped
 * buffer: the key never sits in a stdio buffer. */
static int write_hex(int fd, const uint8_t *bytes, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char buf[4096];		/* even: a byte's two digits never straddle a flush */
	size_t used = 0;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		buf[used++] = digits[bytes[i] >> 4];
		buf[used++] = digits[bytes[i] & 15];
		if (used == sizeof(buf)) {
			rc = write_all(fd, buf, used);
			used = 0;
		}
	}
	if (rc == 0) {
		buf[used++] = '\n';
		rc = write_all(fd, buf, used);
	}
	qkd_wipe(buf, sizeof(buf));
	return rc;
}

static int do_export(struct qkd_store *s, const struct keys_args *a)
{
	struct qkd_store_block b;
	bool found = false;
	const char *why = NULL;
	uint8_t *bits = NULL;
	size_t len = 0;
	uint64_t nbits = 0;
	int rc = CLI_EXIT_FAIL;

	if (qkd_store_lookup(s, a->id, &b, &found, &why) != 0) {
		cli_error(a->store, why);
		goto out;
	}
	if (!found || b.state == QKD_STORE_USED || b.state == QKD_STORE_QUARANTINED) {
		cli_errorf(a->store, !found ? "no such block %" PRIu64
			   : b.state == QKD_STORE_USED ? "block %" PRIu64 " is used: its bits were"
			   " handed out and deleted" : "block %" PRIu64 " is quarantined: its bits"
			   " failed their digest and were deleted", a->id);
		goto out;
	}
	len = (size_t)((b.nbits + 7) / 8);
	bits = malloc(len);
	if (bits == NULL) {
		cli_error(CMD, "out of memory");
		goto out;
	}
	if (qkd_store_get(s, a->id, bits, len, &nbits, &why) != 0) {
		cli_error(a->store, why);
		goto out;
	}
	if (write_hex(STDOUT_FILENO, bits, len) != 0) {
		cli_errorf(CMD, "cannot write output: %s", strerror(errno));
		goto out;
	}
	rc = CLI_EXIT_OK;
out:
	qkd_free_secret(bits, len);
	return rc;
}

/* ---- check ---- */

struct check_ctx {
	bool json;
	json_t *bad;		/* JSON: the failures */
	int err;		/* the JSON array could not grow */
};

static json_t *fault_json(const struct qkd_store_fault *f)
{
	char u[40];

	if (!f->is_key)
		return json_pack("{s:s, s:I, s:I, s:I}", "kind", "block", "id", (json_int_t)f->id,
				 "chunk", (json_int_t)f->chunk, "chunks", (json_int_t)f->nchunks);
	format_uuid(f->key_id, u);
	return json_pack("{s:s, s:s}", "kind", "key", "key_id", u);
}

static int on_fault(const struct qkd_store_fault *f, void *ctx)
{
	struct check_ctx *c = ctx;
	char u[40];

	if (c->json) {
		c->err |= json_array_append_new(c->bad, fault_json(f));
		return 0;
	}
	if (!f->is_key) {
		printf("block %" PRIu64 ": bits fail their digest (chunk %" PRIu64 " of %" PRIu64
		       ", bytes %" PRIu64 "..%" PRIu64 ")\n", f->id, f->chunk, f->nchunks,
		       f->chunk * 512, f->chunk * 512 + 511);
		return 0;
	}
	format_uuid(f->key_id, u);
	printf("key %s: bits fail their digest\n", u);
	return 0;
}

static void check_summary(const char *path, const struct qkd_store_verify_stats *vs,
			  const char *invariants)
{
	printf("key store %s: %" PRIu64 " blocks (%" PRIu64 " chunks) and %" PRIu64
	       " ready keys read: %" PRIu64 " blocks and %" PRIu64 " keys fail their digests"
	       "; %" PRIu64 " blocks and %" PRIu64 " keys quarantined before\n", path,
	       vs->blocks, vs->chunks, vs->keys, vs->bad_blocks, vs->bad_keys,
	       vs->quarantined_blocks, vs->quarantined_keys);
	printf("  invariants: %s\n", invariants != NULL ? invariants : "ok");
}

static json_t *check_json(const char *path, const struct qkd_store_verify_stats *vs,
			  const char *invariants, bool ok, json_t *bad)
{
	return json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:O}",
			 "store", path, "ok", ok, "blocks", (json_int_t)vs->blocks,
			 "chunks", (json_int_t)vs->chunks, "keys", (json_int_t)vs->keys,
			 "bad_blocks", (json_int_t)vs->bad_blocks,
			 "bad_keys", (json_int_t)vs->bad_keys,
			 "quarantined_blocks", (json_int_t)vs->quarantined_blocks,
			 "quarantined_keys", (json_int_t)vs->quarantined_keys,
			 "invariants", invariants != NULL ? invariants : "ok", "bad", bad);
}

/* Read-only: the failures are reported, and quarantined by the node. */
static int do_check(struct qkd_store *s, const struct keys_args *a)
{
	struct check_ctx c = { .json = a->json, .bad = json_array() };
	struct qkd_store_verify_stats vs;
	const char *why = NULL, *inv = NULL;
	json_t *obj = NULL;
	bool ok;
	int rc = CLI_EXIT_FAIL;

	if (c.bad == NULL || qkd_store_verify(s, on_fault, &c, &vs, &why) != 0) {
		cli_error(a->store, why != NULL ? why : "out of memory");
		goto out;
	}
	if (qkd_store_check(s, &inv) == 0)
		inv = NULL;
	ok = vs.bad_blocks == 0 && vs.bad_keys == 0 && inv == NULL;
	if (!a->json) {
		check_summary(a->store, &vs, inv);
	} else {
		obj = check_json(a->store, &vs, inv, ok, c.bad);
		if (obj == NULL || c.err != 0) {
			cli_error(CMD, "cannot build the JSON output");
			goto out;
		}
		if (json_dumpf(obj, stdout, JSON_COMPACT) == 0)
			putchar('\n');
	}
	rc = ok ? CLI_EXIT_OK : CLI_EXIT_FAIL;
	if (!ok && inv != NULL)
		cli_error(a->store, inv);
	else if (!ok)
		cli_errorf(a->store, "%" PRIu64 " blocks and %" PRIu64 " keys fail their digests",
			   vs.bad_blocks, vs.bad_keys);
out:
	json_decref(obj);
	json_decref(c.bad);
	return rc;
}

int cmd_keys(int argc, char **argv)
{
	struct keys_args a;
	struct qkd_store *s = NULL;
	const char *why = NULL;
	int rc = parse_args(argc, argv, &a);

	if (rc != 0)
		return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	if (qkd_store_open_existing(&s, a.store, &why) != 0) {
		cli_error(a.store, why);
		return CLI_EXIT_FAIL;
	}
	rc = a.act == ACT_EXPORT ? do_export(s, &a) : a.act == ACT_CHECK ? do_check(s, &a)
	     : do_list(s, &a);
	qkd_store_close(s);
	if (rc == CLI_EXIT_OK && (fflush(stdout) != 0 || ferror(stdout))) {
		cli_errorf(CMD, "cannot write output: %s", strerror(errno));
		rc = CLI_EXIT_FAIL;
	}
	return rc;
}
