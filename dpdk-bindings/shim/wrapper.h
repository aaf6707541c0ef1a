/*
 * Everything bindgen sees. The list mirrors what the safe layer uses plus the
 * cryptodev headers, kept so the cryptodev wrapper can be added later without
 * touching the build script.
 */
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_memzone.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ethdev.h>
#include <rte_telemetry.h>
#include <rte_crypto.h>
#include <rte_crypto_sym.h>
#include <rte_cryptodev.h>
#if __has_include(<rte_bus_vdev.h>)
#include <rte_bus_vdev.h>
#endif

#include "shim.h"
