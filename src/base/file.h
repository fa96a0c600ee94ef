#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace devid {

// ReadFile returns a whole file; kNotFound names the path and the cause.
Result<std::string> ReadFile(const std::string& path);

// WriteFileAtomically replaces path with data via a temporary file created with mode (whatever
// the umask) and synced before the rename, so readers never see a partial file.
Status WriteFileAtomically(const std::string& path, std::string_view data, unsigned mode);

// WriteSyncClose writes all of data to fd, syncs and closes it (fd is closed on every path).
// Fails with kUnavailable: "writing <what>: <cause>" or "syncing <what>: <cause>".
Status WriteSyncClose(int fd, std::string_view data, const std::string& what);

}  // namespace devid
