#include "api/paging.h"

#include <algorithm>
#include <charconv>

namespace devid::api {

Result<registry::PageRequest> PageFrom(const Request& request) {
  registry::PageRequest page;
  std::string_view count = request.HeaderValue("x-ms-max-item-count");
  if (!count.empty()) {
    auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), page.max_items);
    if (ec != std::errc() || end != count.data() + count.size() || page.max_items < 1) {
      return std::unexpected(InvalidArgument("x-ms-max-item-count: must be a positive integer"));
    }
  }
  page.max_items = std::min(page.max_items, 1000);
  page.continuation = std::string(request.HeaderValue("x-ms-continuation"));
  return page;
}

}  // namespace devid::api
