/* See shim.h for why these exist. */
#include <string.h>
#include <rte_config.h>
#include <rte_crypto.h>
#include <rte_cryptodev.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "shim.h"

uint16_t espgw_rx_burst(uint16_t port_id, uint16_t queue_id,
			struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t espgw_tx_burst(uint16_t port_id, uint16_t queue_id,
			struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

uint64_t espgw_rss_hf_ip_udp_tcp(void)
{
	return RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP;
}

struct rte_mbuf *espgw_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

void espgw_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

void espgw_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int count)
{
	rte_pktmbuf_free_bulk(mbufs, count);
}

char *espgw_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_prepend(m, len);
}

char *espgw_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_append(m, len);
}

char *espgw_pktmbuf_adj(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_adj(m, len);
}

int espgw_pktmbuf_trim(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_trim(m, len);
}

uint16_t espgw_pktmbuf_headroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_headroom(m);
}

uint16_t espgw_pktmbuf_tailroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_tailroom(m);
}

uint32_t espgw_pktmbuf_rss_hash(const struct rte_mbuf *m)
{
	return m->hash.rss;
}

uint32_t espgw_pktmbuf_tag(const struct rte_mbuf *m)
{
	return m->hash.usr;
}

void espgw_pktmbuf_set_tag(struct rte_mbuf *m, uint32_t tag)
{
	m->hash.usr = tag;
}

unsigned int espgw_ring_enqueue_burst(struct rte_ring *r,
				      void *const *obj_table, unsigned int n)
{
	return rte_ring_enqueue_burst(r, obj_table, n, NULL);
}

unsigned int espgw_ring_dequeue_burst(struct rte_ring *r, void **obj_table,
				      unsigned int n)
{
	return rte_ring_dequeue_burst(r, obj_table, n, NULL);
}

unsigned int espgw_ring_count(const struct rte_ring *r)
{
	return rte_ring_count(r);
}

unsigned int espgw_ring_free_count(const struct rte_ring *r)
{
	return rte_ring_free_count(r);
}

int espgw_errno(void)
{
	return rte_errno;
}

unsigned int espgw_lcore_id(void)
{
	return rte_lcore_id();
}

uint64_t espgw_rdtsc(void)
{
	return rte_rdtsc();
}

uint64_t espgw_tsc_hz(void)
{
	return rte_get_tsc_hz();
}

/* Where the IV is kept: the op's private area, just after the op and its symmetric part. */
#define ESPGW_IV_OFFSET (sizeof(struct rte_crypto_op) + sizeof(struct rte_crypto_sym_op))

uint16_t espgw_crypto_op_iv_offset(void)
{
	return ESPGW_IV_OFFSET;
}

int espgw_crypto_op_bulk_alloc(struct rte_mempool *mp, struct rte_crypto_op **ops,
			       uint16_t n)
{
	return rte_crypto_op_bulk_alloc(mp, RTE_CRYPTO_OP_TYPE_SYMMETRIC, ops, n);
}

void espgw_crypto_op_bulk_free(struct rte_crypto_op **ops, uint16_t n)
{
	for (uint16_t i = 0; i < n; i++)
		rte_crypto_op_free(ops[i]);
}

void espgw_aead_op_bind(struct rte_crypto_op *op, struct rte_mbuf *desc)
{
	struct rte_crypto_sym_op *sym = op->sym;

	desc->data_off = 0;
	desc->nb_segs = 1;
	desc->next = NULL;
	op->status = RTE_CRYPTO_OP_STATUS_NOT_PROCESSED;
	op->sess_type = RTE_CRYPTO_OP_WITH_SESSION;
	sym->m_src = desc;
	sym->m_dst = NULL;
	sym->aead.data.offset = 0;
	sym->aead.digest.phys_addr = 0;
	sym->aead.aad.phys_addr = 0;
}

void espgw_aead_op_fill(struct rte_crypto_op *op, void *sess, uint8_t *data, uint16_t len,
			const uint8_t *iv, uint8_t *aad)
{
	struct rte_crypto_sym_op *sym = op->sym;
	struct rte_mbuf *desc = sym->m_src;

	desc->buf_addr = data;
	desc->data_len = len;
	desc->pkt_len = len;
	op->status = RTE_CRYPTO_OP_STATUS_NOT_PROCESSED;
	sym->session = sess;
	sym->aead.data.length = len;
	sym->aead.digest.data = data + len;
	sym->aead.aad.data = aad;
	memcpy(rte_crypto_op_ctod_offset(op, uint8_t *, ESPGW_IV_OFFSET), iv, 16);
}

uint32_t espgw_crypto_ops_succeeded(struct rte_crypto_op *const *ops, uint16_t n)
{
	uint32_t ok = 0;

	/* One bit per operation: no more operations than the result has bits. */
	if (n > sizeof(ok) * 8)
		n = sizeof(ok) * 8;
	for (uint16_t i = 0; i < n; i++)
		ok |= (uint32_t)(ops[i]->status == RTE_CRYPTO_OP_STATUS_SUCCESS) << i;
	return ok;
}

uint16_t espgw_cryptodev_enqueue_burst(uint8_t dev_id, uint16_t qp_id,
				       struct rte_crypto_op **ops, uint16_t n)
{
	return rte_cryptodev_enqueue_burst(dev_id, qp_id, ops, n);
}

uint16_t espgw_cryptodev_dequeue_burst(uint8_t dev_id, uint16_t qp_id,
				       struct rte_crypto_op **ops, uint16_t n)
{
	return rte_cryptodev_dequeue_burst(dev_id, qp_id, ops, n);
}
