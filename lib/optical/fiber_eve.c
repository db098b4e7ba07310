/* fiber_eve.c - Eve on the fiber socket (qkd/fiber.h, `qkd eve`;
 * DESIGN.md section 3 "Eve lives on the fiber"; docs/fiber.md s5).
 *
 * She acts on whole frames in place, pulse by pulse, with the attacks of
 * docs/optical-model.md that need nothing but the pulses themselves:
 *   intercept-resend:F  each pulse with probability F is measured in a
 *     random basis (an ideal measurement: she never misses a photon); in the
 *     state's basis she learns its value, in the other she gets a random
 *     value; she resends the same photon number prepared in her basis and
 *     value;
 *   beamsplit:F  each photon is tapped with probability F (a beamsplitter of
 *     transmission 1 - F); pulses left empty no longer travel.
 * pns needs Bob's expected rate (the link parameters), so on the socket it
 * is refused. Her randomness is ChaCha20 under a subkey of her key.
 */
#include "qkd/fiber.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fiber_int.h"
#include "qkd/error.h"
#include "qkd/secret.h"

struct qkd_fiber_eve {
	enum qkd_eve_attack attack;
	double fraction;
	struct fib_stream rng;
	struct qkd_fiber_eve_stats st;
};

int qkd_fiber_eve_new(struct qkd_fiber_eve **out, enum qkd_eve_attack attack, double fraction,
		      const uint8_t key[QKD_FIBER_KEY_BYTES])
{
	struct qkd_fiber_eve *e = NULL;
	uint8_t k[32];
	int rc = QKD_ERR_INVAL;

	*out = NULL;
	if ((attack != QKD_EVE_NONE && attack != QKD_EVE_INTERCEPT_RESEND &&
	     attack != QKD_EVE_BEAMSPLIT) || !(fraction >= 0.0 && fraction <= 1.0))
		goto out;
	rc = QKD_ERR_NOMEM;
	if (sodium_init() < 0 || (e = calloc(1, sizeof *e)) == NULL)
		goto out;
	e->attack = attack;
	e->fraction = fraction;
	fib_subkey(k, key, FIB_EVE);
	fib_stream_init(&e->rng, k, 0);
	*out = e;
	e = NULL;
	rc = QKD_OK;
out:
	sodium_memzero(k, sizeof k);
	qkd_fiber_eve_free(e);
	return rc;
}

void qkd_fiber_eve_free(struct qkd_fiber_eve *e)
{
	qkd_free_secret(e, e != NULL ? sizeof *e : 0);
}

static void intercept(struct qkd_fiber_eve *e, struct qkd_fiber_frame *f)
{
	for (size_t i = 0; i < f->n; i++) {
		struct qkd_pulse *p = &f->p[i];
		uint64_t r;
		unsigned basis, value;

		if (!(fib_unit(&e->rng) < e->fraction))
			continue;
		r = fib_u64(&e->rng);
		basis = r & 1;
		value = basis == (unsigned)(p->state >> 1) ? (p->state & 1u) : (unsigned)(r >> 1) & 1;
		p->state = (uint8_t)(2 * basis + value);
		e->st.intercepted++;
	}
}

/* Photons of a pulse that get past her beamsplitter. */
static unsigned transmitted(struct qkd_fiber_eve *e, unsigned n)
{
	unsigned kept = 0;

	for (unsigned j = 0; j < n; j++)
		kept += !(fib_unit(&e->rng) < e->fraction);
	return kept;
}

static void beamsplit(struct qkd_fiber_eve *e, struct qkd_fiber_frame *f)
{
	size_t out = 0;

	for (size_t i = 0; i < f->n; i++) {
		struct qkd_pulse p = f->p[i];
		unsigned kept = transmitted(e, p.photons);

		if (kept < p.photons) {
			e->st.intercepted++;
			e->st.photons_tapped += p.photons - kept;
		}
		p.photons = (uint16_t)kept;
		if (kept > 0)
			f->p[out++] = p;
	}
	if (out < f->n)
		qkd_wipe(f->p + out, (f->n - out) * sizeof *f->p);
	f->n = out;
}

int qkd_fiber_eve_apply(struct qkd_fiber_eve *e, struct qkd_fiber_frame *f)
{
	if (!fib_frame_valid(f))
		return QKD_ERR_INVAL;
	e->st.frames++;
	e->st.pulses += f->n;
	if (e->attack == QKD_EVE_INTERCEPT_RESEND)
		intercept(e, f);
	else if (e->attack == QKD_EVE_BEAMSPLIT)
		beamsplit(e, f);
	return QKD_OK;
}

void qkd_fiber_eve_stats(const struct qkd_fiber_eve *e, struct qkd_fiber_eve_stats *st)
{
	*st = e->st;
}
