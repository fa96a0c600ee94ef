#pragma once

// Where a renewal keeps the new key until the new certificate is proven, and how the new key then
// takes the old one's place, for keys in files and in PKCS #11 tokens.

#include "base/result.h"
#include "devid/device_key.h"
#include "keys/key_uri.h"

namespace devid::sdk {

// PendingKeyUri returns where a renewal makes the new key beside the key at uri: the file's path
// + ".next", or in the same token the object label + ".next". Fails with kFailedPrecondition for
// a token key named without an object label or with an id (the new key gets an id of its own).
Result<keys::KeyUri> PendingKeyUri(const keys::KeyUri& uri);

// DiscardPendingKey deletes the key at PendingKeyUri(uri) if there is one. Fails with the store's
// error (the token unreachable, a wrong PIN), leaving it.
Status DiscardPendingKey(const keys::KeyUri& uri, const DeviceKeyOptions& options);

// PromotePendingKey makes the pending key the key at uri and deletes the old one: a file is
// renamed over the old file (atomic); in a token the old key pair is destroyed and the pending one
// relabelled to uri's object, which are two steps. A call cut short between them leaves no key
// at uri and the pending key intact, and calling again completes it.
// Fails with kNotFound when there is no pending key, else with the store's error.
Status PromotePendingKey(const keys::KeyUri& uri, const DeviceKeyOptions& options);

}  // namespace devid::sdk
