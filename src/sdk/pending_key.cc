#include "sdk/pending_key.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "keys/pkcs11/pkcs11_key_store.h"

namespace devid::sdk {
namespace {

constexpr std::string_view kPendingSuffix = ".next";

}  // namespace

Result<keys::KeyUri> PendingKeyUri(const keys::KeyUri& uri) {
  keys::KeyUri pending = uri;
  if (uri.scheme == "file") {
    pending.path += kPendingSuffix;
    return pending;
  }
  if (uri.scheme == "pkcs11") {
    std::optional<std::string> label = uri.PathAttribute("object");
    if (!label || label->empty()) {
      return std::unexpected(FailedPrecondition(
          "the key " + uri.ToString() +
          " has no object label, which a new key beside it needs (name it with object=)"));
    }
    // After the commit the new key keeps its own CKA_ID: a URI that also named the old key's id
    // would no longer find it, and changing the id as well would take two more steps per object.
    if (uri.PathAttribute("id")) {
      return std::unexpected(FailedPrecondition(
          "the key " + uri.ToString() +
          " names its id; a new key beside it is found by its object label only, so drop id= "
          "from the key's URI (or keep the key)"));
    }
    pending.path_attributes["object"] = *label + std::string(kPendingSuffix);
    return pending;
  }
  return std::unexpected(FailedPrecondition("a new key cannot be made beside a " + uri.scheme +
                                            ": key; renew it with the same key"));
}

Status DiscardPendingKey(const keys::KeyUri& uri, const DeviceKeyOptions& options) {
  DEVID_ASSIGN_OR_RETURN(keys::KeyUri pending, PendingKeyUri(uri));
  // The parsed URI, not its text: ToString redacts a pin-value, and a token must not be offered
  // a wrong PIN.
  Status deleted = Ok();
  if (uri.scheme == "file") {
    std::error_code error;
    if (!std::filesystem::remove(pending.path, error) && error) {
      deleted = std::unexpected(Unavailable(pending.path + ": " + error.message()));
    }
  } else {
    keys::Pkcs11KeyStore store(options.pkcs11_module);
    deleted = store.DeleteKey(pending);
  }
  if (!deleted && deleted.error().code() != ErrorCode::kNotFound) {
    return std::unexpected(deleted.error().WithContext("deleting the unused new key"));
  }
  return Ok();
}

Status PromotePendingKey(const keys::KeyUri& uri, const DeviceKeyOptions& options) {
  DEVID_ASSIGN_OR_RETURN(keys::KeyUri pending, PendingKeyUri(uri));
  if (uri.scheme == "file") {
    if (std::rename(pending.path.c_str(), uri.path.c_str()) != 0) {
      int error = errno;
      std::string message = "putting the new key " + pending.path + " in place of " + uri.path +
                            ": " + std::strerror(error);
      return std::unexpected(error == ENOENT ? NotFound(message) : Unavailable(message));
    }
    return Ok();
  }
  // PKCS #11 has no atomic rename: destroy the old pair, then relabel the new one, checking
  // first that the new one is there so that the old is never destroyed for nothing.
  keys::Pkcs11KeyStore store(options.pkcs11_module);
  auto new_key = store.Load(pending);
  if (!new_key) return std::unexpected(new_key.error().WithContext("finding the new key"));
  Status deleted = store.DeleteKey(uri);
  if (!deleted && deleted.error().code() != ErrorCode::kNotFound) {
    return std::unexpected(deleted.error().WithContext("deleting the old key"));
  }
  Status relabelled = store.RelabelKey(pending, *uri.PathAttribute("object"));
  if (!relabelled) {
    return std::unexpected(relabelled.error().WithContext("putting the new key in place"));
  }
  return Ok();
}

}  // namespace devid::sdk
