//! The burst: how many packets a worker receives, processes and sends at once. The one burst
//! size of the dataplane: RX and TX bursts, the handoff and punt rings' bursts, a batch of
//! crypto jobs (`esp::crypto::AeadOps`) and the sets of a burst's packets kept as bit masks
//! in a `u32` all follow it.

pub const MAX_BURST: usize = 32;

// A burst's packets are kept as the bits of a u32 (crypto outcomes, groups by SA).
const _: () = assert!(MAX_BURST <= 32 && MAX_BURST.is_power_of_two());
