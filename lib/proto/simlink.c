/* A simulated link as two processes (see qkd/simlink.h). */
#include "qkd/simlink.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qkd/channel.h"
#include "qkd/error.h"
#include "qkd/rng.h"
#include "qkd/secret.h"
#include "qkd/sysutil.h"
#include "qkd/wire.h"

enum role { ROLE_ALICE, ROLE_BOB };

/* Run one party's engine with the simulator as its source. */
static void run_sim(enum role role, struct qkd_channel *ch, const struct qkd_link_params *link,
		    const struct qkd_engine_config *cfg, struct qkd_rng *rng,
		    struct qkd_party_result *r)
{
	struct qkd_sim *sim = NULL;
	struct qkd_sim_bob_source bs;
	struct qkd_sim_alice_source as;

	r->rc = qkd_sim_new(&sim, link);
	if (r->rc == QKD_OK && role == ROLE_ALICE) {
		struct qkd_alice_source ops;

		qkd_sim_alice_source_init(&as, sim, &ops);
		r->rc = qkd_engine_alice(ch, cfg, &ops, rng, &r->st, &r->key);
		r->cpu_optical = as.cpu;
	} else if (r->rc == QKD_OK) {
		struct qkd_bob_source ops;

		qkd_sim_bob_source_init(&bs, sim, &ops);
		r->rc = qkd_engine_bob(ch, cfg, &ops, rng, &r->st, &r->key);
		r->cpu_optical = bs.cpu;
	}
	qkd_sim_free(sim);
}

/* Run one party's engine with a source the caller's factory builds. */
static void run_from(enum role role, struct qkd_channel *ch, const struct qkd_party_sources *src,
		     const struct qkd_engine_config *cfg, struct qkd_rng *rng,
		     struct qkd_party_result *r)
{
	void *state = NULL;

	if (role == ROLE_ALICE) {
		struct qkd_alice_source ops;

		r->rc = src->alice(src->ctx, &ops, &state);
		if (r->rc == QKD_OK)
			r->rc = qkd_engine_alice(ch, cfg, &ops, rng, &r->st, &r->key);
	} else {
		struct qkd_bob_source ops;

		r->rc = src->bob(src->ctx, &ops, &state);
		if (r->rc == QKD_OK)
			r->rc = qkd_engine_bob(ch, cfg, &ops, rng, &r->st, &r->key);
	}
	if (state != NULL && src->cpu != NULL)
		r->cpu_optical = src->cpu(state);
	if (src->release != NULL)
		src->release(state);
}

/* The body of one party's process: run the engine, report to the parent. */
static int party(enum role role, int fd, int resfd, const struct qkd_link_params *link,
		 const struct qkd_engine_config *cfg, const struct qkd_party_sources *src)
{
	struct qkd_channel ch;
	struct qkd_rng rng;
	struct qkd_party_result r;
	struct qkd_wbuf out;
	int rc;

	memset(&r, 0, sizeof r);
	qkd_wbuf_init_secret(&out);	/* carries the final key */
	qkd_channel_init(&ch, fd, &qkd_auth_none, NULL);
	qkd_rng_init_seed(&rng, link->seed, role == ROLE_ALICE ? "alice-protocol" : "bob-protocol");
	if (src == NULL)
		run_sim(role, &ch, link, cfg, &rng, &r);
	else
		run_from(role, &ch, src, cfg, &rng, &r);
	r.cpu_seconds = qkd_cpu_seconds();
	qkd_put_u32(&out, (uint32_t)r.rc);
	qkd_put_bytes(&out, &r.st, sizeof r.st);
	qkd_put_double(&out, r.cpu_seconds);
	qkd_put_double(&out, r.cpu_optical);
	qkd_put_bits(&out, &r.key);
	rc = out.err ? out.err : qkd_write_all(resfd, out.p, out.len);
	qkd_bits_cleanup(&r.key);
	qkd_wbuf_cleanup(&out);
	qkd_channel_cleanup(&ch);
	qkd_rng_cleanup(&rng);
	return rc;
}

