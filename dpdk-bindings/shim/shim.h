/*
 * Non-inline wrappers around DPDK's static-inline fast-path functions and
 * thread-local state. Rust cannot call `static inline` functions or read
 * `__thread` variables through bindgen, so each one gets an exported
 * espgw_* twin here. Keep these trivial: they are pure forwarding.
 */
#ifndef ESPGW_SHIM_H
#define ESPGW_SHIM_H

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

/* ethdev fast path */
uint16_t espgw_rx_burst(uint16_t port_id, uint16_t queue_id,
			struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t espgw_tx_burst(uint16_t port_id, uint16_t queue_id,
			struct rte_mbuf **tx_pkts, uint16_t nb_pkts);
/* RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP: RTE_BIT64 macros are
 * invisible to bindgen. */
uint64_t espgw_rss_hf_ip_udp_tcp(void);

/* mbuf */
struct rte_mbuf *espgw_pktmbuf_alloc(struct rte_mempool *mp);
void espgw_pktmbuf_free(struct rte_mbuf *m);
void espgw_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int count);
char *espgw_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *espgw_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *espgw_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int espgw_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
uint16_t espgw_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t espgw_pktmbuf_tailroom(const struct rte_mbuf *m);
/* hash.rss lives in nested anonymous unions; bindgen's names for them are
 * not stable, so read it here. */
uint32_t espgw_pktmbuf_rss_hash(const struct rte_mbuf *m);
/* A 32-bit application tag in hash.usr (shares storage with hash.rss). */
uint32_t espgw_pktmbuf_tag(const struct rte_mbuf *m);
void espgw_pktmbuf_set_tag(struct rte_mbuf *m, uint32_t tag);

/* ring */
unsigned int espgw_ring_enqueue_burst(struct rte_ring *r,
				      void *const *obj_table, unsigned int n);
unsigned int espgw_ring_dequeue_burst(struct rte_ring *r, void **obj_table,
				      unsigned int n);
unsigned int espgw_ring_count(const struct rte_ring *r);
unsigned int espgw_ring_free_count(const struct rte_ring *r);

/* crypto operations (enqueue/dequeue API): all inline in DPDK */
struct rte_crypto_op;
/* Where the IV is kept in an operation: just after the op and its symmetric part. */
uint16_t espgw_crypto_op_iv_offset(void);
int espgw_crypto_op_bulk_alloc(struct rte_mempool *mp, struct rte_crypto_op **ops,
			       uint16_t n);
void espgw_crypto_op_bulk_free(struct rte_crypto_op **ops, uint16_t n);
/* Pairs op with desc, a caller-owned mbuf header used only as the PMD's descriptor of an
 * operation's memory (never from a pool, never freed), and sets every field that is the same
 * for all of the caller's operations: in place, with a session, one segment. Once per pair;
 * a PMD writes none of these back (it sets only the status). */
void espgw_aead_op_bind(struct rte_crypto_op *op, struct rte_mbuf *desc);
/* Readies a bound op for an AEAD over len bytes at data, the tag just after them, under
 * sess: only what differs per operation. 16 bytes at iv (the 12-byte IV and padding) are
 * copied into the op's private area, which holds 16. */
void espgw_aead_op_fill(struct rte_crypto_op *op, void *sess, uint8_t *data, uint16_t len,
			const uint8_t *iv, uint8_t *aad);
/* Bit i of the result set: ops[i] succeeded (only the first 32 ops are looked at). */
uint32_t espgw_crypto_ops_succeeded(struct rte_crypto_op *const *ops, uint16_t n);
uint16_t espgw_cryptodev_enqueue_burst(uint8_t dev_id, uint16_t qp_id,
				       struct rte_crypto_op **ops, uint16_t n);
uint16_t espgw_cryptodev_dequeue_burst(uint8_t dev_id, uint16_t qp_id,
				       struct rte_crypto_op **ops, uint16_t n);

/* per-thread state and timers */
int espgw_errno(void);
unsigned int espgw_lcore_id(void);
uint64_t espgw_rdtsc(void);
uint64_t espgw_tsc_hz(void);

#endif /* ESPGW_SHIM_H */
