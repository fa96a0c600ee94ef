#pragma once

// Path validation lives in pki (the device SDK verifies renewed certificates with it too); the
// attestation verifiers keep using it under their own namespace.
#include "pki/chain_verifier.h"

namespace devid::attestation {

using pki::ChainPolicy;
using pki::VerifyChain;

}  // namespace devid::attestation