static int read_result(int fd, struct qkd_party_result *r)
{
	struct qkd_wbuf in;
	struct qkd_rbuf rb;
	uint8_t buf[65536];
	int rc = QKD_OK;

	qkd_wbuf_init_secret(&in);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = QKD_ERR_IO;
		if (n <= 0)
			break;
		qkd_put_bytes(&in, buf, (size_t)n);
	}
	qkd_wipe(buf, sizeof buf);
	if (rc == QKD_OK && in.err)
		rc = in.err;
	if (rc == QKD_OK) {
		qkd_rbuf_init(&rb, in.p, in.len);
		r->rc = (int)(int32_t)qkd_get_u32(&rb);
		qkd_get_copy(&rb, &r->st, sizeof r->st);
		r->cpu_seconds = qkd_get_double(&rb);
		r->cpu_optical = qkd_get_double(&rb);
		rc = qkd_get_bits(&rb, &r->key, SIZE_MAX / 2);
		if (rc == QKD_OK && !qkd_rbuf_done(&rb))
			rc = QKD_ERR_PROTO;
		if (rc != QKD_OK)
			r->rc = QKD_ERR_IO;	/* the process died before reporting */
	}
	qkd_wbuf_cleanup(&in);
	return rc;
}

/* Fork one party. In the child every descriptor but its channel end and its
 * result pipe is closed, so each pipe sees EOF when its writer exits. */
static pid_t spawn(enum role role, int fd, int resfd, const int *others, size_t nothers,
		   const struct qkd_link_params *link, const struct qkd_engine_config *cfg,
		   const struct qkd_party_sources *src)
{
	pid_t pid = fork();

	if (pid == 0) {
		for (size_t i = 0; i < nothers; i++)
			if (others[i] >= 0)
				close(others[i]);
		signal(SIGPIPE, SIG_IGN);
		_exit(party(role, fd, resfd, link, cfg, src) == QKD_OK ? 0 : 1);
	}
	return pid;
}

int qkd_simlink_run(const struct qkd_link_params *link, const struct qkd_engine_config *cfg,
		    struct qkd_simlink_result *res)
{
	return qkd_simlink_run_sources(link, cfg, NULL, res);
}

int qkd_simlink_run_sources(const struct qkd_link_params *link,
			    const struct qkd_engine_config *cfg,
			    const struct qkd_party_sources *src, struct qkd_simlink_result *res)
{
	int sv[2] = {-1, -1}, ra[2] = {-1, -1}, rb[2] = {-1, -1};
	pid_t pa = -1, pb = -1;
	double t0 = qkd_wall_seconds();
	int rc = QKD_ERR_IO;

	memset(res, 0, sizeof *res);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || pipe(ra) != 0 || pipe(rb) != 0)
		goto out;
	/* Sifting reports run to megabytes: larger socket buffers mean fewer
	 * context switches between the parties (best effort). */
	for (int i = 0; i < 2; i++) {
		int sz = 4 << 20;

		(void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
		(void)setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	}
	fflush(NULL);	/* nothing buffered may be written twice */
	{
		int a_close[] = {sv[1], ra[0], rb[0], rb[1]};
		int b_close[] = {sv[0], ra[0], ra[1], rb[0]};

		pa = spawn(ROLE_ALICE, sv[0], ra[1], a_close, 4, link, cfg, src);
		if (pa < 0)
			goto out;
		pb = spawn(ROLE_BOB, sv[1], rb[1], b_close, 4, link, cfg, src);
		if (pb < 0)
			goto out;
	}
	close(sv[0]); close(sv[1]); close(ra[1]); close(rb[1]);
	sv[0] = sv[1] = ra[1] = rb[1] = -1;
	rc = read_result(ra[0], &res->alice);
	if (read_result(rb[0], &res->bob) != QKD_OK && rc == QKD_OK)
		rc = QKD_ERR_IO;
	if (rc == QKD_OK)
		rc = res->alice.rc != QKD_OK ? res->alice.rc : res->bob.rc;
out:
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0) close(sv[i]);
		if (ra[i] >= 0) close(ra[i]);
		if (rb[i] >= 0) close(rb[i]);
	}
	if (pa > 0) waitpid(pa, NULL, 0);
	if (pb > 0) waitpid(pb, NULL, 0);
	res->wall_seconds = qkd_wall_seconds() - t0;
	return rc;
}

void qkd_simlink_result_cleanup(struct qkd_simlink_result *res)
{
	if (res == NULL)
		return;
	qkd_bits_cleanup(&res->alice.key);
	qkd_bits_cleanup(&res->bob.key);
}
