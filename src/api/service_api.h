#pragma once

#include <string>

#include "api/http.h"
#include "api/service_auth.h"
#include "api/target.h"
#include "base/clock.h"
#include "base/random.h"
#include "registry/registry.h"

namespace devid::api {

// ServiceApi serves the DPS service (management) API as azure-iot-provisioning-service uses it
// (protocol notes §6): individual enrollments under /enrollments, groups under /enrollmentGroups
// (get, create or replace with If-Match, delete, attestationmechanism, query with continuation,
// bulk), and registration states under /registrations. Every call is authorized by a service SAS
// token with the right it needs. A refused call changes nothing.
class ServiceApi {
 public:
  // ServiceApi keeps references to everything it is given; they must outlive it.
  ServiceApi(registry::Registry& registry, const ServiceAuthenticator& auth, Random& random)
      : registry_(registry), auth_(auth), random_(random) {}

  // Handle serves a request whose first path segment is enrollments, enrollmentGroups or
  // registrations.
  Response Handle(const Request& request, const Target& target, const std::string& tracking_id);

 private:
  template <typename Traits>
  Response HandleCollection(const Request& request, const Target& target,
                            const std::string& actor, const std::string& tracking_id);
  template <typename Traits>
  Response Put(const Request& request, const std::string& id, const std::string& actor,
               const std::string& tracking_id);
  template <typename Traits>
  Response Query(const Request& request, const std::string& tracking_id);
  template <typename Traits>
  Response Bulk(const Request& request, const std::string& actor, const std::string& tracking_id);
  Response HandleRegistrations(const Request& request, const Target& target,
                               const std::string& actor, const std::string& tracking_id);
  // FillGeneratedKeys gives a symmetric-key attestation without keys fresh 64-byte keys, as DPS.
  void FillGeneratedKeys(registry::AttestationMechanism& attestation);

  registry::Registry& registry_;
  const ServiceAuthenticator& auth_;
  Random& random_;
};

}  // namespace devid::api
