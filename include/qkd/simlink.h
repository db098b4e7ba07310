/* qkd/simlink.h - a whole simulated link: `qkd sim` and the benchmarks.
 *
 * Alice and Bob run as two processes (fork) that share no memory and talk
 * only through framed messages on a socketpair (qkd_channel). Each builds
 * the optical simulator from the same link parameters and reads only its own
 * view of it (qkd/optical.h). The parent collects both parties' statistics
 * and final keys over a result pipe, so the keys can be compared.
 */
#ifndef QKD_SIMLINK_H
#define QKD_SIMLINK_H

#include "qkd/bits.h"
#include "qkd/engine.h"
#include "qkd/optical.h"

struct qkd_party_result {
	struct qkd_engine_stats st;
	struct qkd_bits key;	/* final key, secret */
	int rc;			/* the party's engine return code */
	double cpu_seconds;	/* all CPU time of the party's process */
	double cpu_optical;	/* of which: simulating the optical layer */
};

struct qkd_simlink_result {
	struct qkd_party_result alice, bob;
	double wall_seconds;
};

/* Run the link. The result is caller-owned; release it with
 * qkd_simlink_result_cleanup. Returns 0 when both processes ran to the end
 * (a run that produced no key is still 0; see st.abort), else the first
 * party's error code. */
__attribute__((warn_unused_result))
int qkd_simlink_run(const struct qkd_link_params *link, const struct qkd_engine_config *cfg,
		    struct qkd_simlink_result *res);

void qkd_simlink_result_cleanup(struct qkd_simlink_result *res);

/* Where each party's optical data comes from, built inside the party's own
 * process (after the fork): the simulator (qkd_simlink_run), or another
 * backend such as recorded files (qkd_file_party_sources in
 * qkd/recording.h). alice and bob fill *ops and return 0 or an error code;
 * *state is theirs, handed back to cpu and release. */
struct qkd_party_sources {
	int (*alice)(void *ctx, struct qkd_alice_source *ops, void **state);
	int (*bob)(void *ctx, struct qkd_bob_source *ops, void **state);
	double (*cpu)(const void *state);	/* CPU seconds the source has spent */
	void (*release)(void *state);		/* accepts NULL */
	void *ctx;
};

/* qkd_simlink_run with the parties' sources from src (NULL: the simulator,
 * exactly as qkd_simlink_run). Of link only the seed is read then: it seeds
 * the parties' protocol RNGs. */
__attribute__((warn_unused_result))
int qkd_simlink_run_sources(const struct qkd_link_params *link,
			    const struct qkd_engine_config *cfg,
			    const struct qkd_party_sources *src, struct qkd_simlink_result *res);

/* The optical simulator as the engine's sources (used by qkd_simlink_run;
 * exposed for tests that run the parties in threads). */
struct qkd_sim;
struct qkd_sim_bob_source {
	const struct qkd_sim *sim;
	uint64_t next_slot;
	uint64_t chunk_slots;
	double cpu;	/* CPU seconds spent simulating */
};
void qkd_sim_bob_source_init(struct qkd_sim_bob_source *s, const struct qkd_sim *sim,
			     struct qkd_bob_source *ops);
struct qkd_sim_alice_source {
	const struct qkd_sim *sim;
	double cpu;
};
void qkd_sim_alice_source_init(struct qkd_sim_alice_source *s, const struct qkd_sim *sim,
			       struct qkd_alice_source *ops);

#endif
